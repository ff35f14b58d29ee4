"""Backend-visible needs, the V2G floor rule, Standby, VehicleCheckIn/Out, paused-session expiry
and the resume certificate check, Ed448/X448 certificate installation, authorization warnings."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from mcscomm.messages.enums import AuthorizationType, ControlMode, EcdhCurve, EvseNotification
from mcscomm.security.errors import SignatureError
from mcscomm.security.pki import Manifest, init_pki
from mcscomm.session.config import (
    ImmediateAccept,
    PausedSession,
    SessionStore,
)
from mcscomm.session.events import (
    MessageReceived,
    MessageSent,
    MeteringConfirmed,
    PowerSample,
    SessionEstablished,
    SessionPaused,
)
from mcscomm.session.installation import (
    decrypt_with,
    ed448_public_to_x448,
    ed448_secret_scalar,
    encrypt_for,
)
from mcscomm.session.loopback import PairResult, default_configs, make_pair, run_pair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return init_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def pki_ed448(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return init_pki(Path(tmp_path_factory.mktemp("pki448")), algorithm="ed448")


def _sent(r: PairResult, side: str) -> list[MessageSent]:
    events = r.evcc_events if side == "evcc" else r.secc_events
    return [e for e in events if isinstance(e, MessageSent)]


def _code(doc: bytes) -> str:
    m = re.search(rb"<ct:ResponseCode>([^<]+)</ct:ResponseCode>", doc)
    assert m is not None, doc
    return m.group(1).decode()


# -- 1. what the OCPP backend reads from the context ----------------------------------------------
def test_scheduled_needs_and_power_profile_kept_in_context(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.control_mode = ControlMode.SCHEDULED
    evcc_cfg.duration_s = 3.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    seen: dict[str, object] = {}

    def hook(t: float, *_: object) -> None:
        ctl = secc.session.ctx.power.controller
        if ctl is not None and ctl.last_request is not None and "req" not in seen:
            seen["req"] = ctl.last_request
            seen["t"] = t

    r = run_pair(evcc, secc, on_step=hook)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    ctx = secc.session.ctx
    se = ctx.schedule_request
    assert se is not None and se.target_energy_wh > 0 and math.isfinite(se.departure_s)
    assert ctx.maximum_supporting_points == evcc_cfg.maximum_supporting_points
    prof = ctx.ev_power_profile
    assert prof and all(isinstance(d, float) and isinstance(p, float) for d, p in prof)
    assert sum(d for d, _ in prof) > 0
    # Scheduled-mode charging needs carry ScheduleExchangeReq's requests and departure
    req = seen["req"]
    assert req.target_energy_wh == se.target_energy_wh  # type: ignore[attr-defined]
    assert req.max_energy_wh == se.max_energy_wh  # type: ignore[attr-defined]
    dep = req.departure_s  # type: ignore[attr-defined]
    assert dep == pytest.approx(se.departure_in(float(seen["t"])), abs=1.0)  # type: ignore[arg-type]


def test_dynamic_session_sends_a_planned_power_profile(pki: Manifest) -> None:
    # interop with Josev (docs/interop.md): Dynamic PowerDelivery(Start) carries a profile too
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.duration_s = 1.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    run_pair(evcc, secc)
    profile = secc.session.ctx.ev_power_profile
    assert profile is not None and len(profile) == 1
    assert profile[0][0] >= 1 and profile[0][1] > 0
    assert secc.session.ctx.schedule_request is not None  # Dynamic ScheduleExchangeReq too


# -- 2. the V2G floor rule ------------------------------------------------------------------------
def _floor_pair(pki: Manifest, idle: float | None) -> PairResult:
    secc_cfg, evcc_cfg = default_configs(pki=pki, scenario=None)
    assert evcc_cfg.truck is not None
    evcc_cfg.initial_soc = evcc_cfg.truck.v2g_min_soc + 0.002  # at the floor
    evcc_cfg.target_soc = 0.9
    evcc_cfg.departure_s = 10 * 3600.0
    evcc_cfg.duration_s = 120.0
    evcc_cfg.v2g_floor_idle_s = idle
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    secc.set_backend(-400_000.0, 0.0)  # the backend keeps discharging
    return run_pair(evcc, secc)


def test_v2g_floor_ends_a_bidirectional_session(pki: Manifest) -> None:
    r = _floor_pair(pki, idle=20.0)
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "success"
    assert "V2G floor" in ended.reason
    loop = [e for e in r.evcc_events if isinstance(e, PowerSample)]
    assert loop and loop[-1].t - loop[0].t < 60.0  # well before the 120 s duration
    assert all(p.power_w < 1000.0 for p in loop)  # never charged: the backend kept discharging


def test_v2g_floor_rule_can_be_disabled(pki: Manifest) -> None:
    r = _floor_pair(pki, idle=None)
    ended = r.ended("evcc")
    assert ended is not None and "V2G floor" not in ended.reason
    loop = [e for e in r.evcc_events if isinstance(e, PowerSample)]
    assert loop[-1].t - loop[0].t >= 119.0  # ran the whole duration


@pytest.mark.slow
def test_default_depot_flow_still_charges_discharges_and_tops_up(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)  # the `mcscomm session` defaults, 30 min
    evcc_cfg.duration_s = 1800.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "success" and "V2G floor" not in ended.reason
    p = [e.power_w for e in r.secc_events if isinstance(e, PowerSample)]
    first_dis = next(i for i, x in enumerate(p) if x < -1000.0)
    assert any(x > 1000.0 for x in p[:first_dis])  # charges first
    assert any(x > 1000.0 for x in p[first_dis:])  # and tops up after discharging


# -- 3. Standby, VehicleCheckIn / VehicleCheckOut --------------------------------------------------
def _standby_run(pki: Manifest, allowed: bool) -> PairResult:
    secc_cfg, evcc_cfg = default_configs(pki=pki, scenario=None)
    secc_cfg.standby_allowed = allowed
    evcc_cfg.standby = (2.0, 3.0)
    evcc_cfg.duration_s = 8.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    secc.set_backend(300_000.0, 0.0)
    return run_pair(evcc, secc)


def _pd_codes(r: PairResult) -> list[tuple[float, str]]:
    return [(e.t, _code(e.document)) for e in _sent(r, "secc") if e.message == "PowerDeliveryRes"]


def _progress(r: PairResult) -> list[str]:
    out = []
    for e in _sent(r, "evcc"):
        if e.message == "PowerDeliveryReq":
            m = re.search(rb"ChargeProgress>([^<]+)<", e.document)
            assert m is not None
            out.append(m.group(1).decode())
    return out


def test_standby_pauses_power_and_start_resumes(pki: Manifest) -> None:
    r = _standby_run(pki, allowed=True)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    assert _progress(r) == ["Start", "Standby", "Start", "Stop"]
    codes = _pd_codes(r)
    assert [c for _, c in codes] == ["OK", "OK", "OK", "OK"]
    t_standby, t_resume = codes[1][0], codes[2][0]
    samples = [e for e in r.secc_events if isinstance(e, PowerSample)]
    during = [s.power_w for s in samples if t_standby + 1.0 < s.t < t_resume]
    before = [s.power_w for s in samples if s.t < t_standby]
    after = [s.power_w for s in samples if s.t > t_resume + 1.0]
    assert during and max(abs(p) for p in during) < 1.0  # no power in standby
    assert max(before) > 100_000.0 and max(after) > 100_000.0
    # the charge loop went on during standby
    assert any(t_standby < s.t < t_resume for s in samples)


def test_standby_not_allowed_is_a_warning_and_power_goes_on(pki: Manifest) -> None:
    r = _standby_run(pki, allowed=False)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    assert _progress(r) == ["Start", "Standby", "Stop"]
    codes = _pd_codes(r)
    assert codes[1][1] == "WARNING_StandbyNotAllowed"
    samples = [e.power_w for e in r.secc_events if isinstance(e, PowerSample) if e.t > codes[1][0]]
    assert min(samples[1:-3]) > 100_000.0


def test_standby_before_start_is_a_sequence_error(pki: Manifest) -> None:
    from mcscomm.messages import PowerDeliveryReq
    from mcscomm.messages.common_types import MessageHeader
    from mcscomm.messages.enums import ChargeProgress, Processing
    from mcscomm.session import secc_handlers as h
    from mcscomm.session.errors import SequenceError

    secc_cfg, _ = default_configs(pki=pki)
    _, secc = make_pair(secc_cfg, default_configs(pki=pki)[1])
    ctx = secc.session.ctx
    ctx.service = secc_cfg.services[0]
    req = PowerDeliveryReq(
        header=MessageHeader(session_id=ctx.session_id, timestamp=0),
        ev_processing=Processing.FINISHED,
        charge_progress=ChargeProgress.STANDBY,
    )
    with pytest.raises(SequenceError):
        h.handle_power_delivery(req, ctx)


def test_exit_standby_notification(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki, scenario=None)
    evcc_cfg.standby = (1.0, 1000.0)  # would stay in standby until the SECC says otherwise
    evcc_cfg.duration_s = 6.0
    secc_cfg.notifications = ((3.0, EvseNotification.EXIT_STANDBY),)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    secc.set_backend(300_000.0, 0.0)
    r = run_pair(evcc, secc)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    assert _progress(r) == ["Start", "Standby", "Start", "Stop"]
    assert secc.session.ctx.pending_notification is None


def test_vehicle_check_in_and_out(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.parking_space = 7
    evcc_cfg.vehicle_check_in = True
    evcc_cfg.vehicle_check_out = True
    evcc_cfg.duration_s = 2.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    names = [e.message for e in _sent(r, "evcc")]
    assert names[1:3] == ["SessionSetupReq", "VehicleCheckInReq"]
    assert names[3] == "AuthorizationSetupReq"
    assert names[-2:] == ["VehicleCheckOutReq", "SessionStopReq"]
    res = {e.message: e.document for e in _sent(r, "secc")}
    assert b"ParkingSpace>7<" in res["VehicleCheckInRes"]
    assert b"EVSECheckOutStatus>Completed<" in res["VehicleCheckOutRes"]
    assert secc.session.ctx.check_in_status == "CheckIn"


def test_vehicle_check_out_in_the_future_is_scheduled(pki: Manifest) -> None:
    from mcscomm.messages.common_messages import VehicleCheckOutReq
    from mcscomm.messages.common_types import MessageHeader
    from mcscomm.messages.enums import EvCheckOutStatus, EvseCheckOutStatus
    from mcscomm.session import secc_handlers as h
    from mcscomm.session.context import timestamp

    secc_cfg, evcc_cfg = default_configs(pki=pki)
    _, secc = make_pair(secc_cfg, evcc_cfg)
    ctx = secc.session.ctx
    req = VehicleCheckOutReq(
        header=MessageHeader(session_id=ctx.session_id, timestamp=0),
        ev_check_out_status=EvCheckOutStatus.CHECK_OUT,
        check_out_time=timestamp(ctx.now) + 600,
    )
    res, _ = h.handle_vehicle_check_out(req, ctx)
    assert res.evse_check_out_status is EvseCheckOutStatus.SCHEDULED


def test_vehicle_check_in_out_of_sequence(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.vehicle_check_in = True
    evcc_cfg.duration_s = 1.0
    evcc_cfg.faults = dataclasses.replace(evcc_cfg.faults, skip=("SessionSetupReq",))
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]


# -- 4. paused sessions: expiry and the TLS client certificate ------------------------------------
def test_session_store_expiry() -> None:
    from mcscomm.messages.enums import ServiceId

    store = SessionStore(max_paused_s=60.0)
    p = PausedSession(b"\x01" * 8, "EV", ServiceId.MCS, 2, ControlMode.DYNAMIC, paused_at=10.0)
    store.put(p)
    assert store.take(b"\x01" * 8, now=70.0) is p
    store.put(p)
    assert store.expire(69.0) == [] and store.expire(70.5) == [b"\x01" * 8]
    store.put(p)
    assert store.take(b"\x01" * 8, now=71.0) is None
    forever = SessionStore(max_paused_s=None)
    forever.put(p)
    assert forever.take(b"\x01" * 8, now=1e9) is p
    with pytest.raises(ValueError):
        SessionStore(max_paused_s=-1.0)


def _pause(pki: Manifest, cert: bytes | None, max_paused_s: float | None = 3600.0):  # type: ignore[no-untyped-def]
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.store = SessionStore(max_paused_s=max_paused_s)
    evcc_cfg.duration_s = 2.0
    evcc_cfg.stop = "pause"
    evcc, secc = make_pair(secc_cfg, evcc_cfg, peer_cert_der=cert)
    r = run_pair(evcc, secc)
    sid = bytes.fromhex(r.of_type("secc", SessionPaused)[0].session_id)  # type: ignore[attr-defined]
    resume = dataclasses.replace(evcc_cfg, resume_session_id=sid, stop="terminate")
    return secc_cfg, resume, sid


def _setup_code(r: PairResult) -> str:
    doc = next(
        e.document
        for e in r.evcc_events
        if isinstance(e, MessageReceived) and e.message == "SessionSetupRes"
    )
    return _code(doc)


def test_resume_with_same_certificate(pki: Manifest) -> None:
    secc_cfg, resume, _ = _pause(pki, b"cert-A")
    evcc, secc = make_pair(secc_cfg, resume, now=100.0, peer_cert_der=b"cert-A")
    r = run_pair(evcc, secc, start=100.0)
    assert _setup_code(r) == "OK_OldSessionJoined"
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]


def test_resume_with_other_certificate_is_refused(pki: Manifest) -> None:
    secc_cfg, resume, sid = _pause(pki, b"cert-A")
    evcc, secc = make_pair(secc_cfg, resume, now=100.0, peer_cert_der=b"cert-B")
    r = run_pair(evcc, secc, start=100.0)
    assert _setup_code(r) == "FAILED_UnknownSession"
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]
    assert sid in secc_cfg.store.paused  # still there for its owner
    # the owner can still resume
    evcc, secc = make_pair(secc_cfg, resume, now=200.0, peer_cert_der=b"cert-A")
    assert _setup_code(run_pair(evcc, secc, start=200.0)) == "OK_OldSessionJoined"


def test_resume_without_certificate_info_is_not_checked(pki: Manifest) -> None:
    secc_cfg, resume, _ = _pause(pki, b"cert-A")
    evcc, secc = make_pair(secc_cfg, resume, now=100.0)  # endpoint supplies nothing
    assert _setup_code(run_pair(evcc, secc, start=100.0)) == "OK_OldSessionJoined"


def test_expired_paused_session_gets_a_new_one(pki: Manifest) -> None:
    secc_cfg, resume, sid = _pause(pki, None, max_paused_s=50.0)
    evcc, secc = make_pair(secc_cfg, resume, now=100.0)
    r = run_pair(evcc, secc, start=100.0)
    assert _setup_code(r) == "OK_NewSessionEstablished"
    est = r.of_type("secc", SessionEstablished)[0]
    assert not est.resumed and est.session_id != sid.hex()  # type: ignore[attr-defined]
    assert sid not in secc_cfg.store.paused


# -- 5. CertificateInstallation, Ed448 family (X448) ----------------------------------------------
def test_ed448_to_x448_map_agrees_with_the_secret_scalar() -> None:
    from cryptography.hazmat.primitives.asymmetric import x448
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    for _ in range(5):
        k = ed448.Ed448PrivateKey.generate()
        mine = x448.X448PrivateKey.from_private_bytes(ed448_secret_scalar(k)).public_key()
        assert mine.public_bytes(Encoding.Raw, PublicFormat.Raw) == ed448_public_to_x448(
            k.public_key()
        ).public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_x448_key_transport_round_trip(pki_ed448: Manifest) -> None:
    oem = pki_ed448.certificate("oem_prov_leaf")
    key = pki_ed448.private_key("oem_prov_leaf")
    secret = bytes(range(56))
    curve, dh, sealed = encrypt_for(oem, secret, b"AAD")
    assert curve is EcdhCurve.X448 and len(dh) == 133 and len(sealed) == 84
    assert dh[56:] == bytes(77)
    assert decrypt_with(key, curve, dh, sealed, b"AAD") == secret
    with pytest.raises(SignatureError):
        decrypt_with(key, curve, dh, sealed, b"other AAD")
    with pytest.raises(SignatureError):
        decrypt_with(key, curve, dh[:-1] + b"\x01", sealed, b"AAD")  # padding must be zero
    with pytest.raises(SignatureError):  # a P-521 key cannot open an X448 transport
        decrypt_with(ec.generate_private_key(ec.SECP521R1()), curve, dh, sealed, b"AAD")


def test_certificate_installation_ed448(pki_ed448: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki_ed448)
    evcc_cfg.has_contract = False
    evcc_cfg.duration_s = 1.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success", r.ended("evcc")  # type: ignore[union-attr]
    res = next(e.document for e in _sent(r, "secc") if e.message == "CertificateInstallationRes")
    assert b"X448_EncryptedPrivateKey" in res and b"ECDHCurve>X448<" in res
    assert secc.session.ctx.contract_installed
    cert = pki_ed448.certificate("contract_leaf")
    assert isinstance(cert.public_key(), ed448.Ed448PublicKey)


def test_certificate_installation_secp521_uses_its_field(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.has_contract = False
    evcc_cfg.duration_s = 1.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    res = next(e.document for e in _sent(r, "secc") if e.message == "CertificateInstallationRes")
    assert b"SECP521_EncryptedPrivateKey" in res and b"X448_EncryptedPrivateKey" not in res


# -- 6. authorization warnings do not end the session ---------------------------------------------
def test_secc_stays_ready_after_an_authorization_warning(pki: Manifest) -> None:
    from mcscomm.messages import AuthorizationReq
    from mcscomm.messages.common_messages import EIM_AReqAuthorizationMode
    from mcscomm.messages.common_types import MessageHeader
    from mcscomm.session import secc_handlers as h
    from mcscomm.session.errors import AuthorizationFailed

    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.authorizer = ImmediateAccept(accept=False)
    secc_cfg.max_authorization_attempts = 3
    _, secc = make_pair(secc_cfg, evcc_cfg)
    ctx = secc.session.ctx
    ctx.offered_auth = (AuthorizationType.EIM,)
    req = AuthorizationReq(
        header=MessageHeader(session_id=ctx.session_id, timestamp=0),
        selected_authorization_service=AuthorizationType.EIM,
        authorization_mode=EIM_AReqAuthorizationMode(),
    )
    for _ in range(2):
        res, outcome = h.handle_authorization(req, ctx)
        assert outcome == "warning" and res.response_code.value == "WARNING_EIMAuthorizationFailure"
        assert not ctx.authorized
    with pytest.raises(AuthorizationFailed):  # the third warning ends the session
        h.handle_authorization(req, ctx)


def test_pnc_refused_then_eim_accepted(pki: Manifest) -> None:
    class PncRefused:
        def decide(self, auth: AuthorizationType, emaid: str | None, now: float) -> bool:
            return auth is AuthorizationType.EIM

    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.authorizer = PncRefused()
    secc_cfg.metering_interval_s = 1.0  # an unsigned (EIM) confirmation must be accepted
    evcc_cfg.duration_s = 3.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    codes = [_code(e.document) for e in _sent(r, "secc") if e.message == "AuthorizationRes"]
    assert codes == ["WARNING_GeneralPnCAuthorizationError", "OK"]
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    ctx = secc.session.ctx
    assert ctx.selected_auth is AuthorizationType.EIM and ctx.contract_chain is None
    assert r.of_type("secc", MeteringConfirmed)


def test_exit_standby_without_standby_is_dropped(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki, scenario=None)
    secc_cfg.notifications = ((1.0, EvseNotification.EXIT_STANDBY),)
    evcc_cfg.duration_s = 3.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    secc.set_backend(300_000.0, 0.0)
    r = run_pair(evcc, secc)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    loop_res = [e.document for e in _sent(r, "secc") if e.message == "DC_ChargeLoopRes"]
    assert not any(b"ExitStandby" in d for d in loop_res)
