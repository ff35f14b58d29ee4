"""Every error path: the SECC answers the right FAILED code (when the request type is known),
then the session ends cleanly; nothing escapes the connection objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mcscomm.messages.enums import AuthorizationType, ServiceId
from mcscomm.security.pki import Manifest, init_pki
from mcscomm.session.config import EvccFaults, SeccFaults
from mcscomm.session.events import (
    MessageReceived,
    MessageSent,
    ProtocolError,
    SafeStateReached,
    SessionEnded,
)
from mcscomm.session.loopback import PairResult, default_configs, make_pair, run_pair
from mcscomm.v2gtp import FrameDecoder, build_frame


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return init_pki(Path(tmp_path_factory.mktemp("pki")))


def _run(
    pki: Manifest,
    evcc_faults: EvccFaults | None = None,
    secc_faults: SeccFaults | None = None,
    tamper: Callable[[bytes], bytes] | None = None,
    **evcc_kw: object,
) -> PairResult:
    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.duration_s = 2.0
    if evcc_faults is not None:
        evcc_cfg.faults = evcc_faults
    if secc_faults is not None:
        secc_cfg.faults = secc_faults
    for k, v in evcc_kw.items():
        setattr(evcc_cfg, k, v)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc, tamper=tamper)
    assert evcc.closed and secc.closed
    return r


def _last_response(r: PairResult) -> MessageSent:
    sent = [e for e in r.secc_events if isinstance(e, MessageSent)]
    return sent[-1]


def _code(doc: bytes) -> str:
    m = re.search(rb"<ct:ResponseCode>([^<]+)</ct:ResponseCode>", doc)
    assert m is not None, doc
    return m.group(1).decode()


def _assert_failed_with(r: PairResult, response: str, code: str) -> None:
    last = _last_response(r)
    assert last.message == response
    assert _code(last.document) == code
    ended = r.ended("secc")
    assert ended is not None and ended.result == "failed"
    assert r.ended("evcc") is not None and r.ended("evcc").result == "failed"  # type: ignore[union-attr]
    # nothing was served after the FAILED answer
    received_after = [e for e in r.secc_events if isinstance(e, MessageReceived) and e.t > last.t]
    assert received_after == []
    errors = [e for e in r.secc_events if isinstance(e, ProtocolError)]
    assert errors and errors[0].response_code == code


def test_sequence_error(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(skip=("ServiceDiscoveryReq",)))
    _assert_failed_with(r, "ServiceDetailRes", "FAILED_SequenceError")


def test_sequence_error_charge_loop_before_power_delivery(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(skip=("DC_PreChargeReq", "PowerDeliveryReq")))
    _assert_failed_with(r, "DC_ChargeLoopRes", "FAILED_SequenceError")


def test_unknown_session(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(wrong_session_id_in="ServiceDiscoveryReq"))
    _assert_failed_with(r, "ServiceDiscoveryRes", "FAILED_UnknownSession")


def test_bad_signature(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(bad_signature=True))
    _assert_failed_with(r, "AuthorizationRes", "FAILED_SignatureError")


def test_bad_signature_accepted_by_broken_secc(pki: Manifest) -> None:
    """The fault hook makes a defect visible: the broken SECC lets a bad signature through."""
    r = _run(pki, EvccFaults(bad_signature=True), SeccFaults(accept_bad_signature=True))
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]


def _auth_codes(r: PairResult) -> list[str]:
    return [
        _code(e.document)
        for e in r.secc_events
        if isinstance(e, MessageSent) and e.message == "AuthorizationRes"
    ]


def test_wrong_challenge_then_eim(pki: Manifest) -> None:
    """WARNING_ChallengeInvalid does not end the session: the truck falls back to EIM."""
    r = _run(pki, EvccFaults(wrong_challenge=True))
    assert _auth_codes(r) == ["WARNING_ChallengeInvalid", "OK"]
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    assert r.ended("evcc").result == "success"  # type: ignore[union-attr]


def test_wrong_challenge_without_fallback_stops_cleanly(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(wrong_challenge=True), auth_fallback_to_eim=False)
    assert _auth_codes(r) == ["WARNING_ChallengeInvalid"]
    last = _last_response(r)
    assert last.message == "SessionStopRes" and _code(last.document) == "OK"
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]
    assert "WARNING_ChallengeInvalid" in r.ended("evcc").reason  # type: ignore[union-attr]
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]
    assert not [e for e in r.secc_events if isinstance(e, ProtocolError)]


def test_authorization_refused(pki: Manifest) -> None:
    from mcscomm.session.config import ImmediateAccept

    secc_cfg, evcc_cfg = default_configs(pki=pki)
    evcc_cfg.auth = AuthorizationType.EIM
    secc_cfg.authorizer = ImmediateAccept(accept=False)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    # a warning, then the truck (EIM has nothing to fall back to) stops the session cleanly
    assert _auth_codes(r) == ["WARNING_EIMAuthorizationFailure"]
    assert [e.message for e in r.evcc_events if isinstance(e, MessageSent)][-1] == "SessionStopReq"
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]


def test_wrong_charge_parameter(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(wrong_charge_parameters=True))
    _assert_failed_with(r, "DC_ChargeParameterDiscoveryRes", "FAILED_WrongChargeParameter")


def test_negative_discharge_limits_refused_in_strict(pki: Manifest) -> None:
    from mcscomm.session.config import Profile

    # the EVCC is lenient and sends negative discharge limits; the strict SECC refuses them
    r = _run(pki, profile=Profile.LENIENT, negative_discharge=True)
    _assert_failed_with(r, "DC_ChargeParameterDiscoveryRes", "FAILED_WrongChargeParameter")


def test_service_id_invalid(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(select_service=int(ServiceId.AC_BPT)))
    _assert_failed_with(r, "ServiceDetailRes", "FAILED_ServiceIDInvalid")


def test_service_selection_invalid_parameter_set(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(select_parameter_set=42))
    _assert_failed_with(r, "ServiceSelectionRes", "FAILED_ServiceSelectionInvalid")


def test_bpt_service_refused_by_unidirectional_charger(pki: Manifest) -> None:
    secc_cfg, evcc_cfg = default_configs(pki=pki, charger="dc_400kw", truck="ccs_3pack")
    evcc_cfg.service = ServiceId.DC_BPT
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    # the SECC never offers DC_BPT; the EVCC gives up cleanly after ServiceDiscovery
    assert r.ended("evcc").result == "failed"  # type: ignore[union-attr]
    assert "DC_BPT not offered" in (evcc.close_reason or "")


def _rewrite(name: bytes, fn: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Rewrite the payload of the first EVCC frame whose document starts with ``name``."""
    done: list[bool] = []

    def tamper(data: bytes) -> bytes:
        out = b""
        for frame in FrameDecoder().feed(data):
            payload = frame.payload
            ours = payload.startswith((b"<ns:" + name, b"<dc:" + name))
            if ours and not done:
                payload = fn(payload)
                done.append(True)
            out += build_frame(frame.payload_type, payload)
        return out

    return tamper


def test_schema_invalid_request_gets_failed_answer(pki: Manifest) -> None:
    # an EVCCID longer than identifierType allows (255): schema-invalid, but the type is known
    bad = _rewrite(
        b"SessionSetupReq",
        lambda p: re.sub(rb"<ns:EVCCID>[^<]*<", b"<ns:EVCCID>" + b"X" * 300 + b"<", p),
    )
    r = _run(pki, tamper=bad)
    last = _last_response(r)
    assert last.message == "SessionSetupRes" and _code(last.document) == "FAILED"
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]
    err = next(e for e in r.secc_events if isinstance(e, ProtocolError))
    assert err.kind == "malformed_message" and "SchemaViolation" in err.detail


def test_malformed_document_closes_without_answer(pki: Manifest) -> None:
    bad = _rewrite(b"ServiceDiscoveryReq", lambda p: p[: len(p) // 2])  # cut in half
    r = _run(pki, tamper=bad)
    assert _last_response(r).message == "AuthorizationRes"  # nothing answered after that
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]
    err = next(e for e in r.secc_events if isinstance(e, ProtocolError))
    assert err.kind == "malformed_message" and "MalformedDocument" in err.detail


def test_broken_v2gtp_header_closes_with_reason(pki: Manifest) -> None:
    calls: list[int] = []

    def tamper(data: bytes) -> bytes:
        calls.append(1)
        if len(calls) == 3:  # the AuthorizationSetupReq frame: break the inverse version byte
            return data[:1] + b"\x00" + data[2:]
        return data

    r = _run(pki, tamper=tamper)
    ended = r.ended("secc")
    assert ended is not None and ended.result == "failed"
    err = next(e for e in r.secc_events if isinstance(e, ProtocolError))
    assert err.kind == "v2gtp" and "inverse" in err.detail.lower()
    assert ended.reason == err.detail


def test_hostile_document_closes(pki: Manifest) -> None:
    doc = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    bad = _rewrite(b"ServiceDiscoveryReq", lambda p: doc)
    r = _run(pki, tamper=bad)
    err = next(e for e in r.secc_events if isinstance(e, ProtocolError))
    assert "HostileDocument" in err.detail
    assert r.ended("secc").result == "failed"  # type: ignore[union-attr]


def test_out_of_order_accepted_by_broken_secc(pki: Manifest) -> None:
    # skipping the isolation test is a sequence error; the broken SECC serves it anyway
    faults = EvccFaults(skip=("DC_CableCheckReq",))
    r = _run(pki, faults)
    _assert_failed_with(r, "DC_PreChargeRes", "FAILED_SequenceError")
    r = _run(pki, faults, SeccFaults(accept_out_of_order=True))
    codes = [
        _code(e.document)
        for e in r.secc_events
        if isinstance(e, MessageSent) and e.message == "DC_PreChargeRes"
    ]
    assert codes and codes[0] == "OK"  # the defect: a sequence error served as if fine


def test_failed_in_charge_loop_reaches_safe_state(pki: Manifest) -> None:
    # a control-mode mismatch in the loop (the broken EVCC changes its mind mid-session)
    bad = _rewrite(
        b"DC_ChargeLoopReq",
        lambda p: p.replace(b"BPT_Dynamic_DC_CLReqControlMode", b"Dynamic_DC_CLReqControlMode"),
    )
    r = _run(pki, tamper=bad)
    last = _last_response(r)
    assert last.message == "DC_ChargeLoopRes"
    assert _code(last.document).startswith("FAILED")
    assert r.of_type("secc", SafeStateReached)


def test_nothing_escapes_on_random_bytes(pki: Manifest) -> None:
    import random

    rng = random.Random(7)
    for _ in range(30):
        secc_cfg, evcc_cfg = default_configs(pki=pki)
        _, secc = make_pair(secc_cfg, evcc_cfg)
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        secc.receive_data(b"\x01\xfe\x80\x02" + len(junk).to_bytes(4, "big") + junk, 0.0)
        secc.receive_data(junk, 0.0)
        while secc.next_event() is not None:
            pass
        assert secc.closed
        assert isinstance(secc.close_reason, str)


def test_session_ended_is_last_event(pki: Manifest) -> None:
    r = _run(pki, EvccFaults(skip=("ServiceDiscoveryReq",)))
    for events in (r.secc_events, r.evcc_events):
        ends = [i for i, e in enumerate(events) if isinstance(e, SessionEnded)]
        assert ends == [len(events) - 1]


def test_ev_power_profile_violation(pki: Manifest) -> None:
    from mcscomm.messages.enums import ControlMode

    r = _run(pki, EvccFaults(exceed_power_profile=True), control_mode=ControlMode.SCHEDULED)
    _assert_failed_with(r, "PowerDeliveryRes", "FAILED_EVPowerProfileViolation")


def test_internal_defect_is_reported_not_raised(
    pki: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug below the connection (here: the power layer blowing up) becomes ProtocolError +
    a closed session; only the deliberately planted InjectedCrash may propagate."""
    from mcscomm.session import power_adapter
    from mcscomm.session.secc import InjectedCrash

    def boom(self: object, now: float, request: object) -> object:
        raise ZeroDivisionError("model bug")

    monkeypatch.setattr(power_adapter.SeccPower, "step", boom)
    r = _run(pki)
    err = next(e for e in r.secc_events if isinstance(e, ProtocolError))
    assert err.kind == "internal_error" and "ZeroDivisionError" in err.detail
    last = _last_response(r)
    assert last.message == "DC_ChargeLoopRes" and _code(last.document) == "FAILED"
    monkeypatch.undo()
    with pytest.raises(InjectedCrash):
        _run(pki, secc_faults=SeccFaults(crash_on="ServiceDiscoveryReq"))
