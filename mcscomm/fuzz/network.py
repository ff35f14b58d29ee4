"""Fuzz an SECC over TCP or TLS by address (we play the EVCC).

Every case gets a new connection. Our own sans-IO EVCC (:class:`EvccConnection`) drives the
live session through the valid prefix -- answering whatever the target says, on the real
clock -- and stops just before request number ``prefix_len``; then the case's steps are written
with the live session id patched in (the reference documents carry the recorded one; both are 16
hex digits, so frame lengths stay right). Answers are read with the EVCC's message timeout
(2 s, 0.5 s in the charge loop; facts §5.1/5.2) as the hang limit.

Real time cannot be skipped over a socket: cases that wait for a 60 s sequence timeout are not
played (``seq.late``), slow-sender gaps are capped at ``max_gap_s``, and a target that neither
answers an invalid frame nor closes within ``close_wait_s`` is given the benefit of the doubt
(``StepResult.timed_out``).
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from mcscomm.fuzz.model import REJECT, Case, Step
from mcscomm.fuzz.mutators import session_id
from mcscomm.fuzz.oracles import response_code
from mcscomm.fuzz.reference import SessionSetup
from mcscomm.fuzz.targets import FrameSplitter, Observation, StepResult, root_name
from mcscomm.session.connection import EvccConnection, default_codec
from mcscomm.session.timings import Timings
from mcscomm.v2gtp import build_frame

_SID_TEXT = re.compile(rb"SessionID>([0-9A-Fa-f]{16})<")


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    frames: FrameSplitter
    eof: bool = False
    error: str | None = None


async def _read(conn: _Conn, within: float) -> list[tuple[int, bytes]]:
    """Frames arriving within ``within`` s (returns as soon as at least one is complete)."""
    deadline = time.monotonic() + within
    while not conn.eof:
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        try:
            async with asyncio.timeout(left):  # cheaper than wait_for: no extra task
                data = await conn.reader.read(65536)
        except TimeoutError:
            return []
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            conn.eof = True
            return []
        try:
            frames = conn.frames.feed(data)
        except ValueError as exc:
            conn.error = str(exc)
            return []
        if frames:
            return frames
    return []


async def _close(conn: _Conn) -> None:
    """Close our end; a target that already dropped (or hangs in its TLS close) is no error."""
    conn.writer.close()
    try:
        await asyncio.wait_for(conn.writer.wait_closed(), 1.0)
    except (OSError, TimeoutError, ssl.SSLError):
        pass


class NetworkSeccTarget:
    """An SECC at ``host:port`` (TLS when ``ssl_context`` is given)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        setup: SessionSetup | None = None,
        ref_session_id: bytes | None = None,
        timings: Timings | None = None,
        close_wait_s: float = 1.0,
        max_gap_s: float = 0.5,
        connect_timeout_s: float = 5.0,
        prefix_timeout_s: float = 60.0,
        driver_tls: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.setup = setup or SessionSetup()
        self.ref_sid = ref_session_id
        self.timings = timings or Timings()
        self.close_wait_s = close_wait_s
        self.max_gap_s = max_gap_s
        self.connect_timeout_s = connect_timeout_s
        self.prefix_timeout_s = prefix_timeout_s
        # what our driving EVCC believes about the transport (plain-TCP fuzzing of a -20 SECC
        # only works when the driver does not refuse to speak -20 without TLS)
        self.driver_tls = driver_tls
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        self._loop.close()

    def run(self, case: Case) -> Observation:
        return self._loop.run_until_complete(self._run(case))

    # -- one case ----------------------------------------------------------------------------

    async def _run(self, case: Case) -> Observation:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                conn = await self._connect()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            # the target is gone (or refuses us): that is the crash oracle's business
            res = StepResult(closed=True, crash=f"cannot connect: {type(exc).__name__}: {exc}")
            return Observation([res], case.prefix_len)
        try:
            prefix, live_sid = await self._drive(conn, case)
            if prefix is None:
                res = StepResult(closed=True, crash="target did not complete the valid prefix")
                return Observation([res], case.prefix_len)
            results = []
            for step in case.steps[case.prefix_len :]:
                results.append(await self._step(conn, step, live_sid))
                if conn.eof:
                    break
            return Observation(results, case.prefix_len, prefix)
        finally:
            await _close(conn)

    async def _connect(self) -> _Conn:
        server_hostname = "" if self.ssl_context is not None else None
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl_context, server_hostname=server_hostname
        )
        return _Conn(reader, writer, FrameSplitter())

    async def _drive(self, conn: _Conn, case: Case) -> tuple[list[StepResult] | None, bytes]:
        """Run our EVCC on the live connection until ``prefix_len`` requests were answered.

        Returns the prefix results (None when the target did not let us get there) and the live
        session id.
        """
        p = case.prefix_len
        results: list[StepResult] = []
        live_sid = bytes(8)
        if p == 0:
            return results, live_sid
        _, evcc_cfg = self.setup.configs("net")
        driver = EvccConnection(evcc_cfg, now=0.0, tls=self.driver_tls, codec=default_codec())
        t0 = time.monotonic()
        driver.start(0.0)
        pending = FrameSplitter()
        while time.monotonic() - t0 < self.prefix_timeout_s:
            data = driver.data_to_send()
            if data:
                for pt, doc in pending.feed(data):
                    if len(results) == p:
                        return results, live_sid  # stop just before request number p
                    conn.writer.write(build_frame(pt, doc))
                    res = StepResult()
                    results.append(res)
                    name = root_name(b"\0" * 8 + doc)
                    res.frames = await _read(conn, self.timings.evcc_msg_timeout(name))
                    res.closed = conn.eof
                    if not res.frames:
                        return None, live_sid
                    for apt, answer in res.frames:
                        sid = session_id(answer)
                        if sid and any(sid):
                            live_sid = sid
                        driver.receive_data(build_frame(apt, answer), time.monotonic() - t0)
                continue
            if len(results) == p:
                return results, live_sid
            timer = driver.get_timer()
            if driver.closed or timer is None:
                return None, live_sid
            wait = timer - (time.monotonic() - t0)
            if wait > 0:
                await asyncio.sleep(wait)
            driver.handle_timer(max(timer, time.monotonic() - t0))
        return None, live_sid

    async def _step(self, conn: _Conn, step: Step, live_sid: bytes) -> StepResult:
        res = StepResult()
        data = step.data
        if self.ref_sid is not None and any(live_sid):
            data = data.replace(
                self.ref_sid.hex().upper().encode(), live_sid.hex().upper().encode()
            )
        n = max(1, min(step.chunks, len(data) or 1))
        size = -(-len(data) // n) if data else 0
        try:
            for k in range(n):
                if k and step.chunk_gap_s:
                    await asyncio.sleep(min(step.chunk_gap_s, self.max_gap_s))
                conn.writer.write(data[k * size : (k + 1) * size] if size else b"")
                await conn.writer.drain()
        except (OSError, ssl.SSLError):
            conn.eof = True
        name = root_name(data)
        limit = self.timings.evcc_msg_timeout(name if name.endswith("Req") else name + "Req")
        # complete frames get an answer or a close within the message timeout
        frames = await _read(conn, limit if step.expect else self.close_wait_s)
        res.frames.extend(frames)
        # answers to the other frames of the write, then the close that must follow a FAILED
        while frames and len(res.frames) < max(1, len(step.expect)):
            frames = await _read(conn, 0.05)
            res.frames.extend(frames)
        failed = any(response_code(doc).startswith("FAILED") for _, doc in res.frames)
        if not conn.eof and failed:
            await _read(conn, self.close_wait_s)  # a FAILED answer must be followed by EOF
        res.closed = conn.eof
        res.transport_error = conn.error
        # no answer to an invalid frame and still open: the target may be waiting for its own
        # (60 s) sequence timeout, which we do not sit out over a socket
        res.timed_out = not conn.eof and not res.frames and not step.expect
        return res


def ref_session_id(messages: tuple[object, ...]) -> bytes | None:
    """The session id the reference requests carry (to be replaced by the live one)."""
    for m in messages:
        sid = session_id(getattr(m, "document", b""))
        if sid and any(sid):
            return sid
    return None


class BackgroundServer:
    """A TCP/TLS server on loopback in a thread of its own (tests, benchmarks), or in a forked
    process of its own with ``process=True`` (a target that does not share our GIL, as a real
    one would not; Linux only). ``factory(now)`` makes one sans-IO connection per socket; the
    server is our asyncio :class:`~mcscomm.endpoints.secc_server.SeccServer`. ``pid`` is the
    process serving (ours for a thread).
    """

    def __init__(
        self, factory: Any, ssl_context: ssl.SSLContext | None = None, *, process: bool = False
    ) -> None:
        self._factory = factory
        self._ssl = ssl_context
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self.pid = os.getpid()
        self._process: Any = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._use_process = process

    def __enter__(self) -> BackgroundServer:
        if self._use_process:
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            parent, child = ctx.Pipe()
            self._process = ctx.Process(target=self._child, args=(child,), daemon=True)
            self._process.start()
            if not parent.poll(10):
                raise RuntimeError("server process did not start")
            host, port = parent.recv()
            self.address = (str(host), int(port))
            self.pid = int(self._process.pid)
            return self
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(10)
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _child(self, pipe: Any) -> None:
        async def serve() -> None:
            from mcscomm.endpoints.secc_server import SeccServer

            server = SeccServer(self._factory, ssl_context=self._ssl)
            pipe.send(await server.start("127.0.0.1", 0))
            await asyncio.Event().wait()

        asyncio.run(serve())

    def _main(self) -> None:
        asyncio.run(self._serve())

    def task_count(self) -> int:
        """asyncio tasks alive in the server's loop (the resource oracle's "tasks"; threads
        only)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return 0
        fut = asyncio.run_coroutine_threadsafe(_count_tasks(), loop)
        try:
            return fut.result(5)
        except (TimeoutError, RuntimeError):
            return 0

    async def _serve(self) -> None:
        from mcscomm.endpoints.secc_server import SeccServer

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = SeccServer(self._factory, ssl_context=self._ssl)
        self.address = await server.start("127.0.0.1", 0)
        self._ready.set()
        await self._stop.wait()
        await server.close()


async def _count_tasks() -> int:
    return len(asyncio.all_tasks()) - 1  # not counting this one


class NetworkEvccTarget:
    """An EVCC reached by address: we listen on ``host:port`` and play the SECC for every
    connection it opens (one case per connection; the EVCC must reconnect for the next).

    We assign the session id, so the reference responses are played verbatim. Before the first
    step we read the EVCC's SupportedAppProtocolReq; after each step we read what it sends next
    within ``answer_timeout_s`` (its pacing and polls), or its close.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        accept_timeout_s: float = 10.0,
        answer_timeout_s: float = 3.0,
        close_wait_s: float = 1.0,
    ) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.accept_timeout_s = accept_timeout_s
        self.answer_timeout_s = answer_timeout_s
        self.close_wait_s = close_wait_s
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._queue: asyncio.Queue[_Conn] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The address we listen on (known after :meth:`start`)."""
        if self._server is None:
            return self.host, self.port
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    def start(self) -> tuple[str, int]:
        self._loop.run_until_complete(self._start())
        return self.address

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def run(self, case: Case) -> Observation:
        return self._loop.run_until_complete(self._run(case))

    async def _start(self) -> None:
        if self._server is not None:
            return
        self._queue = asyncio.Queue()
        queue = self._queue

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await queue.put(_Conn(reader, writer, FrameSplitter()))

        self._server = await asyncio.start_server(
            accepted, self.host, self.port, ssl=self.ssl_context
        )

    async def _run(self, case: Case) -> Observation:
        await self._start()
        assert self._queue is not None
        try:
            conn = await asyncio.wait_for(self._queue.get(), self.accept_timeout_s)
        except TimeoutError:
            res = StepResult(closed=True, crash="the EVCC did not connect (is it running?)")
            return Observation([res], 0)
        try:
            return Observation(await self._play(conn, case), 0)
        finally:
            await _close(conn)

    async def _play(self, conn: _Conn, case: Case) -> list[StepResult]:
        results: list[StepResult] = []
        pending = await _read(conn, self.answer_timeout_s)  # the SAP request
        for step in case.steps:
            if not pending:
                break  # the EVCC stopped talking: nothing to answer
            res = StepResult()
            results.append(res)
            try:
                n = max(1, min(step.chunks, len(step.data) or 1))
                size = -(-len(step.data) // n) if step.data else 0
                for k in range(n):
                    if k and step.chunk_gap_s:
                        await asyncio.sleep(min(step.chunk_gap_s, 0.5))
                    conn.writer.write(step.data[k * size : (k + 1) * size])
                    await conn.writer.drain()
            except (OSError, ssl.SSLError):
                conn.eof = True
            if REJECT in step.expect:
                # it must stop: collect whatever it still sends until it closes (or we give up)
                deadline = time.monotonic() + self.close_wait_s
                while not conn.eof and (left := deadline - time.monotonic()) > 0:
                    res.frames.extend(await _read(conn, left))
                pending = res.frames
            else:
                res.frames = pending = await _read(conn, self.answer_timeout_s)
                if not res.frames and not conn.eof:
                    await _read(conn, self.close_wait_s)
            res.closed = conn.eof
            res.transport_error = conn.error
        return results


class BackgroundEvcc:
    """Our EVCC in a thread, connecting to ``address`` again and again (tests, benchmarks)."""

    def __init__(
        self,
        address: tuple[str, int],
        setup: SessionSetup | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address = address
        self.setup = setup or SessionSetup()
        self._ssl = ssl_context
        self._stop = threading.Event()
        self.sessions = 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> BackgroundEvcc:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    async def _main(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._session(), 30.0)
            except (OSError, TimeoutError, ssl.SSLError):
                await asyncio.sleep(0.05)
            self.sessions += 1

    async def _session(self) -> None:
        reader, writer = await asyncio.open_connection(
            *self.address, ssl=self._ssl, server_hostname="" if self._ssl else None
        )
        _, cfg = self.setup.configs("evcc")
        evcc = EvccConnection(cfg, now=0.0, tls=True, codec=default_codec())
        t0 = time.monotonic()
        evcc.start(0.0)
        try:
            while not evcc.closed and not self._stop.is_set():
                out = evcc.data_to_send()
                if out:
                    writer.write(out)
                    await writer.drain()
                timer = evcc.get_timer()
                wait = 0.5 if timer is None else max(0.0, timer - (time.monotonic() - t0))
                try:
                    data = await asyncio.wait_for(reader.read(65536), min(wait, 0.5))
                except TimeoutError:
                    data = None
                now = time.monotonic() - t0
                if data == b"":
                    evcc.connection_lost(now)
                    break
                if data:
                    evcc.receive_data(data, now)
                timer = evcc.get_timer()
                if timer is not None and now >= timer:
                    evcc.handle_timer(now)
            out = evcc.data_to_send()
            if out:
                writer.write(out)
        finally:
            writer.close()
