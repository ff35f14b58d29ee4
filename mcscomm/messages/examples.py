"""Deterministic example instances of any message class, derived from the field metadata.

``example(cls)`` fills every field (optional ones too, lists with one item, the first member of
every choice) with a value inside the XSD facets, so the result always encodes to a valid
document. Used by ``mcscomm codec example`` and as seeds by tests and fuzzers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from mcscomm.messages.meta import Simple, xml_fields
from mcscomm.messages.rational import RationalNumber

_T = TypeVar("_T")

_SESSION_ID = bytes.fromhex("3D4CBF93374ED89B")
_TIMESTAMP = 1_725_456_343


def example_simple(simple: Simple, field_name: str = "") -> Any:
    """A valid value of a simple type (a little field-name aware for readability)."""
    kind = simple.kind
    if kind == "int":
        if "time_stamp" in field_name or field_name in ("timestamp", "time_anchor"):
            return _TIMESTAMP
        lo = simple.min if simple.min is not None else 0
        value = max(lo, 1)
        if simple.max is not None:
            value = min(value, simple.max)
        return value
    if kind == "bool":
        return False
    if kind == "str":
        text = "EXAMPLE"
        return text[: simple.max_length] if simple.max_length is not None else text
    if kind == "uri":
        return "urn:iso:std:iso:15118:-20:DC"
    if kind == "id":
        return "id1"
    if kind == "enum":
        assert simple.enum is not None
        return next(iter(simple.enum))
    if kind == "hex":
        return _SESSION_ID if simple.length == 8 else bytes(simple.length or 1)
    if kind == "base64":
        size = simple.length if simple.length is not None else min(simple.max_length or 4, 4)
        return bytes(i % 256 for i in range(size))
    raise AssertionError(kind)


def example(cls: type[_T], *, with_signature: bool = False) -> _T:
    """A fully populated, schema-valid instance of ``cls``.

    The optional header ``Signature`` is left out unless ``with_signature`` (real signatures
    are made by :mod:`mcscomm.security.xmldsig`).
    """
    if cls is RationalNumber:
        return RationalNumber(1, 0)  # type: ignore[return-value]
    kw: dict[str, Any] = {}
    seen_groups: set[str] = set()
    for name, xf in xml_fields(cls):
        if name == "signature" and not with_signature:
            continue
        if xf.group is not None:
            if xf.group in seen_groups:
                continue  # a simple xs:choice: only its first member is set
            seen_groups.add(xf.group)
        if xf.choices:
            kw[name] = example(xf.choices[0], with_signature=with_signature)
            continue
        if isinstance(xf.type, Simple):
            value: Any = example_simple(xf.type, name)
        else:
            assert isinstance(xf.type, type)
            value = example(xf.type, with_signature=with_signature)
        kw[name] = [value] if xf.is_list else value
    _unique_ids(kw)
    return cls(**kw)


def _unique_ids(kw: dict[str, Any]) -> None:
    # xs:ID values must be unique per document; examples nest at most a few signable parts.
    counter = [0]

    def walk(obj: Any) -> None:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if f.name == "id" and isinstance(value, str):
                    counter[0] += 1
                    object.__setattr__(obj, f.name, f"id{counter[0]}")
                else:
                    walk(value)
        elif isinstance(obj, list):
            for item in obj:
                walk(item)

    for value in kw.values():
        walk(value)
    if "id" in kw and isinstance(kw["id"], str):
        counter[0] += 1
        kw["id"] = f"id{counter[0]}"
