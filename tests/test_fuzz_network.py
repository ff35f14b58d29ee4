"""Fuzzing an SECC by address: our asyncio server on loopback, over TCP and TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcscomm.fuzz import campaign as cp
from mcscomm.fuzz.network import BackgroundEvcc, BackgroundServer
from mcscomm.fuzz.reference import SessionSetup
from mcscomm.session.config import SeccFaults
from mcscomm.session.connection import SeccConnection

EARLY = ("WAIT_SAP", "WAIT_SESSION_SETUP", "WAIT_AUTHORIZATION_SETUP")
SLOW = ("seq.late", "v2gtp.slow", "v2gtp.length_long", "v2gtp.length_max")
#: open SECC defects (see KNOWN in tests/test_fuzz.py): (oracle, mutator); none at present
KNOWN: set[tuple[str, str]] = set()


def _factory(faults: SeccFaults | None = None):  # type: ignore[no-untyped-def]
    setup = SessionSetup()

    def make(now: float) -> SeccConnection:
        cfg, _ = setup.configs("server")
        if faults is not None:
            import dataclasses

            cfg = dataclasses.replace(cfg, faults=faults)
        # the transport is plain TCP here; the session is told TLS so that strict -20 runs
        return SeccConnection(cfg, now=now, tls=True)

    return make


def test_tcp_smoke_finds_nothing() -> None:
    with BackgroundServer(_factory()) as server:
        camp = cp.network(server.address, states=EARLY, skip=SLOW)
        try:
            report = cp.run_campaign(camp, 1, 120, minimize=False, tasks=server.task_count)
        finally:
            camp.close()
    assert report.cases == 120
    assert [
        f.verdict for f in report.findings if (f.verdict.oracle, f.case.mutator) not in KNOWN
    ] == []
    # 120 connections later the server holds no task per dead connection
    assert report.resources.samples[-1].tasks < 10


def test_listening_for_an_evcc_finds_nothing() -> None:
    camp = cp.listen(
        ("127.0.0.1", 0), states=("SAP", "SESSION_SETUP", "AUTHORIZATION_SETUP"), skip=SLOW
    )
    host, port = camp.options["address"].split(":")
    try:
        with BackgroundEvcc((host, int(port))) as evcc:
            report = cp.run_campaign(camp, 1, 60, minimize=False)
        assert evcc.sessions >= 50
    finally:
        camp.close()
    assert report.cases == 60
    assert [f.verdict for f in report.findings] == []


def test_tcp_finds_a_sequence_error_and_replays_it(tmp_path: Path) -> None:
    with BackgroundServer(_factory(SeccFaults(accept_out_of_order=True))) as server:
        camp = cp.network(server.address, states=EARLY, families=("seq",), skip=SLOW)
        try:
            report = cp.run_campaign(camp, 2, 80, out_dir=tmp_path)
            hits = [f for f in report.findings if f.verdict.oracle == "accepted-invalid"]
            assert hits
            case = hits[0].minimized or hits[0].case
            again = camp.oracle.judge(case, camp.replay_run(case))
            assert again is not None and again.oracle == "accepted-invalid"
        finally:
            camp.close()


def test_tls_smoke(tmp_path: Path) -> None:
    from mcscomm.security import pki, tls

    manifest = pki.init_pki(tmp_path / "pki", "secp521r1", days=2)
    with BackgroundServer(_factory(), tls.secc_context(manifest)) as server:
        camp = cp.network(
            server.address, ssl_context=tls.evcc_context(manifest), states=EARLY[:2], skip=SLOW
        )
        try:
            report = cp.run_campaign(camp, 3, 30, minimize=False)
        finally:
            camp.close()
    assert report.cases == 30
    assert [
        f.verdict for f in report.findings if (f.verdict.oracle, f.case.mutator) not in KNOWN
    ] == []


def test_unreachable_target_is_a_crash_finding() -> None:
    camp = cp.network(("127.0.0.1", 9), states=("WAIT_SAP",), skip=SLOW)
    try:
        report = cp.run_campaign(camp, 1, 2, minimize=False)
    finally:
        camp.close()
    assert report.findings and report.findings[0].verdict.kind == "crash"


pytestmark = pytest.mark.timeout(120)
