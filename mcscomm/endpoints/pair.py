"""An EVCC and an SECC in one process, talking over real loopback TCP/TLS.

The SECC listens on an ephemeral loopback port; the EVCC connects and runs one session. With a
:class:`VirtualClock` both ends share virtual time (see :mod:`mcscomm.endpoints.clock`), so a
30-minute depot session plays in seconds while every byte still crosses a real TLS connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mcscomm.endpoints.clock import Clock, RealClock, VirtualClock
from mcscomm.endpoints.driver import ConnectionDriver, SansIoConnection, SessionOutcome
from mcscomm.endpoints.evcc_client import EvccResult, run_evcc
from mcscomm.endpoints.limits import Limits
from mcscomm.endpoints.secc_server import SeccServer
from mcscomm.trace import SessionRecorder, Summary

#: A host action for the pair: at clock time ``t`` (relative to the start) run ``action`` on the
#: ``side``'s connection (e.g. ask the truck to stop charging).
HostAction = tuple[float, str, Callable[[SansIoConnection, float], None]]


@dataclass(frozen=True)
class PairResult:
    """Outcome of both ends, the shared summary, and how long it took (wall and clock time)."""

    evcc: SessionOutcome
    secc: SessionOutcome | None
    summary: Summary
    wall_s: float
    clock_s: float

    @property
    def ok(self) -> bool:
        return self.evcc.ok and (self.secc is None or self.secc.ok)


async def run_pair(
    secc_factory: Callable[[float], SansIoConnection],
    evcc_connection: SansIoConnection | Callable[[float], SansIoConnection],
    *,
    server_ssl: ssl.SSLContext | None,
    client_ssl: ssl.SSLContext | None,
    virtual: bool = True,
    recorder: SessionRecorder | None = None,
    limits: Limits | None = None,
    actions: Sequence[HostAction] = (),
    host: str = "127.0.0.1",
) -> PairResult:
    """Run one session between both ends over loopback; return when both have finished.

    The recorder (if given) receives the events of both sides; messages are recorded once, from
    the SECC side (which also produces the power samples), so the trace has one timeline.

    ``evcc_connection`` may be a factory ``f(now)`` (called when the connection is up). In real
    time (``virtual=False``) ``now`` is Unix time (``RealClock(unix=True)``), so pass a factory,
    or a connection made with ``now`` near ``time.time()``; in virtual time it starts at 0 and
    the sessions stamp messages from the fixed 2026-01-01 epoch.
    """
    wall0 = time.perf_counter()
    clock: Clock = VirtualClock() if virtual else RealClock(unix=True)
    if isinstance(clock, VirtualClock):
        clock.start()
    try:
        origin = clock.now()
        if recorder is None:
            recorder = SessionRecorder(origin=origin, primary_side="secc")
        else:
            recorder.origin = origin
            recorder.primary_side = "secc"
        shared = recorder
        secc_outcomes: list[SessionOutcome] = []

        def session_recorder(_label: str, _origin: float) -> SessionRecorder:
            return shared

        server = SeccServer(
            secc_factory,
            ssl_context=server_ssl,
            clock=clock,
            limits=limits,
            recorder_factory=session_recorder,
            on_session_end=lambda outcome, _rec: secc_outcomes.append(outcome),
        )
        await server.start(host, 0)
        address = server.address
        evcc_driver: list[ConnectionDriver] = []
        handles = [
            clock.call_at(origin + t, _action(side, fn, evcc_driver, server))
            for t, side, fn in actions
        ]
        try:
            result: EvccResult = await run_evcc(
                evcc_connection,
                host=address[0],
                port=address[1],
                ssl_context=client_ssl,
                clock=clock,
                recorder=shared,
                limits=limits,
                on_connected=evcc_driver.append,
                finish=False,
            )
            # The SECC sees the end a moment later (its side of the close); do not wait forever.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_idle(), 5.0)
        finally:
            for handle in handles:
                handle.cancel()
            await server.close()
        clock_s = clock.now() - origin
        secc = secc_outcomes[0] if secc_outcomes else None
        if result.outcome.ok and secc is not None and not secc.ok:
            verdict, reason = secc.result, f"SECC: {secc.reason}"
        else:
            verdict, reason = result.outcome.result, result.outcome.reason
        summary = shared.finish(verdict, reason)
    finally:
        if isinstance(clock, VirtualClock):
            await clock.stop()
    return PairResult(
        evcc=result.outcome,
        secc=secc,
        summary=summary,
        wall_s=time.perf_counter() - wall0,
        clock_s=clock_s,
    )


def _action(
    side: str,
    fn: Callable[[SansIoConnection, float], None],
    evcc: list[ConnectionDriver],
    server: SeccServer,
) -> Callable[[], None]:
    def run() -> None:
        if side == "evcc":
            for driver in evcc:
                driver.control(fn)
        else:
            server.control_all(fn)

    return run
