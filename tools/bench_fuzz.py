"""Fuzzer throughput: cases per second in-process and over loopback TCP and TLS.

Every figure is paired with the same harness driving a trivial *echo* target (a sans-IO object
that writes every byte back) in the same run: the echo rate is the harness's own ceiling, and
``fuzz_ratio`` = rate against our SECC / rate against echo. Reference point (issue 7): boofuzz
manages ~520-650 cases/s over loopback TCP with a new connection per case.

Over a socket the target runs in a forked process of its own (as a real target would; a
thread would share our GIL) and every case opens a new connection. The network cases are
restricted to the SAP state (no prefix to drive: connect, one exchange, close), which is what
boofuzz's figure measures too; ``tcp_early_states`` adds the first three states (prefix driven
by our EVCC); ``tcp_listen_evcc`` fuzzes our EVCC connecting to us.

    .venv/bin/python tools/bench_fuzz.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcscomm.fuzz import campaign as cp
from mcscomm.fuzz.network import BackgroundServer
from mcscomm.fuzz.reference import SECC, SessionSetup
from mcscomm.session.connection import SeccConnection

SLOW = ("seq.late", "v2gtp.slow", "v2gtp.length_long", "v2gtp.length_max")
BOOFUZZ_TCP = 600.0  # cases/s, published figure (issue 7), not measured here


class EchoConnection:
    """The trivial target: writes back whatever it receives, never closes, no timers."""

    close_reason: str | None = None

    def __init__(self) -> None:
        self._out = bytearray()

    @property
    def closed(self) -> bool:
        return False

    def receive_data(self, data: bytes, now: float) -> None:
        self._out += data

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Any | None:
        return None

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None


def _secc_factory() -> Any:
    setup = SessionSetup()

    def make(now: float) -> SeccConnection:
        cfg, _ = setup.configs("bench")
        return SeccConnection(cfg, now=now, tls=True)

    return make


def _rate(camp: cp.Campaign, cases: int) -> float:
    report = cp.run_campaign(camp, 1, cases, minimize=False, max_findings=0)
    return round(report.execs_per_s, 1)


def _in_process(cases: int) -> tuple[float, float]:
    fuzz = cp.in_process(SECC)
    echo = cp.in_process(SECC)
    from mcscomm.fuzz.targets import InProcessTarget

    target = InProcessTarget(SECC, make=EchoConnection)  # type: ignore[arg-type]
    echo.run = target.run
    _rate(fuzz, 200)  # warm-up: snapshots, schema compilation
    _rate(echo, 200)
    return _rate(fuzz, cases), _rate(echo, cases)


def _evcc(cases: int) -> tuple[float, float]:
    """Our EVCC in-process, and over TCP with us listening (it reconnects for every case)."""
    from mcscomm.fuzz.network import BackgroundEvcc

    camp = cp.in_process("evcc")
    _rate(camp, 200)
    in_proc = _rate(camp, cases)
    listen = cp.listen(("127.0.0.1", 0), states=("SAP",), skip=SLOW)
    host, port = str(listen.options["address"]).split(":")
    try:
        with BackgroundEvcc((host, int(port))):
            tcp = _rate(listen, max(50, cases // 10))
    finally:
        listen.close()
    return in_proc, tcp


def _network(cases: int, ssl_pair: tuple[Any, Any] | None, states: tuple[str, ...]) -> float:
    server_ctx, client_ctx = ssl_pair if ssl_pair else (None, None)
    with BackgroundServer(_secc_factory(), server_ctx, process=True) as server:
        camp = cp.network(server.address, ssl_context=client_ctx, states=states, skip=SLOW)
        try:
            return _rate(camp, cases)
        finally:
            camp.close()


def _network_echo(cases: int, ssl_pair: tuple[Any, Any] | None) -> float:
    server_ctx, client_ctx = ssl_pair if ssl_pair else (None, None)
    with BackgroundServer(lambda now: EchoConnection(), server_ctx, process=True) as server:
        camp = cp.network(server.address, ssl_context=client_ctx, states=("WAIT_SAP",), skip=SLOW)
        try:
            return _rate(camp, cases)
        finally:
            camp.close()


def run(quick: bool) -> dict[str, object]:
    # every fuzz case ends a server session abnormally; that is the point, not news
    logging.getLogger("mcscomm").setLevel(logging.ERROR)
    n_in = 1500 if quick else 10000
    n_net = 300 if quick else 2000
    rates: dict[str, float] = {}
    ratios: dict[str, float] = {}
    rates["in_process"], rates["in_process_echo"] = _in_process(n_in)
    rates["in_process_evcc"], rates["tcp_listen_evcc"] = _evcc(n_in // 2)
    rates["tcp"] = _network(n_net, None, ("WAIT_SAP",))
    rates["tcp_echo"] = _network_echo(n_net, None)
    rates["tcp_early_states"] = _network(
        n_net // 2, None, ("WAIT_SAP", "WAIT_SESSION_SETUP", "WAIT_AUTHORIZATION_SETUP")
    )
    from mcscomm.security import pki, tls

    with tempfile.TemporaryDirectory() as tmp:
        manifest = pki.init_pki(Path(tmp) / "pki", "secp521r1", days=2)
        pair = (tls.secc_context(manifest), tls.evcc_context(manifest))
        rates["tls"] = _network(n_net // 2, pair, ("WAIT_SAP",))
        rates["tls_echo"] = _network_echo(n_net // 2, pair)
    for name in ("in_process", "tcp", "tls"):
        echo = rates[f"{name}_echo"]
        ratios[name] = round(rates[name] / echo, 3) if echo else 0.0
    ratios["tcp_vs_boofuzz"] = round(rates["tcp"] / BOOFUZZ_TCP, 2)
    return {"fuzz_execs_per_s": rates, "fuzz_ratio": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), indent=1))


if __name__ == "__main__":
    main()
