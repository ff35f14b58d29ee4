"""Typed shims over the (untyped) ``ocpp`` library."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ocpp.routing import on as _on

F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    """``ocpp.routing.on`` with a type: marks a method as the handler of ``action``."""
    deco: Callable[[F], F] = _on(action)
    return deco


def validate_inline() -> None:
    """Validate OCPP payloads on the event loop instead of in a worker thread.

    The library's default hands every JSON-schema validation to a thread pool; for our
    few-hundred-byte messages the validation takes far less than the thread hop, and the hop adds
    the interpreter's GIL switch interval (5 ms) to a round trip -- measured by
    ``tools/bench_backend.py`` (update RTT and event throughput).
    """
    import ocpp.messages

    ocpp.messages.ASYNC_VALIDATION = False


class _WireLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The library logs every frame at INFO; ours go to DEBUG (``-vv``), the rest unchanged."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.logger.debug(msg, *args, **kwargs)


def wire_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for ``ocpp.ChargePoint(logger=...)`` that keeps the frame dump at DEBUG."""
    return _WireLog(logging.getLogger(name), {})
