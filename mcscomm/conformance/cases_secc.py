"""Cases with the SECC under test (the test system plays the EVCC).

Ids follow ISO 15118-21/-23: ``TC_SECC_<CMN|DC>_<VTB|ITB>_<Group>_<nnn>``. Requirement ids
(V2G20-nnn) and facts sections refer to /work/shared/reference/iso15118-20-facts.md.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

from mcscomm import sap, sdp
from mcscomm.codec import XmlCodec
from mcscomm.conformance.catalogue import case
from mcscomm.conformance.channel import ChannelClosed
from mcscomm.conformance.context import CaseContext
from mcscomm.conformance.model import Inconclusive
from mcscomm.conformance.tester_evcc import (
    MCS_MAX_A,
    MCS_MAX_V,
    MCS_MAX_W,
    Plan,
    TesterEvcc,
    check_bpt_signs,
    plan_for,
)
from mcscomm.conformance.tlsvariants import client_context
from mcscomm.conformance.wire import (
    SECC_COMMUNICATION_SETUP,
    SECC_LOOP_SEQUENCE_TIMEOUT,
    SECC_SEQUENCE_TIMEOUT,
    ZERO_SESSION,
    check,
    header,
    performance_time,
    rn,
    val,
    wire_codec,
    xml_only,
)
from mcscomm.messages.app_protocol import AppProtocol, SupportedAppProtocolReq
from mcscomm.messages.common_messages import (
    AuthorizationReq,
    AuthorizationSetupReq,
    PowerDeliveryReq,
    Scheduled_EVPPTControlMode,
    SelectedService,
    ServiceDetailReq,
    ServiceSelectionReq,
    SessionSetupReq,
    VehicleCheckInReq,
    VehicleCheckOutReq,
)
from mcscomm.messages.common_types import DisplayParameters
from mcscomm.messages.dc import (
    BPT_DC_CPDResEnergyTransferMode,
    DC_PreChargeReq,
)
from mcscomm.messages.enums import (
    AuthorizationType,
    ChannelSelection,
    ChargeProgress,
    ChargingSession,
    ControlMode,
    EvCheckInStatus,
    EvCheckOutStatus,
    EvseCheckOutStatus,
    EvseNotification,
    ParkingMethod,
    Processing,
    ResponseCode,
    ServiceId,
)
from mcscomm.v2gtp import PayloadType, build_frame

SEQ = ("FAILED_SequenceError",)
NS_DC = sap.NS_ISO20_DC


def _proto(ns: str, major: int, minor: int, schema_id: int, priority: int) -> AppProtocol:
    return AppProtocol(
        protocol_namespace=ns,
        version_number_major=major,
        version_number_minor=minor,
        schema_id=schema_id,
        priority=priority,
    )


def _padded(doc: bytes, size: int, xml: bool) -> bytes:
    """``doc`` grown to ``size`` bytes: an XML comment, or (EXI) bytes after the stream."""
    if xml:
        return doc + b"<!--" + b"x" * max(size - len(doc) - 7, 1) + b"-->"
    return doc + bytes(max(size - len(doc), 1))


def _evcc_at(ctx: CaseContext, stage: str, plan: Plan | None = None) -> TesterEvcc:
    t = ctx.evcc()
    t.run_to(plan or plan_for(ctx.pics), stage)
    return t


# -- SDP (facts §2) --------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_SDP_001",
    purpose="The SECC answers an SDP request for TLS/TCP with TLS, TCP and a dynamic port.",
    requirement="V2G20-1238; facts §2.2",
    pics=("sdp", "tls"),
    pre="SECC idle, SDP server reachable",
    stimulus="SDP request 01 FE 90 00 00 00 00 02 00 00 (security TLS, transport TCP)",
    expected="A 28-byte SDP response: security 0x00 (TLS), transport 0x00 (TCP), port 49152-65535",
    fault="secc_sdp_no_tls",
)
def sdp_valid(ctx: CaseContext) -> None:
    request = sdp.encode(sdp.SdpRequest(sdp.Security.TLS, sdp.Transport.TCP))
    ctx.log.add(0.0, "tester->sut", "SDP request TLS/TCP", request.hex())
    answer = ctx.sut.sdp_exchange(request)
    check(answer is not None, "no SDP response")
    ctx.log.add(0.0, "sut->tester", "SDP response", answer.hex())
    check(len(answer) == 28, f"SDP response of {len(answer)} bytes, expected 28")
    msg = sdp.decode(answer)
    check(isinstance(msg, sdp.SdpResponse), f"got {type(msg).__name__}")
    assert isinstance(msg, sdp.SdpResponse)
    check(msg.security is sdp.Security.TLS, f"security {msg.security.name} for a TLS request")
    check(msg.transport is sdp.Transport.TCP, f"transport {msg.transport.name}")
    check(49152 <= msg.port <= 65535, f"port {msg.port} outside 49152-65535")


@case(
    "TC_SECC_CMN_ITB_SDP_002",
    purpose="The SECC ignores an SDP request with a broken V2GTP header.",
    requirement="V2G20-090; facts §1.3",
    pics=("sdp",),
    pre="SECC idle",
    stimulus="SDP request whose inverse protocol version is 0xFF",
    expected="No SDP response",
    fault="secc_sdp_answer_malformed",
)
def sdp_malformed(ctx: CaseContext) -> None:
    bad = bytes([0x01, 0xFF]) + sdp.encode(sdp.SdpRequest())[2:]
    ctx.log.add(0.0, "tester->sut", "SDP request with inverse version 0xFF", bad.hex())
    answer = ctx.sut.sdp_exchange(bad)
    check(answer is None, "the SECC answered a malformed SDP request")


# -- V2GTP header handling (facts §1.3) ------------------------------------------------------
def _v2gtp_case(ctx: CaseContext, mutate: Any, what: str) -> None:
    t = _evcc_at(ctx, "sap")
    good = t.frame(SessionSetupReq(header=header(ZERO_SESSION), evccid=t.evccid))
    t.send_raw(mutate(good), what, fallback=good)
    t.expect_no_answer(performance_time("SessionSetupReq") + t.tol, what=f" to {what}")


@case(
    "TC_SECC_CMN_ITB_V2GTP_001",
    purpose="A frame with an unsupported protocol version is not processed.",
    requirement="V2G20-090, V2G20-096; facts §1.3",
    pre="SAP done",
    stimulus="SessionSetupReq in a frame with protocol version 0x02 / inverse 0xFD",
    expected="No response (the SECC ignores the frame or closes the connection)",
    fault="secc_ignore_v2gtp_header",
)
def v2gtp_version(ctx: CaseContext) -> None:
    _v2gtp_case(ctx, lambda f: bytes([0x02, 0xFD]) + f[2:], "protocol version 0x02")


@case(
    "TC_SECC_CMN_ITB_V2GTP_002",
    purpose="A frame whose inverse protocol version does not match is not processed.",
    requirement="V2G20-090; facts §1.3",
    pre="SAP done",
    stimulus="SessionSetupReq in a frame with version 0x01 and inverse 0x00",
    expected="No response",
    fault="secc_ignore_v2gtp_header",
)
def v2gtp_inverse(ctx: CaseContext) -> None:
    _v2gtp_case(ctx, lambda f: bytes([0x01, 0x00]) + f[2:], "inverse version 0x00")


@case(
    "TC_SECC_CMN_ITB_V2GTP_003",
    purpose="A frame with an unknown payload type is not processed.",
    requirement="V2G20-092; facts §1.3",
    pre="SAP done",
    stimulus="SessionSetupReq in a frame with payload type 0x7777",
    expected="No response",
    fault="secc_ignore_v2gtp_header",
)
def v2gtp_payload_type(ctx: CaseContext) -> None:
    _v2gtp_case(ctx, lambda f: f[:2] + b"\x77\x77" + f[4:], "payload type 0x7777")


@case(
    "TC_SECC_CMN_ITB_V2GTP_004",
    purpose="A payload longer than the SECC's receive limit is refused without processing.",
    requirement="V2G20-094; facts §1.3 (libiso15118/EvseV2G close on oversize)",
    pre="SAP done; PIXIT max_payload is the SUT's limit",
    stimulus="A valid SessionSetupReq padded with an XML comment beyond max_payload",
    expected="No response; the connection is closed",
    fault="secc_no_size_limit",
)
def v2gtp_oversize(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "sap")
    doc = t.encode(SessionSetupReq(header=header(ZERO_SESSION), evccid=t.evccid))
    big = _padded(doc, ctx.pics.pixit.max_payload + 1, isinstance(t.codec, XmlCodec))
    try:
        t.send_raw(build_frame(int(PayloadType.COMMON), big), "oversize SessionSetupReq")
    except ChannelClosed:
        return  # refused while we were still sending: the expected outcome
    t.expect_no_answer(performance_time("SessionSetupReq") + t.tol, what=" to an oversize frame")


# -- SupportedAppProtocol (facts §3) ---------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_SAP_001",
    purpose="The SECC selects the offered ISO 15118-20 DC protocol.",
    requirement="V2G20-1484; facts §3",
    pre="TCP/TLS connection established",
    stimulus="supportedAppProtocolReq offering urn:iso:std:iso:15118:-20:DC 1.0",
    expected="OK_SuccessfulNegotiation with the offered SchemaID within the performance time",
    fault="secc_late",
)
def sap_valid(ctx: CaseContext) -> None:
    t = ctx.evcc()
    res = t.sap()
    check(res.response_code.value == "OK_SuccessfulNegotiation", f"{res.response_code.value}")


@case(
    "TC_SECC_CMN_VTB_SAP_002",
    purpose="The SECC honours the EVCC's priorities among supported protocols.",
    requirement="V2G20-167 (priority 1 highest); facts §3",
    pre="TCP/TLS connection established",
    stimulus="-20 DC offered twice: SchemaID 10 priority 2, SchemaID 11 priority 1",
    expected="SchemaID 11 selected",
    fault="secc_sap_ignore_priority",
)
def sap_priority(ctx: CaseContext) -> None:
    t = ctx.evcc()
    offer = SupportedAppProtocolReq(
        app_protocol=[
            _proto(NS_DC, 1, 0, 10, 2),
            _proto(NS_DC, 1, 0, 11, 1),
        ]
    )
    res = t.sap(offer)
    check(res.schema_id == 11, f"SchemaID {res.schema_id} selected, priority 1 was 11")


@case(
    "TC_SECC_CMN_VTB_SAP_003",
    purpose="A minor version difference is a successful negotiation with minor deviation.",
    requirement="facts §3 (SAP response codes)",
    pre="TCP/TLS connection established",
    stimulus="-20 DC offered as version 1.9",
    expected="OK_SuccessfulNegotiationWithMinorDeviation",
    fault="secc_sap_ignore_minor",
)
def sap_minor(ctx: CaseContext) -> None:
    t = ctx.evcc()
    res = t.sap(SupportedAppProtocolReq(app_protocol=[_proto(NS_DC, 1, 9, 1, 1)]))
    code = res.response_code.value
    check(code == "OK_SuccessfulNegotiationWithMinorDeviation", f"answered {code}")


@case(
    "TC_SECC_CMN_ITB_SAP_004",
    purpose="Nothing in common: Failed_NoNegotiation and no session.",
    requirement="facts §3",
    pre="TCP/TLS connection established; the SUT supports -20 DC only",
    stimulus="supportedAppProtocolReq offering only urn:iso:std:iso:15118:-20:AC",
    expected="Failed_NoNegotiation without SchemaID; no SessionSetup served",
    fault="secc_sap_any",
)
def sap_none(ctx: CaseContext) -> None:
    t = ctx.evcc()
    offer = SupportedAppProtocolReq(
        app_protocol=[_proto("urn:iso:std:iso:15118:-20:AC", 1, 0, 1, 1)]
    )
    t.offer = offer
    res = t.request(offer)
    check(res.response_code.value == "Failed_NoNegotiation", f"answered {res.response_code.value}")
    check(res.schema_id is None, "Failed_NoNegotiation carries a SchemaID")


@case(
    "TC_SECC_CMN_ITB_SAP_005",
    purpose="SessionSetupReq before the SAP handshake is not served.",
    requirement="V2G20-1484; facts §3",
    pre="TCP/TLS connection established",
    stimulus="SessionSetupReq as the first message",
    expected="FAILED_SequenceError (or the connection is closed); no OK",
    fault="secc_out_of_order",
)
def sap_skipped(ctx: CaseContext) -> None:
    t = ctx.evcc()
    t.expect_failure(
        SessionSetupReq(header=header(ZERO_SESSION), evccid=t.evccid),
        (*SEQ, "FAILED"),
        may_close=True,
    )


# -- SessionSetup -----------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_SessionSetup_001",
    purpose="A new session gets a fresh non-zero 8-byte SessionID.",
    requirement="facts §4.1",
    pre="SAP done",
    stimulus="SessionSetupReq with SessionID 00..00",
    expected="OK_NewSessionEstablished, SessionID of 8 bytes, not zero, EVSEID present",
    fault="secc_late",
)
def session_setup_valid(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "sap")
    res = t.session_setup()
    check(res.response_code.value == "OK_NewSessionEstablished", res.response_code.value)
    check(bool(res.evseid), "empty EVSEID")


@case(
    "TC_SECC_CMN_VTB_SessionSetup_002",
    purpose="An unknown non-zero SessionID starts a new session with a new id.",
    requirement="facts §4.1 (libiso15118 session_setup.cpp)",
    pre="SAP done",
    stimulus="SessionSetupReq with SessionID 0102030405060708 (never issued)",
    expected="OK_NewSessionEstablished with a SessionID other than the one sent",
    fault="secc_adopt_session_id",
)
def session_setup_unknown(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "sap")
    sent = bytes.fromhex("0102030405060708")
    res = t.session_setup(sent)
    check(res.response_code.value == "OK_NewSessionEstablished", res.response_code.value)
    check(t.session_id != sent, "the SECC adopted the SessionID the EVCC invented")


@case(
    "TC_SECC_CMN_ITB_SessionSetup_003",
    purpose="A second SessionSetupReq in a running session is a sequence error.",
    requirement="facts §4.3 (sequence)",
    pre="Session established",
    stimulus="SessionSetupReq again",
    expected="FAILED_SequenceError, then the session ends",
    fault="secc_out_of_order",
)
def session_setup_twice(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "session_setup")
    t.expect_failure(SessionSetupReq(header=header(t.session_id), evccid=t.evccid), SEQ)
    t.after_failure()


@case(
    "TC_SECC_CMN_ITB_UnknownSession_001",
    purpose="A request with another SessionID is refused.",
    requirement="facts §4.1; design §Errors (FAILED_UnknownSession)",
    pre="Session established",
    stimulus="AuthorizationSetupReq with SessionID FFFFFFFFFFFFFFFF",
    expected="FAILED_UnknownSession, then the session ends",
    fault="secc_ignore_session_id",
)
def unknown_session_setup(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "session_setup")
    wrong = bytes(8 * [0xFF])
    t.expect_failure(AuthorizationSetupReq(header=header(wrong)), ("FAILED_UnknownSession",))
    t.after_failure()


@case(
    "TC_SECC_DC_ITB_UnknownSession_002",
    purpose="A charge-loop request with another SessionID is refused.",
    requirement="facts §4.1 (FAILED_UnknownSession)",
    pre="Charge loop running",
    stimulus="DC_ChargeLoopReq with SessionID FFFFFFFFFFFFFFFF",
    expected="FAILED_UnknownSession, then the session ends",
    fault="secc_ignore_session_id",
)
def unknown_session_loop(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start")
    req = t.charge_loop_req()
    req = dataclasses.replace(req, header=header(bytes(8 * [0xFF])))
    t.expect_failure(req, ("FAILED_UnknownSession",))


# -- Authorization ----------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_AuthorizationSetup_001",
    purpose="AuthorizationSetupRes offers the claimed services; PnC with a 16-byte challenge.",
    requirement="facts §4.3 row 2",
    pre="Session established",
    stimulus="AuthorizationSetupReq",
    expected="OK; AuthorizationServices = PICS auth; PnC mode with GenChallenge of 16 bytes",
    fault="secc_missing_auth",
)
def authorization_setup(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "authorization_setup")
    offered = {a.value for a in t.auth_services}
    check(offered == set(ctx.pics.auth), f"offers {sorted(offered)}, PICS {list(ctx.pics.auth)}")
    if "PnC" in offered:
        check(t.gen_challenge is not None and len(t.gen_challenge) == 16, "no 16-byte GenChallenge")


@case(
    "TC_SECC_CMN_VTB_Authorization_001",
    purpose="External identification means (EIM) authorization completes.",
    requirement="facts §4.3 row 3",
    pics=("auth:EIM",),
    pre="AuthorizationSetup done",
    stimulus="AuthorizationReq EIM (repeated while Ongoing)",
    expected="OK, EVSEProcessing=Finished within 60 s",
    fault="secc_hang_authorization",
)
def authorization_eim(ctx: CaseContext) -> None:
    _evcc_at(ctx, "authorization", plan_for(ctx.pics, auth="EIM"))


@case(
    "TC_SECC_CMN_VTB_Authorization_002",
    purpose="Plug and Charge authorization with a valid contract signature completes.",
    requirement="facts §6.2 Table 17; V2G20-2673/2674",
    pics=("auth:PnC", "tls"),
    pre="AuthorizationSetup done; contract certificate of the PIXIT PKI",
    stimulus="AuthorizationReq PnC, PnC_AReqAuthorizationMode signed with the contract key",
    expected="OK, EVSEProcessing=Finished",
    fault="secc_hang_authorization",
)
def authorization_pnc(ctx: CaseContext) -> None:
    _evcc_at(ctx, "authorization", plan_for(ctx.pics, auth="PnC"))


@case(
    "TC_SECC_CMN_ITB_Authorization_003",
    purpose="A PnC AuthorizationReq with a broken signature is refused.",
    requirement="facts §6.2; design §Errors (FAILED_SignatureError)",
    pics=("auth:PnC", "tls"),
    pre="AuthorizationSetup done",
    stimulus="AuthorizationReq PnC whose SignatureValue has one bit flipped",
    expected="FAILED_SignatureError, then the session ends",
    fault="secc_accept_bad_signature",
)
def authorization_bad_signature(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "authorization_setup", plan_for(ctx.pics, auth="PnC"))
    req = t.authorization_req(AuthorizationType.PNC)
    sig = req.header.signature
    assert sig is not None
    raw = bytearray(sig.signature_value)
    raw[len(raw) // 2] ^= 0x01
    req.header.signature = dataclasses.replace(sig, signature_value=bytes(raw))
    t.expect_failure(req, ("FAILED_SignatureError",))
    t.after_failure()


@case(
    "TC_SECC_CMN_ITB_Authorization_004",
    purpose="A PnC AuthorizationReq answering another GenChallenge is refused.",
    requirement="facts §4.3 row 3 (GenChallenge); WARNING_ChallengeInvalid",
    pics=("auth:PnC", "tls"),
    pre="AuthorizationSetup done",
    stimulus="AuthorizationReq PnC over a GenChallenge with every bit inverted, correctly signed",
    expected="WARNING_ChallengeInvalid or FAILED_*; no OK",
    fault="secc_ignore_challenge",
)
def authorization_wrong_challenge(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "authorization_setup", plan_for(ctx.pics, auth="PnC"))
    wrong = bytes(b ^ 0xFF for b in (t.gen_challenge or bytes(16)))
    mode, sig = t.pnc_mode(wrong)
    h = header(t.session_id)
    h.signature = sig
    req = AuthorizationReq(
        header=h, selected_authorization_service=AuthorizationType.PNC, authorization_mode=mode
    )
    t.expect_failure(req, ("WARNING_ChallengeInvalid", "FAILED", "FAILED_SignatureError"))


@case(
    "TC_SECC_CMN_ITB_Authorization_005",
    purpose="AuthorizationReq without AuthorizationSetup is a sequence error.",
    requirement="facts §4.3",
    pre="Session established",
    stimulus="AuthorizationReq EIM right after SessionSetup",
    expected="FAILED_SequenceError, then the session ends",
    fault="secc_out_of_order",
)
def authorization_skipped(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "session_setup")
    t.expect_failure(t.authorization_req(AuthorizationType.EIM), SEQ)
    t.after_failure()


# -- Services ---------------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_ServiceDiscovery_001",
    purpose="ServiceDiscoveryRes lists exactly the claimed energy services.",
    requirement="facts §4.5",
    pre="Authorized",
    stimulus="ServiceDiscoveryReq",
    expected="OK; EnergyTransferServiceList = PICS services; renegotiation flag as claimed",
    fault="secc_missing_service",
)
def service_discovery(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "authorization")
    t.service_discovery()
    names = {ServiceId(s).name for s in t.offered_services}
    check(
        names == set(ctx.pics.services), f"offers {sorted(names)}, PICS {list(ctx.pics.services)}"
    )
    check(
        bool(t.service_renegotiation_supported) == ctx.pics.service_renegotiation,
        f"ServiceRenegotiationSupported={t.service_renegotiation_supported}",
    )


@case(
    "TC_SECC_CMN_ITB_ServiceSelection_004",
    purpose="ServiceSelectionReq without ServiceDiscovery is a sequence error.",
    requirement="facts §4.3 (ServiceDiscovery before ServiceSelection)",
    pre="Authorized",
    stimulus="ServiceSelectionReq for MCS_BPT / parameter set 2 right after Authorization",
    expected="FAILED_SequenceError, then the session ends",
    fault="secc_out_of_order",
)
def service_selection_early(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "authorization")
    req = ServiceSelectionReq(
        header=header(t.session_id),
        selected_energy_transfer_service=SelectedService(service_id=9, parameter_set_id=2),
    )
    t.expect_failure(req, SEQ)
    t.after_failure()


@case(
    "TC_SECC_CMN_VTB_ServiceDetail_001",
    purpose="Each offered service has parameter sets for the claimed control modes.",
    requirement="facts §4.5 (parameter sets)",
    pre="ServiceDiscovery done",
    stimulus="ServiceDetailReq for every offered service",
    expected="OK; one parameter set per claimed control mode with a ControlMode parameter",
    fault="secc_missing_control_mode",
)
def service_detail(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "service_discovery")
    for sid in t.offered_services:
        t.service_detail(sid)
        modes = set()
        for ps in t.parameter_sets[sid]:
            for p in ps.parameter:
                if p.name == "ControlMode" and p.int_value is not None:
                    modes.add(ControlMode(p.int_value).name.title())
        check(
            modes == set(ctx.pics.control_modes),
            f"service {sid}: control modes {sorted(modes)}, PICS {list(ctx.pics.control_modes)}",
        )


@case(
    "TC_SECC_CMN_ITB_ServiceDetail_002",
    purpose="ServiceDetailReq for a service that was not offered is refused.",
    requirement="facts §4.3 row 5; FAILED_ServiceIDInvalid",
    pre="ServiceDiscovery done",
    stimulus="ServiceDetailReq ServiceID=3 (WPT)",
    expected="FAILED_ServiceIDInvalid",
    fault="secc_accept_any_service",
)
def service_detail_invalid(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "service_discovery")
    if 3 in t.offered_services:
        raise Inconclusive("the SUT offers WPT")
    t.expect_failure(
        ServiceDetailReq(header=header(t.session_id), service_id=3), ("FAILED_ServiceIDInvalid",)
    )


@case(
    "TC_SECC_CMN_VTB_ServiceSelection_001",
    purpose="Selecting an offered service and parameter set succeeds.",
    requirement="facts §4.3 row 6",
    pre="ServiceDetail done",
    stimulus="ServiceSelectionReq with an offered ServiceID / ParameterSetID",
    expected="OK",
    fault="secc_late",
)
def service_selection(ctx: CaseContext) -> None:
    _evcc_at(ctx, "service_selection")


@case(
    "TC_SECC_CMN_ITB_ServiceSelection_002",
    purpose="A parameter set that was not offered is refused.",
    requirement="facts §4.3 row 6; FAILED_ServiceSelectionInvalid",
    pre="ServiceDetail done",
    stimulus="ServiceSelectionReq with ParameterSetID 99",
    expected="FAILED_ServiceSelectionInvalid",
    fault="secc_accept_any_service",
)
def service_selection_bad_set(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics)
    t = _evcc_at(ctx, "service_detail", plan)
    req = ServiceSelectionReq(
        header=header(t.session_id),
        selected_energy_transfer_service=SelectedService(
            service_id=int(plan.service), parameter_set_id=99
        ),
    )
    t.expect_failure(req, ("FAILED_ServiceSelectionInvalid",))


@case(
    "TC_SECC_CMN_ITB_ServiceSelection_003",
    purpose="A service that was not offered cannot be selected.",
    requirement="facts §4.3 row 6",
    pre="ServiceDetail done",
    stimulus="ServiceSelectionReq with ServiceID 3 (WPT)",
    expected="FAILED_ServiceSelectionInvalid or FAILED_ServiceIDInvalid",
    fault="secc_accept_any_service",
)
def service_selection_bad_service(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "service_detail")
    req = ServiceSelectionReq(
        header=header(t.session_id),
        selected_energy_transfer_service=SelectedService(service_id=3, parameter_set_id=1),
    )
    t.expect_failure(req, ("FAILED_ServiceSelectionInvalid", "FAILED_ServiceIDInvalid"))


# -- ChargeParameterDiscovery -----------------------------------------------------------------
def _cpd_case(svc: str) -> None:
    @case(
        f"TC_SECC_DC_VTB_ChargeParameterDiscovery_{svc}_001",
        purpose=f"{svc}: the SECC answers with the matching variant and limits inside the "
        "MCS envelope.",
        requirement="facts §4.4, §7 (1250 V / 3000 A / 3.75 MW)",
        pics=(f"service:{svc}",),
        pre=f"{svc} selected",
        stimulus=f"DC_ChargeParameterDiscoveryReq ({'BPT_' if 'BPT' in svc else ''}DC_CPDReq...)",
        expected="OK; BPT variant iff BPT service; 0 <= min <= max; max within the MCS envelope",
        fault="secc_exceed_mcs_voltage",
    )
    def run(ctx: CaseContext) -> None:
        plan = plan_for(ctx.pics, service=svc)
        t = _evcc_at(ctx, "service_selection", plan)
        res = t.charge_parameter_discovery(plan.bpt)
        m = res.transfer_mode
        for lo, hi in (
            ("evse_minimum_charge_power", "evse_maximum_charge_power"),
            ("evse_minimum_charge_current", "evse_maximum_charge_current"),
            ("evse_minimum_voltage", "evse_maximum_voltage"),
        ):
            check(
                0 <= val(getattr(m, lo)) <= val(getattr(m, hi)),
                f"{lo} {val(getattr(m, lo)):g} > {hi} {val(getattr(m, hi)):g}",
            )
        check(val(m.evse_maximum_voltage) <= MCS_MAX_V, "EVSEMaximumVoltage above 1250 V")
        check(val(m.evse_maximum_charge_current) <= MCS_MAX_A, "EVSEMaximumChargeCurrent > 3000 A")
        check(val(m.evse_maximum_charge_power) <= MCS_MAX_W, "EVSEMaximumChargePower > 3.75 MW")
        if isinstance(m, BPT_DC_CPDResEnergyTransferMode):
            check_bpt_signs(m, ctx.pics.negative_discharge, "DC_ChargeParameterDiscoveryRes")


for _svc in ("DC", "DC_BPT", "MCS", "MCS_BPT"):
    _cpd_case(_svc)


@case(
    "TC_SECC_DC_ITB_ChargeParameterDiscovery_005",
    purpose="The unidirectional parameter variant for a BPT service is refused.",
    requirement="facts §4.3 (libiso15118 dc_charge_parameter_discovery.cpp)",
    pics=("service:MCS_BPT",),
    pre="MCS_BPT selected",
    stimulus="DC_ChargeParameterDiscoveryReq with DC_CPDReqEnergyTransferMode (no BPT)",
    expected="FAILED_WrongChargeParameter",
    fault="secc_skip_parameter_checks",
)
def cpd_wrong_variant(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "service_selection", plan_for(ctx.pics, service="MCS_BPT"))
    t.expect_failure(t.cpd_req(bpt=False), ("FAILED_WrongChargeParameter",))


@case(
    "TC_SECC_DC_ITB_ChargeParameterDiscovery_006",
    purpose="Charge parameters without a common envelope are refused.",
    requirement="facts §4.3; FAILED_WrongChargeParameter",
    pre="Service selected",
    stimulus="DC_ChargeParameterDiscoveryReq with EVMaximumVoltage 50 V (below every EVSE)",
    expected="FAILED_WrongChargeParameter",
    fault="secc_lenient_charge_parameters",
)
def cpd_no_envelope(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics)
    t = _evcc_at(ctx, "service_selection", plan)
    req = t.cpd_req(plan.bpt)
    mode = dataclasses.replace(
        req.transfer_mode, ev_maximum_voltage=rn(50), ev_minimum_voltage=rn(40)
    )
    t.expect_failure(dataclasses.replace(req, transfer_mode=mode), ("FAILED_WrongChargeParameter",))


@case(
    "TC_SECC_DC_ITB_ChargeParameterDiscovery_007",
    purpose="Negative discharge limits are refused when the SUT uses magnitudes.",
    requirement="facts §4.4 (BPT sign convention)",
    pics=("service:MCS_BPT", "!negative_discharge"),
    pre="MCS_BPT selected",
    stimulus="BPT DC_ChargeParameterDiscoveryReq with negative EVMaximumDischargePower/Current",
    expected="FAILED_WrongChargeParameter",
    fault="secc_lenient_charge_parameters",
)
def cpd_negative_discharge(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics, service="MCS_BPT")
    t = _evcc_at(ctx, "service_selection", plan)
    req = t.cpd_req(True)
    bpt_mode: Any = req.transfer_mode
    mode = dataclasses.replace(
        bpt_mode,
        ev_maximum_discharge_power=rn(-100_000),
        ev_maximum_discharge_current=rn(-100),
    )
    t.expect_failure(dataclasses.replace(req, transfer_mode=mode), ("FAILED_WrongChargeParameter",))


# -- ScheduleExchange -------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_ScheduleExchange_001",
    purpose="Scheduled control: 1..3 schedule tuples within the announced maximum power.",
    requirement="facts §4.4 ScheduleExchange",
    pics=("control:Scheduled",),
    pre="ChargeParameterDiscovery done (Scheduled)",
    stimulus="ScheduleExchangeReq Scheduled_SEReqControlMode (repeated while Ongoing)",
    expected="OK, Finished; 1..3 ScheduleTuples; no entry above EVSEMaximumChargePower",
    fault="secc_schedule_over_limit",
)
def schedule_scheduled(ctx: CaseContext) -> None:
    _evcc_at(ctx, "schedule_exchange", plan_for(ctx.pics, control="Scheduled"))


@case(
    "TC_SECC_CMN_VTB_ScheduleExchange_002",
    purpose="Dynamic control: Dynamic_SEResControlMode.",
    requirement="facts §4.4 ScheduleExchange",
    pics=("control:Dynamic",),
    pre="ChargeParameterDiscovery done (Dynamic)",
    stimulus="ScheduleExchangeReq Dynamic_SEReqControlMode",
    expected="OK, Finished, Dynamic_SEResControlMode",
    fault="secc_late",
)
def schedule_dynamic(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "charge_parameter_discovery", plan_for(ctx.pics, control="Dynamic"))
    res = t.request(t.schedule_exchange_req(ControlMode.DYNAMIC))
    check(
        type(res.control_mode).__name__ == "Dynamic_SEResControlMode",
        f"answered with {type(res.control_mode).__name__}",
    )


@case(
    "TC_SECC_CMN_ITB_ScheduleExchange_003",
    purpose="A ScheduleExchangeReq of the other control mode is refused.",
    requirement="facts §4.3 (control mode of the selected parameter set)",
    pics=("control:Dynamic",),
    pre="ChargeParameterDiscovery done (Dynamic)",
    stimulus="ScheduleExchangeReq with Scheduled_SEReqControlMode",
    expected="FAILED_WrongChargeParameter or FAILED",
    fault="secc_late",
)
def schedule_wrong_mode(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "charge_parameter_discovery", plan_for(ctx.pics, control="Dynamic"))
    t.expect_failure(
        t.schedule_exchange_req(ControlMode.SCHEDULED), ("FAILED_WrongChargeParameter", "FAILED")
    )


# -- DC phases --------------------------------------------------------------------------------
@case(
    "TC_SECC_DC_VTB_CableCheck_001",
    purpose="The cable check finishes within V2G_EVCC_CableCheck_Timeout.",
    requirement="facts §5.3 (40 s EVCC / 38 s SECC)",
    pre="ScheduleExchange done",
    stimulus="DC_CableCheckReq, repeated while Ongoing",
    expected="OK; EVSEProcessing=Finished within 40 s",
    fault="secc_cable_check_timeout",
)
def cable_check(ctx: CaseContext) -> None:
    _evcc_at(ctx, "cable_check")


@case(
    "TC_SECC_DC_VTB_PreCharge_001",
    purpose="Pre-charge drives the output to the EV's target voltage.",
    requirement="facts §4.4, §5.3 (pre-charge 10 s)",
    pre="Cable check done",
    stimulus="DC_PreChargeReq with EVTargetVoltage = battery voltage, repeated",
    expected="EVSEPresentVoltage within 10 V of the target within 10 s, never above EVSE maximum",
    fault="secc_late",
)
def pre_charge(ctx: CaseContext) -> None:
    _evcc_at(ctx, "pre_charge")


@case(
    "TC_SECC_DC_ITB_PreCharge_002",
    purpose="DC_PreChargeReq before the cable check is a sequence error.",
    requirement="facts §4.3",
    pre="ScheduleExchange done",
    stimulus="DC_PreChargeReq instead of DC_CableCheckReq",
    expected="FAILED_SequenceError",
    fault="secc_out_of_order",
)
def pre_charge_early(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "schedule_exchange")
    v = rn(ctx.pics.pixit.ev_battery_voltage)
    req = DC_PreChargeReq(
        header=header(t.session_id),
        ev_processing=Processing.ONGOING,
        ev_present_voltage=v,
        ev_target_voltage=v,
    )
    t.expect_failure(req, SEQ)


@case(
    "TC_SECC_CMN_VTB_PowerDelivery_001",
    purpose="PowerDelivery(Start) after pre-charge is accepted.",
    requirement="facts §4.3 row 11; V2G20-858",
    pre="Pre-charge done",
    stimulus="PowerDeliveryReq ChargeProgress=Start",
    expected="OK",
    fault="secc_late",
)
def power_delivery(ctx: CaseContext) -> None:
    _evcc_at(ctx, "power_delivery_start")


@case(
    "TC_SECC_CMN_VTB_PowerDelivery_010",
    purpose="PowerDelivery(Standby) in the charge loop is accepted by a charger that allows it.",
    requirement="facts §4.2 (WARNING_StandbyNotAllowed only when standby is not allowed); §4.3",
    pics=("standby",),
    pre="Charge loop running (two cycles)",
    stimulus="PowerDeliveryReq ChargeProgress=Standby, then one DC_ChargeLoopReq",
    expected="PowerDeliveryRes OK (not WARNING_StandbyNotAllowed); the charge loop goes on",
    fault="secc_standby_ignored",
)
def power_delivery_standby(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start")
    t.charge_loop(2)
    res = t.power_delivery(ChargeProgress.STANDBY, ok=False)
    check(
        res.response_code.value == "OK",
        f"PowerDelivery(Standby) answered {res.response_code.value}, PICS claims standby",
    )
    t.charge_loop(1)


@case(
    "TC_SECC_CMN_VTB_CertificateInstallation_001",
    purpose="An SECC that offers CertificateInstallation installs a contract for a truck "
    "without one, and PnC authorization goes on.",
    requirement="facts §4.3 row 2a, §6.2; V2G20-2492 (AAD), secp521r1 ECDH",
    pics=("certificate_installation", "auth:PnC", "algorithm:secp521r1"),
    pre="SessionSetup done; PIXIT PKI with an OEM provisioning certificate",
    stimulus="AuthorizationSetupReq; CertificateInstallationReq signed with the OEM provisioning "
    "key; AuthorizationReq (PnC)",
    expected="AuthorizationSetupRes offers CertificateInstallationService; "
    "CertificateInstallationRes OK, Finished, with a contract chain and a 133-byte secp521r1 "
    "DHPublicKey; AuthorizationRes OK",
    fault="secc_no_certificate_installation",
)
def certificate_installation(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics, auth="PnC")
    t = _evcc_at(ctx, "session_setup", plan)
    setup = t.authorization_setup()
    check(
        bool(setup.certificate_installation_service),
        "AuthorizationSetupRes does not offer CertificateInstallation (PICS claims it)",
    )
    t.stage_done = "authorization_setup"
    res = t.request(t.certificate_installation_req())
    check(res.evse_processing is Processing.FINISHED, f"EVSEProcessing {res.evse_processing}")
    data = res.signed_installation_data
    check(bool(data.contract_certificate_chain.certificate), "no contract certificate")
    check(data.ecdh_curve.value == "SECP521", f"ECDHCurve {data.ecdh_curve.value}")
    check(len(data.dh_public_key) == 133, f"DHPublicKey of {len(data.dh_public_key)} bytes")
    check(
        data.secp521_encrypted_private_key is not None,
        "no SECP521_EncryptedPrivateKey",
    )
    t.run_to(plan, "authorization")


@case(
    "TC_SECC_CMN_VTB_VehicleCheckIn_001",
    purpose="A VehicleCheckIn right after SessionSetup is acknowledged and the session goes on.",
    requirement="facts §4.3 row 1a (optional VehicleCheckIn after SessionSetup)",
    pics=("vehicle_check_in_out",),
    pre="SessionSetup done",
    stimulus="VehicleCheckInReq EVCheckInStatus=CheckIn, ParkingMethod=Manual; "
    "AuthorizationSetupReq",
    expected="VehicleCheckInRes OK; AuthorizationSetupRes OK",
    fault="secc_check_in_wrong_status",
)
def vehicle_check_in(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "session_setup")
    t.request(
        VehicleCheckInReq(
            header=header(t.session_id),
            ev_check_in_status=EvCheckInStatus.CHECK_IN,
            parking_method=ParkingMethod.MANUAL,
        )
    )
    t.run_to(plan_for(ctx.pics), "authorization_setup")


@case(
    "TC_SECC_CMN_VTB_PowerDelivery_011",
    purpose="A charger that does not allow standby answers PowerDelivery(Standby) with "
    "WARNING_StandbyNotAllowed and keeps the charge loop going.",
    requirement="facts §4.2 (WARNING_StandbyNotAllowed); §4.3",
    pics=("!standby",),
    pre="Charge loop running (two cycles); the charger does not allow standby",
    stimulus="PowerDeliveryReq ChargeProgress=Standby, then one DC_ChargeLoopReq",
    expected="PowerDeliveryRes WARNING_StandbyNotAllowed (not OK, not FAILED_*); the next "
    "DC_ChargeLoopRes OK",
    fault="secc_standby_allowed",
)
def power_delivery_standby_not_allowed(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start")
    t.charge_loop(2)
    res = t.power_delivery(ChargeProgress.STANDBY, ok=False)
    want = ResponseCode.WARNING_STANDBY_NOT_ALLOWED.value
    got = res.response_code.value
    check(got == want, f"PowerDelivery(Standby) answered {got}, expected {want}")
    t.charge_loop(1)


@case(
    "TC_SECC_CMN_VTB_VehicleCheckOut_001",
    purpose="A due VehicleCheckOut after power delivery is acknowledged as Completed.",
    requirement="facts §4.3 (optional VehicleCheckOut after PowerDelivery(Stop))",
    pics=("vehicle_check_in_out",),
    pre="PowerDelivery(Stop) done",
    stimulus="VehicleCheckOutReq EVCheckOutStatus=Completed, CheckOutTime=now; SessionStopReq",
    expected="VehicleCheckOutRes OK with EVSECheckOutStatus=Completed; SessionStop OK",
    fault="secc_check_in_wrong_status",
)
def vehicle_check_out(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_stop")
    hdr = header(t.session_id)
    res = t.request(
        VehicleCheckOutReq(
            header=hdr,
            ev_check_out_status=EvCheckOutStatus.COMPLETED,
            check_out_time=hdr.timestamp,
        )
    )
    status = res.evse_check_out_status
    check(
        status is EvseCheckOutStatus.COMPLETED,
        f"EVSECheckOutStatus {status.value} for a check-out that is due",
    )
    t.session_stop()


@case(
    "TC_SECC_CMN_ITB_PowerDelivery_002",
    purpose="PowerDelivery(Start) before cable check and pre-charge is a sequence error.",
    requirement="facts §4.3; V2G20-1317 (no contactor before PowerDelivery)",
    pre="ScheduleExchange done",
    stimulus="PowerDeliveryReq Start right after ScheduleExchange",
    expected="FAILED_SequenceError",
    fault="secc_out_of_order",
)
def power_delivery_early(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics, control="Dynamic")
    t = _evcc_at(ctx, "schedule_exchange", plan)
    req = PowerDeliveryReq(
        header=header(t.session_id),
        ev_processing=Processing.FINISHED,
        charge_progress=ChargeProgress.START,
        bpt_channel_selection=ChannelSelection.CHARGE if plan.bpt else None,
    )
    t.expect_failure(req, SEQ)


@case(
    "TC_SECC_CMN_ITB_PowerDelivery_003",
    purpose="Discharge on a unidirectional service is refused.",
    requirement="facts §4.3 (BPT_ChannelSelection only with DC_BPT / MCS_BPT)",
    pics=("service:MCS",),
    pre="MCS (no BPT) session, pre-charge done",
    stimulus="PowerDeliveryReq Start with BPT_ChannelSelection=Discharge",
    expected="FAILED_WrongChargeParameter (or FAILED); no power transfer",
    fault="secc_ignore_channel",
)
def power_delivery_discharge_unidirectional(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics, service="MCS", control="Dynamic")
    t = _evcc_at(ctx, "pre_charge", plan)
    req = PowerDeliveryReq(
        header=header(t.session_id),
        ev_processing=Processing.FINISHED,
        charge_progress=ChargeProgress.START,
        bpt_channel_selection=ChannelSelection.DISCHARGE,
    )
    t.expect_failure(req, ("FAILED_WrongChargeParameter", "FAILED"))


@case(
    "TC_SECC_CMN_ITB_PowerDelivery_004",
    purpose="A schedule tuple that was not offered cannot be selected.",
    requirement="facts §4.4 (EVPowerProfile SelectedScheduleTupleID); "
    "FAILED_ScheduleSelectionInvalid",
    pics=("control:Scheduled",),
    pre="Scheduled session, pre-charge done",
    stimulus="PowerDeliveryReq Start whose EVPowerProfile selects ScheduleTupleID 200",
    expected="FAILED_ScheduleSelectionInvalid",
    fault="secc_ignore_channel",
)
def power_delivery_bad_tuple(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "pre_charge", plan_for(ctx.pics, control="Scheduled"))
    profile = t.ev_power_profile()
    check(profile is not None, "no schedule to select from")
    assert profile is not None
    ids = {st.schedule_tuple_id for st in (t.schedule.schedule_tuple if t.schedule else [])}
    check(200 not in ids, "the SUT offered ScheduleTupleID 200")
    profile.control_mode = Scheduled_EVPPTControlMode(selected_schedule_tuple_id=200)
    req = PowerDeliveryReq(
        header=header(t.session_id),
        ev_processing=Processing.FINISHED,
        charge_progress=ChargeProgress.START,
        ev_power_profile=profile,
        bpt_channel_selection=ChannelSelection.CHARGE if t.plan and t.plan.bpt else None,
    )
    t.expect_failure(req, ("FAILED_ScheduleSelectionInvalid",))


@case(
    "TC_SECC_DC_ITB_ChargeLoop_001",
    purpose="DC_ChargeLoopReq before PowerDelivery(Start) is a sequence error.",
    requirement="facts §4.3",
    pre="Pre-charge done",
    stimulus="DC_ChargeLoopReq without PowerDelivery",
    expected="FAILED_SequenceError",
    fault="secc_out_of_order",
)
def charge_loop_early(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "pre_charge")
    t.expect_failure(t.charge_loop_req(), SEQ)


@case(
    "TC_SECC_DC_ITB_ChargeLoop_002",
    purpose="A charge-loop request of the other control mode is refused.",
    requirement="facts §4.3 (libiso15118 dc_charge_loop.cpp answers FAILED)",
    pics=("control:Dynamic",),
    pre="Charge loop running (Dynamic)",
    stimulus="DC_ChargeLoopReq with a Scheduled control mode",
    expected="FAILED (or FAILED_WrongChargeParameter)",
    fault="secc_late",
)
def charge_loop_wrong_mode(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start", plan_for(ctx.pics, control="Dynamic"))
    t.expect_failure(t.charge_loop_req(scheduled=True), ("FAILED", "FAILED_WrongChargeParameter"))


# -- full sessions per service x control ----------------------------------------------------
def _session_case(svc: str, ctl: str, auth: str, n: int) -> None:
    @case(
        f"TC_SECC_DC_VTB_Session_{svc}_{ctl}_{auth}_{n:03d}",
        purpose=f"A complete {svc} {ctl} session with {auth}: every message's valid path.",
        requirement="facts §4.3 (sequence), §4.4, §5 (performance times), §7",
        pics=(f"service:{svc}", f"control:{ctl}", f"auth:{auth}"),
        pre="SECC idle",
        stimulus="SAP ... ServiceSelection, CPD, ScheduleExchange, CableCheck, PreCharge, "
        "PowerDelivery(Start), charge loop, PowerDelivery(Stop), WeldingDetection, SessionStop",
        expected="Every response OK, on time, of the right variant; present values within "
        "the negotiated envelope; MeteringConfirmation triggers answered",
        fault="secc_exceed_limit",
    )
    def run(ctx: CaseContext) -> None:
        t = ctx.evcc()
        t.run_to(plan_for(ctx.pics, svc, ctl, auth))
        t.expect_closed(SECC_SEQUENCE_TIMEOUT, what=" after SessionStop(Terminate)")


for _svc in ("DC", "DC_BPT", "MCS", "MCS_BPT"):
    for _ctl in ("Scheduled", "Dynamic"):
        _session_case(_svc, _ctl, "EIM", 1)
        _session_case(_svc, _ctl, "PnC", 2)


# -- power ------------------------------------------------------------------------------------
@case(
    "TC_SECC_DC_VTB_Power_001",
    purpose="The SECC caps the current at its own maximum when the EV asks for more.",
    requirement="facts §4.4; design §4 safety (never above any limit)",
    pics=("control:Scheduled",),
    pre="Charge loop running (Scheduled)",
    stimulus="DC_ChargeLoopReq with EVTargetCurrent above EVSEMaximumChargeCurrent",
    expected="EVSEPresentCurrent <= EVSEMaximumChargeCurrent and the power limit, every cycle",
    fault="secc_exceed_limit",
)
def power_cap(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics, control="Scheduled")
    t = _evcc_at(ctx, "power_delivery_start", plan)
    over = min(ctx.pics.pixit.ev_max_current, t.envelope.evse_max_current * 1.5)
    for _ in range(4):
        req = t.charge_loop_req(target_current=over)
        res = t.request(req)
        t.check_envelope(req, res)
        t.ch.wait(0.2)


@case(
    "TC_SECC_DC_VTB_Power_002",
    purpose="BPT sign convention: discharge limits are reported as the PICS declares.",
    requirement="facts §4.4 (BPT sign convention, EVerest negative_bidirectional_limits)",
    pics=("service:MCS_BPT",),
    pre="MCS_BPT session",
    stimulus="BPT ChargeParameterDiscovery and charge loop",
    expected="Every discharge limit positive (magnitudes), or negative when PICS "
    "negative_discharge",
    fault="secc_negative_discharge",
)
def power_bpt_signs(ctx: CaseContext) -> None:
    t = ctx.evcc()
    plan = plan_for(ctx.pics, service="MCS_BPT")
    t.run_to(plan, "charge_parameter_discovery")
    check_bpt_signs(t.cpd_res_mode, ctx.pics.negative_discharge, "DC_ChargeParameterDiscoveryRes")
    t.run_to(plan, "charge_loop", cycles=3)


@case(
    "TC_SECC_DC_VTB_Power_003",
    purpose="Discharging (BPT, Scheduled, channel Discharge) stays inside the discharge envelope.",
    requirement="facts §4.4 (BPT_ChannelSelection), design §4 safety",
    pics=("service:MCS_BPT", "control:Scheduled"),
    pre="MCS_BPT Scheduled session, PowerDelivery(Start, Discharge)",
    stimulus="Charge loop with EVTargetCurrent 200 A",
    expected="No charging current; |EVSEPresentCurrent| <= negotiated discharge current/power",
    fault="secc_exceed_limit",
)
def power_discharge(ctx: CaseContext) -> None:
    t = ctx.evcc()
    t.channel_selection = ChannelSelection.DISCHARGE
    t.run_to(plan_for(ctx.pics, service="MCS_BPT", control="Scheduled"), "power_delivery_start")
    for _ in range(4):
        req = t.charge_loop_req(target_current=200.0)
        res = t.request(req)
        t.check_envelope(req, res)
        i = val(res.evse_present_current)
        check(i <= 0.5, f"EVSEPresentCurrent {i:g} A charges although Discharge was selected")
        t.ch.wait(0.2)


# -- timing -----------------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_Timing_001",
    purpose="Every response arrives within V2G_SECC_Msg_Performance_Time.",
    requirement="V2G20-1483ff (Table 215), V2G20-1501/1502 (Table 217); facts §5",
    pre="SECC idle",
    stimulus="A complete session",
    expected="Each response within 1.5 s (4.5 s ServiceDetail; 0.25 s DC_ChargeLoop)",
    fault="secc_late",
)
def timing_performance(ctx: CaseContext) -> None:
    t = ctx.evcc()
    t.run_to(plan_for(ctx.pics))
    worst = max(t.rtts, key=lambda r: r[1] / performance_time(r[0]))
    ctx.log.note(t.now(), f"worst response time {worst[1]:.3f} s for {worst[0]}")


@case(
    "TC_SECC_DC_VTB_Timing_002",
    purpose="DC_ChargeLoopRes within 0.25 s, for many cycles.",
    requirement="V2G20-1501/1502 (Table 217); facts §5.2",
    pre="Charge loop running",
    stimulus="20 DC_ChargeLoopReq at 0.2 s cadence",
    expected="Every DC_ChargeLoopRes within 0.25 s",
    fault="secc_late_loop",
)
def timing_loop(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start")
    t.charge_loop(20)


@case(
    "TC_SECC_DC_ITB_Timing_003",
    purpose="The SECC ends the session 0.5 s after the EVCC falls silent in the charge loop.",
    requirement="facts §5.2 (V2G_SECC_Sequence_Timeout 0.5 s in the charge loop)",
    pre="Charge loop running",
    stimulus="No further DC_ChargeLoopReq",
    expected="Connection closed after 0.5 s (not before), within the PIXIT tolerance",
    fault="secc_ignore_timeouts",
)
def timing_loop_timeout(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "charge_loop")
    took = t.expect_closed(SECC_LOOP_SEQUENCE_TIMEOUT + 0.1, what=" after 0.5 s of silence")
    check(
        took >= SECC_LOOP_SEQUENCE_TIMEOUT - t.tol - 1e-9,
        f"closed after {took:.3f} s, before the 0.5 s timeout",
    )


@case(
    "TC_SECC_CMN_ITB_Timing_004",
    purpose="The SECC ends a session after V2G_SECC_Sequence_Timeout (60 s) of silence.",
    requirement="facts §5.1 (V2G_SECC_Sequence_Timeout 60 s)",
    pre="Session established",
    stimulus="No request after SessionSetupRes",
    expected="Connection closed after 60 s (not before)",
    fault="secc_ignore_timeouts",
)
def timing_sequence_timeout(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "session_setup")
    took = t.expect_closed(SECC_SEQUENCE_TIMEOUT + 1.0, what=" after 60 s of silence")
    check(took >= SECC_SEQUENCE_TIMEOUT - t.tol - 1e-9, f"closed after {took:.3f} s, before 60 s")


@case(
    "TC_SECC_CMN_ITB_Timing_005",
    purpose="A connection that never starts the protocol is closed.",
    requirement="facts §5.3 (V2G_SECC_CommunicationSetup_Performance_Time 18 s [UNVERIFIED])",
    pre="TCP/TLS connection established",
    stimulus="Nothing",
    expected="Connection closed within 20 s (the EVCC's communication setup timeout)",
    fault="secc_ignore_timeouts",
)
def timing_setup_timeout(ctx: CaseContext) -> None:
    t = ctx.evcc()
    # 18 s is the -2 value [UNVERIFIED for -20]; 20 s (the EVCC's own limit) is the hard bound
    t.expect_closed(max(SECC_COMMUNICATION_SETUP, 20.0), what=" of an idle connection")


@case(
    "TC_SECC_DC_VTB_Timing_006",
    purpose="The SECC tolerates a charge-loop gap just under 0.5 s.",
    requirement="facts §5.2 (the timeout is 0.5 s, not less)",
    pre="Charge loop running",
    stimulus="DC_ChargeLoopReq 0.45 s after the previous response",
    expected="Answered OK",
    fault="secc_short_timeouts",
)
def timing_loop_gap(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "charge_loop")
    t.ch.wait(0.45 - t.tol)
    req = t.charge_loop_req()
    t.check_envelope(req, t.request(req))


# -- pause / resume -----------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_PauseResume_001",
    purpose="A paused session is resumed on a new connection with OK_OldSessionJoined.",
    requirement="facts §4.1 (SessionID handling), §4.3 row 15",
    pics=("pause_resume",),
    pre="Charge loop running",
    stimulus="PowerDelivery(Stop), WeldingDetection, SessionStop(Pause); reconnect; SAP; "
    "SessionSetupReq with the paused SessionID; CPD ...",
    expected="OK_OldSessionJoined with the same SessionID; ChargeParameterDiscovery accepted "
    "directly; charging resumes",
    fault="secc_forget_paused",
)
def pause_resume(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics)
    t = _evcc_at(ctx, "welding_detection", plan)
    t.session_stop(ChargingSession.PAUSE)
    paused = t.session_id
    t.expect_closed(5.0, what=" after SessionStop(Pause)")
    t2 = ctx.evcc()
    t2.plan = plan
    t2.sap()
    res = t2.session_setup(paused)
    check(
        res.response_code.value == "OK_OldSessionJoined",
        f"resume answered {res.response_code.value}",
    )
    check(t2.session_id == paused, "resumed under another SessionID")
    t2.stage_done = "service_selection"
    t2.run_to(plan, "session_stop", cycles=3)


# -- renegotiation ----------------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_ScheduleRenegotiation_001",
    purpose="EV-initiated schedule renegotiation returns to ScheduleExchange and resumes.",
    requirement="facts §4.3 row 12 (PowerDelivery ScheduleRenegotiation)",
    pics=("schedule_renegotiation",),
    pre="Charge loop running",
    stimulus="PowerDelivery(ScheduleRenegotiation), ScheduleExchange, PowerDelivery(Start)",
    expected="All OK; the charge loop continues",
    fault="secc_late",
)
def schedule_renegotiation(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics)
    t = _evcc_at(ctx, "charge_loop", plan)
    t.power_delivery(ChargeProgress.SCHEDULE_RENEGOTIATION)
    t.schedule_exchange(plan.control)
    t.power_delivery(ChargeProgress.START)
    t.charge_loop(3)
    t.stage_done = "charge_loop"
    t.run_to(plan, "session_stop")


@case(
    "TC_SECC_CMN_VTB_ServiceRenegotiation_001",
    purpose="SessionStop(ServiceRenegotiation) leads back to service discovery.",
    requirement="facts §4.3 row 15 (ServiceRenegotiation)",
    pics=("service_renegotiation",),
    pre="Charge loop running",
    stimulus="PowerDelivery(Stop), WeldingDetection, SessionStop(ServiceRenegotiation), "
    "ServiceDiscovery ... new charge loop",
    expected="All OK; the same SessionID continues",
    fault="secc_no_service_renegotiation",
)
def service_renegotiation(ctx: CaseContext) -> None:
    plan = plan_for(ctx.pics)
    t = _evcc_at(ctx, "welding_detection", plan)
    t.session_stop(ChargingSession.SERVICE_RENEGOTIATION)
    t.stage_done = "authorization"
    t.run_to(plan, "session_stop", cycles=3)


# -- metering confirmation -------------------------------------------------------------------
@case(
    "TC_SECC_CMN_VTB_MeteringConfirmation_001",
    purpose="The SECC asks for a signed metering confirmation and accepts a valid one.",
    requirement="V2G20-1083, V2G20-1084/1085, V2G20-2105; facts §4.3 row 12a",
    pics=("metering_confirmation", "auth:PnC", "tls"),
    pre="PnC charge loop running",
    stimulus="Charge loop for up to 20 cycles; MeteringConfirmationReq (0x8102) signed with "
    "the contract key when triggered",
    expected="EVSENotification=MeteringConfirmation with MeterInfo; MeteringConfirmationRes OK",
    fault="secc_no_metering",
)
def metering(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start", plan_for(ctx.pics, auth="PnC"))
    t.charge_loop(20)
    check(t.metering_confirmed > 0, "no MeteringConfirmation trigger within 20 cycles (5 s)")


@case(
    "TC_SECC_CMN_ITB_MeteringConfirmation_002",
    purpose="A metering confirmation with a broken signature is refused.",
    requirement="V2G20-1084; FAILED_MeteringSignatureNotValid",
    pics=("metering_confirmation", "auth:PnC", "tls"),
    pre="PnC charge loop running, MeteringConfirmation triggered",
    stimulus="MeteringConfirmationReq with one bit of the SignatureValue flipped",
    expected="FAILED_MeteringSignatureNotValid",
    fault="secc_accept_bad_signature",
)
def metering_bad_signature(ctx: CaseContext) -> None:
    t = _evcc_at(ctx, "power_delivery_start", plan_for(ctx.pics, auth="PnC"))
    for k in range(20):
        if k:
            t.ch.wait(0.2)
        req = t.charge_loop_req()
        res = t.request(req)
        st = res.evse_status
        if st is not None and st.evse_notification is EvseNotification.METERING_CONFIRMATION:
            bad = t.metering_confirmation_req(res.meter_info, bad_signature=True)
            t.send(bad, payload_type=int(PayloadType.METERING_CONFIRMATION))
            got = t.receive(performance_time("MeteringConfirmationReq") + t.tol)
            check(got is not None, "no answer to MeteringConfirmationReq")
            assert got is not None
            code = got.response_code.value
            check(code == "FAILED_MeteringSignatureNotValid", f"answered {code}")
            return
    raise Inconclusive("the SUT never asked for a MeteringConfirmation")


# -- schema-invalid documents ----------------------------------------------------------------
@case(
    "TC_SECC_CMN_ITB_Schema_001",
    purpose="A schema-invalid request (EVCCID longer than 255 characters) is refused.",
    requirement="design §Schemas are the contract; facts §4.3 row 1 (EVCCID <= 255)",
    pre="SAP done",
    stimulus="SessionSetupReq whose EVCCID has 300 characters",
    expected="FAILED (or the connection closes); no OK",
    fault="secc_lax_schema",
)
def schema_evccid(ctx: CaseContext) -> None:
    from lxml import etree

    t = _evcc_at(ctx, "sap")
    root = xml_only(t.codec, "a schema-invalid document").to_element(
        SessionSetupReq(header=header(ZERO_SESSION), evccid="X")
    )
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.endswith("EVCCID"):
            el.text = "E" * 300
    doc = etree.tostring(root)
    t.expect_failure(
        None,
        ("FAILED",),
        raw=build_frame(int(PayloadType.COMMON), doc),
        what="SessionSetupReq",
        may_close=True,
    )


@case(
    "TC_SECC_DC_ITB_Schema_002",
    purpose="A charge-loop request violating a facet (negative xs:unsignedInt) is refused.",
    requirement="design §Schemas are the contract; facts §4.4 (DisplayParameters)",
    pre="Charge loop running",
    stimulus="DC_ChargeLoopReq whose DisplayParameters/RemainingTimeToTargetSOC is -1",
    expected="FAILED (or the connection closes); no OK",
    fault="secc_lax_schema",
)
def schema_rational(ctx: CaseContext) -> None:
    from lxml import etree

    t = _evcc_at(ctx, "charge_loop")
    req = t.charge_loop_req()
    req.display_parameters = DisplayParameters(
        present_soc=40, target_soc=80, remaining_time_to_target_soc=3600
    )
    root = xml_only(t.codec, "a schema-invalid document").to_element(req)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.endswith("RemainingTimeToTargetSOC"):
            el.text = "-1"
    t.expect_failure(
        None,
        ("FAILED",),
        raw=build_frame(int(PayloadType.DC), etree.tostring(root)),
        what="DC_ChargeLoopReq",
        may_close=True,
    )


# -- TLS (facts §6.1) -----------------------------------------------------------------------
def _tls_probe(ctx: CaseContext, variant: str, manifest: Any = None) -> tuple[bool, str]:
    """Handshake with a client context ``variant`` and send SAP; True when the SECC answered."""
    if ctx.pkis is None:
        raise Inconclusive("TLS cases need the PIXIT pki_dir")
    cctx = client_context(manifest or ctx.pkis.good, variant)
    raw = ctx.sut.raw_connection()
    try:
        s = cctx.wrap_socket(raw)
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        ctx.log.note(0.0, f"handshake refused: {exc}")
        return False, str(exc)
    cipher = s.cipher()
    info = f"{s.version()} {cipher[0] if cipher else ''}"
    ctx.log.note(0.0, f"handshake completed: {info}")
    try:
        from mcscomm.v2gtp import FrameDecoder

        s.settimeout(2.0)
        s.sendall(build_frame(0x8001, _sap_doc(ctx)))
        data = s.recv(65536)
        frames = FrameDecoder().feed(data) if data else []
        ok = bool(frames)
        ctx.log.note(0.0, "SAP answered" if ok else "connection closed without SAP answer")
        return ok, info
    except (ssl.SSLError, OSError) as exc:
        ctx.log.note(0.0, f"connection refused after handshake: {exc}")
        return False, str(exc)
    finally:
        s.close()


def _sap_doc(ctx: CaseContext) -> bytes:
    from mcscomm.conformance.wire import codec

    c = codec() if ctx.virtual else wire_codec(ctx.pics.pixit.encoding)
    return bytes(c.encode(sap.build_offer([sap.ISO20_DC])))


@case(
    "TC_SECC_CMN_VTB_TLS_001",
    purpose="TLS 1.3 with the -20 suite and group of the configured algorithm family.",
    requirement="V2G20-1264, V2G20-2458/2459 (Table 6), V2G20-1634ff (Table 7), V2G20-2320",
    pics=("tls",),
    pre="PKI of the PIXIT; SECC listening",
    stimulus="ClientHello with the -20 profile (both suites, secp521r1 and x448)",
    expected="TLSv1.3, TLS_AES_256_GCM_SHA384 (server preference), group of the PICS algorithm; "
    "SAP answered",
    fault="secc_late",
)
def tls_valid(ctx: CaseContext) -> None:
    from mcscomm.security import tls as tls_mod

    if ctx.pkis is None:
        raise Inconclusive("TLS cases need the PIXIT pki_dir")
    raw = ctx.sut.raw_connection()
    s = tls_mod.evcc_context(ctx.pkis.good).wrap_socket(raw)
    try:
        info = tls_mod.describe(s)
        ctx.log.note(0.0, f"negotiated {info}")
        check(info["version"] == "TLSv1.3", f"negotiated {info['version']}")
        check(info["cipher"] == "TLS_AES_256_GCM_SHA384", f"cipher {info['cipher']}")
        want = "secp521r1" if ctx.pics.tls_algorithm == "secp521r1" else "X448"
        if info["group"] is not None:
            check(info["group"] in (want, want.lower()), f"group {info['group']}, want {want}")
        s.settimeout(performance_time("SupportedAppProtocolReq") + ctx.tol)
        s.sendall(build_frame(0x8001, _sap_doc(ctx)))
        try:
            data = s.recv(65536)
        except TimeoutError:
            data = b""
        check(bool(data), "no SAP answer over TLS within the performance time")
    finally:
        s.close()


def _tls_refusal(
    variant: str, purpose: str, req: str, stim: str, fault: str, n: int, pki: str = "good"
) -> None:
    @case(
        f"TC_SECC_CMN_ITB_TLS_{n:03d}",
        purpose=purpose,
        requirement=req,
        pics=("tls",),
        pre="PKI of the PIXIT; SECC listening",
        stimulus=stim,
        expected="Handshake refused or connection closed before any V2G answer",
        fault=fault,
    )
    def run(ctx: CaseContext) -> None:
        if ctx.pkis is None:
            raise Inconclusive("TLS cases need the PIXIT pki_dir")
        manifest = getattr(ctx.pkis, pki)
        answered, info = _tls_probe(ctx, variant if pki == "good" else "noverify", manifest)
        check(not answered, f"the SECC accepted {stim} ({info})")


_tls_refusal(
    "tls12",
    "TLS 1.2 is refused.",
    "V2G20-1235/1237/2356",
    "a TLS 1.2-only ClientHello",
    "secc_tls12",
    2,
)
_tls_refusal(
    "aes128",
    "TLS_AES_128_GCM_SHA256 is not in the -20 profile.",
    "Table 6, V2G20-2458",
    "a ClientHello offering only TLS_AES_128_GCM_SHA256",
    "secc_tls_any_suite",
    3,
)
_tls_refusal(
    "p256",
    "Key exchange on P-256 is not in the -20 profile.",
    "Table 7, V2G20-1634",
    "a ClientHello offering only the prime256v1 group",
    "secc_tls_any_suite",
    4,
)
_tls_refusal(
    "no_cert",
    "Mutual authentication is mandatory.",
    "V2G20-1264, V2G20-2400",
    "a client without certificate",
    "secc_tls_no_client_auth",
    5,
)
_tls_refusal(
    "good",
    "A client chain from an unknown OEM root is refused.",
    "V2G20-2400/2401",
    "a client certificate of another PKI",
    "secc_tls_no_client_auth",
    6,
    pki="other",
)
_tls_refusal(
    "good",
    "An expired client certificate is refused.",
    "V2G20-2400; facts §6.3",
    "an OEM provisioning leaf that expired yesterday (right root)",
    "secc_tls_no_client_auth",
    7,
    pki="expired",
)
