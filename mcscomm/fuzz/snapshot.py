"""Cheap copies of a sans-IO connection in a given state (the in-process fork server).

Driving a target into the charge loop costs ~20 messages; a copy of the connection made once
after the prefix costs a fraction of that. ``copy.deepcopy`` does the work; what makes it cheap
is a memo pre-filled with everything that is immutable or shared on purpose (frozen dataclasses,
the codec and its compiled schemas, signature helpers, functions), so only the mutable session
state is copied.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
from typing import Any, TypeVar

from lxml import etree

from mcscomm.codec import XmlCodec

_T = TypeVar("_T")
_ATOMIC = (int, float, str, bytes, bool, type(None), complex, range)
_SHARED_TYPES: tuple[type, ...] = (
    XmlCodec,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type,
    enum.Enum,
    etree._Element,
)


def _is_frozen(obj: object) -> bool:
    params = getattr(type(obj), "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


def shared_memo(root: object) -> dict[int, Any]:
    """A deepcopy memo that maps every immutable or shared object under ``root`` to itself."""
    memo: dict[int, Any] = {}
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _ATOMIC):
            continue
        seen.add(id(obj))
        if isinstance(obj, _SHARED_TYPES) or _is_frozen(obj) or _is_signer(obj):
            memo[id(obj)] = obj
            continue
        if isinstance(obj, list | tuple | set | frozenset | dict):
            if isinstance(obj, dict):
                stack.extend(obj.keys())
                stack.extend(obj.values())
            else:
                stack.extend(obj)
            continue
        d = getattr(obj, "__dict__", None)
        if d is not None:
            stack.extend(d.values())
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))
    return memo


def _is_signer(obj: object) -> bool:
    # signature helpers hold keys and caches; they are stateless per session
    return type(obj).__name__ in ("ManifestSignatures", "Manifest")


def clone(obj: _T, memo: dict[int, Any]) -> _T:
    """A deep copy of ``obj`` that shares everything in ``memo``."""
    return copy.deepcopy(obj, dict(memo))


__all__ = ["clone", "dataclasses", "shared_memo"]
