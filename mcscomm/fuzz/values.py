"""Schema-aware mutations of one XML document, driven by the message field metadata.

The document tree is annotated with the :class:`~mcscomm.messages.meta.XmlField` of every element
(which simple type and facets, which complex type, min/max occurs, which choice alternatives), so
a mutator can go straight to the interesting values: the edges of every facet and just beyond
(int8/int16/... bounds, string lengths, hexBinary lengths, empty and oversize base64), every enum
value and invalid ones, RationalNumber overflow, missing/extra/duplicated/reordered elements,
wrong namespaces, ``xsi:type`` tricks, choice confusion and signature tampering.

Every mutator is ``(rng, tree) -> label``: it edits the tree in place and says what it did.
"""

from __future__ import annotations

import base64
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from lxml import etree

from mcscomm.codec.base import MESSAGE_CLASSES
from mcscomm.messages import RationalNumber
from mcscomm.messages.meta import NS_CM, NS_CT, NS_DC, NS_DS, TYPE_TAGS, Simple, XmlField, tag_of
from mcscomm.messages.meta import xml_fields as _xml_fields

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NAMESPACES = (NS_CM, NS_CT, NS_DC, NS_DS, "urn:iso:15118:2:2013:MsgBody", "urn:fuzz", "")


@dataclass(slots=True)
class Slot:
    """An element (or attribute) of the document with what the schema says about it."""

    elem: etree._Element
    xf: XmlField | None
    cls: type | None = None  # complex type of the element
    simple: Simple | None = None  # simple type of its text (or of ``attr``)
    attr: str | None = None  # attribute name when the slot is an attribute


@cache
def _children_of(cls: type) -> dict[str, tuple[XmlField, type | None]]:
    """Clark tag -> (field, complex class or None) for the element children of ``cls``."""
    out: dict[str, tuple[XmlField, type | None]] = {}
    for _, xf in _xml_fields(cls):
        if xf.attribute:
            continue
        if xf.choices:
            for c in xf.choices:
                if c in TYPE_TAGS:
                    out[tag_of(c)] = (xf, c)
        elif xf.wrapper is not None:
            out[f"{{{xf.ns}}}{xf.wrapper}" if xf.ns else xf.wrapper] = (xf, None)
        elif isinstance(xf.type, type):
            out[xf.tag] = (xf, xf.type)
        else:
            out[xf.tag] = (xf, None)
    return out


def annotate(root: etree._Element) -> list[Slot]:
    """Every element and attribute below the root message, with its schema information."""
    cls = MESSAGE_CLASSES.get(root.tag) if isinstance(root.tag, str) else None
    slots: list[Slot] = []
    if cls is not None:
        _walk(root, cls, slots)
    return slots


def _walk(elem: etree._Element, cls: type, slots: list[Slot]) -> None:
    for _name, xf in _xml_fields(cls):
        if xf.attribute and isinstance(xf.type, Simple) and elem.get(xf.name) is not None:
            slots.append(Slot(elem, xf, simple=xf.type, attr=xf.name))
    table = _children_of(cls)
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        entry = table.get(child.tag)
        if entry is None:
            slots.append(Slot(child, None))
            continue
        xf, sub = entry
        if xf.wrapper is not None:
            slots.append(Slot(child, xf))
            for item in child:
                _leaf(item, xf, slots)
            continue
        if sub is not None and dataclasses.is_dataclass(sub):
            slots.append(Slot(child, xf, cls=sub))
            _walk(child, sub, slots)
        else:
            _leaf(child, xf, slots)


def _leaf(child: etree._Element, xf: XmlField, slots: list[Slot]) -> None:
    if isinstance(xf.type, Simple):
        if xf.via_attr is not None:
            slots.append(Slot(child, xf, simple=xf.type, attr=xf.via_attr))
        else:
            slots.append(Slot(child, xf, simple=xf.type))
    elif isinstance(xf.type, type) and dataclasses.is_dataclass(xf.type):
        slots.append(Slot(child, xf, cls=xf.type))
        _walk(child, xf.type, slots)
    else:
        slots.append(Slot(child, xf))


# ------------------------------------------------------------------------------ facet edges


def edge_values(s: Simple) -> list[str]:
    """Lexical values at and just beyond every facet of ``s`` (valid and invalid ones)."""
    if s.kind == "int":
        vals: list[int] = [0, -1, 1]
        if s.min is not None:
            vals += [s.min, s.min - 1, s.min + 1]
        else:
            vals += [-(2**63), -(10**40)]
        if s.max is not None:
            vals += [s.max, s.max + 1, s.max - 1]
        else:
            vals += [2**64, 10**40]
        return [str(v) for v in vals] + ["", "abc", "1.5", "0x10", " 7 ", "+5", "1e3", "NaN"]
    if s.kind == "bool":
        return ["true", "false", "1", "0", "TRUE", "yes", ""]
    if s.kind == "enum":
        assert s.enum is not None
        values = [str(m.value) for m in s.enum]
        return [*values, "", "Invalid", values[0].lower(), values[0] + " ", values[0] * 3]
    if s.kind == "hex":
        n = s.length or s.max_length or 8
        return ["", "00" * n, "00" * (n + 1), "0" * (2 * n - 1), "ZZ" * n, "00" * max(n - 1, 0)]
    if s.kind == "base64":
        n = s.max_length or 64
        return [
            "",
            "====",
            "!!!!",
            base64.b64encode(b"\x00" * n).decode(),
            base64.b64encode(b"\xff" * (n + 1)).decode(),
            "A",
        ]
    n = s.max_length or s.length or 32
    out = ["", "A" * n, "A" * (n + 1), "A" * (4 * n), "\u00e9" * n, "<&>\"'", "\u202e\ufeff"]
    if s.kind == "id":
        out += ["1abc", "a b", "id:x"]
    if s.kind == "uri":
        out += ["http://[::1", "urn:" + "x" * 4096, "%zz"]
    return out


def _simple_slots(slots: list[Slot]) -> list[Slot]:
    return [s for s in slots if s.simple is not None]


def _set(slot: Slot, text: str) -> None:
    if slot.attr is not None:
        slot.elem.set(slot.attr, text)
    else:
        slot.elem.text = text


def _where(slot: Slot) -> str:
    name = etree.QName(slot.elem).localname
    return f"{name}@{slot.attr}" if slot.attr else name


# ---------------------------------------------------------------------------------- mutators

Mutator = Callable[[random.Random, etree._Element, list[Slot]], str | None]


def _set_edge(rng: random.Random, cands: list[Slot], shown: int | None) -> str | None:
    """Put one edge value of its type into one of ``cands``; the detail shows ``shown`` chars."""
    if not cands:
        return None
    slot = rng.choice(cands)
    assert slot.simple is not None
    text = rng.choice(edge_values(slot.simple))
    _set(slot, text)
    return f"{_where(slot)}={text[:shown]!r}"


def facet_edge(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    return _set_edge(rng, _simple_slots(slots), 40)


def enum_value(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    cands = [s for s in slots if s.simple is not None and s.simple.kind in ("enum", "bool")]
    return _set_edge(rng, cands, None)


def string_length(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    kinds = ("str", "hex", "base64", "id", "uri")
    cands = [s for s in slots if s.simple is not None and s.simple.kind in kinds]
    if not cands:
        return None
    slot = rng.choice(cands)
    assert slot.simple is not None
    text = rng.choice(edge_values(slot.simple))
    _set(slot, text)
    return f"{_where(slot)} len {len(text)}"


#: (value, exponent) pairs at and beyond int16/int8 that overflow physical quantities.
RATIONAL_EDGES = (
    (32767, 127),
    (-32768, 127),
    (32767, -128),
    (1, 127),
    (-1, 127),
    (32768, 0),
    (-32769, 0),
    (0, -129),
    (1, 128),
    (-32768, 3),
    (0, 0),
    (-1, 0),
)


def rational_overflow(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    cands = [s for s in slots if s.cls is RationalNumber]
    if not cands:
        return None
    slot = rng.choice(cands)
    value, exponent = rng.choice(RATIONAL_EDGES)
    for child in slot.elem:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local == "Value":
            child.text = str(value)
        elif local == "Exponent":
            child.text = str(exponent)
    return f"{_where(slot)}={value}e{exponent}"


def _pick_element(
    rng: random.Random, slots: list[Slot]
) -> tuple[Slot, etree._Element] | tuple[None, None]:
    """One element slot (not an attribute) and its parent; (None, None) when there is none."""
    cands = [s for s in slots if s.attr is None]
    if not cands:
        return None, None
    slot = rng.choice(cands)
    parent = slot.elem.getparent()
    if parent is None:
        return None, None
    return slot, parent


def remove_element(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    slot, parent = _pick_element(rng, slots)
    if slot is None or parent is None:
        return None
    parent.remove(slot.elem)
    required = slot.xf is not None and slot.xf.min_occurs > 0
    return f"-{_where(slot)}" + (" (required)" if required else "")


def duplicate_element(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    slot, parent = _pick_element(rng, slots)
    if slot is None or parent is None:
        return None
    times = rng.choice((1, 1, 2, 50))
    at = parent.index(slot.elem)
    for _ in range(times):
        parent.insert(at, _copy(slot.elem))
    return f"{_where(slot)} x{times + 1}"


def _copy(elem: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(elem))


def extra_element(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    parents = [root] + [s.elem for s in slots if s.cls is not None]
    parent = rng.choice(parents)
    ns = rng.choice(_NAMESPACES)
    if rng.random() < 0.5 and slots:
        extra = _copy(rng.choice(slots).elem)  # a real element, in the wrong place
    else:
        extra = etree.Element(f"{{{ns}}}Fuzz" if ns else "Fuzz")
        extra.text = "1"
    parent.insert(rng.randint(0, len(parent)), extra)
    return f"+{etree.QName(extra).localname} in {etree.QName(parent).localname}"


def reorder(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    parents = [p for p in [root] + [s.elem for s in slots if s.cls is not None] if len(p) >= 2]
    if not parents:
        return None
    parent = rng.choice(parents)
    i = rng.randrange(len(parent) - 1)
    a = parent[i]
    parent.remove(a)
    parent.insert(i + 1, a)
    return f"swap {etree.QName(parent[i]).localname}<->{etree.QName(a).localname}"


def wrong_namespace(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    cands = [s for s in slots if s.attr is None]
    target = rng.choice(cands).elem if cands and rng.random() < 0.8 else root
    q = etree.QName(target)
    ns = rng.choice([n for n in _NAMESPACES if n != q.namespace])
    target.tag = f"{{{ns}}}{q.localname}" if ns else q.localname
    return f"{q.localname} in ns {ns!r}"


def _type_names() -> list[str]:
    prefixes = {NS_CM: "ns", NS_CT: "ct", NS_DC: "dc", NS_DS: "xmlsig"}
    names = [f"{prefixes.get(ns or '', 'ct')}:{name}" for ns, name in TYPE_TAGS.values()]
    return [*sorted(set(names)), "xs:string", "xs:anyType", "ct:NoSuchType", "nope"]


_TYPE_NAMES = _type_names()


def xsi_type(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    cands = [s.elem for s in slots if s.attr is None] or [root]
    target = rng.choice(cands)
    if rng.random() < 0.25:
        target.set(f"{{{XSI}}}nil", rng.choice(("true", "false", "1")))
        return f"xsi:nil on {etree.QName(target).localname}"
    name = rng.choice(_TYPE_NAMES)
    target.set(f"{{{XSI}}}type", name)
    return f"xsi:type={name} on {etree.QName(target).localname}"


def choice_confusion(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    cands = [s for s in slots if s.xf is not None and len(s.xf.choices) > 1]
    if not cands:
        return None
    slot = rng.choice(cands)
    assert slot.xf is not None
    other = rng.choice([c for c in slot.xf.choices if c is not slot.cls and c in TYPE_TAGS])
    old = etree.QName(slot.elem).localname
    slot.elem.tag = tag_of(other)
    return f"{old} -> {other.__name__}"


def signature_tamper(rng: random.Random, root: etree._Element, slots: list[Slot]) -> str | None:
    values = [e for e in root.iter(f"{{{NS_DS}}}SignatureValue", f"{{{NS_DS}}}DigestValue")]
    if values:
        elem = rng.choice(values)
        raw = bytearray(base64.b64decode(elem.text or ""))
        if raw:
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        elem.text = base64.b64encode(bytes(raw)).decode()
        return f"flip bit in {etree.QName(elem).localname}"
    header = root.find(f"{{{NS_CT}}}Header")
    if header is None:
        return None
    header.append(etree.fromstring(_FAKE_SIGNATURE))
    return "forged Signature in Header"


_FAKE_SIGNATURE = (
    f'<xmlsig:Signature xmlns:xmlsig="{NS_DS}"><xmlsig:SignedInfo>'
    '<xmlsig:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    '<xmlsig:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"/>'
    '<xmlsig:Reference URI="#id1"><xmlsig:DigestMethod '
    'Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"/>'
    "<xmlsig:DigestValue>AAAA</xmlsig:DigestValue></xmlsig:Reference></xmlsig:SignedInfo>"
    "<xmlsig:SignatureValue>AAAA</xmlsig:SignatureValue></xmlsig:Signature>"
).encode()

#: name -> (mutator, weight)
VALUE_MUTATORS: dict[str, tuple[Mutator, int]] = {
    "value.facet_edge": (facet_edge, 6),
    "value.enum": (enum_value, 3),
    "value.string_length": (string_length, 2),
    "value.rational_overflow": (rational_overflow, 4),
    "value.remove_element": (remove_element, 2),
    "value.duplicate_element": (duplicate_element, 2),
    "value.extra_element": (extra_element, 1),
    "value.reorder": (reorder, 1),
    "value.wrong_namespace": (wrong_namespace, 1),
    "value.xsi_type": (xsi_type, 1),
    "value.choice_confusion": (choice_confusion, 1),
    "value.signature_tamper": (signature_tamper, 1),
}
