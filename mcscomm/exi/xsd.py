"""A small XSD reader: just the schema components EXI grammars need (W3C EXI 1.0 §8.5).

It reads a schema file and everything it imports or includes into a :class:`SchemaSet` of element
declarations, complex types and simple types. Names are ``(namespace_uri, local_name)`` tuples
with ``""`` for "no namespace". It understands the XSD subset the ISO 15118-20 schemas and the
W3C xmldsig schema use: sequence/choice/all, element refs, substitution groups, wildcards, mixed
content, extension/restriction of complex and simple content, attributes, facets (enumeration,
min/max bounds, length limits). Anything else raises :class:`ExiSchemaError` instead of producing
a silently wrong grammar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from mcscomm.exi.errors import ExiSchemaError

XS = "http://www.w3.org/2001/XMLSchema"
QName = tuple[str, str]
UNBOUNDED = -1

# Built-in simple types -> (EXI datatype kind, implicit integer bounds).
# Bounds follow XML Schema Part 2 §3.3 (byte is [-128, 127], unsignedShort [0, 65535], ...);
# EXI §7.1.5/§7.1.6 picks the integer representation from them.
_INT_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "nonNegativeInteger": (0, None),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
    "positiveInteger": (1, None),
}
_STRING_TYPES = {
    "string", "normalizedString", "token", "language", "Name", "NCName", "NMTOKEN", "NMTOKENS",
    "ID", "IDREF", "IDREFS", "ENTITY", "ENTITIES", "anyURI", "QName", "NOTATION",
    "anySimpleType", "anyType", "duration", "dateTime", "time", "date", "gYearMonth", "gYear",
    "gMonthDay", "gDay", "gMonth",
}  # fmt: skip
# Date/time types are EXI DateTime in the spec; no V2G schema uses them, so they are refused at
# grammar build time (see SimpleType.kind) rather than encoded wrongly.
_DATETIME_TYPES = {"dateTime", "time", "date", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth"}


@dataclass
class SimpleType:
    """A simple type reduced to what EXI needs: the datatype kind and its facets."""

    name: QName | None
    kind: str  # string | boolean | integer | decimal | float | hexBinary | base64Binary | datetime
    enumeration: list[str] | None = None
    min_value: int | None = None
    max_value: int | None = None
    length: int | None = None
    max_length: int | None = None
    min_length: int | None = None
    has_pattern: bool = False


@dataclass
class AttributeUse:
    """An attribute of a complex type (its qualified name, type and whether it is required)."""

    name: QName
    type: SimpleType
    required: bool


@dataclass
class Particle:
    """A content-model particle: ``kind`` is element, sequence, choice, all or any."""

    kind: str
    min_occurs: int = 1
    max_occurs: int = 1  # UNBOUNDED for "unbounded"
    element: ElementDecl | None = None
    children: list[Particle] = field(default_factory=list)
    namespaces: tuple[str, ...] | None = None  # for "any": None = any namespace (incl. ##other)


@dataclass(eq=False)
class ComplexType:
    """A complex type after derivation: all attribute uses and the full content model."""

    name: QName | None
    attributes: list[AttributeUse] = field(default_factory=list)
    content: Particle | None = None
    simple_content: SimpleType | None = None
    mixed: bool = False
    abstract: bool = False
    resolved: bool = False


@dataclass(eq=False)
class ElementDecl:
    """An element declaration (global or local)."""

    name: QName
    type: ComplexType | SimpleType
    is_global: bool
    abstract: bool = False
    substitution_group: QName | None = None
    nillable: bool = False


def _split(value: str, nsmap: dict[str | None, str]) -> QName:
    prefix, _, local = value.rpartition(":")
    uri = nsmap.get(prefix or None)
    if uri is None:
        if prefix:
            raise ExiSchemaError(f"unknown namespace prefix in {value!r}")
        uri = ""
    return (uri, local)


def _occurs(node: etree._Element) -> tuple[int, int]:
    lo = int(node.get("minOccurs", "1"))
    hi_text = node.get("maxOccurs", "1")
    hi = UNBOUNDED if hi_text == "unbounded" else int(hi_text)
    return lo, hi


@dataclass
class _Raw:
    """Unresolved top-level definitions of one schema document."""

    tns: str
    elem_qualified: bool
    attr_qualified: bool
    node: etree._Element


class SchemaSet:
    """All components of one schema file and its imports, ready for grammar building."""

    def __init__(self, entry: Path) -> None:
        self.entry = entry
        self.elements: dict[QName, ElementDecl] = {}
        self.all_elements: list[ElementDecl] = []  # global and local, in reading order
        self._complex_nodes: dict[QName, tuple[_Raw, etree._Element]] = {}
        self._simple_nodes: dict[QName, tuple[_Raw, etree._Element]] = {}
        self._element_nodes: dict[QName, tuple[_Raw, etree._Element]] = {}
        self._attribute_nodes: dict[QName, tuple[_Raw, etree._Element]] = {}
        self._group_nodes: dict[QName, tuple[_Raw, etree._Element]] = {}
        self._attr_group_nodes: dict[QName, tuple[_Raw, etree._Element]] = {}
        self.complex_types: dict[QName, ComplexType] = {}
        self.simple_types: dict[QName, SimpleType] = {}
        self.namespaces: list[str] = []
        self._loaded: set[Path] = set()
        self._load(entry.resolve())
        for qname in self._element_nodes:
            self._global_element(qname)
        for qname in self._complex_nodes:
            self._complex(qname)

    # -- loading -------------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        if path in self._loaded:
            return
        self._loaded.add(path)
        try:
            root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
        except (OSError, etree.XMLSyntaxError) as exc:
            raise ExiSchemaError(f"cannot read schema {path}: {exc}") from exc
        node = root.getroot()
        raw = _Raw(
            tns=node.get("targetNamespace", ""),
            elem_qualified=node.get("elementFormDefault") == "qualified",
            attr_qualified=node.get("attributeFormDefault") == "qualified",
            node=node,
        )
        if raw.tns not in self.namespaces:
            self.namespaces.append(raw.tns)
        for child in node:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != XS:
                continue
            tag = etree.QName(child).localname
            name = child.get("name")
            if tag in ("import", "include"):
                loc = child.get("schemaLocation")
                if loc:
                    self._load((path.parent / loc).resolve())
            elif tag == "element" and name:
                self._element_nodes[(raw.tns, name)] = (raw, child)
            elif tag == "complexType" and name:
                self._complex_nodes[(raw.tns, name)] = (raw, child)
            elif tag == "simpleType" and name:
                self._simple_nodes[(raw.tns, name)] = (raw, child)
            elif tag == "attribute" and name:
                self._attribute_nodes[(raw.tns, name)] = (raw, child)
            elif tag == "group" and name:
                self._group_nodes[(raw.tns, name)] = (raw, child)
            elif tag == "attributeGroup" and name:
                self._attr_group_nodes[(raw.tns, name)] = (raw, child)

    # -- types ---------------------------------------------------------------------------------
    def type_by_name(self, qname: QName) -> ComplexType | SimpleType:
        """The complex or simple type with this name (built-ins included)."""
        if qname in self._complex_nodes:
            return self._complex(qname)
        return self._simple(qname)

    def _simple(self, qname: QName) -> SimpleType:
        if qname in self.simple_types:
            return self.simple_types[qname]
        if qname[0] == XS:
            st = self._builtin(qname[1])
        elif qname in self._simple_nodes:
            raw, node = self._simple_nodes[qname]
            st = self._simple_node(raw, node, qname)
        else:
            raise ExiSchemaError(f"unknown simple type {qname}")
        self.simple_types[qname] = st
        return st

    @staticmethod
    def _builtin(local: str) -> SimpleType:
        name = (XS, local)
        if local in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[local]
            return SimpleType(name, "integer", min_value=lo, max_value=hi)
        if local == "boolean":
            return SimpleType(name, "boolean")
        if local in ("hexBinary", "base64Binary"):
            return SimpleType(name, local)
        if local == "decimal":
            return SimpleType(name, "decimal")
        if local in ("float", "double"):
            return SimpleType(name, "float")
        if local in _DATETIME_TYPES:
            return SimpleType(name, "datetime")
        if local in _STRING_TYPES:
            return SimpleType(name, "string")
        raise ExiSchemaError(f"unsupported built-in type xs:{local}")

    def _simple_node(self, raw: _Raw, node: etree._Element, name: QName | None) -> SimpleType:
        restriction = node.find(f"{{{XS}}}restriction")
        if restriction is None:
            if node.find(f"{{{XS}}}list") is not None or node.find(f"{{{XS}}}union") is not None:
                # EXI encodes lists and unions differently from strings; not in the V2G schemas.
                raise ExiSchemaError(f"list/union simple types are not supported ({name})")
            raise ExiSchemaError(f"simple type {name} has no restriction")
        base_attr = restriction.get("base")
        if base_attr:
            base = self._simple(_split(base_attr, restriction.nsmap))
        else:
            inline = restriction.find(f"{{{XS}}}simpleType")
            if inline is None:
                raise ExiSchemaError(f"restriction without base in {name}")
            base = self._simple_node(raw, inline, None)
        return self._restrict(base, restriction, name)

    @staticmethod
    def _restrict(base: SimpleType, restriction: etree._Element, name: QName | None) -> SimpleType:
        st = SimpleType(
            name,
            base.kind,
            enumeration=None,  # enumerations are not inherited as the EXI enumeration grammar
            min_value=base.min_value,
            max_value=base.max_value,
            length=base.length,
            max_length=base.max_length,
            min_length=base.min_length,
            has_pattern=base.has_pattern,
        )
        enums: list[str] = []
        for facet in restriction:
            if not isinstance(facet.tag, str):
                continue
            tag = etree.QName(facet).localname
            value = facet.get("value", "")
            if tag == "enumeration":
                enums.append(value)
            elif tag in ("minInclusive", "minExclusive", "maxInclusive", "maxExclusive"):
                if st.kind != "integer":
                    continue  # bounds on non-integers do not change the EXI representation
                bound = int(value) + (
                    1 if tag == "minExclusive" else -1 if tag == "maxExclusive" else 0
                )
                if tag.startswith("min"):
                    st.min_value = bound if st.min_value is None else max(st.min_value, bound)
                else:
                    st.max_value = bound if st.max_value is None else min(st.max_value, bound)
            elif tag == "length":
                st.length = int(value)
            elif tag == "maxLength":
                st.max_length = int(value)
            elif tag == "minLength":
                st.min_length = int(value)
            elif tag == "pattern":
                st.has_pattern = True
        if enums:
            st.enumeration = enums
        elif base.enumeration is not None:
            st.enumeration = list(base.enumeration)
        return st

    def _complex(self, qname: QName) -> ComplexType:
        ct = self.complex_types.get(qname)
        if ct is None:
            ct = ComplexType(qname)
            self.complex_types[qname] = ct
            raw, node = self._complex_nodes[qname]
            self._fill_complex(ct, raw, node)
        return ct

    def _fill_complex(self, ct: ComplexType, raw: _Raw, node: etree._Element) -> None:
        ct.abstract = node.get("abstract") == "true"
        ct.mixed = node.get("mixed") == "true"
        simple = node.find(f"{{{XS}}}simpleContent")
        complex_ = node.find(f"{{{XS}}}complexContent")
        if simple is not None:
            deriv = next((c for c in simple if isinstance(c.tag, str)), None)
            if deriv is None:
                raise ExiSchemaError(f"empty simpleContent in {ct.name}")
            base_q = _split(deriv.get("base", ""), deriv.nsmap)
            base = self.type_by_name(base_q)
            if isinstance(base, ComplexType):
                self._ensure(base)
                if base.simple_content is None:
                    raise ExiSchemaError(f"simpleContent base {base_q} is not simple")
                ct.attributes = list(base.attributes)
                value_type = base.simple_content
            else:
                value_type = base
            if etree.QName(deriv).localname == "restriction":
                value_type = self._restrict(value_type, deriv, None)
            ct.simple_content = value_type
            self._add_attributes(ct, raw, deriv)
        elif complex_ is not None:
            if complex_.get("mixed") == "true":
                ct.mixed = True
            deriv = next((c for c in complex_ if isinstance(c.tag, str)), None)
            if deriv is None:
                raise ExiSchemaError(f"empty complexContent in {ct.name}")
            base_q = _split(deriv.get("base", ""), deriv.nsmap)
            own = self._content_of(raw, deriv)
            if etree.QName(deriv).localname == "extension":
                if base_q == (XS, "anyType"):
                    ct.content = own
                else:
                    base_t = self.type_by_name(base_q)
                    if not isinstance(base_t, ComplexType):
                        raise ExiSchemaError(f"complexContent base {base_q} is simple")
                    self._ensure(base_t)
                    ct.attributes = list(base_t.attributes)
                    ct.content = _concat(base_t.content, own)
                    ct.mixed = ct.mixed or base_t.mixed
            else:
                # Restriction: the derived type restates its content; attributes are inherited.
                if base_q != (XS, "anyType"):
                    base_t = self.type_by_name(base_q)
                    if isinstance(base_t, ComplexType):
                        self._ensure(base_t)
                        ct.attributes = list(base_t.attributes)
                ct.content = own
            self._add_attributes(ct, raw, deriv)
        else:
            ct.content = self._content_of(raw, node)
            self._add_attributes(ct, raw, node)
        ct.attributes.sort(key=lambda a: (a.name[1], a.name[0]))
        ct.resolved = True

    @staticmethod
    def _ensure(ct: ComplexType) -> None:
        if not ct.resolved:
            # A base type still being filled means a derivation cycle.
            raise ExiSchemaError(f"circular type derivation at {ct.name}")

    def _content_of(self, raw: _Raw, node: etree._Element) -> Particle | None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            if tag in ("sequence", "choice", "all", "group"):
                return self._particle(raw, child)
        return None

    def _add_attributes(self, ct: ComplexType, raw: _Raw, node: etree._Element) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            if tag == "attribute":
                use = self._attribute(raw, child)
                if use is not None:
                    ct.attributes = [a for a in ct.attributes if a.name != use.name] + [use]
            elif tag == "attributeGroup":
                ref = _split(child.get("ref", ""), child.nsmap)
                if ref not in self._attr_group_nodes:
                    raise ExiSchemaError(f"unknown attribute group {ref}")
                graw, gnode = self._attr_group_nodes[ref]
                self._add_attributes(ct, graw, gnode)
            elif tag == "anyAttribute":
                raise ExiSchemaError(f"anyAttribute is not supported ({ct.name})")

    def _attribute(self, raw: _Raw, node: etree._Element) -> AttributeUse | None:
        if node.get("use") == "prohibited":
            return None
        required = node.get("use") == "required"
        ref = node.get("ref")
        if ref:
            qname = _split(ref, node.nsmap)
            if qname not in self._attribute_nodes:
                raise ExiSchemaError(f"unknown attribute {qname}")
            graw, gnode = self._attribute_nodes[qname]
            return AttributeUse(qname, self._attr_type(graw, gnode), required)
        name = node.get("name", "")
        form = node.get("form")
        qualified = form == "qualified" if form else raw.attr_qualified
        qname = (raw.tns if qualified else "", name)
        return AttributeUse(qname, self._attr_type(raw, node), required)

    def _attr_type(self, raw: _Raw, node: etree._Element) -> SimpleType:
        type_attr = node.get("type")
        if type_attr:
            return self._simple(_split(type_attr, node.nsmap))
        inline = node.find(f"{{{XS}}}simpleType")
        if inline is not None:
            return self._simple_node(raw, inline, None)
        return self._builtin("anySimpleType")

    # -- particles -----------------------------------------------------------------------------
    def _particle(self, raw: _Raw, node: etree._Element) -> Particle:
        tag = etree.QName(node).localname
        lo, hi = _occurs(node)
        if tag == "element":
            return Particle("element", lo, hi, element=self._local_element(raw, node))
        if tag == "any":
            ns = node.get("namespace", "##any")
            namespaces: tuple[str, ...] | None
            if ns in ("##any", "##other"):
                namespaces = None  # EXI §8.5.4.1.6: "any" and "not" constraints give SE(*)
            else:
                uris = []
                for token in ns.split():
                    uris.append(
                        raw.tns
                        if token == "##targetNamespace"
                        else ("" if token == "##local" else token)
                    )
                namespaces = tuple(sorted(set(uris)))
            return Particle("any", lo, hi, namespaces=namespaces)
        if tag == "group":
            ref = _split(node.get("ref", ""), node.nsmap)
            if ref not in self._group_nodes:
                raise ExiSchemaError(f"unknown group {ref}")
            graw, gnode = self._group_nodes[ref]
            inner = self._content_of(graw, gnode)
            if inner is None:
                return Particle("sequence", lo, hi)
            return Particle("sequence", lo, hi, children=[inner])
        if tag in ("sequence", "choice", "all"):
            children = [
                self._particle(raw, c)
                for c in node
                if isinstance(c.tag, str)
                and etree.QName(c).localname in ("element", "any", "group", "sequence", "choice")
            ]
            return Particle(tag, lo, hi, children=children)
        raise ExiSchemaError(f"unsupported particle xs:{tag}")

    def _local_element(self, raw: _Raw, node: etree._Element) -> ElementDecl:
        ref = node.get("ref")
        if ref:
            return self._global_element(_split(ref, node.nsmap))
        name = node.get("name", "")
        form = node.get("form")
        qualified = form == "qualified" if form else raw.elem_qualified
        qname = (raw.tns if qualified else "", name)
        decl = ElementDecl(qname, self._element_type(raw, node), is_global=False)
        decl.nillable = node.get("nillable") == "true"
        self.all_elements.append(decl)
        return decl

    def _global_element(self, qname: QName) -> ElementDecl:
        decl = self.elements.get(qname)
        if decl is not None:
            return decl
        if qname not in self._element_nodes:
            raise ExiSchemaError(f"unknown element {qname}")
        raw, node = self._element_nodes[qname]
        placeholder = ComplexType(None, resolved=True)
        decl = ElementDecl(qname, placeholder, is_global=True)
        self.elements[qname] = decl  # before the type, so recursive content can refer to it
        decl.type = self._element_type(raw, node)
        decl.abstract = node.get("abstract") == "true"
        decl.nillable = node.get("nillable") == "true"
        group = node.get("substitutionGroup")
        if group:
            decl.substitution_group = _split(group, node.nsmap)
        self.all_elements.append(decl)
        return decl

    def _element_type(self, raw: _Raw, node: etree._Element) -> ComplexType | SimpleType:
        type_attr = node.get("type")
        if type_attr:
            return self.type_by_name(_split(type_attr, node.nsmap))
        inline_c = node.find(f"{{{XS}}}complexType")
        if inline_c is not None:
            ct = ComplexType(None)
            self._fill_complex(ct, raw, inline_c)
            return ct
        inline_s = node.find(f"{{{XS}}}simpleType")
        if inline_s is not None:
            return self._simple_node(raw, inline_s, None)
        group = node.get("substitutionGroup")
        if group:
            # XSD: an element without a type takes the type of its substitution-group head.
            return self._global_element(_split(group, node.nsmap)).type
        return self._builtin("anyType")

    def substitutes(self, head: ElementDecl) -> list[ElementDecl]:
        """``head`` and every element that can substitute it (transitively), not sorted."""
        out = [head]
        for decl in self.elements.values():
            if decl.substitution_group == head.name:
                out.extend(d for d in self.substitutes(decl) if d not in out)
        return out


def _concat(first: Particle | None, second: Particle | None) -> Particle | None:
    if first is None:
        return second
    if second is None:
        return first
    return Particle("sequence", 1, 1, children=[first, second])
