"""Cheap copies of a sans-IO connection in a given state (the in-process fork server).

Driving a target into the charge loop costs ~20 messages; a copy of the connection made once
after the prefix costs a fraction of one. :func:`clone` is a specialised deep copy: everything
immutable or shared on purpose (frozen dataclasses, the codec and its compiled schemas, signature
helpers, functions, enums) is found once by :func:`shared_memo` and reused; only the mutable
session state (~40 objects) is rebuilt, field by field, without ``copy``'s reduce protocol.
Seeded ``random.Random`` generators behind ``random_bytes`` are copied with their state, so a
copy draws the same session ids as the original would have.
"""

from __future__ import annotations

import copy
import decimal
import enum
import fractions
import random
import types
from collections import deque
from typing import Any, TypeVar

from lxml import etree

from mcscomm.codec import XmlCodec

_T = TypeVar("_T")
_ATOMIC = frozenset(
    {int, float, str, bytes, bool, type(None), complex, range, decimal.Decimal, fractions.Fraction}
)
_SHARED_TYPES: tuple[type, ...] = (
    XmlCodec,
    types.FunctionType,
    types.BuiltinFunctionType,
    type,
    enum.Enum,
    etree._Element,
)


def _is_frozen(obj: object) -> bool:
    params = getattr(type(obj), "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


def _is_signer(obj: object) -> bool:
    # signature helpers hold keys and caches but no per-session state
    return type(obj).__name__ in ("ManifestSignatures", "Manifest")


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(cls: type) -> tuple[str, ...]:
    hit = _SLOTS.get(cls)
    if hit is not None:
        return hit
    names: list[str] = []
    for klass in cls.__mro__:
        s = klass.__dict__.get("__slots__", ())
        names.extend((s,) if isinstance(s, str) else s)
    hit = _SLOTS[cls] = tuple(n for n in names if n not in ("__dict__", "__weakref__"))
    return hit


def shared_memo(root: object) -> dict[int, Any]:
    """``id -> object`` for every immutable or shared object reachable from ``root``."""
    memo: dict[int, Any] = {}
    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if type(obj) in _ATOMIC or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, _SHARED_TYPES) or _is_frozen(obj) or _is_signer(obj):
            memo[id(obj)] = obj
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset | deque):
            stack.extend(obj)
        else:
            d = getattr(obj, "__dict__", None)
            if d is not None:
                stack.extend(d.values())
            for name in _slots(type(obj)):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))
    return memo


def clone(obj: _T, memo: dict[int, Any]) -> _T:
    """A deep copy of ``obj`` sharing everything in ``memo``."""
    result: _T = _clone(obj, memo, {})
    return result


def _clone(o: Any, shared: dict[int, Any], done: dict[int, Any]) -> Any:
    t = type(o)
    if t in _ATOMIC:
        return o
    i = id(o)
    r = shared.get(i)
    if r is not None:
        return r
    r = done.get(i)
    if r is not None:
        return r
    if t is list:
        new_list: list[Any] = []
        done[i] = new_list
        new_list.extend(x if type(x) in _ATOMIC else _clone(x, shared, done) for x in o)
        return new_list
    if t is dict:
        new_dict: dict[Any, Any] = {}
        done[i] = new_dict
        for k, v in o.items():
            new_dict[k if type(k) in _ATOMIC else _clone(k, shared, done)] = (
                v if type(v) in _ATOMIC else _clone(v, shared, done)
            )
        return new_dict
    if t is tuple:
        return tuple(_clone(x, shared, done) for x in o)
    if t is deque:
        new_dq: deque[Any] = deque(maxlen=o.maxlen)
        done[i] = new_dq
        new_dq.extend(_clone(x, shared, done) for x in o)
        return new_dq
    if t is bytearray:
        return bytearray(o)
    if t is set or t is frozenset:
        return t(_clone(x, shared, done) for x in o)
    if t is types.MethodType:
        owner = o.__self__
        if isinstance(owner, random.Random):
            return getattr(_clone(owner, shared, done), o.__func__.__name__)
        return o
    if isinstance(o, random.Random):
        rng = random.Random()
        rng.__class__ = t
        rng.setstate(o.getstate())
        done[i] = rng
        return rng
    if isinstance(o, _SHARED_TYPES):
        return o
    slots = _slots(t)
    d = getattr(o, "__dict__", None)
    if d is None and not slots:
        new = copy.deepcopy(o)
        done[i] = new
        return new
    new = object.__new__(t)
    done[i] = new
    if d is not None:
        new.__dict__.update(
            {k: v if type(v) in _ATOMIC else _clone(v, shared, done) for k, v in d.items()}
        )
    setter = object.__setattr__
    for name in slots:
        try:
            v = getattr(o, name)
        except AttributeError:
            continue
        setter(new, name, v if type(v) in _ATOMIC else _clone(v, shared, done))
    return new
