"""The SECC (charger) server: many concurrent, isolated sessions over TCP or TLS.

One sans-IO ``SeccConnection`` per accepted socket, driven by :class:`ConnectionDriver`. Isolation:
whatever a session raises closes that socket only; limits (``Limits``) bound connections, receive
buffers (V2GTP max payload), idle time and TLS handshake time, and a peer that does not read its
responses is back-pressured instead of buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mcscomm.endpoints.clock import Clock, Link, RealClock
from mcscomm.endpoints.driver import (
    ConnectionDriver,
    SansIoConnection,
    SessionOutcome,
    accepts_peer_cert,
    link_address,
)
from mcscomm.endpoints.limits import Limits
from mcscomm.trace import SessionRecorder, TraceWriter

_log = logging.getLogger("mcscomm.endpoints.secc")


@dataclass
class ServerStats:
    """Counters of one server's life (for logs, tests and benchmarks)."""

    accepted: int = 0
    rejected: int = 0
    succeeded: int = 0
    failed: int = 0
    tls_failed: int = 0
    active: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Wall-clock seconds from a request's bytes reaching a session to its response being
    #: written (the SECC's share of each round trip), most recent first out; bounded.
    response_times: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))

    def response_percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of :attr:`response_times` in seconds, None when empty."""
        if not self.response_times:
            return None
        ordered = sorted(self.response_times)
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


class SeccServer:
    """Serves ISO 15118-20 sessions; ``connection_factory(now)`` makes one connection per socket.

    A factory that takes a ``peer_cert_der`` keyword gets the TLS client certificate (DER) of
    each connection (see ``endpoints.setup.secc_factory``). The default clock is real time read
    as Unix time (``RealClock(unix=True)``), so message TimeStamps are real.

    ``recorder_factory(label, origin)`` builds the recorder of each session (trace file, human log);
    by default sessions share ``trace`` (if given), each record tagged with the session label.
    ``on_session_end`` is called with each session's outcome and recorder. The server finishes
    (writes the summary of) only the recorders it made itself.
    """

    def __init__(
        self,
        connection_factory: Callable[[float], SansIoConnection],
        *,
        ssl_context: ssl.SSLContext | None,
        clock: Clock | None = None,
        limits: Limits | None = None,
        trace: TraceWriter | None = None,
        human: Callable[[str], None] | None = None,
        recorder_factory: Callable[[str, float], SessionRecorder] | None = None,
        on_session_end: Callable[[SessionOutcome, SessionRecorder], None] | None = None,
    ) -> None:
        self._factory = connection_factory
        self._peer_cert = accepts_peer_cert(connection_factory)
        self._ssl = ssl_context
        self.clock: Clock = clock or RealClock(unix=True)
        self.limits = limits or Limits()
        self._trace = trace
        self._human = human
        self._recorder_factory = recorder_factory
        self._on_session_end = on_session_end
        self._server: asyncio.Server | None = None
        self._drivers: set[ConnectionDriver] = set()
        self._ids = itertools.count(1)
        self.stats = ServerStats()
        self._sdp: object | None = None
        self._handshaking: set[_TlsAcceptor] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0 = any free port); return the bound address."""
        loop = asyncio.get_running_loop()
        # TLS is started per connection (see _TlsAcceptor) rather than by create_server(ssl=...):
        # asyncio drops server-side handshake failures silently, and we want each one logged with
        # its reason and counted against the connection limit while it is in progress.
        self._server = await loop.create_server(
            self._protocol,
            host,
            port,
            backlog=min(4096, max(128, self.limits.max_connections)),
            reuse_address=True,
        )
        address = self.address
        _log.info(
            "SECC listening on %s:%d (%s)", address[0], address[1], "TLS" if self._ssl else "TCP"
        )
        return address

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "server not started"
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    @property
    def active(self) -> int:
        """Sessions currently connected."""
        return len(self._drivers)

    async def serve_forever(self) -> None:
        assert self._server is not None, "server not started"
        await self._server.serve_forever()

    async def close(self, *, drain: float = 0.0) -> None:
        """Stop listening; give running sessions ``drain`` seconds, then abort what is left."""
        if self._server is not None:
            self._server.close()
        for acceptor in list(self._handshaking):
            acceptor.cancel()
        if drain > 0 and self._drivers:
            pending = [d.done for d in self._drivers]
            await asyncio.wait(pending, timeout=drain)
        for driver in list(self._drivers):
            if driver.transport is not None:
                driver.transport.abort()
        if self._drivers:
            await asyncio.wait([d.done for d in self._drivers], timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        closer = getattr(self._sdp, "close", None)
        if callable(closer):
            result = closer()
            if asyncio.iscoroutine(result):
                await result

    async def __aenter__(self) -> SeccServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def attach_sdp(self, sdp_server: object) -> None:
        """Keep an SDP responder alive (and closed) with this server."""
        self._sdp = sdp_server

    async def wait_idle(self) -> None:
        """Wait until no session is connected."""
        while self._drivers:
            await asyncio.wait([d.done for d in self._drivers])

    def control_all(self, action: Callable[[SansIoConnection, float], None]) -> int:
        """Run a host action on every connected session (see ConnectionDriver.control)."""
        return sum(driver.control(action) for driver in list(self._drivers))

    # -- per connection --------------------------------------------------------------------------
    def _protocol(self) -> asyncio.Protocol:
        if self._ssl is None:
            return self._new_driver()
        return _TlsAcceptor(self, self._ssl)

    def _new_driver(self) -> ConnectionDriver:
        label = f"secc#{next(self._ids)}"
        now = self.clock.now()
        if self._recorder_factory is not None:
            recorder = self._recorder_factory(label, now)
        else:
            recorder = SessionRecorder(
                writer=self._trace, human=self._human, origin=now, primary_side=None, label=label
            )
        return ConnectionDriver(
            self._factory,
            side="secc",
            clock=self.clock,
            recorder=recorder,
            limits=self.limits,
            label=label,
            admit=self._admit,
            on_closed=self._closed,
            peer_cert=self._peer_cert,
        )

    def _room(self) -> bool:
        return len(self._drivers) + len(self._handshaking) < self.limits.max_connections

    def _admit(self, driver: ConnectionDriver) -> bool:
        if not self._room():
            self.stats.rejected += 1
            _log.warning(
                "%s: rejecting %s: %d sessions already (limit)",
                driver.label,
                driver.peer,
                len(self._drivers),
            )
            return False
        self._drivers.add(driver)
        driver.response_times = self.stats.response_times
        self.stats.accepted += 1
        self.stats.active = len(self._drivers)
        return True

    def _closed(self, driver: ConnectionDriver) -> None:
        if driver not in self._drivers:
            return  # a rejected connection
        self._drivers.discard(driver)
        self.stats.active = len(self._drivers)
        outcome = driver.done.result()
        if outcome.ok:
            self.stats.succeeded += 1
        else:
            self.stats.failed += 1
        self.stats.outcomes[outcome.result] = self.stats.outcomes.get(outcome.result, 0) + 1
        if self._recorder_factory is None:
            # Recorders from a recorder_factory belong to its owner, who finishes them.
            summary = driver.recorder.finish(outcome.result, outcome.reason)
            _log.info("%s (%s): %s", driver.label, driver.peer, summary.line())
        if self._on_session_end is not None:
            try:
                self._on_session_end(outcome, driver.recorder)
            except Exception:
                _log.exception("on_session_end callback failed")


class _TlsAcceptor(asyncio.Protocol):
    """Owns an accepted TCP connection until its TLS handshake is done, then hands it over.

    It is the application protocol during ``loop.start_tls``: anything decrypted before the
    hand-over is buffered and replayed to the driver, so no early byte is lost.
    """

    def __init__(self, server: SeccServer, context: ssl.SSLContext) -> None:
        self._server = server
        self._context = context
        self._driver: ConnectionDriver | None = None
        self._early: list[bytes] = []
        self._lost = False
        self._task: asyncio.Task[None] | None = None
        self._inbound: Link = ("?", "?")
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        server = self._server
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._inbound = (link_address(peer), link_address(transport.get_extra_info("sockname")))
        if not server._room():
            server.stats.rejected += 1
            _log.warning(
                "rejecting %s: connection limit (%d)", self.peer, server.limits.max_connections
            )
            transport.abort()
            return
        server._handshaking.add(self)
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        server = self._server
        loop = asyncio.get_running_loop()
        try:
            tls_transport = await loop.start_tls(
                transport,
                self,
                self._context,
                server_side=True,
                ssl_handshake_timeout=server.limits.handshake_timeout,
            )
        except asyncio.CancelledError:
            self._give_up()
            transport.abort()
            return
        except (OSError, EOFError, TimeoutError, ssl.SSLError) as exc:
            self._give_up()
            server.stats.tls_failed += 1
            _log.warning("TLS handshake with %s failed: %s", self.peer, _explain(exc))
            transport.abort()
            return
        server._handshaking.discard(self)
        if tls_transport is None or self._lost:
            self._give_up()
            return
        assert isinstance(tls_transport, asyncio.Transport)
        driver = server._new_driver()
        self._driver = driver
        tls_transport.set_protocol(driver)
        driver.connection_made(tls_transport)
        for data in self._early:
            driver.data_received(data)
        self._early.clear()

    def _give_up(self) -> None:
        # Whatever the peer already sent will never be read: a virtual clock must not wait
        # for it (the peer may be an in-process EVCC whose certificate we just refused).
        self._server._handshaking.discard(self)
        self._server.clock.forget(self._inbound)

    def cancel(self) -> None:
        """Give up on the handshake (server shutting down)."""
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._driver is not None:
            self._driver.data_received(data)
        else:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._driver is not None:
            self._driver.connection_lost(exc)
        else:
            self._server.clock.forget(self._inbound)


def _explain(exc: BaseException) -> str:
    try:
        from mcscomm.security.tls import explain_handshake_error

        return explain_handshake_error(exc)
    except ImportError:  # pragma: no cover - the security package ships with mcscomm
        return repr(exc)
