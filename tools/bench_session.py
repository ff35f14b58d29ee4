#!/usr/bin/env python3
"""Session benchmarks (issue 5 §6): loop round trip vs bare TLS, p99 under load, session wall time.

* ``loop_rtt_ratio``: median DC_ChargeLoop round trip of the default session (EVCC and SECC in
  one process over loopback TLS 1.3, virtual time so the loop runs back to back) divided by the
  median round trip of a bare asyncio TLS echo of the same request/response sizes with the same
  TLS contexts, measured in the same run. Both sides run on one event loop in both cases.
* ``p99_ms``: p99 charge-loop response time with 10, 100 and 500 concurrent trucks on one SECC
  process (``mcscomm secc`` in a subprocess), each truck at the standard 250 ms cadence. To
  measure the SECC and not the load generator, the trucks run in this (separate) process and
  are cheap: each does a real session (EIM, MCS_BPT, Dynamic) up to its first DC_ChargeLoopReq,
  then *replays* that exact request every 250 ms and only frames the responses. The SECC does
  its full work for every request (decode + schema validation, power negotiation, encode +
  validation). The response time is measured at the truck: from writing the request to the
  response's last byte arriving. Only the steady-state window after every truck is in the loop
  counts.
* ``session_s``: wall time of the default ``mcscomm session`` (virtual time), run as a user runs
  it: a fresh ``python -m mcscomm.cli session`` process, its log to /dev/null.

Run: ``python tools/bench_session.py [--quick]`` (or via ``tools/bench.py --only session``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mcscomm.endpoints.driver import SansIoConnection  # noqa: E402
from mcscomm.v2gtp import FrameDecoder, build_frame  # noqa: E402

LOOP_REQ, LOOP_RES = "DC_ChargeLoopReq", "DC_ChargeLoopRes"


# ------------------------------------------------------------------------------- loop_rtt_ratio


class _Timed:
    """Proxy of an EVCC connection that times each charge-loop round trip (wall clock)."""

    def __init__(self, inner: SansIoConnection) -> None:
        self.inner = inner
        self.rtts: list[float] = []
        self.sizes: tuple[int, int] = (0, 0)
        self._t0: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def next_event(self) -> Any:
        event: Any = self.inner.next_event()
        name = getattr(event, "message", None)
        kind = type(event).__name__
        if kind == "MessageSent" and name == LOOP_REQ:
            self._t0 = time.perf_counter()
            self.sizes = (len(event.document) + 8, self.sizes[1])
        elif kind == "MessageReceived" and name == LOOP_RES and self._t0 is not None:
            self.rtts.append(time.perf_counter() - self._t0)
            self.sizes = (self.sizes[0], len(event.document) + 8)
            self._t0 = None
        return event


async def _session_rtts(seconds: float, certs: Path) -> tuple[list[float], tuple[int, int], Any]:
    from mcscomm.endpoints.pair import run_pair
    from mcscomm.endpoints.setup import (
        SessionOptions,
        evcc_config,
        evcc_connection,
        load_pki,
        secc_config,
        secc_factory,
        tls_contexts,
    )

    opts = SessionOptions(duration=seconds, pki_dir=certs)
    manifest = load_pki(opts)
    server_ssl, client_ssl = tls_contexts(manifest)
    timed = _Timed(evcc_connection(evcc_config(opts, manifest)))
    result = await run_pair(
        secc_factory(secc_config(opts, manifest), tls=True),
        timed,
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        virtual=True,
    )
    if not result.ok:
        raise RuntimeError(f"benchmark session failed: {result.evcc.reason}")
    return timed.rtts, timed.sizes, (server_ssl, client_ssl)


class _Echo(asyncio.Protocol):
    """Bare TLS server: answers every ``request`` bytes with ``response`` bytes."""

    def __init__(self, request: int, response: int) -> None:
        self.request, self.reply = request, b"\x00" * response
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += len(data)
        while self.pending >= self.request:
            self.pending -= self.request
            self.transport.write(self.reply)


class _EchoClient(asyncio.Protocol):
    def __init__(self, response: int) -> None:
        self.response = response
        self.got = 0
        self.done: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= self.response and self.done is not None and not self.done.done():
            self.got -= self.response
            self.done.set_result(None)


async def _echo_rtts(
    sizes: tuple[int, int], contexts: tuple[ssl.SSLContext, ssl.SSLContext], rounds: int
) -> list[float]:
    loop = asyncio.get_running_loop()
    request, response = sizes
    server = await loop.create_server(
        lambda: _Echo(request, response), "127.0.0.1", 0, ssl=contexts[0]
    )
    port = server.sockets[0].getsockname()[1]
    transport, client = await loop.create_connection(
        lambda: _EchoClient(response), "127.0.0.1", port, ssl=contexts[1], server_hostname=""
    )
    payload = b"\x01" * request
    rtts = []
    for _ in range(rounds):
        client.done = loop.create_future()
        t0 = time.perf_counter()
        transport.write(payload)
        await client.done
        rtts.append(time.perf_counter() - t0)
    transport.close()
    server.close()
    await server.wait_closed()
    return rtts


def loop_rtt(quick: bool, certs: Path) -> dict[str, Any]:
    seconds = 60.0 if quick else 300.0  # of virtual charge loop: 240 / 1200 round trips

    async def main() -> dict[str, Any]:
        rtts, sizes, contexts = await _session_rtts(seconds, certs)
        echo = await _echo_rtts(sizes, contexts, max(200, len(rtts)))
        loop_ms = statistics.median(rtts) * 1e3
        echo_ms = statistics.median(echo) * 1e3
        return {
            "loop_rtt_ratio": round(loop_ms / echo_ms, 2),
            "loop_rtt_ms": round(loop_ms, 3),
            "echo_rtt_ms": round(echo_ms, 3),
            "loop_frames_bytes": list(sizes),
            "loop_samples": len(rtts),
        }

    return asyncio.run(main())


# ------------------------------------------------------------------------------------- p99_ms


class _Window:
    """Phases of the load test: setup (trucks hold their first loop request), go, measure.

    Once every truck holds its first DC_ChargeLoopReq (or has failed), all loops start at
    ``go_at`` with phases spread over one cadence; after a one-second warm-up the window
    ``[steady_from, stop_at]`` is measured, then the trucks leave.
    """

    def __init__(self, trucks: int, seconds: float) -> None:
        self.trucks = trucks
        self.seconds = seconds
        self.settled = 0
        self.go_at = math.inf
        self.steady_from = math.inf
        self.stop_at = math.inf
        self.opened = asyncio.Event()

    def ready(self, now: float) -> None:
        self.settled += 1
        self._check(now)

    def gone(self, now: float) -> None:
        self.settled += 1
        self._check(now)

    def _check(self, now: float) -> None:
        if self.settled >= self.trucks and math.isinf(self.go_at):
            self.go_at = now + 0.5
            self.steady_from = self.go_at + 1.0
            self.stop_at = self.steady_from + self.seconds
            self.opened.set()


class _Replay:
    """EVCC proxy: a real session up to the first DC_ChargeLoopReq, then replays that request.

    The first loop request is held until the window's ``go_at`` (+ this truck's phase), so the
    expensive session setups of all trucks are over before any loop is measured. After that the
    truck resends the same request 250 ms after each response and only frames the responses.
    """

    POLL_S = 0.1  # how often a holding truck looks whether the window has opened

    def __init__(
        self, inner: SansIoConnection, cadence: float, window: _Window, phase: float
    ) -> None:
        self.inner = inner
        self.cadence = cadence
        self.window = window
        self.phase = phase
        self.frame: bytes | None = None
        self.samples: list[tuple[float, float]] = []  # (sent at, response time)
        self.holding = False
        self._decoder: FrameDecoder | None = None
        self._out = b""
        self._now = 0.0
        self._sent_at: float | None = None
        self._next: float | None = None
        self._closed = False
        self.reason: str | None = None

    @property
    def closed(self) -> bool:
        return self._closed if self._decoder is not None else self.inner.closed

    @property
    def close_reason(self) -> str | None:
        return self.reason if self._decoder is not None else self.inner.close_reason

    def start(self, now: float) -> None:
        self._now = now
        self.inner.start(now)  # type: ignore[attr-defined]

    def next_event(self) -> Any:
        if self._decoder is not None:
            return None
        event: Any = self.inner.next_event()
        if type(event).__name__ == "MessageSent" and event.message == LOOP_REQ:
            # From here on the truck replays this exact request (same session id).
            self.frame = build_frame(event.payload_type, event.document)
            self._decoder = FrameDecoder()
            self.inner.data_to_send()  # that same request: held back, sent at go time
            self.holding = True
            self.window.ready(self._now)
        return event

    def data_to_send(self) -> bytes:
        if self._decoder is None:
            return self.inner.data_to_send()
        out, self._out = self._out, b""
        return out

    def receive_data(self, data: bytes, now: float) -> None:
        self._now = now
        if self._decoder is None:
            self.inner.receive_data(data, now)
            return
        for _frame in self._decoder.feed(data):
            if self._sent_at is not None:
                self.samples.append((self._sent_at, now - self._sent_at))
                self._sent_at = None
            self._next = now + self.cadence

    def get_timer(self) -> float | None:
        if self._decoder is None:
            return self.inner.get_timer()
        if self.holding:
            if math.isinf(self.window.go_at):
                return self._now + self.POLL_S
            return self.window.go_at + self.phase
        if self._sent_at is not None:
            return self._sent_at + 5.0  # a lost response: give up after 5 s
        return self._next

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._decoder is None:
            self.inner.handle_timer(now)
            return
        if self.holding:
            if now >= self.window.go_at + self.phase and self.frame is not None:
                self.holding = False
                self._out += self.frame
                self._sent_at = now
        elif self._sent_at is not None and now >= self._sent_at + 5.0:
            self._closed, self.reason = True, "no response within 5 s"
        elif now >= self.window.stop_at:
            self._closed, self.reason = True, None
        elif self._next is not None and now >= self._next and self.frame is not None:
            self._out += self.frame
            self._sent_at, self._next = now, None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: CPU share of the truck process over the last window (a load generator near 1.0 is suspect).
trucks_cpu_share: list[float | None] = [None]


async def _trucks(
    n: int, port: int, certs: Path, window_s: float, ramp: float, secc_pid: int
) -> tuple[list[float], int, dict[str, int], float | None]:
    from mcscomm.endpoints.clock import RealClock
    from mcscomm.endpoints.evcc_client import run_evcc
    from mcscomm.endpoints.setup import (
        SessionOptions,
        evcc_config,
        evcc_connection,
        load_pki,
        tls_contexts,
    )

    opts = SessionOptions(auth="eim", pki_dir=certs)
    manifest = load_pki(opts)
    client_ssl = tls_contexts(manifest)[1]
    loop = asyncio.get_running_loop()
    clock = RealClock()
    window = _Window(n, window_s)
    replays: list[_Replay] = []
    reasons: dict[str, int] = {}

    async def truck(i: int) -> bool:
        await asyncio.sleep(ramp * i / n)
        cfg = evcc_config(opts, manifest)
        phase = 0.25 * ((i * 0.618034) % 1.0)  # spread the loops evenly over one cadence
        replay = _Replay(evcc_connection(cfg, now=loop.time()), 0.25, window, phase)
        replays.append(replay)
        result = await run_evcc(
            replay,
            host="127.0.0.1",
            port=port,
            ssl_context=client_ssl,
            clock=clock,
            label=f"truck{i}",
            finish=False,
        )
        if replay.frame is None:
            window.gone(loop.time())  # failed before reaching the charge loop
        if not result.ok:
            reason = result.outcome.reason
            reasons[reason] = reasons.get(reason, 0) + 1
        return result.ok

    cpu: dict[str, float | None] = {}

    async def watch_cpu() -> None:
        # SECC CPU share over the measured window: ~100 % means the SECC is the bottleneck.
        await window.opened.wait()
        await asyncio.sleep(max(0.0, window.steady_from - loop.time()))
        cpu["start"] = _cpu_seconds(secc_pid)
        cpu["own_start"] = time.process_time()
        os.kill(secc_pid, signal.SIGUSR1)  # the SECC restarts its response-time statistics
        await asyncio.sleep(window.seconds)
        cpu["end"] = _cpu_seconds(secc_pid)
        cpu["own_end"] = time.process_time()

    watcher = asyncio.ensure_future(watch_cpu())
    results = await asyncio.gather(*(truck(i) for i in range(n)))
    watcher.cancel()
    start, end = cpu.get("start"), cpu.get("end")
    secc_cpu = None if start is None or end is None else (end - start) / window.seconds
    own_start, own_end = cpu.get("own_start"), cpu.get("own_end")
    if own_start is not None and own_end is not None:
        trucks_cpu_share[0] = (own_end - own_start) / window.seconds
    samples = [
        rt
        for r in replays
        for sent, rt in r.samples
        if window.steady_from <= sent <= window.stop_at
    ]
    return samples, sum(1 for ok in results if not ok), reasons, secc_cpu


def p99(n: int, quick: bool, certs: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # The SECC's output goes to a file: a pipe nobody drains would block it once full.
    log = tempfile.NamedTemporaryFile("w+", prefix="mcscomm-secc-", suffix=".log")  # noqa: SIM115
    secc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcscomm.cli",
            "-q",
            "secc",
            "--listen",
            "127.0.0.1:0",
            "--certs",
            str(certs),
            "--scenario",
            "none",
            "--max-connections",
            str(n + 16),
        ],
        stdout=log,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        port = _wait_for_port(log.name, secc)
        window = 5.0 if quick else 20.0
        # Trucks connect at up to 50 per second; they all hold their first loop request until
        # everyone is ready (the SECC allows 60 s after PowerDeliveryRes), so setups never
        # overlap the measured window.
        ramp = max(1.0, n / 50.0)
        samples, failed, reasons, secc_cpu = asyncio.run(
            _trucks(n, port, certs, window, ramp, secc.pid)
        )
    finally:
        secc.terminate()
        try:
            secc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            secc.kill()
        rest = Path(log.name).read_text()
        log.close()
    secc_ms: dict[str, float] = {}
    for text in rest.splitlines():
        if "response time p50" in text:
            part = text.split("response time p50 ", 1)[1]
            secc_ms["p50"] = float(part.split(" ms", 1)[0])
            secc_ms["p99"] = float(part.split("p99 ", 1)[1].split(" ms", 1)[0])
    # The SECC prints one summary line per session; count why sessions failed on its side
    # ("connection lost" is every truck leaving at the end of the window).
    secc_reasons: dict[str, int] = {}
    for text in rest.splitlines():
        if "result failed (" in text:
            why = text.rsplit("result failed (", 1)[1].rstrip(")")
            secc_reasons[why] = secc_reasons.get(why, 0) + 1
    if not samples:
        raise RuntimeError(f"no charge-loop samples with {n} trucks ({failed} failed: {reasons})")
    samples.sort()
    return {
        "p99_ms": round(samples[int(0.99 * (len(samples) - 1))] * 1e3, 2),
        "p50_ms": round(statistics.median(samples) * 1e3, 2),
        "secc_p99_ms": secc_ms.get("p99"),
        "secc_p50_ms": secc_ms.get("p50"),
        "samples": len(samples),
        "failed_trucks": failed,
        "secc_cpu_share": None if secc_cpu is None else round(secc_cpu, 2),
        "trucks_cpu_share": None if trucks_cpu_share[0] is None else round(trucks_cpu_share[0], 2),
        "failures": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:3]),
        "secc_failures": dict(sorted(secc_reasons.items(), key=lambda kv: -kv[1])[:3]),
    }


def _wait_for_port(path: str, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        for line in Path(path).read_text().splitlines():
            if "listening on" in line:
                return int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
        if process.poll() is not None:
            raise RuntimeError(f"secc exited with {process.returncode}")
        time.sleep(0.05)
    raise RuntimeError("secc did not start within 30 s")


# ---------------------------------------------------------------------------------- session_s


def session_wall(certs: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mcscomm.cli", "session", "--certs", str(certs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"mcscomm session failed: {done.stderr.strip()[-300:]}")
    return round(wall, 2)


# ----------------------------------------------------------------------------------------- run


def run(quick: bool) -> dict[str, object]:
    """Figures for tools/bench.py (see the module docstring)."""
    # Hundreds of trucks closing at the end of a window are not news.
    logging.getLogger("mcscomm").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mcscomm-bench-") as tmp:
        certs = Path(tmp) / "pki"
        from mcscomm.endpoints.setup import SessionOptions, load_pki

        load_pki(SessionOptions(pki_dir=certs))
        figures: dict[str, object] = {}
        rtt = loop_rtt(quick, certs)
        figures["loop_rtt_ratio"] = rtt.pop("loop_rtt_ratio")
        figures["session_loop_detail"] = rtt
        details = {str(n): p99(n, quick, certs) for n in (10, 100, 500)}
        figures["p99_ms"] = {n: d["p99_ms"] for n, d in details.items()}
        figures["session_p99_detail"] = details
        figures["session_s"] = session_wall(certs)
    return figures


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
