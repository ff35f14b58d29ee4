"""The EXI codec: messages and XML documents <-> schema-informed EXI, as ISO 15118-20 sends them.

:class:`ExiCodec` implements the :class:`mcscomm.codec.base.Codec` protocol on top of the XML
codec: a message becomes an element tree (``XmlCodec.to_element``), is validated against the XSD
and encoded with the grammars built from the same XSDs; decoding runs the other way. The
element-level methods (:meth:`ExiCodec.encode_element`, :meth:`ExiCodec.decode_element`) work
without the message classes (CLI, fuzzing, vectors).

Payload types select the grammar (shared/exi-vectors/README §5 "schemaId"): 0x8001 AppProtocol,
0x8002 CommonMessages, 0x8102 MeteringConfirmation (CommonMessages schema), 0x8004 DC.

Signatures (ISO 15118-20, V2G20-771 and facts §6): digests cover the EXI *fragment* encoding of
the signed element (grammar of its own schema set) and the SignatureValue covers the fragment
encoding of SignedInfo with the xmldsig schema as the entry point. :meth:`ExiCodec.canonicalize`
returns exactly those bytes; :data:`CANONICAL_EXI` is the algorithm URI.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, cast

from lxml import etree

from mcscomm.codec import schemas
from mcscomm.codec.base import MESSAGE_CLASSES, PAYLOAD_MESSAGES, Message, payload_type_for
from mcscomm.codec.errors import CodecError, SchemaViolation, UnknownMessage
from mcscomm.exi.errors import ExiDecodeError, ExiEncodeError, ExiError, ExiSchemaError
from mcscomm.exi.grammar import Grammars
from mcscomm.exi.stream import (
    decode_document,
    decode_fragment,
    encode_document,
    encode_fragment,
)
from mcscomm.exi.xsd import SchemaSet

#: xmldsig algorithm URI of canonical EXI (ISO 15118-20 CanonicalizationMethod / Transform).
CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"

NS_APP = "urn:iso:15118:2:2010:AppProtocol"
NS_CT = "urn:iso:std:iso:15118:-20:CommonTypes"
NS_CM = "urn:iso:std:iso:15118:-20:CommonMessages"
NS_DC = "urn:iso:std:iso:15118:-20:DC"
NS_AC = "urn:iso:std:iso:15118:-20:AC"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"

#: grammar names -> schema file (the entry point of the schema set)
SCHEMA_FILES: dict[str, str] = {
    "AppProtocol": schemas.APP_PROTOCOL,
    "CommonMessages": schemas.COMMON_MESSAGES,
    "DC": schemas.DC,
    "xmldsig": schemas.XMLDSIG,
    # Optional: mcscomm ships no AC schema (MCS is DC); a folder holding the ISO AC file (e.g.
    # MCSCOMM_SCHEMA_DIR pointing at the official XSDs) enables payload type 0x8003.
    "AC": "V2G_CI_AC.xsd",
}

#: V2GTP payload type -> grammar name
PAYLOAD_GRAMMARS: dict[int, str] = {
    0x8001: "AppProtocol",
    0x8002: "CommonMessages",
    0x8003: "AC",
    0x8004: "DC",
    0x8102: "CommonMessages",
}

#: namespace of a signable element -> the grammar its fragment is encoded with
FRAGMENT_GRAMMARS: dict[str, str] = {
    NS_DS: "xmldsig",
    NS_CM: "CommonMessages",
    NS_CT: "CommonMessages",
    NS_DC: "DC",
    NS_AC: "AC",
    NS_APP: "AppProtocol",
}

_METERING_ROOTS = {
    f"{{{NS_CM}}}MeteringConfirmationReq",
    f"{{{NS_CM}}}MeteringConfirmationRes",
}


@functools.lru_cache(maxsize=16)
def _grammars(file_name: str, folder: Path) -> Grammars:
    path = folder / file_name
    if not path.is_file():
        raise ExiSchemaError(f"schema file {path} not found")
    return Grammars(SchemaSet(path))


def grammars(name: str, schema_dir: str | os.PathLike[str] | None = None) -> Grammars:
    """The (cached) grammars of ``name`` (AppProtocol, CommonMessages, DC or xmldsig).

    Built once per schema folder from the XSDs (see :mod:`mcscomm.exi.grammar`).
    """
    # Resolving the folder costs a few stat() calls (~11 µs), several times per message: cache
    # the result per (name, folder argument, $MCSCOMM_SCHEMA_DIR) when those name the folder
    # independently of the working directory.
    env = os.environ.get(schemas.ENV_VAR) or None
    key = (name, schema_dir, env)
    try:
        return _RESOLVED[key]
    except (KeyError, TypeError):  # TypeError: an unhashable os.PathLike
        pass
    grammar = _resolve(name, schema_dir)
    explicit = schema_dir if schema_dir is not None else env
    if explicit is None or os.path.isabs(explicit):
        try:
            _RESOLVED[key] = grammar
        except TypeError:
            pass
    return grammar


_RESOLVED: dict[tuple[str, object, str | None], Grammars] = {}


def _resolve(name: str, schema_dir: str | os.PathLike[str] | None) -> Grammars:
    try:
        file_name = SCHEMA_FILES[name]
    except KeyError:
        raise ExiSchemaError(
            f"unknown grammar {name!r} (known: {', '.join(SCHEMA_FILES)})"
        ) from None
    try:
        folder = schemas.schema_dir(schema_dir)
    except schemas.SchemaLoadError as exc:
        raise ExiSchemaError(str(exc)) from None
    return _grammars(file_name, folder)


def grammar_for_payload(
    payload_type: int, schema_dir: str | os.PathLike[str] | None = None
) -> Grammars:
    """The grammars a V2GTP payload type selects."""
    name = PAYLOAD_GRAMMARS.get(payload_type)
    if name is None:
        raise ExiDecodeError(f"payload type {payload_type:#06x} carries no EXI document")
    if name == "AC" and not has_grammar(name, schema_dir):
        raise ExiDecodeError(f"payload type {payload_type:#06x} (AC): no {SCHEMA_FILES[name]}")
    return grammars(name, schema_dir)


def preload(schema_dir: str | os.PathLike[str] | None = None) -> None:
    """Build every grammar now (about 0.3 s) instead of on the first message of a session."""
    for name in SCHEMA_FILES:
        if name != "AC" or has_grammar(name, schema_dir):
            grammars(name, schema_dir)


def has_grammar(name: str, schema_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the schema folder holds the schema of grammar ``name`` (AC is optional)."""
    try:
        return (schemas.schema_dir(schema_dir) / SCHEMA_FILES[name]).is_file()
    except (KeyError, schemas.SchemaLoadError):
        return False


class ExiCodec:
    """Messages <-> EXI bytes (the :class:`~mcscomm.codec.base.Codec` for EXI).

    ``validate`` (default on) checks every document against the XSD before encoding and after
    decoding, exactly like :class:`~mcscomm.codec.xml.XmlCodec`. ``value_hits`` (default off)
    accepts string-table hits on decode from peers that use the EXI default value partitions
    instead of the V2G profile (the encoder never emits them). Every failure is a
    :class:`~mcscomm.codec.errors.CodecError`; EXI-level ones are :class:`ExiError` subclasses.
    """

    canonicalization_uri = CANONICAL_EXI

    def __init__(
        self,
        schema_dir: Path | str | None = None,
        validate: bool = True,
        xml: Any = None,
        value_hits: bool = False,
    ) -> None:
        self.schema_dir = schema_dir
        self.validate = validate
        self.value_hits = value_hits
        self._xml = xml

    @property
    def xml(self) -> Any:
        """The XML codec used to map messages to element trees (created on first use)."""
        if self._xml is None:
            from mcscomm.codec.xml import XmlCodec

            self._xml = XmlCodec(self.schema_dir)
        return self._xml

    # -- element level ---------------------------------------------------------------------
    def encode_element(self, root: etree._Element, payload_type: int) -> bytes:
        """EXI bytes of the document ``root`` in the grammar of ``payload_type``."""
        if payload_type == 0x8102 and root.tag not in _METERING_ROOTS:
            raise ExiEncodeError(f"{root.tag} does not travel on payload type 0x8102")
        return encode_document(grammar_for_payload(payload_type, self.schema_dir), root)

    def decode_element(self, payload_type: int, data: bytes) -> etree._Element:
        """The document in ``data`` (EXI body starting with 0x80) as an element tree."""
        root = decode_document(
            grammar_for_payload(payload_type, self.schema_dir), data, value_hits=self.value_hits
        )
        if payload_type == 0x8102 and root.tag not in _METERING_ROOTS:
            raise UnknownMessage(f"{root.tag} not allowed on payload type 0x8102")
        return root

    def to_xml(self, payload_type: int, data: bytes) -> str:
        """The XML text of an EXI document (for traces and logs); raises :class:`ExiError`."""
        return etree.tostring(self.decode_element(payload_type, data), encoding="unicode")

    def encode_fragment(self, elements: list[etree._Element], grammar: str | None = None) -> bytes:
        """An EXI fragment stream of ``elements`` (grammar picked from the first namespace)."""
        if not elements:
            raise ExiEncodeError("empty fragment")
        name = grammar or self._fragment_grammar(elements[0])
        return encode_fragment(grammars(name, self.schema_dir), elements)

    def decode_fragment(self, data: bytes, grammar: str) -> list[etree._Element]:
        """The elements of an EXI fragment stream encoded with ``grammar``."""
        return decode_fragment(grammars(grammar, self.schema_dir), data, value_hits=self.value_hits)

    @staticmethod
    def _fragment_grammar(elem: etree._Element) -> str:
        tag = elem.tag
        ns = tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""
        try:
            return FRAGMENT_GRAMMARS[ns]
        except KeyError:
            raise ExiEncodeError(f"no fragment grammar for namespace {ns!r}") from None

    # -- message level (Codec protocol) ----------------------------------------------------
    def payload_type_for(self, message: Message) -> int:
        """The V2GTP payload type ``message`` travels on."""
        return payload_type_for(message)

    def validate_element(self, root: etree._Element) -> None:
        """Check ``root`` against its XSD (when ``validate`` is on); raises SchemaViolation."""
        if not self.validate:
            return
        tag = root.tag
        ns = tag[1:].partition("}")[0] if isinstance(tag, str) else ""
        schema = self.xml.schema_for(ns)
        if not schema.validate(root):
            err = schema.error_log.last_error
            raise SchemaViolation(
                err.message if err else "document does not validate", err.path if err else None
            )

    def encode(self, message: Message) -> bytes:
        """Schema-valid EXI bytes for ``message``."""
        root = self.xml.to_element(message)
        self.validate_element(root)
        return self.encode_element(root, payload_type_for(message))

    def decode(self, payload_type: int, data: bytes) -> Message:
        """The message in ``data`` that arrived with ``payload_type`` (validated)."""
        from mcscomm.codec.xml import decoder_for

        if not isinstance(data, bytes | bytearray | memoryview):
            raise ExiDecodeError(f"expected bytes, got {type(data).__name__}")
        root = self.decode_element(payload_type, bytes(data))
        allowed = PAYLOAD_MESSAGES.get(payload_type, ())
        cls = MESSAGE_CLASSES.get(str(root.tag))
        if cls is None or cls not in allowed:
            raise UnknownMessage(f"root element {root.tag} not allowed on {payload_type:#06x}")
        self.validate_element(root)
        try:
            return cast(Message, decoder_for(cls)(root))
        except CodecError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ExiDecodeError(f"cannot convert {root.tag}: {exc}") from None

    def canonicalize(self, fragment: object, tag: str | None = None) -> bytes:
        """Canonical EXI of a signable element or a SignedInfo: its EXI fragment encoding.

        ``fragment`` is an lxml element or a typed signable object (converted with the XML
        codec's ``fragment_element``). SignedInfo uses the xmldsig grammar as entry point; a -20
        element uses the grammar of its namespace's schema set (CommonMessages or DC).
        """
        if isinstance(fragment, etree._Element):
            elem = fragment
        else:
            elem = self.xml.fragment_element(fragment, tag)
        return self.encode_fragment([elem])


__all__ = [
    "CANONICAL_EXI",
    "ExiCodec",
    "ExiError",
    "grammar_for_payload",
    "grammars",
    "preload",
]
