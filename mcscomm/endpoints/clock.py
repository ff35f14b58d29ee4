"""One clock interface for the endpoints: real (the event loop's monotonic time) or virtual.

Theory of operation (virtual time)
-----------------------------------
The sans-IO sessions never sleep: they expose the next deadline (``get_timer()``) and are told
``now``. The endpoints therefore only need a clock that can say what time it is and call something
back at a given time. :class:`RealClock` maps that onto ``loop.time()`` / ``loop.call_at``.

Which epoch the sessions see
----------------------------
The sessions turn ``now`` into MessageHeader TimeStamps and TimeAnchors (facts §4.1: Unix seconds;
``mcscomm.session.context.timestamp`` uses a ``now`` >= 1e9 as Unix time and adds a fixed
2026-01-01 epoch to anything smaller). ``RealClock(unix=True)`` — what the SECC server, the EVCC
client and a real-time pair use by default — is the loop's monotonic time shifted once, at the
first reading, onto ``time.time()``: timestamps are real Unix time, while deadlines keep running
on the monotonic clock (an NTP step after the start moves the timestamps, never a timer).
``RealClock()`` (``unix=False``) is the raw loop time, for callers that mix it with
``loop.time()``. A :class:`VirtualClock` starts at 0, so virtual sessions stamp their messages
from the fixed epoch 2026-01-01T00:00:00Z: reproducible traces, no calendar date of their own.

:class:`VirtualClock` keeps its own ``now`` and a heap of timers, and *jumps* ``now`` to the
earliest timer whenever the whole system is quiescent. Bytes still cross real sockets (loopback
TLS), so "quiescent" means: no application bytes written by one in-process endpoint that its
in-process peer has not yet received, and no registered busy section (a TCP/TLS connect in
progress, an SDP exchange, ...). Endpoints report every write (:meth:`VirtualClock.sent`) and
every read (:meth:`VirtualClock.received`) against a *directed link* ``(source address,
destination address)``; the reader names the same link as ``(its peername, its sockname)``. When
an endpoint loses its connection it drops the bytes that were heading to it
(:meth:`VirtualClock.forget`), since it will never read them. The clock's driver task waits until
nothing is in flight, lets the loop run any ready callbacks, then fires the earliest timer at its
own deadline; anything that callback writes makes the system busy again until the peer has
consumed it.

Consequences worth knowing: a virtual clock only makes sense when *every* peer that matters lives in
this process (bytes from an outside peer are never announced, so they never hold the clock back —
a hostile raw-socket client in a test simply sees time run fast); and processing time is zero in
virtual time, so a 30-minute depot session plays in as long as its messages take to cross loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Protocol

#: A directed link: ``(source address, destination address)`` as ``getsockname()``/``getpeername()``
#: return them.
Link = tuple[Hashable, Hashable]

_log = logging.getLogger(__name__)


class TimerHandle(Protocol):
    """What :meth:`Clock.call_at` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The time source and timer service the endpoints use (real or virtual)."""

    @property
    def virtual(self) -> bool:
        """True when ``now`` is virtual and jumps over idle periods."""
        ...

    def now(self) -> float:
        """Seconds, monotonic; the origin is arbitrary (0 for a fresh virtual clock, Unix time
        for ``RealClock(unix=True)``)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (once) when ``now`` reaches ``when``."""
        ...

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds of this clock's time."""
        ...

    def sent(self, link: Link, nbytes: int) -> None:
        """An in-process endpoint wrote ``nbytes`` of application data on ``link``."""
        ...

    def received(self, link: Link, nbytes: int) -> None:
        """An in-process endpoint read ``nbytes`` of application data from ``link``."""
        ...

    def forget(self, link: Link) -> None:
        """The destination end of ``link`` is gone: nothing in flight on it will be read."""
        ...

    def busy(self) -> contextlib.AbstractContextManager[None]:
        """A section during which the clock must not jump (connect, TLS handshake, SDP, ...)."""
        ...


class RealClock:
    """Real time: the running event loop's monotonic ``time()``; I/O accounting is a no-op.

    With ``unix=True`` the same monotonic time is offset (once, at the first reading) so that it
    reads as Unix time (seconds since 1970): the sessions then stamp their messages with real
    TimeStamps while their deadlines stay immune to wall-clock steps.
    """

    virtual = False

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, *, unix: bool = False
    ) -> None:
        self._loop = loop
        self.unix = unix
        self._offset: float | None = None if unix else 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def offset(self) -> float:
        """``now() - loop.time()``: 0, or the Unix time of the loop's time origin."""
        if self._offset is None:
            self._offset = time.time() - self.loop.time()
        return self._offset

    def now(self) -> float:
        return self.loop.time() + self.offset

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return self.loop.call_at(when - self.offset, callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

    def sent(self, link: Link, nbytes: int) -> None:
        pass

    def received(self, link: Link, nbytes: int) -> None:
        pass

    def forget(self, link: Link) -> None:
        pass

    def busy(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """Virtual time that jumps to the next deadline whenever no tracked I/O is pending.

    Use it as an async context manager (or call :meth:`start`/:meth:`stop`) inside the running loop
    that hosts every endpoint sharing it.
    """

    virtual = True

    #: Loop iterations to let pass after the system looks idle before jumping. Ready callbacks
    #: (a transport's write completion, a freshly accepted connection) get to run first.
    SETTLE_ROUNDS = 3

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _VirtualTimer]] = []
        self._seq = itertools.count()
        self._inflight: dict[Link, int] = {}
        self._busy = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Number of timer callbacks fired so far (diagnostics and tests).
        self.fired = 0

    # -- Clock interface -------------------------------------------------------------------------
    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _VirtualTimer(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        self._poke()
        return timer

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self.call_at(self._now + max(0.0, delay), wake)
        try:
            await future
        finally:
            handle.cancel()

    def sent(self, link: Link, nbytes: int) -> None:
        if nbytes > 0:
            self._inflight[link] = self._inflight.get(link, 0) + nbytes

    def received(self, link: Link, nbytes: int) -> None:
        left = self._inflight.get(link)
        if left is None:
            return  # an untracked (outside) peer: it never holds the clock back
        left -= nbytes
        if left > 0:
            self._inflight[link] = left
        else:
            del self._inflight[link]
            self._poke()

    def forget(self, link: Link) -> None:
        if self._inflight.pop(link, None) is not None:
            self._poke()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._poke()

    # -- driver ----------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """True when no tracked bytes are in flight and no busy section is open."""
        return self._busy == 0 and not self._inflight

    def start(self) -> None:
        """Start the driver task in the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._drive(), name="VirtualClock")

    async def stop(self) -> None:
        """Stop the driver task; pending timers stay pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> VirtualClock:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _pop_due(self) -> _VirtualTimer | None:
        while self._heap:
            _when, _seq, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                return timer
        return None

    async def _drive(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                for _ in range(self.SETTLE_ROUNDS):
                    await asyncio.sleep(0)
                if not self.idle:
                    break  # whoever finishes the I/O pokes us again
                timer = self._pop_due()
                if timer is None:
                    break
                # Time never runs backwards: a timer set in the past fires "now".
                self._now = max(self._now, timer.when)
                self.fired += 1
                try:
                    timer.callback()
                except Exception:  # a broken callback must not stop time for everyone else
                    _log.exception("virtual timer callback failed")
