"""In-process targets: our own SECC or EVCC through the sans-IO core, in virtual time.

A target plays a case's steps against a fresh connection (or a :mod:`.snapshot` copy taken after
the valid prefix) and reports, per step, what the target wrote back, whether it closed, and any
exception that escaped or defect it reported about itself. Waiting is free: the virtual clock
jumps to the connection's next deadline, so "no answer within the performance time" and "never
closes after a lying length" are checked exactly, at thousands of cases per second.
"""

from __future__ import annotations

import re
import signal
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mcscomm.codec import XmlCodec
from mcscomm.fuzz.model import LATE_S, Case, Step
from mcscomm.fuzz.reference import EVCC, SECC, SessionSetup
from mcscomm.fuzz.snapshot import clone, shared_memo
from mcscomm.session.config import EvccConfig, SeccConfig
from mcscomm.session.connection import EvccConnection, SeccConnection, default_codec
from mcscomm.session.events import ProtocolError
from mcscomm.session.timings import Timings
from mcscomm.v2gtp import INVERSE_PROTOCOL_VERSION, PROTOCOL_VERSION

#: ProtocolError kinds that are the target's own defects, not the peer's.
DEFECT_KINDS = frozenset({"internal_error", "encode"})

_ROOT = re.compile(rb"<(?:[\w.-]+:)?([\w.-]+)[\s/>]")


def root_name(frame: bytes) -> str:
    """Root element local name of a framed document (cheap, for timers and labels)."""
    m = _ROOT.search(frame, 8, 200)
    return m.group(1).decode() if m else ""


_HEADER = struct.Struct(">BBHI")


class WallClockTimeout(BaseException):
    """Raised into an in-process target that has not returned within the case's wall-clock
    budget (see :func:`wall_clock_limit`). A BaseException so that the target's own
    ``except Exception`` blocks cannot swallow it."""


@contextmanager
def wall_clock_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of wall time (SIGALRM; main thread on POSIX only,
    otherwise no limit). Virtual time never needs this; an endless loop in the target does.

    An alarm someone else armed (pytest-timeout, the application) is put back afterwards with
    the time it had left; if it is due sooner than ours, ours is not set at all.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds is None or not usable:
        yield
        return
    pending, interval = signal.getitimer(signal.ITIMER_REAL)
    if 0 < pending <= seconds:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise WallClockTimeout()

    start = time.monotonic()
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if pending > 0:
            left = max(pending - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


class FrameSplitter:
    """Incremental V2GTP splitter for what a target writes (a lean FrameDecoder: the oracle
    only needs to know that the header is right, not why it is wrong)."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Complete frames so far; ValueError on a header that is not ISO 15118-20's."""
        buf = self.buf + data
        out: list[tuple[int, bytes]] = []
        pos = 0
        while len(buf) - pos >= 8:
            version, inverse, pt, length = _HEADER.unpack_from(buf, pos)
            if version != PROTOCOL_VERSION or inverse != INVERSE_PROTOCOL_VERSION:
                self.buf = b""
                raise ValueError(f"bad V2GTP header {buf[pos : pos + 8].hex()}")
            if len(buf) - pos - 8 < length:
                break
            out.append((pt, buf[pos + 8 : pos + 8 + length]))
            pos += 8 + length
        self.buf = buf[pos:]
        return out


def split_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The complete, well-formed frames at the start of ``data`` (stops at the first bad one)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 8:
        version, inverse, pt, length = _HEADER.unpack_from(data, pos)
        if version != PROTOCOL_VERSION or inverse != INVERSE_PROTOCOL_VERSION:
            break
        if len(data) - pos - 8 < length:
            break
        out.append((pt, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length
    return out


@dataclass(slots=True)
class StepResult:
    """What the target did in reaction to one step."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)
    closed: bool = False
    crash: str | None = None
    defects: list[tuple[str, str]] = field(default_factory=list)
    transport_error: str | None = None
    timed_out: bool = False  # we stopped waiting before the target's own deadlines (network)
    stuck: bool = False  # the in-process target did not return within the wall-clock budget


@dataclass(slots=True)
class Observation:
    """Results for ``case.steps[start:]`` (the prefix before ``start`` came from a snapshot,
    whose results are in ``prefix``)."""

    results: list[StepResult]
    start: int
    prefix: list[StepResult] = field(default_factory=list)

    def all(self) -> list[StepResult]:
        return self.prefix + self.results


Conn = SeccConnection | EvccConnection


@dataclass(slots=True)
class _Run:
    conn: Conn
    now: float
    out: FrameSplitter
    results: list[StepResult]
    dead: bool = False  # an exception escaped: the object is in an unknown state


class InProcessTarget:
    """Our SECC (``role="secc"``, we play the EVCC) or EVCC (``role="evcc"``) in memory.

    ``make`` builds a fresh connection (default: from ``setup`` with deterministic randomness,
    so that it answers the recorded prefix exactly as during recording). ``snapshots`` keeps a
    copy of the connection after each prefix length it has seen. ``case_budget_s`` is the wall
    time a case may take before the target counts as stuck (None: no limit).
    """

    def __init__(
        self,
        role: str,
        setup: SessionSetup | None = None,
        *,
        codec: XmlCodec | None = None,
        make: Callable[[], Conn] | None = None,
        snapshots: bool = True,
        timings: Timings | None = None,
        case_budget_s: float | None = 10.0,
    ) -> None:
        if role not in (SECC, EVCC):
            raise ValueError(f"role must be {SECC!r} or {EVCC!r}")
        self.role = role
        self.setup = setup or SessionSetup()
        self.codec = codec or default_codec()
        self._make = make
        self.use_snapshots = snapshots
        self.timings = timings or Timings()
        self.case_budget_s = case_budget_s
        self._snapshots: dict[int, tuple[_Run, dict[int, Any]]] = {}

    # -- building ----------------------------------------------------------------------------

    def fresh(self) -> Conn:
        if self._make is not None:
            conn = self._make()
        else:
            secc_cfg, evcc_cfg = self.setup.configs("ref")
            conn = self.build(secc_cfg, evcc_cfg)
        if isinstance(conn, EvccConnection):
            conn.start(0.0)
        return conn

    def build(self, secc_cfg: SeccConfig, evcc_cfg: EvccConfig) -> Conn:
        if self.role == SECC:
            return SeccConnection(secc_cfg, now=0.0, tls=True, codec=self.codec)
        return EvccConnection(evcc_cfg, now=0.0, tls=True, codec=self.codec)

    # -- running -----------------------------------------------------------------------------

    def run(self, case: Case, *, snapshot: bool | None = None) -> Observation:
        """Play ``case`` and observe. With snapshots the prefix is not replayed."""
        try:
            with wall_clock_limit(self.case_budget_s):
                return self._run(case, snapshot)
        except WallClockTimeout:  # fired outside a step (building a snapshot, copying)
            return Observation([StepResult(stuck=True)], case.prefix_len)

    def _run(self, case: Case, snapshot: bool | None) -> Observation:
        use = self.use_snapshots if snapshot is None else snapshot
        p = case.prefix_len
        if use:
            run, prefix = self._restore(case)
            if run is not None:
                for step in case.steps[p:]:
                    self._step(run, step)
                    if run.dead:
                        break
                return Observation(run.results, p, prefix)
        run = self._new_run()
        for step in case.steps:
            self._step(run, step)
            if run.dead:
                break
        return Observation(run.results, 0)

    def _new_run(self) -> _Run:
        run = _Run(self.fresh(), 0.0, FrameSplitter(), [])
        return run

    def _restore(self, case: Case) -> tuple[_Run | None, list[StepResult]]:
        p = case.prefix_len
        snap = self._snapshots.get(p)
        if snap is None:
            run = self._new_run()
            for step in case.steps[:p]:
                self._step(run, step)
                if run.dead:
                    return None, []
            memo = shared_memo(run.conn)
            self._snapshots[p] = snap = (run, memo)
        base, memo = snap
        conn = clone(base.conn, memo)
        out = FrameSplitter()
        out.buf = base.out.buf
        return _Run(conn, base.now, out, []), base.results

    def _step(self, run: _Run, step: Step) -> None:
        # what the target writes before our data arrives belongs to the previous step
        prev = run.results[-1] if run.results else StepResult()
        res = StepResult()
        run.results.append(res)
        conn = run.conn
        try:
            t = max(run.now, step.at)
            self._collect(run, prev)
            self._advance(run, t, prev)
            data = step.data
            n = max(1, min(step.chunks, len(data) or 1))
            size = -(-len(data) // n) if data else 0
            for k in range(n):
                tk = t + k * step.chunk_gap_s
                if k:
                    self._advance(run, tk, res)
                conn.receive_data(data[k * size : (k + 1) * size] if size else b"", tk)
                run.now = tk
            self._collect(run, res)
            if self.role == SECC:
                if not res.frames and not conn.closed:
                    # a complete frame deserves an answer (or a close) within the EVCC's
                    # message timeout; an incomplete one must be closed on by a timeout
                    limit = self._answer_time(step) if step.expect else LATE_S
                    self._wait(run, run.now + limit, res)
            else:
                # the EVCC's next request may wait for a pacing timer: wait for it (or its end)
                if not res.frames and not conn.closed:
                    self._wait(run, run.now + LATE_S, res)
        except WallClockTimeout:
            res.stuck = True  # the target's code itself did not return (an endless loop)
            run.dead = True
            return
        except Exception as exc:
            res.crash = _crash_text(exc)
            run.dead = True
            return
        res.closed = conn.closed

    def _answer_time(self, step: Step) -> float:
        """V2G_SECC_Msg_Performance_Time for the request (1.5 s, 0.25 s in the charge loop,
        4.5 s for long messages; facts §5.1/5.2): exact in virtual time."""
        name = root_name(step.data)
        return self.timings.secc_performance(name if name.endswith("Req") else name + "Req")

    def _wait(self, run: _Run, until: float, res: StepResult) -> None:
        """Fire timers up to ``until`` until the target writes something or closes."""
        conn = run.conn
        while not res.frames and not conn.closed:
            t = conn.get_timer()
            if t is None or t > until:
                return
            run.now = max(run.now, t)
            conn.handle_timer(run.now)
            self._collect(run, res)

    def _advance(self, run: _Run, until: float, res: StepResult) -> None:
        """Fire every timer due before ``until`` (what the target does while we are quiet)."""
        conn = run.conn
        while True:
            t = conn.get_timer()
            if t is None or t > until:
                break
            run.now = max(run.now, t)
            conn.handle_timer(run.now)
            self._collect(run, res)
        run.now = max(run.now, until)

    def _collect(self, run: _Run, res: StepResult) -> None:
        conn = run.conn
        data = conn.data_to_send()
        if data:
            try:
                res.frames.extend(run.out.feed(data))
            except ValueError as exc:
                res.transport_error = str(exc)
        while (ev := conn.next_event()) is not None:
            if type(ev) is ProtocolError and ev.kind in DEFECT_KINDS:
                res.defects.append((ev.kind, ev.detail))


def _crash_text(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"
