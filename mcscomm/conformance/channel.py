"""Tester-side transports: the tester speaks V2GTP frames; a channel carries them to the SUT.

Two kinds, one interface (:class:`Channel`):

* :class:`InProcessChannel` wraps one of our own sans-IO connections (``SeccConnection`` /
  ``EvccConnection``) and runs it on a **virtual clock**: waiting for an answer jumps the clock
  to the SUT's next deadline, so a 60 s sequence timeout is checked in microseconds and timing
  verdicts are exact.
* :class:`SocketChannel` is a TCP or TLS socket to a real implementation, on real (monotonic)
  time; timing checks then allow the PIXIT ``tolerance_s``.

``recv_frame(timeout)`` returns the next frame, ``None`` when nothing arrived in time, and raises
:class:`ChannelClosed` once the SUT closed the connection and no frame is left.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from mcscomm.v2gtp import Frame, FrameDecoder, V2gtpError

#: The tester accepts large frames so that it can report an oversize answer instead of choking.
TESTER_MAX_PAYLOAD = 16 * 1024 * 1024


class ChannelClosed(Exception):
    """The SUT closed the connection (or the transport broke)."""


class BrokenFrame(Exception):
    """The SUT sent bytes that are not a valid V2GTP frame."""


class VirtualClock:
    """Shared virtual time of the in-process SUT(s) of one case (seconds)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start


class Channel(Protocol):
    """What a tester needs from a transport."""

    virtual: bool

    def now(self) -> float: ...

    def send(self, data: bytes, *, fallback: bytes | None = None) -> None:
        """Send raw bytes. ``fallback`` is what a *deaf* SUT variant sees instead (self-tests of
        reaction cases; ignored by real transports)."""
        ...

    def recv_frame(self, timeout: float) -> Frame | None: ...

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass; frames that arrive meanwhile are kept for ``recv_frame``."""
        ...

    def close(self) -> None: ...


class _Sans(Protocol):
    @property
    def closed(self) -> bool: ...

    def receive_data(self, data: bytes, now: float) -> None: ...

    def data_to_send(self) -> bytes: ...

    def next_event(self) -> Any: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def connection_lost(self, now: float, reason: str = ...) -> None: ...


Tamper = Callable[[bytes], bytes]


class InProcessChannel:
    """A channel to one of our sans-IO connections in virtual time.

    ``to_sut`` / ``from_sut`` may rewrite bytes in either direction: that is how the self-tests
    build deliberately broken SUT variants the session layer has no switch for (an SECC that
    ignores V2GTP header errors, an EVCC whose requests exceed a limit, ...). ``deaf`` makes
    the SUT receive the ``fallback`` of a crafted message instead (an implementation that does
    not react to errors).
    """

    virtual = True

    def __init__(
        self,
        conn: _Sans,
        clock: VirtualClock,
        *,
        to_sut: Tamper | None = None,
        from_sut: Tamper | None = None,
        deaf: bool = False,
        on_close: Callable[[_Sans], None] | None = None,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.to_sut = to_sut
        self.from_sut = from_sut
        self.deaf = deaf
        self.events: list[Any] = []
        self._decoder = FrameDecoder(TESTER_MAX_PAYLOAD)
        self._frames: deque[Frame] = deque()
        self._on_close = on_close
        self._closed_by_tester = False
        self._collect()

    def now(self) -> float:
        return self.clock.now

    def _collect(self) -> None:
        out = self.conn.data_to_send()
        if out:
            if self.from_sut is not None:
                out = self.from_sut(out)
            try:
                self._frames.extend(self._decoder.feed(out))
            except V2gtpError as exc:
                raise BrokenFrame(str(exc)) from None
        while (event := self.conn.next_event()) is not None:
            self.events.append(event)

    def send(self, data: bytes, *, fallback: bytes | None = None) -> None:
        if self._closed_by_tester:
            raise ChannelClosed("tester closed the channel")
        if self.conn.closed:
            self._collect()
            raise ChannelClosed("SUT closed the connection")
        if self.deaf and fallback is not None:
            data = fallback
        if self.to_sut is not None:
            data = self.to_sut(data)
        self.conn.receive_data(data, self.clock.now)
        self._collect()

    def _advance(self, deadline: float, stop_on_frame: bool) -> None:
        stuck = 0
        while True:
            self._collect()
            if stop_on_frame and self._frames:
                return
            if self.conn.closed:
                return
            t = self.conn.get_timer()
            if t is None or t > deadline:
                self.clock.now = max(self.clock.now, deadline)
                return
            # a timer that fires without moving on would spin forever: a defect of the SUT
            stuck = stuck + 1 if t <= self.clock.now else 0
            if stuck > 10_000:
                raise RuntimeError(f"the SUT's timer stays at {t} s after firing")
            self.clock.now = max(self.clock.now, t)
            self.conn.handle_timer(self.clock.now)

    def recv_frame(self, timeout: float) -> Frame | None:
        if self._frames:
            return self._frames.popleft()
        self._advance(self.clock.now + timeout, stop_on_frame=True)
        if self._frames:
            return self._frames.popleft()
        if self.conn.closed:
            raise ChannelClosed("SUT closed the connection")
        return None

    def wait(self, seconds: float) -> None:
        self._advance(self.clock.now + seconds, stop_on_frame=False)

    @property
    def sut_closed(self) -> bool:
        self._collect()
        return self.conn.closed and not self._frames

    def close(self) -> None:
        if not self._closed_by_tester:
            self._closed_by_tester = True
            if not self.conn.closed:
                self.conn.connection_lost(self.clock.now, "tester closed the connection")
            self._collect()
            if self._on_close is not None:
                self._on_close(self.conn)


class SocketChannel:
    """A channel over a connected TCP or TLS socket, on monotonic time since creation."""

    virtual = False

    def __init__(self, sock: socket.socket, *, on_close: Callable[[], None] | None = None) -> None:
        self.sock = sock
        self._t0 = time.monotonic()
        self._decoder = FrameDecoder(TESTER_MAX_PAYLOAD)
        self._frames: deque[Frame] = deque()
        self._eof = False
        self._on_close = on_close
        self.tls: dict[str, Any] | None = None

    def now(self) -> float:
        return time.monotonic() - self._t0

    def send(self, data: bytes, *, fallback: bytes | None = None) -> None:
        if self._eof:
            raise ChannelClosed("SUT closed the connection")
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self._eof = True
            raise ChannelClosed(f"send failed: {exc}") from None

    def _read(self, deadline: float) -> bool:
        """Read once (until ``deadline``); False on timeout."""
        remaining = deadline - self.now()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            self._eof = True
            return True
        try:
            self._frames.extend(self._decoder.feed(data))
        except V2gtpError as exc:
            raise BrokenFrame(str(exc)) from None
        return True

    def recv_frame(self, timeout: float) -> Frame | None:
        deadline = self.now() + timeout
        while not self._frames:
            if self._eof:
                raise ChannelClosed("SUT closed the connection")
            if not self._read(deadline):
                return None
        return self._frames.popleft()

    def wait(self, seconds: float) -> None:
        deadline = self.now() + seconds
        while not self._eof and self.now() < deadline:
            self._read(deadline)
        rest = deadline - self.now()
        if rest > 0:
            time.sleep(rest)

    @property
    def sut_closed(self) -> bool:
        return self._eof and not self._frames

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
