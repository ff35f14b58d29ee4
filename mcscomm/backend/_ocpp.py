"""Typed shims over the (untyped) ``ocpp`` library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ocpp.routing import on as _on

F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    """``ocpp.routing.on`` with a type: marks a method as the handler of ``action``."""
    deco: Callable[[F], F] = _on(action)
    return deco
