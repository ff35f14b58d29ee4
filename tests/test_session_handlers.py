"""The pieces of the session layer on their own: handlers, failure responses, services,
conversions, certificate installation and the SAP handshake."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcscomm.codec import XmlCodec
from mcscomm.messages import ServiceDetailReq, SessionSetupReq
from mcscomm.messages.common_types import MessageHeader
from mcscomm.messages.enums import AuthorizationType, ControlMode, ResponseCode, ServiceId
from mcscomm.power.profiles import load_charger
from mcscomm.security.errors import SignatureError
from mcscomm.security.pki import Manifest, init_pki
from mcscomm.session import errors
from mcscomm.session.config import EvccFaults, PausedSession, SeccConfig
from mcscomm.session.context import SeccContext
from mcscomm.session.convert import magnitude_in, rn, rn_down
from mcscomm.session.events import MessageSent, PowerSample, SessionEnded
from mcscomm.session.installation import decrypt_with, encrypt_for
from mcscomm.session.loopback import default_configs, make_pair, run_pair
from mcscomm.session.power_adapter import SeccPower
from mcscomm.session.responses import failed_response, known_responses
from mcscomm.session.secc_handlers import (
    HANDLERS,
    handle_service_detail,
    handle_session_setup,
)
from mcscomm.session.services import parameter_sets
from mcscomm.session.transitions import EVCC_TABLE, SECC_TABLE, EvccState, SeccState


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return init_pki(Path(tmp_path_factory.mktemp("pki")))


def _ctx(**cfg: object) -> SeccContext:
    config = SeccConfig(charger=load_charger("mcs_1mw_bpt"), **cfg)  # type: ignore[arg-type]
    return SeccContext(config=config, power=SeccPower(config.charger), tls=True)  # type: ignore[arg-type]


def _header(sid: bytes = b"\x00" * 8) -> MessageHeader:
    return MessageHeader(session_id=sid, timestamp=0)


# -- transitions ----------------------------------------------------------------------------------
def test_every_table_request_has_a_handler() -> None:
    for state, row in SECC_TABLE.items():
        for request in row:
            assert request in HANDLERS, (state, request)
    assert set(SECC_TABLE) == set(SeccState)
    assert set(EVCC_TABLE) == set(EvccState)
    for row in EVCC_TABLE.values():
        for nxt, _ in row.values():
            assert nxt in EVCC_TABLE


# -- failure responses ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(known_responses()))
def test_failed_responses_are_schema_valid(name: str) -> None:
    codec = XmlCodec()
    res = failed_response(name, ResponseCode.FAILED_SEQUENCE_ERROR, b"\x01" * 8, 5.0)
    doc = codec.encode(res)  # validates against the XSD
    if name != "SupportedAppProtocolRes":
        assert b"FAILED_SequenceError" in doc
    else:
        assert b"Failed_NoNegotiation" in doc


def test_failed_response_unknown_name() -> None:
    assert failed_response("NoSuchRes", ResponseCode.FAILED, b"\x00" * 8, 0.0) is None


# -- handlers -------------------------------------------------------------------------------------
def test_session_setup_new_and_resume() -> None:
    ctx = _ctx(random_bytes=lambda n: b"\xab" * n)
    res, outcome = handle_session_setup(SessionSetupReq(header=_header(), evccid="EV1"), ctx)
    assert outcome == "new" and res.response_code is ResponseCode.OK_NEW_SESSION_ESTABLISHED
    assert ctx.session_id == b"\xab" * 8 and res.header.session_id == ctx.session_id
    sid = b"\x11" * 8
    ctx.config.store.put(
        PausedSession(sid, "EV1", ServiceId.MCS_BPT, 2, ControlMode.DYNAMIC, paused_at=1.0)
    )
    ctx2 = _ctx()
    ctx2.config.store = ctx.config.store
    res, outcome = handle_session_setup(SessionSetupReq(header=_header(sid), evccid="EV1"), ctx2)
    assert outcome == "resumed" and res.response_code is ResponseCode.OK_OLD_SESSION_JOINED
    assert ctx2.service is ServiceId.MCS_BPT and ctx2.control_mode is ControlMode.DYNAMIC
    assert ctx2.authorized


def test_resume_by_another_vehicle_is_a_new_session() -> None:
    ctx = _ctx(random_bytes=lambda n: b"\x22" * n)
    sid = b"\x11" * 8
    ctx.config.store.put(PausedSession(sid, "EV1", ServiceId.MCS, 1, ControlMode.SCHEDULED, 0.0))
    _, outcome = handle_session_setup(SessionSetupReq(header=_header(sid), evccid="EV2"), ctx)
    assert outcome == "new" and ctx.session_id == b"\x22" * 8
    assert sid in ctx.config.store.paused  # still there for its owner


def test_service_detail_rejects_unoffered_service() -> None:
    ctx = _ctx()
    ctx.parameter_sets = {ServiceId.MCS: parameter_sets(ServiceId.MCS, (ControlMode.DYNAMIC,))}
    with pytest.raises(errors.ServiceIdInvalid) as exc:
        handle_service_detail(ServiceDetailReq(header=_header(), service_id=9), ctx)
    assert exc.value.response_code == "FAILED_ServiceIDInvalid"
    res, _ = handle_service_detail(ServiceDetailReq(header=_header(), service_id=8), ctx)
    params = {p.name: p.int_value for p in res.service_parameter_list.parameter_set[0].parameter}
    assert params == {"Connector": 1, "ControlMode": 2, "MobilityNeedsMode": 1, "Pricing": 0}


ALL_SERVICES = [ServiceId.DC, ServiceId.DC_BPT, ServiceId.MCS, ServiceId.MCS_BPT]


@pytest.mark.parametrize("service", ALL_SERVICES)
def test_parameter_sets(service: ServiceId) -> None:
    sets = parameter_sets(service, (ControlMode.SCHEDULED, ControlMode.DYNAMIC))
    assert [s.set_id for s in sets] == [1, 2]
    assert [s.control for s in sets] == [ControlMode.SCHEDULED, ControlMode.DYNAMIC]
    names = [n for n, _ in sets[0].parameters]
    bpt = service in (ServiceId.DC_BPT, ServiceId.MCS_BPT)
    assert names[:4] == ["Connector", "ControlMode", "MobilityNeedsMode", "Pricing"]
    assert (names[4:] == ["BPTChannel", "GeneratorMode"]) == bpt
    assert sets[0].get("Connector") == (1 if service in (ServiceId.MCS, ServiceId.MCS_BPT) else 2)


# -- conversions ----------------------------------------------------------------------------------
@given(st.floats(min_value=-3.9e6, max_value=3.9e6, allow_nan=False))
def test_rn_down_never_exceeds_and_stays_close(x: float) -> None:
    r = rn_down(x)
    assert r.in_range()
    d = r.to_decimal()
    exact = Decimal(repr(x))
    assert abs(d) <= abs(exact)
    # int16 keeps at least 4 significant digits (3277..32767): relative error < 1/3276
    assert abs(exact) - abs(d) <= max(abs(exact) / 3276, Decimal("0.001"))
    assert (d == 0) or ((d > 0) == (x > 0))


def test_rn_and_magnitudes() -> None:
    assert float(rn(1250.0)) == 1250.0 and rn(3_750_000.0).in_range()
    assert magnitude_in(rn(-5.0), "x", lenient=True) == 5.0
    with pytest.raises(errors.WrongChargeParameter):
        magnitude_in(rn(-5.0), "x", lenient=False)


# -- SAP ------------------------------------------------------------------------------------------
def test_sap_without_common_protocol(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.namespaces = ("urn:iso:15118:2:2013:MsgDef",)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    res = next(e for e in r.secc_events if isinstance(e, MessageSent))
    assert b"Failed_NoNegotiation" in res.document
    assert r.ended("secc") == SessionEnded(
        t=0.0, result="failed", reason="SupportedAppProtocolReq: no common protocol"
    )
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]


# -- certificate installation ---------------------------------------------------------------------
def test_certificate_installation_then_pnc(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.has_contract = False
    evcc_cfg.duration_s = 2.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]
    sent = [e.message for e in r.evcc_events if isinstance(e, MessageSent)]
    assert sent[2:5] == ["AuthorizationSetupReq", "CertificateInstallationReq", "AuthorizationReq"]
    res = next(
        e
        for e in r.secc_events
        if isinstance(e, MessageSent) and e.message == "CertificateInstallationRes"
    )
    assert b"SECP521_EncryptedPrivateKey" in res.document and b"SignatureValue" in res.document
    assert evcc.session.ctx.has_contract


def test_certificate_installation_not_offered(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    secc_cfg.certificate_installation = False
    evcc_cfg.has_contract = False
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]
    assert "no contract certificate" in (evcc.close_reason or "")


def test_certificate_installation_bad_signature(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.has_contract = False
    evcc_cfg.faults = EvccFaults(bad_signature=True)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    last = [e for e in r.secc_events if isinstance(e, MessageSent)][-1]
    assert last.message == "CertificateInstallationRes"
    assert b"FAILED_SignatureError" in last.document


def test_key_transport_round_trip_and_tamper(pki: Manifest) -> None:
    from mcscomm.session.signing import OEM_PROVISIONING

    cert = pki.certificate(OEM_PROVISIONING)
    secret = bytes(range(66))
    curve, dh, sealed = encrypt_for(cert, secret)
    assert len(dh) == 133 and len(sealed) == 94
    key = pki.private_key(OEM_PROVISIONING)
    assert decrypt_with(key, curve, dh, sealed) == secret
    with pytest.raises(SignatureError):
        decrypt_with(key, curve, dh, sealed[:-1] + bytes([sealed[-1] ^ 1]))


# -- exceed-limit fault is visible to an oracle ---------------------------------------------------
def test_exceed_limit_fault_reports_beyond_the_limit() -> None:
    from mcscomm.session.config import SeccFaults

    secc_cfg, evcc_cfg = default_configs(scenario=None)
    secc_cfg.faults = SeccFaults(exceed_limit=1.2)
    evcc_cfg.duration_s = 3.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    charger = secc_cfg.charger
    assert charger is not None
    limit = charger.limits.max_charge_current_a
    assert any(abs(s.current_a) > limit for s in r.of_type("secc", PowerSample))  # type: ignore[attr-defined]
    _ = AuthorizationType
