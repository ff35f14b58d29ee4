"""XML codec: typed messages <-> schema-valid ISO 15118-20 XML, built and read with lxml.

Theory of operation. For every message class the codec compiles, once and lazily, two *plans*
from the field metadata (:mod:`mcscomm.messages.meta`): an encoder (a list of small closures,
one per field, that append child elements) and a decoder (a dict from child tag to field name
and converter). The hot path therefore does no reflection: it runs the closures, builds elements
with ``etree.SubElement`` and validates the tree with the compiled XSD.

Encoding has a fast path: a second plan per class writes the document as text (string pieces,
no element objects), and the codec then parses those bytes and validates the parsed tree. Building
an lxml tree element by element from Python costs 3-4x more than writing the same text and parsing
it in C. The bytes that go out are therefore exactly the bytes that were validated, and they are
byte-identical to the tree path's output (same prefixes, same escaping; tested). Anything the text
plan is not sure about (an unexpected type, a string needing escaping, a document that does not
parse or validate) falls back to the tree path, which produces the precise error.

Every ``encode`` validates the document before it leaves, and every ``decode`` validates the
parsed document before walking it, so no schema-invalid document goes out or comes in. Decoding
is hardened: size limit, no DTD (refused before parsing: XXE, billion laughs), no entity
expansion, no network, the document is always read as UTF-8 whatever it declares, libxml2's
depth limit (256) and text-node limit stay on (``huge_tree=False``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from lxml import etree

from mcscomm.codec import schemas
from mcscomm.codec.base import MESSAGE_CLASSES, PAYLOAD_MESSAGES, Message, payload_type_for
from mcscomm.codec.errors import (
    CodecError,
    HostileDocument,
    MalformedDocument,
    SchemaViolation,
    UnknownMessage,
)
from mcscomm.messages.meta import (
    NS_APP,
    NS_CM,
    NS_CT,
    NS_DC,
    NS_DS,
    TYPE_TAGS,
    Simple,
    XmlField,
    tag_of,
    xml_fields,
)
from mcscomm.messages.rational import RationalNumber

#: exclusive XML canonicalization 1.0 (without comments)
C14N_EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"

#: Default limit on an incoming document. The largest realistic -20 message (a
#: CertificateInstallationRes or a ScheduleExchangeRes with three long schedules) is tens of
#: kilobytes; 1 MiB leaves room and refuses memory attacks before parsing.
DEFAULT_MAX_BYTES = 1 << 20

_SCHEMA_BY_NS = {
    NS_APP: schemas.APP_PROTOCOL,
    NS_CM: schemas.COMMON_MESSAGES,
    NS_DC: schemas.DC,
}
_NSMAP_BY_NS: dict[str, dict[str, str]] = {
    NS_APP: {"app": NS_APP},
    NS_CM: {"ns": NS_CM, "ct": NS_CT},
    NS_DC: {"dc": NS_DC, "ct": NS_CT},
}
_FRAGMENT_NSMAP: dict[str, str] = {"ns": NS_CM, "ct": NS_CT, "dc": NS_DC, "xmlsig": NS_DS}

_RN_EXP = f"{{{NS_CT}}}Exponent"
_RN_VAL = f"{{{NS_CT}}}Value"

# libxml2 messages that mean "this document is an attack", not merely broken
_HOSTILE_MARKERS = ("Excessive depth", "entity", "Huge input", "huge text", "too large")

Encoder = Callable[[etree._Element, Any], None]
Decoder = Callable[[etree._Element], Any]


class _FieldError(Exception):
    """Raised inside encoders; carries the dotted path of the offending field outward."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# simple-type conversions
# ---------------------------------------------------------------------------------------------


def _to_text(simple: Simple) -> Callable[[Any], str]:
    kind = simple.kind
    if kind == "int":

        def conv_int(v: Any) -> str:
            if type(v) is int:
                return str(v)
            if isinstance(v, int) and not isinstance(v, bool):
                return str(int(v))
            raise TypeError(f"expected int, got {type(v).__name__}")

        return conv_int
    if kind == "bool":

        def conv_bool(v: Any) -> str:
            if v is True:
                return "true"
            if v is False:
                return "false"
            raise TypeError(f"expected bool, got {type(v).__name__}")

        return conv_bool
    if kind in ("str", "uri", "id", "enum"):

        def conv_str(v: Any) -> str:
            if isinstance(v, enum.Enum):
                v = v.value
            if isinstance(v, str):
                return v
            raise TypeError(f"expected str, got {type(v).__name__}")

        return conv_str
    if kind == "hex":

        def conv_hex(v: Any) -> str:
            if isinstance(v, bytes | bytearray):
                return v.hex().upper()
            raise TypeError(f"expected bytes, got {type(v).__name__}")

        return conv_hex
    if kind == "base64":

        def conv_b64(v: Any) -> str:
            if isinstance(v, bytes | bytearray):
                return base64.b64encode(v).decode("ascii")
            raise TypeError(f"expected bytes, got {type(v).__name__}")

        return conv_b64
    raise AssertionError(f"unknown simple kind {kind}")


def _from_text(simple: Simple) -> Callable[[str | None], Any]:
    kind = simple.kind
    if kind == "int":
        return lambda t: int(t or "")
    if kind == "bool":
        return lambda t: (t or "").strip() in ("true", "1")
    if kind in ("str", "uri", "id"):
        return lambda t: t or ""
    if kind == "enum":
        assert simple.enum is not None
        members = simple.enum._value2member_map_
        return lambda t: members[(t or "").strip()]
    if kind == "hex":
        return lambda t: bytes.fromhex(t or "")
    if kind == "base64":
        return lambda t: base64.b64decode(t or "")
    raise AssertionError(f"unknown simple kind {kind}")


# ---------------------------------------------------------------------------------------------
# plans
# ---------------------------------------------------------------------------------------------

_ENCODERS: dict[type, Encoder] = {}
_DECODERS: dict[type, Decoder] = {}


def _encode_rational(elem: etree._Element, v: Any) -> None:
    if not isinstance(v, RationalNumber):
        raise TypeError(f"expected RationalNumber, got {type(v).__name__}")
    etree.SubElement(elem, _RN_EXP).text = str(v.exponent)
    etree.SubElement(elem, _RN_VAL).text = str(v.value)


#: (Exponent text, Value text) -> RationalNumber. RationalNumber is frozen, so instances can be
#: shared; a charge loop repeats the same ~20 values every cycle, and building a frozen
#: dataclass costs more than the lookup. Bounded: cleared when full.
_RN_BY_TEXT: dict[tuple[str | None, str | None], RationalNumber] = {}
_RN_CACHE_MAX = 4096


def _decode_rational(elem: etree._Element) -> RationalNumber:
    exp, val = elem  # exactly Exponent, Value: guaranteed by validation
    key = (exp.text, val.text)
    r = _RN_BY_TEXT.get(key)
    if r is None:
        r = RationalNumber(int(key[1] or ""), int(key[0] or ""))
        if len(_RN_BY_TEXT) >= _RN_CACHE_MAX:
            _RN_BY_TEXT.clear()
        _RN_BY_TEXT[key] = r
    return r


def encoder_for(cls: type) -> Encoder:
    """The compiled encoder filling an element with the content of a ``cls`` instance."""
    enc = _ENCODERS.get(cls)
    if enc is None:
        enc = _ENCODERS[cls] = _compile_encoder(cls)
    return enc


def decoder_for(cls: type) -> Decoder:
    """The compiled decoder building a ``cls`` instance from its element."""
    dec = _DECODERS.get(cls)
    if dec is None:
        dec = _DECODERS[cls] = _compile_decoder(cls)
    return dec


def _value_writer(xf: XmlField) -> Callable[[etree._Element, Any], None]:
    """Writes one value into a freshly created child element."""
    typ = xf.type
    if isinstance(typ, Simple):
        conv = _to_text(typ)
        if xf.via_attr is not None:
            attr_name = xf.via_attr

            def write_attr(child: etree._Element, v: Any) -> None:
                child.set(attr_name, conv(v))

            return write_attr

        def write_text(child: etree._Element, v: Any) -> None:
            child.text = conv(v)

        return write_text
    assert isinstance(typ, type)
    if typ is RationalNumber:
        return _encode_rational

    def write_complex(child: etree._Element, v: Any) -> None:
        if not isinstance(v, typ):
            raise TypeError(f"expected {typ.__name__}, got {type(v).__name__}")
        encoder_for(type(v))(child, v)

    return write_complex


def _compile_encoder(cls: type) -> Encoder:
    steps: list[Callable[[etree._Element, Any], None]] = []
    for name, xf in xml_fields(cls):
        steps.append(_field_encoder(cls, name, xf))

    def encode(elem: etree._Element, obj: Any) -> None:
        for step in steps:
            step(elem, obj)

    return encode


def _field_encoder(cls: type, name: str, xf: XmlField) -> Callable[[etree._Element, Any], None]:
    sub = etree.SubElement
    where = f"{cls.__name__}.{name}"

    def fail(reason: str) -> _FieldError:
        return _FieldError(where, reason)

    if xf.attribute:
        assert isinstance(xf.type, Simple)
        conv = _to_text(xf.type)
        tag = xf.tag
        required = xf.min_occurs > 0

        def enc_attr(elem: etree._Element, obj: Any) -> None:
            v = getattr(obj, name)
            if v is None:
                if required:
                    raise fail("required attribute is None")
                return
            try:
                elem.set(tag, conv(v))
            except (TypeError, ValueError) as exc:
                raise fail(str(exc)) from None

        return enc_attr

    if xf.choices:
        tags = {c: tag_of(c) for c in xf.choices}
        optional = xf.min_occurs == 0

        def enc_choice(elem: etree._Element, obj: Any) -> None:
            v = getattr(obj, name)
            if v is None:
                if optional:
                    return
                raise fail("required choice is None")
            tag = tags.get(type(v))
            if tag is None:
                allowed = ", ".join(c.__name__ for c in xf.choices)
                raise fail(f"{type(v).__name__} is not one of {allowed}")
            child = sub(elem, tag)
            try:
                encoder_for(type(v))(child, v)
            except _FieldError as exc:
                raise _FieldError(f"{where}.{exc.path.split('.', 1)[1]}", exc.reason) from None

        return enc_choice

    tag = xf.tag
    write = _value_writer(xf)

    if xf.is_list:
        wrapper = f"{{{xf.ns}}}{xf.wrapper}" if xf.wrapper and xf.ns else xf.wrapper

        def enc_list(elem: etree._Element, obj: Any) -> None:
            items = getattr(obj, name)
            if items is None:
                items = ()
            if not isinstance(items, list | tuple):
                raise fail(f"expected a list, got {type(items).__name__}")
            if not items:
                if xf.min_occurs > 0 and wrapper is None:
                    raise fail("list must not be empty")
                return
            parent = sub(elem, wrapper) if wrapper is not None else elem
            for i, v in enumerate(items):
                try:
                    write(sub(parent, tag), v)
                except _FieldError as exc:
                    tail = exc.path.split(".", 1)[1]
                    raise _FieldError(f"{where}[{i}].{tail}", exc.reason) from None
                except (TypeError, ValueError) as exc:
                    raise _FieldError(f"{where}[{i}]", str(exc)) from None

        return enc_list

    optional = xf.min_occurs == 0

    def enc_one(elem: etree._Element, obj: Any) -> None:
        v = getattr(obj, name)
        if v is None:
            if optional:
                return
            raise fail("required field is None")
        try:
            write(sub(elem, tag), v)
        except _FieldError as exc:
            raise _FieldError(f"{where}.{exc.path.split('.', 1)[1]}", exc.reason) from None
        except (TypeError, ValueError) as exc:
            raise fail(str(exc)) from None

    return enc_one


def _value_reader(xf: XmlField) -> Decoder:
    typ = xf.type
    if isinstance(typ, Simple):
        if xf.via_attr is not None:
            conv = _from_text(typ)
            attr_name = xf.via_attr
            return lambda e: conv(e.get(attr_name))
        if typ.kind == "int":
            return lambda e: int(e.text)  # type: ignore[arg-type]  # validated: never empty
        conv = _from_text(typ)
        return lambda e: conv(e.text)
    assert isinstance(typ, type)
    return _class_reader(typ)


def _compile_decoder(cls: type) -> Decoder:
    attrs: list[tuple[str, str, Callable[[str | None], Any]]] = []
    table: dict[str, tuple[str, Decoder, bool]] = {}
    lists: list[str] = []
    for name, xf in xml_fields(cls):
        if xf.attribute:
            assert isinstance(xf.type, Simple)
            attrs.append((xf.tag, name, _from_text(xf.type)))
        elif xf.choices:
            for c in xf.choices:
                table[tag_of(c)] = (name, _class_reader(c), False)
        elif xf.wrapper is not None:
            item_reader = _value_reader(xf)
            wrapper_tag = f"{{{xf.ns}}}{xf.wrapper}" if xf.ns else xf.wrapper
            table[wrapper_tag] = (name, _wrapper_reader(item_reader), False)
        else:
            table[xf.tag] = (name, _value_reader(xf), xf.is_list)
            if xf.is_list:
                lists.append(name)

    if attrs or lists:

        def decode(elem: etree._Element) -> Any:
            kw: dict[str, Any] = {}
            for tag, name, conv in attrs:
                v = elem.get(tag)
                if v is not None:
                    kw[name] = conv(v)
            for name in lists:
                kw[name] = []
            for child in elem:
                entry = table.get(child.tag)
                if entry is None:
                    raise MalformedDocument(f"unexpected element {child.tag} in {cls.__name__}")
                name, read, is_list = entry
                if is_list:
                    kw[name].append(read(child))
                else:
                    kw[name] = read(child)
            return cls(**kw)

        return decode

    def decode_plain(elem: etree._Element) -> Any:
        # the common case: no attributes, no lists
        kw: dict[str, Any] = {}
        get = table.get
        for child in elem:
            entry = get(child.tag)
            if entry is None:
                raise MalformedDocument(f"unexpected element {child.tag} in {cls.__name__}")
            kw[entry[0]] = entry[1](child)
        return cls(**kw)

    return decode_plain


def _class_reader(c: type) -> Decoder:
    # The -20 types are not recursive, so nested decoders can be compiled eagerly.
    if c is RationalNumber:
        return _decode_rational
    return decoder_for(c)


def _wrapper_reader(item: Decoder) -> Decoder:
    return lambda e: [item(child) for child in e]


# ---------------------------------------------------------------------------------------------
# text plans (the fast encode path)
# ---------------------------------------------------------------------------------------------


class _Fallback(Exception):
    """The text plan cannot write this value the way the tree path would: use the tree path."""


#: prefixes the text plans write; the same ones the root nsmaps declare (``_NSMAP_BY_NS``)
_PREFIX_OF: dict[str, str] = {NS_APP: "app", NS_CM: "ns", NS_CT: "ct", NS_DC: "dc", NS_DS: "xmlsig"}

# Only text that lxml would write unchanged goes through the text plan: printable ASCII without
# markup characters. Anything else (escaping, non-ASCII, control characters) takes the tree path.
_NEEDS_TREE = re.compile(r'[^\x20-\x7e]|[&<>"]').search

TextWriter = Callable[[list[str], Any], bool]
_TEXT_WRITERS: dict[type, TextWriter] = {}


def _qname(ns: str | None, name: str) -> str:
    if ns is None:
        return name
    return f"{_PREFIX_OF[ns]}:{name}"


def _text_conv(simple: Simple) -> Callable[[Any], str]:
    """Like :func:`_to_text`, but raises :class:`_Fallback` where the tree path would raise or
    escape, so the tree path reports it."""
    kind = simple.kind
    if kind == "int":

        def int_text(v: Any) -> str:
            if type(v) is not int:
                raise _Fallback
            return str(v)

        return int_text
    if kind == "bool":

        def bool_text(v: Any) -> str:
            if v is True:
                return "true"
            if v is False:
                return "false"
            raise _Fallback

        return bool_text
    if kind in ("str", "uri", "id", "enum"):

        def str_text(v: Any) -> str:
            if isinstance(v, enum.Enum):
                v = v.value
            if type(v) is not str or _NEEDS_TREE(v):
                raise _Fallback
            return v

        return str_text
    if kind == "hex":

        def hex_text(v: Any) -> str:
            if type(v) is not bytes:
                raise _Fallback
            return v.hex().upper()

        return hex_text
    if kind == "base64":

        def b64_text(v: Any) -> str:
            if type(v) is not bytes:
                raise _Fallback
            return base64.b64encode(v).decode("ascii")

        return b64_text
    raise AssertionError(f"unknown simple kind {kind}")


def text_writer_for(cls: type) -> TextWriter:
    """The compiled text plan of ``cls``: appends the attributes of an already opened start tag
    (``<p:Name``), then ``>`` + children, or ``/>`` when there are none (then returns True:
    the element is closed; else the caller appends the end tag)."""
    w = _TEXT_WRITERS.get(cls)
    if w is None:
        w = _TEXT_WRITERS[cls] = _compile_text_writer(cls)
    return w


def _write_rational(out: list[str], q: str, v: Any) -> None:
    if type(v) is not RationalNumber or type(v.exponent) is not int or type(v.value) is not int:
        raise _Fallback
    out.append(f"<{q}><ct:Exponent>{v.exponent}</ct:Exponent><ct:Value>{v.value}</ct:Value></{q}>")


def _write_element(out: list[str], q: str, v: Any) -> None:
    """A complex element ``q`` holding ``v`` (any registered class: subclasses included)."""
    out.append("<" + q)
    if not text_writer_for(type(v))(out, v):
        out.append(f"</{q}>")


def _compile_text_writer(cls: type) -> TextWriter:
    attr_steps: list[Callable[[list[str], Any], None]] = []
    child_steps: list[Callable[[list[str], Any], None]] = []
    for name, xf in xml_fields(cls):
        if xf.attribute:
            attr_steps.append(_text_attr(name, xf))
        else:
            child_steps.append(_text_child(name, xf))

    def write(out: list[str], obj: Any) -> bool:
        for a in attr_steps:
            a(out, obj)
        i = len(out)
        out.append(">")
        for c in child_steps:
            c(out, obj)
        if len(out) == i + 1:
            out[i] = "/>"
            return True
        return False

    return write


def _text_attr(name: str, xf: XmlField) -> Callable[[list[str], Any], None]:
    assert isinstance(xf.type, Simple)
    conv = _text_conv(xf.type)
    q = _qname(xf.ns, xf.name)
    required = xf.min_occurs > 0

    def attr_text(out: list[str], obj: Any) -> None:
        v = getattr(obj, name)
        if v is None:
            if required:
                raise _Fallback
            return
        out.append(f' {q}="{conv(v)}"')

    return attr_text


def _text_value(xf: XmlField) -> Callable[[list[str], str, Any], None]:
    """Writes one element ``q`` holding ``v``."""
    typ = xf.type
    if isinstance(typ, Simple):
        conv = _text_conv(typ)
        if xf.via_attr is not None:
            attr_name = xf.via_attr

            def via_attr(out: list[str], q: str, v: Any) -> None:
                out.append(f'<{q} {attr_name}="{conv(v)}"/>')

            return via_attr

        def simple(out: list[str], q: str, v: Any) -> None:
            out.append(f"<{q}>{conv(v)}</{q}>")

        return simple
    assert isinstance(typ, type)
    if typ is RationalNumber:
        return _write_rational

    def complex_(out: list[str], q: str, v: Any) -> None:
        if not isinstance(v, typ):
            raise _Fallback
        _write_element(out, q, v)

    return complex_


def _text_child(name: str, xf: XmlField) -> Callable[[list[str], Any], None]:
    optional = xf.min_occurs == 0
    if xf.choices:
        qnames = {c: _qname(*TYPE_TAGS[c]) for c in xf.choices}

        def choice_text(out: list[str], obj: Any) -> None:
            v = getattr(obj, name)
            if v is None:
                if optional:
                    return
                raise _Fallback
            q = qnames.get(type(v))
            if q is None:
                raise _Fallback
            _write_element(out, q, v)

        return choice_text

    q = _qname(xf.ns, xf.name)
    write = _text_value(xf)
    if xf.is_list:
        wrapper = _qname(xf.ns, xf.wrapper) if xf.wrapper is not None else None
        needs_items = xf.min_occurs > 0 and wrapper is None

        def list_text(out: list[str], obj: Any) -> None:
            items = getattr(obj, name)
            if items is None:
                items = ()
            if type(items) is not list and type(items) is not tuple:
                raise _Fallback
            if not items:
                if needs_items:
                    raise _Fallback
                return
            if wrapper is not None:
                out.append(f"<{wrapper}>")
            for v in items:
                write(out, q, v)
            if wrapper is not None:
                out.append(f"</{wrapper}>")

        return list_text

    def one_text(out: list[str], obj: Any) -> None:
        v = getattr(obj, name)
        if v is None:
            if optional:
                return
            raise _Fallback
        write(out, q, v)

    return one_text


#: message class -> (start tag without signature, start tag with xmldsig declared, end tag)
_ROOT_TAGS: dict[type, tuple[str, str, str]] = {}


def _root_tags(cls: type, ns: str, name: str) -> tuple[str, str, str]:
    tags = _ROOT_TAGS.get(cls)
    if tags is None:
        # lxml writes the root's declarations; take its start tag so the bytes match exactly
        nsmap = _NSMAP_BY_NS[ns]
        plain = etree.tostring(etree.Element(f"{{{ns}}}{name}", nsmap=nsmap), encoding="unicode")
        signed = etree.tostring(
            etree.Element(f"{{{ns}}}{name}", nsmap={**nsmap, "xmlsig": NS_DS}), encoding="unicode"
        )
        assert plain.endswith("/>") and signed.endswith("/>")
        end = f"</{_qname(ns, name)}>"
        tags = _ROOT_TAGS[cls] = (plain[:-2], signed[:-2], end)
    return tags


# ---------------------------------------------------------------------------------------------
# the codec
# ---------------------------------------------------------------------------------------------


#: payload type -> {root tag: (class, namespace)}
_ROOTS_BY_PAYLOAD: dict[int, dict[str, tuple[type, str]]] = {
    pt: {tag_of(c): (c, str(TYPE_TAGS[c][0])) for c in classes}
    for pt, classes in PAYLOAD_MESSAGES.items()
}


def _error_from_log(log: Any, fallback: str) -> SchemaViolation:
    err = log.last_error if log is not None else None
    if err is None:
        return SchemaViolation(fallback)
    return SchemaViolation(err.message, err.path)


class XmlCodec:
    """Messages <-> schema-valid XML (the :class:`~mcscomm.codec.base.Codec` for XML).

    ``schema_dir`` overrides the XSD folder (see :mod:`mcscomm.codec.schemas`); ``max_bytes``
    limits incoming documents. Not thread-safe (lxml parsers and schema error logs are per
    instance); use one codec per thread.
    """

    canonicalization_uri = C14N_EXCLUSIVE

    def __init__(self, schema_dir: Path | str | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.schema_dir = schemas.schema_dir(schema_dir)
        self.max_bytes = max_bytes
        self._schemas: dict[str, etree.XMLSchema] = {}
        self._parser = etree.XMLParser(
            encoding="utf-8",  # ignore the declared encoding: V2G XML is UTF-8 (ASCII in EXI)
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=False,
            collect_ids=False,
        )

    # -- schemas ---------------------------------------------------------------------------

    def schema_for(self, namespace: str) -> etree.XMLSchema:
        """The compiled XSD that validates documents whose root is in ``namespace``."""
        schema = self._schemas.get(namespace)
        if schema is None:
            try:
                file_name = _SCHEMA_BY_NS[namespace]
            except KeyError:
                raise UnknownMessage(f"no schema for namespace {namespace!r}") from None
            schema = self._schemas[namespace] = schemas.load_schema(file_name, self.schema_dir)
        return schema

    # -- encode ----------------------------------------------------------------------------

    def to_element(self, message: Message) -> etree._Element:
        """The (not yet validated) element tree of ``message``."""
        cls = type(message)
        try:
            ns, name = TYPE_TAGS[cls]
        except KeyError:
            raise UnknownMessage(f"{cls.__name__} is not a message") from None
        if tag_of(cls) not in MESSAGE_CLASSES or ns is None:
            raise UnknownMessage(f"{cls.__name__} is not a root message")
        nsmap = _NSMAP_BY_NS[ns]
        header = getattr(message, "header", None)
        if header is not None and getattr(header, "signature", None) is not None:
            nsmap = {**nsmap, "xmlsig": NS_DS}
        root = etree.Element(f"{{{ns}}}{name}", nsmap=nsmap)
        try:
            encoder_for(cls)(root, message)
        except _FieldError as exc:
            raise SchemaViolation(exc.reason, exc.path) from None
        return root

    def to_text(self, message: Message) -> bytes | None:
        """The document of ``message`` written by the text plan (not yet validated), or None
        when the tree path must write it (see the module docstring)."""
        cls = type(message)
        entry = TYPE_TAGS.get(cls)
        if entry is None or entry[0] is None or tag_of(cls) not in MESSAGE_CLASSES:
            return None
        ns, name = entry
        assert ns is not None
        plain, signed, end = _ROOT_TAGS.get(cls) or _root_tags(cls, ns, name)
        header = getattr(message, "header", None)
        start = signed if getattr(header, "signature", None) is not None else plain
        out = [start]
        try:
            closed = text_writer_for(cls)(out, message)
        except _Fallback:
            return None
        if not closed:
            out.append(end)
        text = "".join(out)
        if start is plain and "<xmlsig:" in text:
            # xmldsig elements outside a Signature (RootCertificateID): lxml declares their
            # namespace locally (ns0, ns1, ...); leave that to the tree path
            return None
        return text.encode("ascii")

    def encode(self, message: Message) -> bytes:
        """Schema-valid XML bytes (UTF-8, no declaration) for ``message``.

        Raises :class:`SchemaViolation` (with the element path) for any value the XSD refuses.
        """
        data = self.to_text(message)
        if data is not None:
            # validate exactly the bytes that go out: parse them back (in C) and validate
            try:
                parsed = etree.fromstring(data, self._parser)
            except (etree.XMLSyntaxError, ValueError):
                parsed = None
            if parsed is not None:
                ns = TYPE_TAGS[type(message)][0]
                assert ns is not None
                schema = self._schemas.get(ns) or self.schema_for(ns)
                if schema.validate(parsed):
                    return data
            # not valid: the tree path below finds the precise error (field path, facet)
        root = self.to_element(message)
        ns = TYPE_TAGS[type(message)][0]
        assert ns is not None
        schema = self.schema_for(ns)
        if not schema.validate(root):
            raise _error_from_log(schema.error_log, "document does not validate")
        return etree.tostring(root, encoding="UTF-8", xml_declaration=False)

    def payload_type_for(self, message: Message) -> int:
        """The V2GTP payload type ``message`` travels on."""
        return payload_type_for(message)

    # -- decode ----------------------------------------------------------------------------

    def parse(self, data: bytes) -> etree._Element:
        """Parse ``data`` with the hardened parser (no validation). Raises MalformedDocument or
        HostileDocument."""
        if type(data) is not bytes:
            if not isinstance(data, bytearray | memoryview):
                raise MalformedDocument(f"expected bytes, got {type(data).__name__}")
            data = bytes(data)
        if len(data) > self.max_bytes:
            raise HostileDocument(f"document of {len(data)} bytes exceeds {self.max_bytes}")
        # A -20 document never has a DTD; refusing it before parsing stops XXE and entity
        # expansion attacks (billion laughs) at zero cost.
        if b"<!DOCTYPE" in data:  # (an ENTITY declaration can only live inside a DOCTYPE)
            raise HostileDocument("document type declarations are not allowed")
        try:
            root = etree.fromstring(data, self._parser)
        except etree.XMLSyntaxError as exc:
            msg = str(exc)
            if any(marker in msg for marker in _HOSTILE_MARKERS):
                raise HostileDocument(msg) from None
            raise MalformedDocument(msg) from None
        except ValueError as exc:  # e.g. lxml refusing a document it cannot handle
            raise MalformedDocument(str(exc)) from None
        if root is None:
            raise MalformedDocument("empty document")
        # No post-parse DOCTYPE check needed: the parser reads UTF-8 whatever the document
        # declares, so a DTD can only be the literal bytes refused above.
        return root

    def decode(self, payload_type: int, data: bytes) -> Message:
        """Parse, validate and convert ``data`` that arrived with ``payload_type``.

        Raises :class:`HostileDocument`, :class:`MalformedDocument`, :class:`UnknownMessage`
        (root not allowed on this payload type) or :class:`SchemaViolation`.
        """
        root = self.parse(data)
        roots = _ROOTS_BY_PAYLOAD.get(payload_type)
        if roots is None:
            raise UnknownMessage(f"payload type {payload_type:#06x} carries no XML messages")
        tag = root.tag
        entry = roots.get(tag)
        if entry is None:
            raise UnknownMessage(f"root element {tag} not allowed on payload {payload_type:#06x}")
        cls, ns = entry
        schema = self._schemas.get(ns) or self.schema_for(ns)
        if not schema.validate(root):
            raise _error_from_log(schema.error_log, "document does not validate")
        try:
            return cast(Message, decoder_for(cls)(root))
        except CodecError:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            # cannot happen for a schema-valid document; kept so nothing raw escapes
            raise MalformedDocument(f"cannot convert {tag}: {exc}") from None

    def decode_any(self, data: bytes) -> Message:
        """Decode a document whose payload type is not known (tools, CLI): picked by root."""
        root = self.parse(data)
        cls = MESSAGE_CLASSES.get(root.tag) if isinstance(root.tag, str) else None
        if cls is None:
            raise UnknownMessage(f"unknown root element {root.tag}")
        return self.decode(payload_type_for_class(cls), data)

    # -- fragments -------------------------------------------------------------------------

    def fragment_element(self, fragment: object, tag: str | None = None) -> etree._Element:
        """A standalone element for a signable part (default tag: the class's own element)."""
        cls = type(fragment)
        if tag is None:
            try:
                tag = tag_of(cls)
            except KeyError:
                raise UnknownMessage(f"{cls.__name__} has no element name") from None
        root = etree.Element(tag, nsmap=_FRAGMENT_NSMAP)
        try:
            encoder_for(cls)(root, fragment)
        except _FieldError as exc:
            raise SchemaViolation(exc.reason, exc.path) from None
        return root

    def canonicalize(self, fragment: object, tag: str | None = None) -> bytes:
        """Exclusive XML C14N (no comments) of ``fragment`` as its own element.

        ``fragment`` is a signable part (``PnC_AReqAuthorizationMode``, ``SignedMeteringData``,
        ``SignedInstallationData``, ``SignedCertificateChain``, a price schedule, a whole
        request) or a ``SignedInfo``. Exclusive C14N makes the bytes independent of where the
        element sits in a document, so signer and verifier compute them from the typed object.
        """
        elem = self.fragment_element(fragment, tag)
        return etree.tostring(elem, method="c14n", exclusive=True, with_comments=False)


def payload_type_for_class(cls: type) -> int:
    """The payload type of a message class (its root element)."""
    for pt, classes in PAYLOAD_MESSAGES.items():
        if cls in classes and pt != 0x8102:
            return pt
    raise UnknownMessage(f"{cls.__name__} is not a message")
