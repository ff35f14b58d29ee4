"""Full ISO 15118-20 sessions between our EVCC and SECC, in memory, in virtual time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mcscomm.messages.enums import AuthorizationType, ControlMode, EvseNotification, ServiceId
from mcscomm.security.pki import Manifest, init_pki
from mcscomm.session.events import (
    MessageReceived,
    MessageSent,
    MeteringConfirmed,
    PowerSample,
    SessionEnded,
    SessionEstablished,
    SessionPaused,
    SessionResumed,
    SessionSummary,
    StateChanged,
)
from mcscomm.session.loopback import default_configs, make_pair, run_pair
from mcscomm.v2gtp import PayloadType

SERVICES = [ServiceId.DC, ServiceId.DC_BPT, ServiceId.MCS, ServiceId.MCS_BPT]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return init_pki(Path(tmp_path_factory.mktemp("pki")))


def _messages(events: list[object], cls: type = MessageSent) -> list[str]:
    return [e.message for e in events if isinstance(e, cls)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
@pytest.mark.parametrize("control", [ControlMode.SCHEDULED, ControlMode.DYNAMIC], ids=str)
@pytest.mark.parametrize("auth", [AuthorizationType.EIM, AuthorizationType.PNC], ids=str)
def test_full_session_matrix(
    pki: Manifest, service: ServiceId, control: ControlMode, auth: AuthorizationType
) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.service, evcc_cfg.control_mode, evcc_cfg.auth = service, control, auth
    evcc_cfg.duration_s = 20.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc") == SessionEnded(
        t=r.now, result="success", reason="SessionStop(Terminate)"
    )
    assert r.ended("secc") is not None and r.ended("secc").result == "success"  # type: ignore[union-attr]
    sent = _messages(r.evcc_events)
    expected_prefix = [
        "SupportedAppProtocolReq",
        "SessionSetupReq",
        "AuthorizationSetupReq",
        "AuthorizationReq",
        "ServiceDiscoveryReq",
        "ServiceDetailReq",
        "ServiceSelectionReq",
        "DC_ChargeParameterDiscoveryReq",
        "ScheduleExchangeReq",
        "DC_CableCheckReq",
    ]
    assert sent[: len(expected_prefix)] == expected_prefix
    assert "DC_PreChargeReq" in sent and "DC_WeldingDetectionReq" in sent
    assert sent[-1] == "SessionStopReq"
    loops = sent.count("DC_ChargeLoopReq")
    assert 75 <= loops <= 85  # 20 s at the 0.25 s cadence
    samples = r.of_type("secc", PowerSample)
    assert len(samples) == loops
    assert max(s.power_w for s in samples) > 100_000  # energy actually flowed
    # the SECC saw every request the EVCC sent, in order
    assert _messages(r.secc_events, MessageReceived) == sent
    # PnC: the AuthorizationReq carried a signature; EIM: it did not
    auth_doc = next(
        e.document
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "AuthorizationReq"
    )
    assert (b"SignatureValue" in auth_doc) == (auth is AuthorizationType.PNC)
    selected = next(
        e.document
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "ServiceSelectionReq"
    )
    assert f"<ns:ServiceID>{int(service)}</ns:ServiceID>".encode() in selected
    bpt_cpd = b"BPT_DC_CPDReqEnergyTransferMode" in next(
        e.document
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "DC_ChargeParameterDiscoveryReq"
    )
    assert bpt_cpd == (service in (ServiceId.DC_BPT, ServiceId.MCS_BPT))


def test_default_flow_depot_charges_and_discharges(pki: Manifest) -> None:
    """MCS_BPT / Dynamic / PnC with the depot scenario: charge, then V2G into the evening peak."""
    secc_cfg, evcc_cfg = default_configs(pki=pki, time_scale=0.1)
    evcc_cfg.duration_s = 70.0  # past the (scaled) 60 s switch to discharge
    evcc_cfg.departure_s = 1800.0  # real departure: V2G allowed (the departure guard is off)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    samples = r.of_type("secc", PowerSample)
    assert any(s.power_w > 500_000 for s in samples if s.t < 60)
    late = [s for s in samples if s.t > 63]
    assert late and all(s.power_w < 0 for s in late)  # discharging into the depot
    assert min(s.power_w for s in late) >= -450_000 - 1  # never beyond the backend setpoint
    summary = r.of_type("secc", SessionSummary)[0]
    assert summary.energy_charged_wh > 0 and summary.energy_discharged_wh > 0


@pytest.mark.slow
def test_thirty_minute_depot_session_runs_in_virtual_time(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.duration_s = 1800.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    assert r.now > 1800.0
    samples = r.of_type("secc", PowerSample)
    assert len(samples) >= 1800 / 0.25
    # charge (arrival), discharge (evening peak) and top-up phases all happen
    assert any(s.power_w > 0 for s in samples if s.t < 600)
    assert any(s.power_w < 0 for s in samples if 600 < s.t < 1140)
    assert any(s.power_w > 0 for s in samples if s.t > 1200)


def test_pause_then_resume(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.duration_s = 5.0
    evcc_cfg.stop = "pause"
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "paused"  # type: ignore[union-attr]
    assert r.ended("secc").result == "paused"  # type: ignore[union-attr]
    paused = r.of_type("secc", SessionPaused)[0]
    assert r.of_type("evcc", SessionPaused)
    sid = bytes.fromhex(paused.session_id)  # type: ignore[attr-defined]
    assert sid in secc_cfg.store.paused

    # a new connection later, same SECC (same store): resume with the old id
    resume_cfg = dataclasses.replace(evcc_cfg, resume_session_id=sid, stop="terminate")
    evcc2, secc2 = make_pair(secc_cfg, resume_cfg, now=100.0)
    r2 = run_pair(evcc2, secc2, start=100.0)
    assert r2.ended("evcc").result == "success"  # type: ignore[union-attr]
    assert r2.of_type("evcc", SessionResumed) and r2.of_type("secc", SessionResumed)
    established = r2.of_type("secc", SessionEstablished)[0]
    assert established.resumed and established.session_id == sid.hex()  # type: ignore[attr-defined]
    sent = _messages(r2.evcc_events)
    # OK_OldSessionJoined jumps straight to ChargeParameterDiscovery
    assert sent[:3] == [
        "SupportedAppProtocolReq",
        "SessionSetupReq",
        "DC_ChargeParameterDiscoveryReq",
    ]
    assert b"OK_OldSessionJoined" in next(
        e.document
        for e in r2.evcc_events
        if isinstance(e, MessageReceived) and e.message == "SessionSetupRes"
    )
    assert sid not in secc_cfg.store.paused


def test_resume_with_unknown_id_gets_a_new_session(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.duration_s = 1.0
    evcc_cfg.resume_session_id = bytes.fromhex("0102030405060708")
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    est = r.of_type("evcc", SessionEstablished)[0]
    assert not est.resumed and est.session_id != "0102030405060708"  # type: ignore[attr-defined]


def test_schedule_renegotiation(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.notifications = ((3.0, EvseNotification.SCHEDULE_RENEGOTIATION),)
    evcc_cfg.control_mode = ControlMode.SCHEDULED
    evcc_cfg.duration_s = 8.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    sent = _messages(r.evcc_events)
    i = sent.index("PowerDeliveryReq", sent.index("DC_ChargeLoopReq"))
    assert sent[i : i + 3] == ["PowerDeliveryReq", "ScheduleExchangeReq", "PowerDeliveryReq"]
    assert sent[i + 3] == "DC_ChargeLoopReq"
    states = [e.new for e in r.secc_events if isinstance(e, StateChanged)]
    assert "WAIT_RENEGOTIATED_SCHEDULE" in states and "WAIT_POWER_DELIVERY_START" in states


def test_service_renegotiation(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.notifications = ((2.0, EvseNotification.SERVICE_RENEGOTIATION),)
    evcc_cfg.duration_s = 5.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    sent = _messages(r.evcc_events)
    stop = sent.index("SessionStopReq")
    assert b"ServiceRenegotiation" in next(
        e.document
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "SessionStopReq"
    )
    assert sent[stop + 1 : stop + 4] == [
        "ServiceDiscoveryReq",
        "ServiceDetailReq",
        "ServiceSelectionReq",
    ]
    assert sent.count("DC_CableCheckReq") >= 2  # the second service starts from the top
    assert sent[-1] == "SessionStopReq"


@pytest.mark.parametrize(
    "note,result",
    [(EvseNotification.TERMINATE, "success"), (EvseNotification.PAUSE, "paused")],
    ids=["terminate", "pause"],
)
def test_evse_notification_ends_loop(pki: Manifest, note: EvseNotification, result: str) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.notifications = ((2.0, note),)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == result  # type: ignore[union-attr]
    assert r.ended("secc").result == result  # type: ignore[union-attr]
    loop_times = [
        e.t for e in r.evcc_events if isinstance(e, MessageSent) and e.message == "DC_ChargeLoopReq"
    ]
    assert loop_times[-1] - loop_times[0] < 3.0


def test_metering_confirmation_on_side_stream(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.metering_interval_s = 5.0
    evcc_cfg.duration_s = 12.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    reqs = [
        e
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "MeteringConfirmationReq"
    ]
    assert len(reqs) == 2
    assert all(e.payload_type == PayloadType.METERING_CONFIRMATION for e in reqs)
    assert all(b"SignatureValue" in e.document for e in reqs)
    res = [
        e
        for e in r.secc_events
        if isinstance(e, MessageSent) and e.message == "MeteringConfirmationRes"
    ]
    assert [e.payload_type for e in res] == [PayloadType.METERING_CONFIRMATION] * 2
    confirmed = r.of_type("secc", MeteringConfirmed)
    assert len(confirmed) == 2
    assert len(r.of_type("evcc", MeteringConfirmed)) == 2
    assert confirmed[1].charged_wh > confirmed[0].charged_wh > 0  # type: ignore[attr-defined]


def test_authorization_ongoing_rounds(pki: Manifest) -> None:
    from mcscomm.session.config import ImmediateAccept

    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.authorizer = ImmediateAccept(ongoing_rounds=3)
    secc_cfg.schedule_exchange_ongoing_rounds = 2
    evcc_cfg.duration_s = 1.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    sent = _messages(r.evcc_events)
    assert sent.count("AuthorizationReq") == 4
    assert sent.count("ScheduleExchangeReq") == 3
    auth_times = [
        e.t for e in r.evcc_events if isinstance(e, MessageSent) and e.message == "AuthorizationReq"
    ]
    assert auth_times == pytest.approx([0.0, 0.25, 0.5, 0.75])  # polled at the poll interval


def test_backend_setpoint_followed(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki, scenario=None)
    evcc_cfg.duration_s = 40.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    changed: list[float] = []

    def steer(now: float, e: object, s: object) -> None:
        if now >= 10.0 and not changed:
            secc.set_backend(200_000.0, now)
            changed.append(now)
        if now >= 25.0 and len(changed) == 1:
            secc.set_backend(-300_000.0, now)
            changed.append(now)

    r = run_pair(evcc, secc, on_step=steer)
    samples = r.of_type("secc", PowerSample)
    mid = [s.power_w for s in samples if 15 < s.t < 25]
    late = [s.power_w for s in samples if 30 < s.t < 40]
    assert mid and all(abs(p - 200_000) < 20_000 for p in mid)
    assert late and all(abs(p + 300_000) < 30_000 for p in late)


def test_plain_tcp_refused_in_strict_profile_allowed_in_lenient(pki: Manifest) -> None:
    from mcscomm.session.config import Profile

    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.auth = AuthorizationType.EIM
    evcc_cfg.duration_s = 1.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg, tls=False)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]
    assert "SAP" in (evcc.close_reason or "")
    secc_cfg.profile = evcc_cfg.profile = Profile.LENIENT
    evcc, secc = make_pair(secc_cfg, evcc_cfg, tls=False)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    # PnC is never offered without TLS
    setup = next(
        e.document
        for e in r.secc_events
        if isinstance(e, MessageSent) and e.message == "AuthorizationSetupRes"
    )
    assert b">PnC<" not in setup


def test_lenient_negative_discharge_values_round_trip(pki: Manifest) -> None:
    from mcscomm.session.config import Profile

    secc_cfg, evcc_cfg = default_configs(pki=pki, time_scale=0.1)
    for cfg in (secc_cfg, evcc_cfg):
        cfg.profile = Profile.LENIENT
        cfg.negative_discharge = True
    evcc_cfg.duration_s = 70.0
    evcc_cfg.departure_s = 1800.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    cpd = next(
        e.document
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "DC_ChargeParameterDiscoveryReq"
    )
    assert b"<ct:Value>-" in cpd.split(b"EVMaximumDischargePower")[1]
    assert any(s.power_w < 0 for s in r.of_type("secc", PowerSample))


def test_scheduled_bpt_switches_channel_with_the_schedule() -> None:
    """Scheduled MCS_BPT: the schedule goes charge -> discharge -> charge (depot plan, scaled);
    the truck follows with PowerDelivery(Start, BPT_ChannelSelection) at each change."""
    secc_cfg, evcc_cfg = default_configs(time_scale=0.1)
    evcc_cfg.control_mode = ControlMode.SCHEDULED
    evcc_cfg.duration_s = 125.0
    evcc_cfg.departure_s = 1800.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    channels = [
        (e.t, b"Discharge" in e.document)
        for e in r.evcc_events
        if isinstance(e, MessageSent)
        and e.message == "PowerDeliveryReq"
        and b">Start<" in e.document
    ]
    assert [d for _, d in channels] == [False, True, False]
    assert 59.0 <= channels[1][0] <= 62.0 and 113.0 <= channels[2][0] <= 116.0
    samples = r.of_type("secc", PowerSample)
    assert all(s.power_w <= 0 for s in samples if 62 < s.t < 113)
    assert all(s.power_w >= 0 for s in samples if s.t > 117)
    assert all(s.power_w >= -450_000 - 1 for s in samples)


def test_without_duration_the_truck_leaves_at_departure() -> None:
    secc_cfg, evcc_cfg = default_configs(time_scale=0.02)  # depot plan over 36 s
    evcc_cfg.departure_s = 30.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    last_loop = max(
        e.t for e in r.evcc_events if isinstance(e, MessageSent) and e.message == "DC_ChargeLoopReq"
    )
    assert 29.5 <= last_loop <= 30.5


def test_scheduled_offer_has_three_tuples_with_discharging_schedules() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc_cfg.control_mode = ControlMode.SCHEDULED
    evcc_cfg.duration_s = 1.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    res = next(
        e.document
        for e in r.secc_events
        if isinstance(e, MessageSent) and e.message == "ScheduleExchangeRes"
    )
    assert res.count(b"<ns:ScheduleTupleID>") == 3
    assert (
        res.count(b"<ns:DischargingSchedule>") == 2
    )  # backend plan and envelope; not "charge only"
    assert b"<ns:EVSEProcessing>Finished<" in res


def test_metering_confirmation_under_eim_is_unsigned() -> None:
    secc_cfg, evcc_cfg = default_configs()  # no PKI: EIM
    secc_cfg.metering_interval_s = 2.0
    evcc_cfg.duration_s = 5.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    reqs = [
        e
        for e in r.evcc_events
        if isinstance(e, MessageSent) and e.message == "MeteringConfirmationReq"
    ]
    assert len(reqs) == 2 and not any(b"SignatureValue" in e.document for e in reqs)
    assert len(r.of_type("secc", MeteringConfirmed)) == 2
