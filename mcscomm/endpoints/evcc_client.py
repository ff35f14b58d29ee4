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
from mcscomm.endpoints.driver import (
    ConnectionDriver,
    SansIoConnection,
    SessionOutcome,
    as_factory,
)
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
    connection: SansIoConnection | Callable[[float], SansIoConnection],
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

    ``connection`` may also be a factory ``f(now)``, called once the connection is up, so the
    session starts at the clock's ``now`` (Unix time on the default real clock, see
    :mod:`.clock`). ``connect_timeout`` is wall-clock seconds for TCP connect plus TLS handshake.
    With ``finish`` the recorder's summary is written at the end (the pair finishes its shared
    recorder itself).
    """
    clock = clock or RealClock(unix=True)
    limits = limits or Limits()
    if recorder is None:
        recorder = SessionRecorder(origin=clock.now())
    loop = asyncio.get_running_loop()
    tcp_up = False

    def protocol() -> ConnectionDriver:
        # asyncio asks for the protocol once TCP is connected, before the TLS handshake: this
        # tells a refused/unreachable SECC from a failed handshake.
        nonlocal tcp_up
        tcp_up = True
        return driver

    driver = ConnectionDriver(
        as_factory(connection),
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
                    protocol,
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=server_hostname if ssl_context is not None else None,
                    ssl_handshake_timeout=connect_timeout if ssl_context is not None else None,
                ),
                timeout=connect_timeout,
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        reason = _connect_error(exc, host, port, handshake=tcp_up and ssl_context is not None)
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


def _connect_error(exc: BaseException, host: str, port: int, *, handshake: bool) -> str:
    """One line for a failed connect; ``handshake``: TCP was up, the TLS handshake failed."""
    if handshake or isinstance(exc, ssl.SSLError):
        # E.g. a plain-TCP SECC (Josev's default) resets our ClientHello: asyncio raises a bare
        # ConnectionResetError() whose text is empty, hence the explanation (as the SECC logs).
        from mcscomm.security.tls import explain_handshake_error

        return f"TLS handshake with {host}:{port} failed: {explain_handshake_error(exc)}"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {host}:{port}"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot connect to {host}:{port}: {detail or type(exc).__name__}"


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
