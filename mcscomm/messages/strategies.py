"""Hypothesis strategies for every message class, derived from the field metadata.

Generated values respect the XSD facets (ranges, lengths, occurrences, choices), so every
generated message must encode, validate and decode back equal. Lists and strings are capped
small to keep property tests fast. Requires the ``hypothesis`` package (dev extra); nothing
in the runtime imports this module.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, TypeVar

from hypothesis import strategies as st

from mcscomm.messages.meta import Simple, XmlField, xml_fields
from mcscomm.messages.rational import RationalNumber

_T = TypeVar("_T")

#: caps that keep generated documents small
MAX_LIST = 3
MAX_TEXT = 24
MAX_BINARY = 48

# printable ASCII: what EXI (and so a real peer) can carry; no CR (XML normalises line ends)
_TEXT = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_URI = st.from_regex(r"urn:[a-z]{1,8}(:[A-Za-z0-9.-]{1,10}){0,3}", fullmatch=True)
_NCNAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,10}", fullmatch=True)


def simple_strategy(simple: Simple) -> st.SearchStrategy[Any]:
    """Values of one simple type, inside its facets."""
    kind = simple.kind
    if kind == "int":
        lo = simple.min if simple.min is not None else -(10**20)
        hi = simple.max if simple.max is not None else 10**20
        return st.integers(lo, hi)
    if kind == "bool":
        return st.booleans()
    if kind == "str":
        return st.text(_TEXT, max_size=min(simple.max_length or MAX_TEXT, MAX_TEXT))
    if kind == "uri":
        return _URI.filter(lambda u: len(u) <= (simple.max_length or 1000))
    if kind == "id":
        return _NCNAME
    if kind == "enum":
        assert simple.enum is not None
        return st.sampled_from(list(simple.enum))
    if kind in ("hex", "base64"):
        if simple.length is not None:
            return st.binary(min_size=simple.length, max_size=simple.length)
        return st.binary(max_size=min(simple.max_length or MAX_BINARY, MAX_BINARY))
    raise AssertionError(kind)


def _value_strategy(xf: XmlField) -> st.SearchStrategy[Any]:
    if xf.choices:
        return st.one_of(*(strategy_for(c) for c in xf.choices))
    if isinstance(xf.type, Simple):
        return simple_strategy(xf.type)
    assert isinstance(xf.type, type)
    return strategy_for(xf.type)


@functools.cache
def strategy_for(cls: type) -> st.SearchStrategy[Any]:
    """Valid instances of ``cls`` (with unique xs:ID values within each instance)."""
    return _raw_strategy(cls).map(uniquify_ids)


@functools.cache
def _raw_strategy(cls: type) -> st.SearchStrategy[Any]:
    if cls is RationalNumber:
        return st.builds(
            RationalNumber, value=st.integers(-32768, 32767), exponent=st.integers(-128, 127)
        )
    plain: dict[str, st.SearchStrategy[Any]] = {}
    groups: dict[str, list[tuple[str, st.SearchStrategy[Any]]]] = {}
    for name, xf in xml_fields(cls):
        value = (
            _value_strategy(xf)
            if not xf.choices
            else st.one_of(*(_raw_strategy(c) for c in xf.choices))
        )
        if xf.group is not None:
            groups.setdefault(xf.group, []).append((name, value))
        elif xf.is_list:
            plain[name] = st.lists(
                value, min_size=xf.min_occurs, max_size=min(xf.max_occurs, MAX_LIST)
            )
        elif xf.min_occurs == 0:
            plain[name] = st.none() | value
        else:
            plain[name] = value

    if not groups:
        return st.builds(cls, **plain)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        kw = {name: draw(s) for name, s in plain.items()}
        for members in groups.values():
            name, s = draw(st.sampled_from(members))  # exactly one member of the xs:choice
            kw[name] = draw(s)
        return cls(**kw)

    return build()


def uniquify_ids(obj: _T) -> _T:
    """Make every ``id`` field in ``obj`` unique (xs:ID values are unique per document)."""
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if f.name == "id" and isinstance(value, str):
                    new, n = value, 1
                    while new in seen:
                        n += 1
                        new = f"{value}.{n}"
                    seen.add(new)
                    object.__setattr__(node, f.name, new)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(obj)
    return obj
