"""The EVCC (truck) client: find the SECC (SDP or a given address), connect (TLS), run one session.

:func:`run_evcc` returns the :class:`SessionOutcome` and the recorder's :class:`Summary`; it never
raises for a peer's misbehaviour or a network failure, it reports them in the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mcscomm.endpoints.clock import Clock, RealClock
from mcscomm.endpoints.driver import ConnectionDriver, SansIoConnection, SessionOutcome
from mcscomm.endpoints.limits import Limits
from mcscomm.trace import SessionRecorder, Summary

_log = logging.getLogger("mcscomm.endpoints.evcc")


@dataclass(frozen=True)
class EvccResult:
    """What one EVCC run produced."""

    outcome: SessionOutcome
    summary: Summary

    @property
    def ok(self) -> bool:
        return self.outcome.ok


def _start(connection: SansIoConnection, now: float) -> None:
    start = getattr(connection, "start", None)
    if callable(start):
        start(now)


async def run_evcc(
    connection: SansIoConnection,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None = None,
    clock: Clock | None = None,
    recorder: SessionRecorder | None = None,
    limits: Limits | None = None,
    connect_timeout: float = 10.0,
    label: str = "evcc",
    on_connected: Callable[[ConnectionDriver], None] | None = None,
    finish: bool = True,
) -> EvccResult:
    """Connect to ``host:port`` and run one session on ``connection`` (already configured).

    ``connect_timeout`` is wall-clock seconds for TCP connect plus TLS handshake. With ``finish``
    the recorder's summary is written at the end (the pair finishes its shared recorder itself).
    """
    clock = clock or RealClock()
    limits = limits or Limits()
    if recorder is None:
        recorder = SessionRecorder(origin=clock.now())
    loop = asyncio.get_running_loop()
    driver = ConnectionDriver(
        lambda _now: connection,
        side="evcc",
        clock=clock,
        recorder=recorder,
        limits=limits,
        label=label,
        start=_start,
    )
    if ssl_context is not None and server_hostname is None:
        # The -20 PKI names SECCs by their EVSE id, not the host name; trust comes from the
        # V2G root (tls.evcc_context decides whether the name is checked).
        server_hostname = host if ssl_context.check_hostname else ""
    try:
        with clock.busy():  # the virtual clock must not run while TCP/TLS is being set up
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: driver,
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context is not None else None,
                    ssl_handshake_timeout=connect_timeout if ssl_context is not None else None,
                ),
                timeout=connect_timeout,
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        reason = _connect_error(exc, host, port)
        recorder.lifecycle(
            clock.now(), "connect_failed", side="evcc", peer=f"{host}:{port}", reason=reason
        )
        outcome = SessionOutcome(label, "failed", reason)
        return EvccResult(
            outcome, recorder.finish("failed", reason) if finish else recorder.summary
        )
    if on_connected is not None:
        on_connected(driver)
    outcome = await driver.done
    summary = recorder.finish(outcome.result, outcome.reason) if finish else recorder.summary
    return EvccResult(outcome, summary)


def _connect_error(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {host}:{port}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {host}:{port} failed: {exc.reason or exc}"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return f"cannot connect to {host}:{port}: {detail}"


async def discover(
    *,
    interface: str | None = None,
    targets: Sequence[tuple[str, int]] = (),
    tls: bool = True,
    wait: float = 0.25,
    attempts: int = 50,
) -> tuple[str, int, bool]:
    """SECC discovery via SDP (facts §2.4: 0.25 s wait, 50 requests): ``(host, port, tls)``.

    Multicast to ff02::1 on ``interface`` and/or unicast to ``targets`` (tests use a loopback SDP
    responder). Raises ``LookupError`` with a one-line reason when no SECC answers.
    """
    from mcscomm import sdp

    try:
        found = await sdp.discover(
            targets=targets,
            interface=interface,
            security=sdp.Security.TLS if tls else sdp.Security.NONE,
            max_requests=attempts,
            wait=wait,
        )
    except (sdp.SdpError, OSError, ValueError) as exc:
        raise LookupError(f"SDP discovery failed: {exc}") from None
    secured = found.response.security == sdp.Security.TLS
    return found.host, found.port, secured
