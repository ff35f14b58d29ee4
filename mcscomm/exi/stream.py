"""EXI streams <-> lxml element trees, driven by the grammars of :mod:`mcscomm.exi.grammar`.

The stream layout is the V2G profile's (shared/exi-vectors/README §5): the one-byte header
``0x80`` (no cookie, no options), then the body, bit-packed, padded with zero bits to a byte.

* A *document* is SD, one SE(global element) from the document grammar, the element, ED.
* A *fragment* (EXI §8.5.2, used for signature digests) is SD, then any number of
  SE(element declaration) from the fragment grammar, then ED.

Decoding never emits second-level events (they are refused), never looks up string tables and
bounds nesting depth, so hostile input ends in an :class:`ExiError`, not a hang or a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from lxml import etree

from mcscomm.exi.bits import BitReader, BitWriter, StringTable
from mcscomm.exi.errors import (
    ExiDecodeError,
    ExiEncodeError,
    ExiError,
    ExiLimitExceeded,
    ExiTrailingData,
    ExiUnsupported,
    ExiUnsupportedEncode,
)
from mcscomm.exi.grammar import AT, CH, EE, SE, Grammars, Production, State
from mcscomm.exi.xsd import QName

#: EXI header of the V2G profile: distinguishing bits 10, no options, format version 1.
HEADER = 0x80
#: Deepest element nesting accepted on decode (a -20 message nests about 8 deep).
MAX_DEPTH = 48
#: Most character events accepted in one element (mixed content; xmldsig only).
MAX_TEXT_EVENTS = 256

XSI = "http://www.w3.org/2001/XMLSchema-instance"

#: Prefixes for decoded documents (the ones shared/exi-vectors uses; any prefix is equivalent).
PREFIXES: dict[str, str] = {
    "urn:iso:std:iso:15118:-20:CommonMessages": "ns",
    "urn:iso:std:iso:15118:-20:CommonTypes": "ct",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:15118:2:2010:AppProtocol": "app",
    "http://www.w3.org/2000/09/xmldsig#": "ds",
}


def _qname(tag: str) -> QName:
    if tag[:1] == "{":
        uri, _, local = tag[1:].partition("}")
        return (uri, local)
    return ("", tag)


def _clark(q: QName) -> str:
    return f"{{{q[0]}}}{q[1]}" if q[0] else q[1]


def _describe(state: State) -> str:
    return ", ".join(p.label() for p in state.productions) or "nothing"


# -- encoding -----------------------------------------------------------------------------------
def _encode_element(w: BitWriter, elem: etree._Element, state: State, depth: int) -> None:
    """Encode the attributes and content of ``elem`` (its SE was written by the caller)."""
    if depth > MAX_DEPTH:
        raise ExiEncodeError("element nesting too deep")
    write = w.write
    attrib = elem.attrib
    if attrib:
        # lxml's stubs allow bytes keys/values; with str input they are always str.
        items = sorted(
            ((_qname(str(k)), str(v)) for k, v in attrib.items()),
            key=lambda i: (i[0][1], i[0][0]),
        )
        for q, value in items:
            if q[0] == XSI:
                raise ExiEncodeError(f"xsi:{q[1]} is not supported by the V2G EXI profile")
            code = state.at.get(q)
            if code is None:
                raise ExiEncodeError(
                    f"attribute {_clark(q)} not allowed on {elem.tag} here (expected "
                    f"{_describe(state)})"
                )
            write(code, state.width)
            prod = state.productions[code]
            assert prod.datatype is not None and prod.target is not None
            prod.datatype.encode(w, value)
            state = prod.target
    text = elem.text
    if state.ch is not None and len(elem) == 0:
        prod = state.productions[state.ch]
        typed = prod.datatype is not None and prod.datatype.name != "untyped"
        if typed or (text and text.strip()):
            write(state.ch, state.width)
            assert prod.datatype is not None and prod.target is not None
            prod.datatype.encode(w, text or "")
            state = prod.target
    elif text and text.strip():
        if state.ch is None:
            raise ExiEncodeError(f"text not allowed in {elem.tag}")
        state = _encode_untyped(w, state, text)
    # The children's bits are appended to local copies of the writer's accumulator (no method
    # call per event); the writer is synced around every call that writes through it.
    acc = w.acc
    n = w.nbits
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions are not preserved
        code = state.se_tag.get(tag)
        if code is None:
            _no_such_child(elem, tag, state)
        prod = state.productions[code]
        simple = prod.simple
        if simple is not None and not child.attrib and len(child) == 0:
            # Simple-typed child inline: SE, CH, value, EE (the common case in -20 messages),
            # in one append when the datatype gives its bits as one number.
            ch_width, ch_code, dt, ee_width, ee_code = simple
            if dt.packs:
                bits, nbits = dt.bits(child.text or "")
                width = state.width + ch_width + nbits + ee_width
                head = (code << ch_width) | ch_code
                acc = (acc << width) | (((head << nbits) | bits) << ee_width) | ee_code
                n += width
            else:
                width = state.width + ch_width
                w.acc = (acc << width) | (code << ch_width) | ch_code
                w.nbits = n + width
                dt.encode(w, child.text or "")
                w.write(ee_code, ee_width)
                acc = w.acc
                n = w.nbits
        else:
            w.acc = (acc << state.width) | code
            w.nbits = n + state.width
            assert prod.child is not None
            _encode_element(w, child, prod.child, depth + 1)
            acc = w.acc
            n = w.nbits
        state = prod.target  # type: ignore[assignment]
        tail = child.tail
        if tail and tail.strip():
            if state.ch is None:
                raise ExiEncodeError(f"text not allowed in {elem.tag}")
            w.acc = acc
            w.nbits = n
            state = _encode_untyped(w, state, tail)
            acc = w.acc
            n = w.nbits
    if state.ee is None:
        raise ExiEncodeError(f"{elem.tag} is incomplete (expected {_describe(state)})")
    w.acc = (acc << state.width) | state.ee
    w.nbits = n + state.width


def _no_such_child(elem: etree._Element, tag: str, state: State) -> NoReturn:
    if state.wildcard is not None and _qname(tag) not in state.se:
        # No built-in element grammars in the profile: wildcard content has no encoding.
        raise ExiUnsupportedEncode(f"{tag} would need a wildcard (built-in) grammar")
    raise ExiEncodeError(
        f"element {tag} not allowed in {elem.tag} here (expected {_describe(state)})"
    )


def _encode_untyped(w: BitWriter, state: State, text: str) -> State:
    assert state.ch is not None
    prod = state.productions[state.ch]
    w.write(state.ch, state.width)
    assert prod.datatype is not None and prod.target is not None
    prod.datatype.encode(w, text)
    return prod.target


def encode_document(grammars: Grammars, root: etree._Element) -> bytes:
    """The EXI body (header ``0x80`` first) of a document whose root element is ``root``."""
    w = BitWriter()
    w.write(HEADER, 8)
    doc = grammars.document
    tag = root.tag
    if not isinstance(tag, str):
        raise ExiEncodeError("the root is not an element")
    code = doc.se.get(_qname(tag))
    if code is None:
        raise ExiEncodeError(f"{tag} is not a global element of this schema")
    w.write(code, doc.width)
    prod = doc.productions[code]
    assert prod.child is not None
    _encode_element(w, root, prod.child, 0)
    return w.getvalue()


def encode_fragment(grammars: Grammars, elements: Iterable[etree._Element]) -> bytes:
    """An EXI fragment stream (EXI §8.5.2) holding ``elements`` in order.

    This is the canonical form ISO 15118-20 digests for a signed element, and with the xmldsig
    grammars the input of the SignatureValue (SignedInfo).
    """
    w = BitWriter()
    w.write(HEADER, 8)
    frag = grammars.fragment
    for elem in elements:
        tag = elem.tag
        if not isinstance(tag, str):
            raise ExiEncodeError("a fragment holds elements only")
        code = frag.se.get(_qname(tag))
        if code is None:
            raise ExiEncodeError(f"{tag} is not declared in this schema")
        w.write(code, frag.width)
        prod = frag.productions[code]
        assert prod.child is not None
        _encode_element(w, elem, prod.child, 0)
    assert frag.ee is not None
    w.write(frag.ee, frag.width)
    return w.getvalue()


# -- decoding -----------------------------------------------------------------------------------
def _read_code(r: BitReader, state: State) -> int:
    code = r.read(state.width)
    if code >= len(state.productions):
        _read_code_fail(code, state)
    return code


def _decode_element(r: BitReader, elem: etree._Element, state: State, depth: int) -> None:
    """Decode events into ``elem`` until its EE (its SE was read by the caller)."""
    if r.big >= 0:
        _decode_small(r, elem, state, depth)
    else:
        _decode_large(r, elem, state, depth)


def _decode_small(r: BitReader, elem: etree._Element, state: State, depth: int) -> None:
    """:func:`_decode_large` for inputs held as one int (messages): event codes and
    fixed-width simple children are cut from ``r.big`` here instead of one ``read`` call each.

    Same events, values and errors as :func:`_decode_large` (tests/test_exi_fastpath.py); the
    bit position lives in ``pos`` and is handed back to ``r`` around every call that reads.
    """
    if depth > MAX_DEPTH:
        raise ExiLimitExceeded("element nesting too deep")
    last: etree._Element | None = None
    texts = 0
    big = r.big
    nbits = r.nbits
    pos = r.pos
    sub = etree.SubElement
    prods = state.productions
    while True:
        width = state.width
        end = pos + width
        if end > nbits:
            r.pos = pos
            r.read(width)  # raises ExiTruncated
        code = (big >> (nbits - end)) & ((1 << width) - 1)
        pos = end
        if code >= len(prods):
            r.pos = pos
            _read_code_fail(code, state)
        prod = prods[code]
        kind = prod.kind
        if kind == SE:
            last = sub(elem, prod.tag)
            simple = prod.simple
            if simple is not None:
                # Simple-typed child inline: CH, value, EE.
                ch_width, ch_code, dt, ee_width, ee_code = simple
                fixed = dt.fixed_width
                total = ch_width + fixed + ee_width
                if fixed >= 0 and pos + total <= nbits:
                    pos += total
                    bits = (big >> (nbits - pos)) & ((1 << total) - 1)
                    if bits >> (fixed + ee_width) != ch_code:
                        _simple_fail(prod)
                    last.text = dt.from_bits((bits >> ee_width) & ((1 << fixed) - 1))
                    if bits & ((1 << ee_width) - 1) != ee_code:
                        _simple_fail(prod)
                elif dt.signed and pos + ch_width + 1 <= nbits:
                    # EXI Integer (RationalNumber values): CH code and sign bit in one cut.
                    pos += ch_width + 1
                    head = (big >> (nbits - pos)) & ((2 << ch_width) - 1)
                    if head >> 1 != ch_code:
                        _simple_fail(prod)
                    r.pos = pos
                    last.text = dt.from_sign(head & 1, r.read_uint())
                    pos = r.pos
                    end = pos + ee_width
                    if end > nbits:
                        r.read(ee_width)  # raises ExiTruncated
                    pos = end
                    if (big >> (nbits - end)) & ((1 << ee_width) - 1) != ee_code:
                        _simple_fail(prod)
                else:
                    r.pos = pos
                    if r.read(ch_width) != ch_code:
                        _simple_fail(prod)
                    last.text = dt.decode(r, prod.tag)
                    if r.read(ee_width) != ee_code:
                        _simple_fail(prod)
                    pos = r.pos
            else:
                assert prod.child is not None
                r.pos = pos
                _decode_small(r, last, prod.child, depth + 1)
                pos = r.pos
        elif kind == EE:
            r.pos = pos
            return
        elif kind == CH:
            assert prod.datatype is not None
            r.pos = pos
            value = prod.datatype.decode(r, str(elem.tag))
            pos = r.pos
            texts += 1
            if texts > MAX_TEXT_EVENTS:
                # Appending to .text is quadratic; no V2G element has more than one text node.
                raise ExiLimitExceeded("too many character events in one element")
            if last is None:
                elem.text = (elem.text or "") + value
            else:
                last.tail = (last.tail or "") + value
        elif kind == AT:
            assert prod.datatype is not None
            r.pos = pos
            elem.set(prod.tag, prod.datatype.decode(r, prod.tag))
            pos = r.pos
        else:
            r.pos = pos
            raise ExiUnsupported("wildcard element content (no built-in grammars in V2G EXI)")
        state = prod.target  # type: ignore[assignment]
        prods = state.productions


def _decode_large(r: BitReader, elem: etree._Element, state: State, depth: int) -> None:
    """Decode events into ``elem`` until its EE, one ``read`` per field (any input size)."""
    if depth > MAX_DEPTH:
        raise ExiLimitExceeded("element nesting too deep")
    last: etree._Element | None = None
    texts = 0
    read = r.read
    sub = etree.SubElement
    prods = state.productions
    while True:
        code = read(state.width)
        if code >= len(prods):
            _read_code_fail(code, state)
        prod = prods[code]
        kind = prod.kind
        if kind == SE:
            last = sub(elem, prod.tag)
            simple = prod.simple
            if simple is not None:
                # Simple-typed child inline: CH, value, EE.
                if read(simple[0]) != simple[1]:
                    _simple_fail(prod)
                last.text = simple[2].decode(r, prod.tag)
                if read(simple[3]) != simple[4]:
                    _simple_fail(prod)
            else:
                assert prod.child is not None
                _decode_large(r, last, prod.child, depth + 1)
        elif kind == EE:
            return
        elif kind == CH:
            assert prod.datatype is not None
            value = prod.datatype.decode(r, str(elem.tag))
            texts += 1
            if texts > MAX_TEXT_EVENTS:
                # Appending to .text is quadratic; no V2G element has more than one text node.
                raise ExiLimitExceeded("too many character events in one element")
            if last is None:
                elem.text = (elem.text or "") + value
            else:
                last.tail = (last.tail or "") + value
        elif kind == AT:
            assert prod.datatype is not None
            elem.set(prod.tag, prod.datatype.decode(r, prod.tag))
        else:
            raise ExiUnsupported("wildcard element content (no built-in grammars in V2G EXI)")
        state = prod.target  # type: ignore[assignment]
        prods = state.productions


def _simple_fail(prod: Production) -> None:
    # The only other first-level code of a simple-typed element's states is the escape.
    raise ExiUnsupported(f"second-level event inside {prod.tag} (deviation from the schema)")


def _read_code_fail(code: int, state: State) -> None:
    n = len(state.productions)
    if code == n and state.escape:
        raise ExiUnsupported("second-level event (deviation from the schema) in the stream")
    raise ExiDecodeError(f"invalid event code {code} (state has {n} events)")


def _check_header(r: BitReader) -> None:
    header = r.read(8)
    if header != HEADER:
        if header == 0x24:  # "$EXI" cookie
            raise ExiUnsupported("EXI cookie not used by the V2G profile")
        if header & 0xC0 == 0x80 and header & 0x20:
            raise ExiUnsupported("EXI options in the header are not used by the V2G profile")
        raise ExiDecodeError(f"bad EXI header {header:#04x} (expected 0x80)")


def _check_end(r: BitReader) -> None:
    if r.remaining >= 8:
        raise ExiTrailingData(f"{r.remaining // 8} bytes after the end of the document")


def _nsmap(grammars: Grammars) -> dict[str | None, str]:
    # Every namespace of the schema set on the root, as in the vectors; unused ones are removed
    # by cleanup_namespaces afterwards (cheaper than tracking them while decoding).
    cached = _NSMAPS.get(id(grammars))
    if cached is None or cached[0] is not grammars:
        nsmap: dict[str | None, str] = {}
        for i, uri in enumerate(grammars.schema.namespaces):
            if uri:
                nsmap[PREFIXES.get(uri, f"ns{i}")] = uri
        cached = _NSMAPS[id(grammars)] = (grammars, nsmap)
    return cached[1]


_NSMAPS: dict[int, tuple[Grammars, dict[str | None, str]]] = {}


def _root_for(grammars: Grammars, tag: str) -> etree._Element:
    return etree.Element(tag, nsmap=_nsmap(grammars))  # type: ignore[arg-type]


def _tidy(root: etree._Element) -> etree._Element:
    etree.cleanup_namespaces(root)
    return root


def decode_document(grammars: Grammars, data: bytes, *, value_hits: bool = False) -> etree._Element:
    """The element tree of an EXI document body. Raises :class:`ExiError` on any problem.

    ``value_hits`` accepts string-table hits (EXI default value partitions) from peers that do
    not follow the V2G profile; by default they are refused as the profile requires.
    """
    r = BitReader(bytes(data), StringTable() if value_hits else None)
    try:
        _check_header(r)
        doc = grammars.document
        prod = doc.productions[_read_code(r, doc)]
        if prod.kind != SE:
            raise ExiUnsupported("wildcard root element (no built-in grammars in V2G EXI)")
        assert prod.child is not None
        root = _root_for(grammars, prod.tag)
        _decode_element(r, root, prod.child, 0)
        _check_end(r)
    except ExiError:
        raise
    except (ValueError, RecursionError, MemoryError) as exc:  # lxml refusing a value, etc.
        raise ExiDecodeError(f"cannot build the document: {exc}") from None
    return _tidy(root)


def decode_fragment(
    grammars: Grammars, data: bytes, *, value_hits: bool = False
) -> list[etree._Element]:
    """The elements of an EXI fragment stream (see :func:`encode_fragment`)."""
    r = BitReader(bytes(data), StringTable() if value_hits else None)
    out: list[etree._Element] = []
    try:
        _check_header(r)
        frag = grammars.fragment
        while True:
            prod = frag.productions[_read_code(r, frag)]
            if prod.kind == EE:
                break
            if prod.kind != SE:
                raise ExiUnsupported("wildcard fragment element (no built-in grammars)")
            assert prod.child is not None
            elem = _root_for(grammars, prod.tag)
            _decode_element(r, elem, prod.child, 0)
            out.append(_tidy(elem))
            if len(out) > 1024:
                raise ExiLimitExceeded("too many fragment elements")
        _check_end(r)
    except ExiError:
        raise
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExiDecodeError(f"cannot build the fragment: {exc}") from None
    return out
