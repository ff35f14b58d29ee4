"""The asyncio adapter around one sans-IO session connection (one per socket).

It is deliberately thin (aioquic style): bytes in → ``receive_data(data, now)``; after every call it
drains ``next_event()`` into the recorder, writes ``data_to_send()`` to the transport and re-arms a
single timer at ``min(get_timer(), idle deadline)``. Everything that can go wrong inside the
connection is caught here, logged with context and closes *this* socket only, so a hostile or broken
peer never affects another session served by the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from mcscomm.endpoints.clock import Clock, Link, TimerHandle
from mcscomm.endpoints.limits import Limits
from mcscomm.trace import SessionRecorder, tls_details

_log = logging.getLogger("mcscomm.endpoints")

Side = Literal["evcc", "secc"]


class SansIoConnection(Protocol):
    """The sans-IO session contract (``mcscomm.session`` SeccConnection / EvccConnection)."""

    @property
    def closed(self) -> bool: ...

    @property
    def close_reason(self) -> str | None: ...

    def receive_data(self, data: bytes, now: float) -> None: ...

    def data_to_send(self) -> bytes: ...

    def next_event(self) -> Any | None: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


@dataclass(frozen=True)
class SessionOutcome:
    """How one connection ended, as the endpoint saw it.

    ``result`` is ``success``, ``paused`` or ``failed`` (the session's own ``SessionEnded`` verdict
    when it gave one); ``reason`` is one line for a human.
    """

    label: str
    result: str
    reason: str

    @property
    def ok(self) -> bool:
        return self.result in ("success", "paused")


class ConnectionDriver(asyncio.Protocol):
    """Drives one sans-IO connection over one asyncio transport (TCP or TLS).

    ``factory(now)`` makes the connection when the transport is up (after the TLS handshake), so
    its communication-setup timer starts at the right moment. With ``peer_cert`` (SECC) it is
    called as ``factory(now, peer_cert_der=...)`` with the TLS client certificate (DER, None over
    plain TCP), so a paused session resumes only from the certificate that paused it.
    ``start`` (EVCC) sends the first request; ``admit`` may refuse the connection (limits);
    ``on_closed`` runs once at the end.
    """

    def __init__(
        self,
        factory: Callable[[float], SansIoConnection],
        *,
        side: Side,
        clock: Clock,
        recorder: SessionRecorder,
        limits: Limits,
        label: str,
        start: Callable[[SansIoConnection, float], None] | None = None,
        admit: Callable[[ConnectionDriver], bool] | None = None,
        on_closed: Callable[[ConnectionDriver], None] | None = None,
        peer_cert: bool = False,
    ) -> None:
        self._factory = factory
        self._peer_cert = peer_cert
        self.side: Side = side
        self._clock = clock
        self.recorder = recorder
        self._limits = limits
        self.label = label
        self._start = start
        self._admit = admit
        self._on_closed = on_closed
        #: Where to append response times (seconds) of requests answered at once; None: off.
        self.response_times: deque[float] | None = None
        self.connection: SansIoConnection | None = None
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[SessionOutcome] = asyncio.get_running_loop().create_future()
        self._tx: Link = ("?", "?")
        self._rx: Link = ("?", "?")
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._last_rx = 0.0
        self._received = 0  # application bytes from the peer
        self._tls = False
        self._failure: str | None = None
        self._ended: tuple[str, str] | None = None  # (result, reason) from SessionEnded
        self.peer: str = "?"

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        now = self._clock.now()
        self._last_rx = now
        sock = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        self._tx = (link_address(sock), link_address(peer))
        self._rx = (link_address(peer), link_address(sock))
        self.peer = _fmt(peer)
        transport.set_write_buffer_limits(high=self._limits.write_buffer_high)
        if self._admit is not None and not self._admit(self):
            self.recorder.lifecycle(
                now, "rejected", side=self.side, peer=self.peer, reason="connection limit"
            )
            transport.abort()
            return
        details: dict[str, object] = {"peer": self.peer, "local": _fmt(sock)}
        self.recorder.lifecycle(now, "connected", side=self.side, **details)
        ssl_object = transport.get_extra_info("ssl_object")
        self._tls = ssl_object is not None
        self.recorder.lifecycle(now, "tls", side=self.side, **tls_details(ssl_object))
        try:
            if self._peer_cert:
                der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
                self.connection = self._factory(now, peer_cert_der=der)  # type: ignore[call-arg]
            else:
                self.connection = self._factory(now)
            if self._start is not None:
                self._start(self.connection, now)
        except Exception as exc:
            self._fail("setting up the session", exc)
            return
        self._pump(now)

    def data_received(self, data: bytes) -> None:
        self._clock.received(self._rx, len(data))
        conn = self.connection
        if conn is None or conn.closed or self._failure is not None:
            return  # closing: whatever else arrives is dropped
        now = self._clock.now()
        self._last_rx = now
        self._received += len(data)
        started = time.perf_counter()
        try:
            conn.receive_data(data, now)
        except Exception as exc:
            self._fail("processing received data", exc)
            return
        if self._pump(now) and self.response_times is not None:
            # Wall-clock time from the request's bytes being handed to us to its response being
            # written: this side's share of the round trip (V2G_SECC_Msg_Performance_Time).
            self.response_times.append(time.perf_counter() - started)

    def eof_received(self) -> bool | None:
        return None  # close our side as well; connection_lost follows

    def pause_writing(self) -> None:
        # The peer does not read what we send: stop reading its requests until it catches up.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clock.forget(self._rx)
        self._cancel_timer()
        now = self._clock.now()
        conn = self.connection
        if conn is not None and not conn.closed and self._failure is None:
            # Communication loss mid-session: the session must drive power to its safe state.
            reason = _lost_reason(exc)
            if self.side == "evcc" and self._tls and self._received == 0:
                # TLS 1.3: the SECC checks our certificate after our side of the handshake is
                # done; a refusal looks like a plain close before any answer.
                reason += (
                    " before the SECC answered anything (did it refuse our TLS client "
                    "certificate? see the SECC's log)"
                )
            _log.warning("%s: communication lost with %s: %s", self.label, self.peer, reason)
            self.recorder.lifecycle(
                now, "communication_lost", side=self.side, peer=self.peer, reason=reason
            )
            lost = getattr(conn, "connection_lost", None)
            try:
                if callable(lost):
                    _call_lost(lost, now, reason)
                self._drain(now)
            except Exception as exc2:
                _log.exception("%s: session failed handling the connection loss", self.label)
                self._failure = f"error after connection loss: {exc2!r}"
            if self._ended is None:
                self._ended = ("failed", reason)
        self._finish(now)

    # -- host control ----------------------------------------------------------------------------
    def control(self, action: Callable[[SansIoConnection, float], None]) -> bool:
        """Run a host action on the connection (stop, pause, renegotiate, ...), then flush.

        Returns False when the session is already over or the action failed (logged, closed).
        """
        conn = self.connection
        if conn is None or conn.closed or self._failure is not None or self.transport is None:
            return False
        now = self._clock.now()
        try:
            action(conn, now)
        except Exception as exc:
            self._fail("running a host action", exc)
            return False
        self._pump(now)
        return True

    # -- internals -------------------------------------------------------------------------------
    def _drain(self, now: float) -> None:
        conn = self.connection
        assert conn is not None
        while (event := conn.next_event()) is not None:
            self.recorder.event(event, self.side)
            if type(event).__name__ == "SessionEnded":
                self._ended = (str(event.result), str(event.reason))

    def _pump(self, now: float) -> bool:
        """Flush events and bytes after any call into the connection; then re-arm the timer.

        Returns True when bytes were written.
        """
        conn = self.connection
        transport = self.transport
        assert conn is not None and transport is not None
        try:
            self._drain(now)
            out = conn.data_to_send()
        except Exception as exc:
            self._fail("collecting output", exc)
            return False
        written = bool(out) and not transport.is_closing()
        if written:
            self._clock.sent(self._tx, len(out))
            transport.write(out)
        if conn.closed:
            self._close_transport()
        else:
            self._arm()
        return written

    def _arm(self) -> None:
        conn = self.connection
        assert conn is not None
        try:
            deadline = conn.get_timer()
        except Exception as exc:
            self._fail("reading the session timer", exc)
            return
        idle = self._last_rx + self._limits.idle_timeout
        target = idle if deadline is None else min(deadline, idle)
        # An earlier armed timer that turns out early simply re-arms; only move it forward.
        if self._timer is not None and self._timer_at is not None and self._timer_at <= target:
            return
        self._cancel_timer()
        self._timer_at = target
        self._timer = self._clock.call_at(target, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        conn = self.connection
        if conn is None or conn.closed or self._failure is not None:
            return
        now = self._clock.now()
        try:
            deadline = conn.get_timer()
            if deadline is not None and now >= deadline:
                conn.handle_timer(now)
        except Exception as exc:
            self._fail("handling a timer", exc)
            return
        if not conn.closed and now >= self._last_rx + self._limits.idle_timeout:
            self._abort_idle(now)
            return
        self._pump(now)

    def _abort_idle(self, now: float) -> None:
        reason = f"idle for {self._limits.idle_timeout:g} s"
        _log.warning("%s: dropping %s: %s", self.label, self.peer, reason)
        self.recorder.lifecycle(now, "idle_timeout", side=self.side, peer=self.peer, reason=reason)
        self._failure = reason
        lost = getattr(self.connection, "connection_lost", None)
        with contextlib.suppress(Exception):
            if callable(lost):
                _call_lost(lost, now, reason)
            self._drain(now)
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, where: str, exc: BaseException) -> None:
        now = self._clock.now()
        state = getattr(self.connection, "state", None)
        _log.error(
            "%s: session with %s failed while %s (state %s): %r",
            self.label,
            self.peer,
            where,
            getattr(state, "name", state),
            exc,
            exc_info=not _is_peer_error(exc),
        )
        self._failure = f"{type(exc).__name__}: {exc}"
        self.recorder.lifecycle(
            now,
            "error",
            side=self.side,
            peer=self.peer,
            where=where,
            error=type(exc).__name__,
            detail=str(exc),
        )
        self._close_transport()

    def _close_transport(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()  # flushes what is queued, then closes

    def _finish(self, now: float) -> None:
        if self.done.done():
            return
        conn = self.connection
        if self._failure is not None:
            result, reason = "failed", self._failure
        elif self._ended is not None:
            result, reason = self._ended
        elif conn is None:
            result, reason = "failed", "rejected"
        else:
            result = "failed" if conn.close_reason else "success"
            reason = conn.close_reason or "closed"
        self.recorder.lifecycle(
            now, "closed", side=self.side, peer=self.peer, result=result, reason=reason
        )
        self.done.set_result(SessionOutcome(self.label, result, reason))
        if self._on_closed is not None:
            self._on_closed(self)


def _lost_reason(exc: BaseException | None) -> str:
    """One line for a lost connection. In TLS 1.3 the SECC judges the client certificate after
    the client's handshake is done, so its refusal reaches the EVCC here, as an alert."""
    if exc is None:
        return "peer closed the connection"
    if isinstance(exc, ssl.SSLError):
        from mcscomm.security.tls import explain_handshake_error

        return f"connection lost: {explain_handshake_error(exc)}"
    return f"connection lost ({exc or type(exc).__name__})"


def _call_lost(lost: Callable[..., object], now: float, reason: str) -> None:
    """``connection_lost(now, reason)`` (the sessions) or ``connection_lost(now)`` (older ones)."""
    P = inspect.Parameter
    try:
        params = list(inspect.signature(lost).parameters.values())
    except (TypeError, ValueError):  # a C callable: assume the plain signature
        params = []
    positional = sum(1 for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD))
    if positional >= 2 or any(p.kind is P.VAR_POSITIONAL for p in params):
        lost(now, reason)
    else:
        lost(now)


def accepts_peer_cert(factory: Callable[..., object]) -> bool:
    """True when ``factory`` takes a ``peer_cert_der`` keyword (or ``**kwargs``).

    Connection factories are ``factory(now)``; the SECC passes the TLS client certificate only to
    those that declare they want it, so wrappers with the plain signature keep working.
    """
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: assume the plain signature
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "peer_cert_der" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in params
    )


def as_factory(
    connection: SansIoConnection | Callable[[float], SansIoConnection],
) -> Callable[[float], SansIoConnection]:
    """A connection factory for a ready connection or a factory ``f(now)`` (returned as is)."""
    if hasattr(connection, "receive_data"):
        ready = cast(SansIoConnection, connection)
        return lambda _now: ready
    return connection


def _is_peer_error(exc: BaseException) -> bool:
    """Errors caused by the peer's bytes are expected: log them without a traceback."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"V2gtpError", "CodecError", "SessionError", "ProtocolViolation"})


def link_address(value: object) -> Any:
    """An address as a hashable link end (asyncio may give lists for IPv6 addresses)."""
    if isinstance(value, list):
        return tuple(value)
    return value


def _fmt(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
