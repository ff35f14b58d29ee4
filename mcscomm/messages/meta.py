"""Declarative XML metadata for the message dataclasses.

Theory of operation: every message class is a plain ``@dataclass(slots=True, kw_only=True)``.
Each field carries an :class:`XmlField` in ``dataclasses.field(metadata=...)`` that says which XSD
particle it maps to: element or attribute name, namespace, simple type (with its facets) or the
dataclass of a complex type, and min/max occurs. Choices between complex elements (XSD
``xs:choice`` and substitution groups) are one field whose value is one of several classes; each
class knows its own element tag (registered with :func:`xmltype`). Choices between *simple*
elements (e.g. ``ParameterType``) are several optional fields that share a ``group`` name.

Nothing here touches XML: the codecs read the metadata once, build per-class plans and then run
without reflection. Property-test strategies are derived from the same metadata.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

NS_APP = "urn:iso:15118:2:2010:AppProtocol"
NS_CT = "urn:iso:std:iso:15118:-20:CommonTypes"
NS_CM = "urn:iso:std:iso:15118:-20:CommonMessages"
NS_DC = "urn:iso:std:iso:15118:-20:DC"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"

#: Prefixes used when we write XML (the convention of shared/exi-vectors/README.md §3).
PREFIXES: dict[str, str] = {"ns": NS_CM, "ct": NS_CT, "dc": NS_DC, "xmlsig": NS_DS}


@dataclass(frozen=True, slots=True)
class Simple:
    """An XSD simple type: its lexical kind plus the facets the schema puts on it.

    ``kind`` is one of ``int``, ``bool``, ``str``, ``hex`` (hexBinary -> bytes), ``base64``
    (base64Binary -> bytes), ``enum`` (a ``str`` Enum), ``uri`` (anyURI -> str) or ``id`` (xs:ID).
    """

    xsd: str
    kind: str
    min: int | None = None
    max: int | None = None
    length: int | None = None
    max_length: int | None = None
    enum: type[enum.Enum] | None = None


BYTE = Simple("xs:byte", "int", -128, 127)
SHORT = Simple("xs:short", "int", -32768, 32767)
INT = Simple("xs:int", "int", -(2**31), 2**31 - 1)
INTEGER = Simple("xs:integer", "int")
UBYTE = Simple("xs:unsignedByte", "int", 0, 255)
USHORT = Simple("xs:unsignedShort", "int", 0, 65535)
UINT = Simple("xs:unsignedInt", "int", 0, 2**32 - 1)
ULONG = Simple("xs:unsignedLong", "int", 0, 2**64 - 1)
BOOL = Simple("xs:boolean", "bool")
STRING = Simple("xs:string", "str")
ID = Simple("xs:ID", "id")
URI = Simple("xs:anyURI", "uri")
BASE64 = Simple("xs:base64Binary", "base64")

#: maxOccurs="unbounded"
UNBOUNDED = 2**31


def enum_type(cls: type[enum.Enum], xsd: str) -> Simple:
    """A string enumeration simple type backed by ``cls`` (values are the XSD literals)."""
    return Simple(xsd, "enum", enum=cls)


@dataclass(frozen=True, slots=True)
class XmlField:
    """How one dataclass field maps to the XSD content model.

    ``type`` is a :class:`Simple` or a dataclass; for a complex choice it is ``None`` and
    ``choices`` lists the classes (each with its registered element tag). ``max_occurs > 1``
    means the field is a list. ``group`` ties simple optional fields of one ``xs:choice``.
    """

    name: str
    ns: str | None
    type: Simple | builtins.type | None
    min_occurs: int = 1
    max_occurs: int = 1
    attribute: bool = False
    choices: tuple[builtins.type, ...] = ()
    group: str | None = None
    via_attr: str | None = None
    wrapper: str | None = None

    @property
    def is_list(self) -> bool:
        return self.max_occurs > 1

    @property
    def tag(self) -> str:
        """Clark notation ``{ns}name`` (or bare name when unqualified)."""
        return f"{{{self.ns}}}{self.name}" if self.ns else self.name


_T = TypeVar("_T")

#: class -> (namespace, element name) of the element that carries it by default
TYPE_TAGS: dict[type, tuple[str | None, str]] = {}
#: class -> field names in XSD order, when that differs from the dataclass field order
XML_ORDER: dict[type, tuple[str, ...]] = {}


def xmltype(
    ns: str | None, name: str | None = None, *, order: tuple[str, ...] | None = None
) -> Callable[[_T], _T]:
    """Register the default element tag of a class (its own name unless given)."""

    def deco(cls: _T) -> _T:
        assert isinstance(cls, type)
        TYPE_TAGS[cls] = (ns, name or cls.__name__)
        if order is not None:
            XML_ORDER[cls] = order
        return cls

    return deco


def el(
    name: str,
    ns: str | None,
    typ: Simple | type,
    *,
    min_occurs: int = 1,
    max_occurs: int = 1,
    group: str | None = None,
    via_attr: str | None = None,
    wrapper: str | None = None,
) -> Any:
    """A dataclass field for one XSD element particle.

    Optional elements default to ``None``, repeated ones to an empty list, required ones have no
    default. ``via_attr``: the value is the named (unqualified) attribute of an otherwise empty
    element (xmldsig ``Algorithm``). ``wrapper``: list items sit inside one wrapper element of
    that name, which is left out when the list is empty (xmldsig ``Transforms``).
    """
    xf = XmlField(
        name, ns, typ, min_occurs, max_occurs, group=group, via_attr=via_attr, wrapper=wrapper
    )
    meta = {"xml": xf}
    if max_occurs > 1:
        return dataclasses.field(default_factory=list, metadata=meta)
    if min_occurs == 0:
        return dataclasses.field(default=None, metadata=meta)
    return dataclasses.field(metadata=meta)


def attr(name: str, ns: str | None, typ: Simple, *, required: bool = True) -> Any:
    """A dataclass field for an XSD attribute."""
    meta = {"xml": XmlField(name, ns, typ, 1 if required else 0, 1, attribute=True)}
    if required:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=None, metadata=meta)


def choice(*classes: type, min_occurs: int = 1) -> Any:
    """A field holding exactly one of ``classes`` (an ``xs:choice`` or substitution group)."""
    meta = {"xml": XmlField("", None, None, min_occurs, 1, choices=classes)}
    if min_occurs == 0:
        return dataclasses.field(default=None, metadata=meta)
    return dataclasses.field(metadata=meta)


def xml_fields(cls: type) -> list[tuple[str, XmlField]]:
    """(field name, metadata) of ``cls`` in XSD order: attributes first, then elements."""
    fields = [(f.name, f.metadata["xml"]) for f in dataclasses.fields(cls) if "xml" in f.metadata]
    order = XML_ORDER.get(cls)
    if order is not None:
        by_name = dict(fields)
        fields = [(n, by_name[n]) for n in order]
    return [f for f in fields if f[1].attribute] + [f for f in fields if not f[1].attribute]


def tag_of(cls: type) -> str:
    """Clark-notation default element tag of a registered class."""
    ns, name = TYPE_TAGS[cls]
    return f"{{{ns}}}{name}" if ns else name
