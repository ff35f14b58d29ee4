"""Every ISO 15118-20 timer is a deadline, enforced on the virtual clock (facts §5)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from mcscomm.messages.enums import AuthorizationType
from mcscomm.session.config import EvccFaults, ImmediateAccept, SeccFaults
from mcscomm.session.events import (
    MessageSent,
    SafeStateReached,
    TimeoutOccurred,
)
from mcscomm.session.loopback import PairResult, default_configs, make_pair, run_pair
from mcscomm.session.timings import Timings


def _run(
    evcc_faults: EvccFaults | None = None,
    secc_faults: SeccFaults | None = None,
    secc_timings: Timings | None = None,
    evcc_timings: Timings | None = None,
    **secc_kw: object,
) -> tuple[PairResult, float]:
    secc_cfg, evcc_cfg = default_configs()  # EIM, no PKI needed
    evcc_cfg.duration_s = 3.0
    if evcc_faults is not None:
        evcc_cfg.faults = evcc_faults
    if secc_faults is not None:
        secc_cfg.faults = secc_faults
    if secc_timings is not None:
        secc_cfg.timings = secc_timings
    if evcc_timings is not None:
        evcc_cfg.timings = evcc_timings
    for k, v in secc_kw.items():
        setattr(secc_cfg, k, v)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert evcc.closed and secc.closed
    last_req = max((e.t for e in r.evcc_events if isinstance(e, MessageSent)), default=0.0)
    return r, last_req


def _timeout(r: PairResult, side: str) -> TimeoutOccurred:
    found = r.of_type(side, TimeoutOccurred)
    assert len(found) == 1, found
    t = found[0]
    assert isinstance(t, TimeoutOccurred)
    ended = r.ended(side)
    assert ended is not None and ended.result == "failed" and t.timer in ended.reason
    return t


def test_secc_charge_loop_sequence_timeout_and_safe_state() -> None:
    # the truck goes silent in the charge loop: 0.5 s later the SECC ends the session
    r, last = _run(EvccFaults(stop_answering_after=30))
    t = _timeout(r, "secc")
    assert t.timer == "V2G_SECC_Sequence_Timeout(DC_ChargeLoop)" and t.state == "CHARGE_LOOP"
    assert t.t == pytest.approx(last + 0.5)
    safe = r.of_type("secc", SafeStateReached)
    assert len(safe) == 1 and safe[0].current_a == 0.0  # type: ignore[attr-defined]
    assert safe[0].t <= t.t + 1.0  # within the charger's bounded ramp-down


def test_secc_sequence_timeout_outside_loop() -> None:
    r, last = _run(EvccFaults(stop_answering_after=3))  # SAP, SessionSetup, AuthorizationSetup
    t = _timeout(r, "secc")
    assert t.timer == "V2G_SECC_Sequence_Timeout"
    assert t.t == pytest.approx(last + 60.0)
    assert not r.of_type("secc", SafeStateReached)  # no power was flowing


def test_secc_communication_setup_timeout() -> None:
    r, _ = _run(EvccFaults(stop_answering_after=1))  # only the SAP request
    t = _timeout(r, "secc")
    assert t.timer == "V2G_SECC_CommunicationSetup_Performance_Time"
    assert t.t == pytest.approx(18.0)


def test_evcc_msg_timeout_when_secc_answers_late() -> None:
    r, _ = _run(secc_faults=SeccFaults(answer_delay_s=3.0))
    t = _timeout(r, "evcc")
    assert t.timer == "V2G_EVCC_Msg_Timeout" and t.t == pytest.approx(2.0)
    assert t.state == "SAP"


def test_evcc_charge_loop_msg_timeout() -> None:
    r, last = _run(secc_faults=SeccFaults(hang_in="CHARGE_LOOP"))
    t = _timeout(r, "evcc")
    assert t.timer == "V2G_EVCC_Msg_Timeout" and t.state == "CHARGE_LOOP"
    assert t.t == pytest.approx(last + 0.5)


def test_evcc_long_msg_timeout_for_service_detail() -> None:
    r, last = _run(secc_faults=SeccFaults(hang_in="WAIT_SERVICE_SELECTION"))
    t = _timeout(r, "evcc")
    assert t.state == "SERVICE_DETAIL" and t.t == pytest.approx(last + 5.0)


def test_evcc_ongoing_timeout() -> None:
    # the backend never decides and the SECC (misconfigured) keeps answering Ongoing
    r, _ = _run(
        authorizer=ImmediateAccept(ongoing_rounds=10**9),
        secc_timings=Timings(secc_ongoing_performance_s=1000.0),
    )
    t = _timeout(r, "evcc")
    assert t.timer == "V2G_EVCC_Ongoing_Timeout" and t.state == "AUTHORIZATION"
    assert t.t == pytest.approx(60.0)


def test_secc_ongoing_performance_time() -> None:
    r, _ = _run(authorizer=ImmediateAccept(ongoing_rounds=10**9))
    res = [
        e for e in r.secc_events if isinstance(e, MessageSent) and e.message == "AuthorizationRes"
    ]
    assert b"WARNING_EIMAuthorizationFailure" in res[-1].document
    assert res[-1].t >= 55.0 and res[-2].t < 55.0  # answered Ongoing until 55 s, then gave up
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]


def test_evcc_cable_check_timeout() -> None:
    r, _ = _run(evcc_timings=Timings(evcc_cable_check_timeout_s=0.6))
    t = _timeout(r, "evcc")
    assert t.timer == "V2G_EVCC_CableCheck_Timeout" and t.state == "CABLE_CHECK"


def test_secc_cable_check_limit() -> None:
    r, _ = _run(secc_timings=Timings(secc_cable_check_s=0.5))
    res = [e for e in r.secc_events if isinstance(e, MessageSent)][-1]
    assert res.message == "DC_CableCheckRes" and b"<ct:ResponseCode>FAILED<" in res.document


def test_evcc_pre_charge_timeout() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc_cfg.pre_charge_tolerance_v = -1.0  # never satisfied: voltages never "match"
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    t = _timeout(r, "evcc")
    assert t.timer == "V2G_EVCC_PreCharge_Timeout"
    first = min(
        e.t for e in r.evcc_events if isinstance(e, MessageSent) and e.message == "DC_PreChargeReq"
    )
    assert t.t == pytest.approx(first + 10.0)


def test_evcc_communication_setup_timeout() -> None:
    r, _ = _run(
        secc_faults=SeccFaults(hang_in="WAIT_SESSION_SETUP"),
        evcc_timings=Timings(evcc_msg_timeout_s=100.0),
        secc_timings=Timings(secc_communication_setup_s=100.0),  # else the SECC gives up at 18 s
    )
    t = _timeout(r, "evcc")
    assert t.timer == "V2G_EVCC_CommunicationSetup_Timeout" and t.t == pytest.approx(20.0)


def test_ignore_timeouts_fault_keeps_broken_secc_alive() -> None:
    secc_cfg, evcc_cfg = default_configs()
    secc_cfg.faults = SeccFaults(ignore_timeouts=True)
    evcc_cfg.faults = EvccFaults(stop_answering_after=30)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc, max_time=30.0)
    assert not r.of_type("secc", TimeoutOccurred)
    assert not secc.closed


@pytest.mark.parametrize("cycle", [0.25, 0.1])
def test_evcc_paces_the_charge_loop(cycle: float) -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc_cfg.timings = dataclasses.replace(Timings(), charge_loop_cycle_s=cycle)
    evcc_cfg.duration_s = 5.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    times = [
        e.t for e in r.evcc_events if isinstance(e, MessageSent) and e.message == "DC_ChargeLoopReq"
    ]
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {cycle}


def test_timings_validate() -> None:
    with pytest.raises(ValueError):
        Timings(evcc_msg_timeout_s=-1.0)
    with pytest.raises(ValueError):
        Timings(charge_loop_cycle_s=0.6)  # beyond the SECC's 0.5 s loop timeout
    t = Timings()
    assert t.evcc_msg_timeout("DC_ChargeLoopReq") == 0.5
    assert t.evcc_msg_timeout("CertificateInstallationReq") == 5.0
    assert t.secc_performance("DC_ChargeLoopReq") == 0.25
    assert t.secc_sequence_timeout("DC_ChargeLoopRes") == 0.5
    assert t.secc_sequence_timeout("SessionSetupRes") == 60.0
    _ = AuthorizationType


def test_communication_loss_in_charge_loop_reaches_safe_state() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc_cfg.duration_s = 30.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    lost: list[float] = []

    def cut(now: float, e: object, s: object) -> None:
        if now >= 5.0 and not lost:
            lost.append(now)
            secc.connection_lost(now, "TCP reset by peer")
            evcc.connection_lost(now, "TCP reset by peer")

    r = run_pair(evcc, secc, on_step=cut)
    safe = r.of_type("secc", SafeStateReached)
    assert len(safe) == 1 and safe[0].reason == "TCP reset by peer"  # type: ignore[attr-defined]
    assert safe[0].current_a == 0.0  # type: ignore[attr-defined]
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]
