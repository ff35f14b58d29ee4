"""Cases with the EVCC under test (the test system plays the SECC).

Ids: ``TC_EVCC_<CMN|DC>_<VTB|ITB>_<Group>_<nnn>``. Reaction cases send a crafted response (an
error, a notification) and judge what the EVCC does next; their self-test fault is a *deaf*
EVCC that receives the valid fallback instead.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from typing import Any

from mcscomm import sap, sdp
from mcscomm.codec import XmlCodec
from mcscomm.conformance.catalogue import case
from mcscomm.conformance.channel import ChannelClosed
from mcscomm.conformance.context import CaseContext
from mcscomm.conformance.model import CaseFailed, Inconclusive
from mcscomm.conformance.tester_evcc import MCS_MAX_V, check_bpt_signs
from mcscomm.conformance.tester_secc import Seen, TesterSecc
from mcscomm.conformance.tlsvariants import server_context
from mcscomm.conformance.wire import (
    EVCC_MSG_TIMEOUT,
    EVCC_MSG_TIMEOUT_LOOP,
    check,
    header,
    val,
    xml_only,
)
from mcscomm.messages.app_protocol import SupportedAppProtocolRes
from mcscomm.messages.common_messages import (
    AuthorizationRes,
    PowerDeliveryRes,
    Service,
    ServiceDiscoveryRes,
    ServiceList,
    SessionSetupRes,
)
from mcscomm.messages.dc import DC_ChargeParameterDiscoveryRes
from mcscomm.messages.enums import (
    AppProtocolResponseCode,
    AuthorizationType,
    ChargeProgress,
    ChargingSession,
    ControlMode,
    EvseNotification,
    Processing,
    ResponseCode,
    ServiceId,
)
from mcscomm.v2gtp import FrameDecoder, build_frame

SVC = {s.name: s for s in (ServiceId.DC, ServiceId.DC_BPT, ServiceId.MCS, ServiceId.MCS_BPT)}
CTL = {"Scheduled": ControlMode.SCHEDULED, "Dynamic": ControlMode.DYNAMIC}
AUTH = {"EIM": AuthorizationType.EIM, "PnC": AuthorizationType.PNC}
#: NotificationMaxDelay the tester announces with its notifications (s)
NOTIFY_DELAY = 10


def _default(ctx: CaseContext, **kw: Any) -> TesterSecc:
    """A tester SECC offering one service/mode/auth the PICS supports (MCS_BPT, Dynamic, EIM
    preferred) unless given."""
    pics = ctx.pics
    svc = (
        kw.pop("service", None)
        or SVC[next(s for s in ("MCS_BPT", "MCS", "DC_BPT", "DC") if s in pics.services)]
    )
    ctl = (
        kw.pop("control", None)
        or CTL["Dynamic" if "Dynamic" in pics.control_modes else "Scheduled"]
    )
    auth = kw.pop("auth", None) or AUTH["EIM" if "EIM" in pics.auth else "PnC"]
    return ctx.secc(svc, ctl, auth, **kw)


def _stop_at(t: TesterSecc, name: str, nth: int = 1) -> Any:
    """Serve until the ``nth`` request called ``name`` arrives (unanswered); return it."""
    count = [0]

    def hit(s: Any) -> bool:
        if s.name == name:
            count[0] += 1
        return count[0] >= nth

    r = t.serve(until=hit)
    if r != "until":
        _declined(t)
        raise CaseFailed(f"the EVCC ended the session before sending {name} ({r})")
    return t.seen[-1].message


def _declined(t: TesterSecc) -> None:
    """Inconclusive when the EVCC left because it does not want what this case offers (a real
    EVCC cannot be told which service, control mode or authorization to use)."""
    names = t.names()
    if "ServiceDiscoveryReq" in names and "ServiceSelectionReq" not in names:
        offered = ", ".join(s.name for s in t.offer_services)
        raise Inconclusive(f"the EVCC did not select the offered service ({offered})")
    if "AuthorizationSetupReq" in names and "AuthorizationReq" not in names:
        offered = ", ".join(a.value for a in t.offer_auth)
        raise Inconclusive(f"the EVCC did not use the offered authorization ({offered})")
    sel = t.first("ServiceSelectionReq")
    if sel is not None and "DC_ChargeParameterDiscoveryReq" not in names:
        chosen = sel.message.selected_energy_transfer_service
        if chosen.parameter_set_id not in [int(c) for c in t.offer_controls]:
            return  # selecting what was not offered is the EVCC's fault, judged elsewhere


def _crafted(t: TesterSecc, req: Any, message: Any, *, raw: bytes | None = None) -> None:
    """Answer ``req`` with a crafted ``message`` (or raw bytes); a deaf SUT gets the valid one."""
    name = type(req).__name__
    good = t.default_response(req, name)
    if raw is not None:
        fb = build_frame(t.codec.payload_type_for(good), t.codec.encode(good))
        t.send_raw(raw, f"crafted answer to {name}", fallback=fb)
    else:
        t.send(message, fallback=good)
    t.prev_key = t._key(req, name)


def _expect_stop(t: TesterSecc, after: str, *, within: float = 5.0) -> None:
    """After an error answer the EVCC ends the session: it closes, stays silent, or sends
    SessionStopReq (answered); any other request fails the case."""
    while True:
        try:
            req = t.next_request(within)
        except ChannelClosed:
            return
        if req is None:
            return
        name = type(req).__name__
        if name == "SessionStopReq":
            t.send(t.default_response(req, name))
            continue
        raise CaseFailed(f"the EVCC continued with {name} after {after}")


def _until_other(t: TesterSecc, since: float, limit: float, what: str) -> Any:
    """Keep serving charge-loop cycles until another request comes; it must come within
    ``limit`` s of ``since``. Returns that request (unanswered)."""
    r = t.serve(until=lambda s: s.name != "DC_ChargeLoopReq")
    if r != "until":
        raise CaseFailed(f"the EVCC ended the session without reacting to {what} ({r})")
    seen = t.seen[-1]
    check(
        seen.t - since <= limit + t.tol + 1e-9,
        f"the EVCC reacted to {what} after {seen.t - since:.2f} s (NotificationMaxDelay {limit} s)",
    )
    return seen.message


def _finish(t: TesterSecc) -> None:
    """Serve the rest of the session (the current request was not answered yet)."""
    req = t.seen[-1].message
    name = type(req).__name__
    t.send(t.default_response(req, name), payload_type=t._pt(req))
    t.prev_key = t._key(req, name)
    t.serve()


# -- SDP ----------------------------------------------------------------------------------------
@case(
    "TC_EVCC_CMN_VTB_SDP_001",
    purpose="The EVCC asks SDP for a TLS/TCP connection.",
    requirement="V2G20-1238; facts §2.2",
    pics=("sdp", "tls"),
    pre="EVCC plugged in, starting discovery",
    stimulus="Wait for the SDP request; answer with a TLS/TCP response",
    expected="A 10-byte SDP request with security 0x00 (TLS) and transport 0x00 (TCP)",
    fault="evcc_sdp_no_tls",
)
def sdp_request(ctx: CaseContext) -> None:
    got = ctx.sut.sdp_request()
    check(got is not None, "no SDP request")
    data, answer = got
    ctx.log.add(0.0, "sut->tester", "SDP request", data.hex())
    try:
        check(len(data) == 10, f"SDP request of {len(data)} bytes, expected 10")
        msg = sdp.decode(data)
        check(isinstance(msg, sdp.SdpRequest), f"got {type(msg).__name__}")
        assert isinstance(msg, sdp.SdpRequest)
        check(msg.security is sdp.Security.TLS, f"security {msg.security.name}")
        check(msg.transport is sdp.Transport.TCP, f"transport {msg.transport.name}")
    finally:
        answer(sdp.encode(sdp.SdpResponse(sdp.to_ipv6("::1"), 50000)))


# -- SAP ----------------------------------------------------------------------------------------
@case(
    "TC_EVCC_CMN_VTB_SAP_001",
    purpose="The EVCC offers ISO 15118-20 DC with valid priorities and schema ids.",
    requirement="facts §3; V2G20-1235/1237 (-20 only over TLS 1.3)",
    pre="TCP/TLS connection established",
    stimulus="Wait for supportedAppProtocolReq",
    expected="An entry urn:iso:std:iso:15118:-20:DC major 1; priorities and SchemaIDs unique",
    fault="evcc_offer_ac",
)
def sap_offer(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "SupportedAppProtocolReq")
    entries = req.app_protocol
    check(
        any(
            e.protocol_namespace == sap.NS_ISO20_DC and e.version_number_major == 1 for e in entries
        ),
        "no urn:iso:std:iso:15118:-20:DC version 1 entry",
    )
    check(len({e.priority for e in entries}) == len(entries), "duplicate priorities")
    check(len({e.schema_id for e in entries}) == len(entries), "duplicate SchemaIDs")


@case(
    "TC_EVCC_CMN_ITB_SAP_002",
    purpose="After Failed_NoNegotiation the EVCC does not start a session.",
    requirement="facts §3",
    pre="TCP/TLS connection established",
    stimulus="supportedAppProtocolRes Failed_NoNegotiation",
    expected="No SessionSetupReq; the EVCC closes",
    fault="evcc_deaf",
)
def sap_failed(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "SupportedAppProtocolReq")
    _crafted(
        t, req, SupportedAppProtocolRes(response_code=AppProtocolResponseCode.FAILED_NO_NEGOTIATION)
    )
    _expect_stop(t, "Failed_NoNegotiation")


@case(
    "TC_EVCC_CMN_ITB_V2GTP_001",
    purpose="The EVCC does not process a frame with a broken V2GTP header.",
    requirement="V2G20-090/096; facts §1.3",
    pre="SAP request sent",
    stimulus="supportedAppProtocolRes in a frame with protocol version 0x02 / inverse 0xFD",
    expected="No SessionSetupReq (the EVCC ignores the frame or closes)",
    fault="evcc_ignore_v2gtp_header",
)
def v2gtp_header(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "SupportedAppProtocolReq")
    good = t.default_response(req, "SupportedAppProtocolReq")
    frame = build_frame(0x8001, t.codec.encode(good))
    t.send_raw(bytes([0x02, 0xFD]) + frame[2:], "SAP response with version 0x02")
    t.prev_key = "SupportedAppProtocolReq"
    _expect_stop(t, "a frame with protocol version 0x02", within=EVCC_MSG_TIMEOUT + 1.0)


@case(
    "TC_EVCC_CMN_ITB_V2GTP_002",
    purpose="The EVCC does not process a frame with an unknown payload type.",
    requirement="V2G20-092/096; facts §1.3",
    pre="SAP request sent",
    stimulus="supportedAppProtocolRes in a frame with payload type 0x7777",
    expected="No SessionSetupReq (the EVCC ignores the frame or closes)",
    fault="evcc_ignore_v2gtp_header",
)
def v2gtp_payload_type(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "SupportedAppProtocolReq")
    good = t.default_response(req, "SupportedAppProtocolReq")
    frame = build_frame(0x8001, t.codec.encode(good))
    t.send_raw(frame[:2] + b"\x77\x77" + frame[4:], "SAP response with payload type 0x7777")
    t.prev_key = "SupportedAppProtocolReq"
    _expect_stop(t, "a frame with payload type 0x7777", within=EVCC_MSG_TIMEOUT + 1.0)


@case(
    "TC_EVCC_CMN_ITB_V2GTP_003",
    purpose="The EVCC refuses a payload beyond its receive limit.",
    requirement="V2G20-094; facts §1.3",
    pre="SAP request sent; PIXIT max_payload is the EVCC's limit",
    stimulus="A valid supportedAppProtocolRes padded with an XML comment beyond max_payload",
    expected="No SessionSetupReq; the EVCC closes",
    fault="evcc_no_size_limit",
)
def v2gtp_oversize(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "SupportedAppProtocolReq")
    doc = t.codec.encode(t.default_response(req, "SupportedAppProtocolReq"))
    size = ctx.pics.pixit.max_payload + 1
    if isinstance(t.codec, XmlCodec):
        big = doc + b"<!--" + b"x" * max(size - len(doc) - 7, 1) + b"-->"
    else:  # EXI: bytes after the stream
        big = doc + bytes(max(size - len(doc), 1))
    try:
        t.send_raw(build_frame(0x8001, big), "oversize SAP response")
    except ChannelClosed:
        return  # refused while we were still sending: the expected outcome
    t.prev_key = "SupportedAppProtocolReq"
    _expect_stop(t, "an oversize frame", within=EVCC_MSG_TIMEOUT + 1.0)


# -- SessionSetup ------------------------------------------------------------------------------
@case(
    "TC_EVCC_CMN_VTB_SessionSetup_001",
    purpose="The EVCC starts with SessionID 0 and then uses the SessionID of the SECC.",
    requirement="facts §4.1",
    pre="SAP done",
    stimulus="A complete session",
    expected="SessionSetupReq SessionID 00..00; every later request carries the issued id",
    fault="evcc_wrong_session_id",
)
def session_ids(ctx: CaseContext) -> None:
    t = _default(ctx)
    t.serve()
    first = t.first("SessionSetupReq")
    check(first is not None, "no SessionSetupReq")
    check(t.first("SessionStopReq") is not None, "the session did not reach SessionStop")


@case(
    "TC_EVCC_CMN_ITB_SessionSetup_002",
    purpose="After a FAILED SessionSetupRes the EVCC ends the session.",
    requirement="facts §4.3 (FAILED ends the session)",
    pre="SAP done",
    stimulus="SessionSetupRes ResponseCode FAILED",
    expected="No AuthorizationSetupReq; the EVCC closes (SessionStop tolerated)",
    fault="evcc_ignore_errors",
)
def session_setup_failed(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "SessionSetupReq")
    _crafted(
        t,
        req,
        SessionSetupRes(header=header(t.session_id), response_code=ResponseCode.FAILED, evseid="X"),
    )
    _expect_stop(t, "SessionSetupRes FAILED")


@case(
    "TC_EVCC_CMN_ITB_SessionSetup_003",
    purpose="A schema-invalid response (EVSEID of 300 characters) ends the session.",
    requirement="design §Schemas are the contract; facts §4.3 row 1 (EVSEID <= 255)",
    pre="SAP done",
    stimulus="SessionSetupRes whose EVSEID has 300 characters",
    expected="No AuthorizationSetupReq; the EVCC closes",
    fault="evcc_deaf",
)
def session_setup_schema(ctx: CaseContext) -> None:
    from lxml import etree

    t = _default(ctx)
    req = _stop_at(t, "SessionSetupReq")
    good = t.default_response(req, "SessionSetupReq")
    root = xml_only(t.codec, "a schema-invalid document").to_element(good)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.endswith("EVSEID"):
            el.text = "E" * 300
    _crafted(t, req, None, raw=build_frame(0x8002, etree.tostring(root)))
    _expect_stop(t, "a schema-invalid SessionSetupRes")


@case(
    "TC_EVCC_CMN_ITB_Sequence_001",
    purpose="A response of the wrong type ends the session.",
    requirement="facts §4.3 (sequence)",
    pre="Session established",
    stimulus="ServiceDiscoveryRes in answer to AuthorizationSetupReq",
    expected="No AuthorizationReq; the EVCC closes (SessionStop tolerated)",
    fault="evcc_deaf",
)
def wrong_response(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "AuthorizationSetupReq")
    wrong = ServiceDiscoveryRes(
        header=header(t.session_id),
        response_code=ResponseCode.OK,
        service_renegotiation_supported=False,
        energy_transfer_service_list=ServiceList(
            service=[Service(service_id=int(ServiceId.MCS_BPT), free_service=True)]
        ),
    )
    _crafted(t, req, wrong)
    _expect_stop(t, "a ServiceDiscoveryRes to AuthorizationSetupReq")


@case(
    "TC_EVCC_CMN_ITB_SessionId_001",
    purpose="A response carrying another SessionID ends the session.",
    requirement="facts §4.1",
    pre="Session established",
    stimulus="AuthorizationSetupRes with SessionID FFFFFFFFFFFFFFFF",
    expected="No AuthorizationReq; the EVCC closes (SessionStop tolerated)",
    fault="evcc_deaf",
)
def response_session_id(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "AuthorizationSetupReq")
    good = t.default_response(req, "AuthorizationSetupReq")
    bad = dataclasses.replace(good, header=header(bytes(8 * [0xFF])))
    _crafted(t, req, bad)
    _expect_stop(t, "a response with another SessionID")


# -- Authorization -----------------------------------------------------------------------------
@case(
    "TC_EVCC_CMN_VTB_Authorization_001",
    purpose="The EVCC repeats AuthorizationReq while the SECC answers Ongoing.",
    requirement="facts §4.3 row 3 (EVCC loops while Ongoing), §5.1 (60 s ongoing timeout)",
    pics=("auth:EIM",),
    pre="AuthorizationSetup done, EIM offered",
    stimulus="AuthorizationRes EVSEProcessing=Ongoing twice, then Finished",
    expected="AuthorizationReq repeated after each Ongoing; then the session continues",
    fault="evcc_deaf",
)
def authorization_ongoing(ctx: CaseContext) -> None:
    t = _default(ctx, auth=AuthorizationType.EIM)
    req = _stop_at(t, "AuthorizationReq")
    for _ in range(2):
        ongoing = AuthorizationRes(
            header=header(t.session_id),
            response_code=ResponseCode.OK,
            evse_processing=Processing.ONGOING,
        )
        _crafted(t, req, ongoing)
        try:
            req = t.next_request(60.0 + t.tol)
        except ChannelClosed:
            raise CaseFailed("the EVCC closed while authorization was Ongoing") from None
        check(req is not None, "no AuthorizationReq within 60 s of Ongoing")
        name = type(req).__name__
        check(name == "AuthorizationReq", f"{name} after AuthorizationRes Ongoing")
        t.judge(req, name)
    t.seen.append(Seen(t.now(), "AuthorizationReq", req, None))
    _finish(t)


def _pnc_case(cid: str, purpose: str, fault: str) -> None:
    @case(
        cid,
        purpose=purpose,
        requirement="facts §6.2 Table 17, V2G20-2673/2674; facts §4.3 row 3 (GenChallenge)",
        pics=("auth:PnC", "tls"),
        pre="AuthorizationSetup done, PnC offered with a fresh GenChallenge",
        stimulus="Wait for AuthorizationReq",
        expected="PnC_AReqAuthorizationMode carries our GenChallenge and a signature that "
        "verifies with the contract chain up to the MO root",
        fault=fault,
    )
    def run(ctx: CaseContext) -> None:
        t = _default(ctx, auth=AuthorizationType.PNC)
        req = _stop_at(t, "AuthorizationReq")
        check(req.selected_authorization_service is AuthorizationType.PNC, "EIM selected")
        check(req.header.signature is not None, "AuthorizationReq without Signature")


_pnc_case(
    "TC_EVCC_CMN_VTB_Authorization_002",
    "The PnC AuthorizationReq is signed with the contract key.",
    "evcc_bad_signature",
)
_pnc_case(
    "TC_EVCC_CMN_VTB_Authorization_003",
    "The PnC AuthorizationReq answers the GenChallenge the SECC sent.",
    "evcc_wrong_challenge",
)


@case(
    "TC_EVCC_CMN_ITB_Authorization_004",
    purpose="A refused authorization ends the session.",
    requirement="facts §4.2 (WARNING_/FAILED_ codes); §4.3",
    pics=("auth:EIM",),
    pre="AuthorizationSetup done",
    stimulus="AuthorizationRes WARNING_EIMAuthorizationFailure, Finished",
    expected="No ServiceDiscoveryReq; the EVCC closes (SessionStop tolerated)",
    fault="evcc_deaf",
)
def authorization_refused(ctx: CaseContext) -> None:
    t = _default(ctx, auth=AuthorizationType.EIM)
    req = _stop_at(t, "AuthorizationReq")
    res = AuthorizationRes(
        header=header(t.session_id),
        response_code=ResponseCode.WARNING_EIM_AUTHORIZATION_FAILURE,
        evse_processing=Processing.FINISHED,
    )
    _crafted(t, req, res)
    _expect_stop(t, "WARNING_EIMAuthorizationFailure")


# -- services -----------------------------------------------------------------------------------
@case(
    "TC_EVCC_CMN_VTB_ServiceSelection_001",
    purpose="The EVCC selects an offered service and parameter set.",
    requirement="facts §4.3 rows 4-6, §4.5",
    pre="Authorized; the tester offers every claimed service and control mode",
    stimulus="ServiceDiscoveryRes / ServiceDetailRes with all claimed services and modes",
    expected="ServiceSelectionReq names an offered ServiceID and ParameterSetID",
    fault="evcc_bad_parameter_set",
)
def service_selection(ctx: CaseContext) -> None:
    t = ctx.secc()
    _stop_at(t, "DC_ChargeParameterDiscoveryReq")


@case(
    "TC_EVCC_CMN_ITB_ServiceSelection_002",
    purpose="Offered only a service it does not support, the EVCC does not select it.",
    requirement="facts §4.5",
    pre="Authorized",
    stimulus="ServiceDiscoveryRes offering only AC (ServiceID 1)",
    expected="No ServiceSelectionReq for AC; the EVCC ends the session",
    fault="evcc_force_service",
)
def service_unsupported(ctx: CaseContext) -> None:
    t = _default(ctx)
    t.offer_services = (ServiceId.AC,)
    r = t.serve(until=lambda s: s.name == "ServiceSelectionReq", wait=EVCC_MSG_TIMEOUT + 40.0)
    if r == "until":
        sel = t.seen[-1].message.selected_energy_transfer_service
        raise CaseFailed(f"the EVCC selected service {sel.service_id} which it does not support")


def _cpd_case(svc: str) -> None:
    @case(
        f"TC_EVCC_DC_VTB_ChargeParameterDiscovery_{svc}_001",
        purpose=f"{svc}: the EVCC sends the charge-parameter variant of the selected service.",
        requirement="facts §4.3 (libiso15118 variant rule), §4.4",
        pics=(f"service:{svc}",),
        pre=f"Only {svc} offered",
        stimulus="Serve up to DC_ChargeParameterDiscoveryReq",
        expected="BPT variant iff BPT service; limits >= 0, min <= max; voltage <= 1250 V",
        fault="evcc_wrong_charge_parameters",
    )
    def run(ctx: CaseContext) -> None:
        t = _default(ctx, service=SVC[svc])
        req = _stop_at(t, "DC_ChargeParameterDiscoveryReq")
        m = req.transfer_mode
        for lo, hi in (
            ("ev_minimum_charge_power", "ev_maximum_charge_power"),
            ("ev_minimum_charge_current", "ev_maximum_charge_current"),
            ("ev_minimum_voltage", "ev_maximum_voltage"),
        ):
            check(0 <= val(getattr(m, lo)) <= val(getattr(m, hi)), f"{lo} > {hi} or negative")
        check(val(m.ev_maximum_voltage) <= MCS_MAX_V, "EVMaximumVoltage above 1250 V")


for _svc in SVC:
    _cpd_case(_svc)


# -- full sessions ------------------------------------------------------------------------------
_PATH = (
    "SupportedAppProtocolReq",
    "SessionSetupReq",
    "AuthorizationSetupReq",
    "AuthorizationReq",
    "ServiceDiscoveryReq",
    "ServiceSelectionReq",
    "DC_ChargeParameterDiscoveryReq",
    "ScheduleExchangeReq",
    "DC_CableCheckReq",
    "DC_PreChargeReq",
    "PowerDeliveryReq",
    "DC_ChargeLoopReq",
    "SessionStopReq",
)


def _session_case(svc: str, ctl: str, auth: str, n: int) -> None:
    @case(
        f"TC_EVCC_DC_VTB_Session_{svc}_{ctl}_{auth}_{n:03d}",
        purpose=f"A complete {svc} {ctl} session with {auth}: every request in order and valid.",
        requirement="facts §4.3, §4.4, §5 (V2G_EVCC_Sequence_Performance_Time), §6.2",
        pics=(f"service:{svc}", f"control:{ctl}", f"auth:{auth}")
        + (("tls",) if auth == "PnC" else ()),
        pre=f"Only {svc} / {ctl} / {auth} offered",
        stimulus="Valid responses to every request; Terminate notification if the EVCC "
        "keeps charging",
        expected="The full sequence up to SessionStop(Terminate), no sequence error, right "
        "SessionID and variants, charge-loop pacing <= 0.25 s",
        fault="evcc_skip_cable_check",
    )
    def run(ctx: CaseContext) -> None:
        t = _default(ctx, service=SVC[svc], control=CTL[ctl], auth=AUTH[auth])
        t.serve()
        _declined(t)
        names = t.names()
        missing = [n for n in _PATH if n not in names]
        check(not missing, f"the session never sent {', '.join(missing)}")
        stop = t.first("SessionStopReq")
        assert stop is not None
        check(
            stop.message.charging_session is ChargingSession.TERMINATE,
            f"SessionStop({stop.message.charging_session.value})",
        )


for _svc in SVC:
    for _ctl in CTL:
        _session_case(_svc, _ctl, "EIM", 1)
        _session_case(_svc, _ctl, "PnC", 2)


# -- power --------------------------------------------------------------------------------------
@case(
    "TC_EVCC_DC_VTB_Power_001",
    purpose="The EVCC never asks for more current than the SECC announced.",
    requirement="facts §4.4; design §4 safety (never above any limit, both directions)",
    pics=("control:Scheduled",),
    pre="Scheduled session; the tester announces EVSEMaximumChargeCurrent 300 A",
    stimulus="A complete session",
    expected="Every EVTargetCurrent <= min(300 A, EVMaximumChargeCurrent)",
    fault="evcc_exceed_limit",
)
def power_limit(ctx: CaseContext) -> None:
    t = _default(ctx, control=ControlMode.SCHEDULED)
    t.evse["max_a"] = 300.0
    t.serve()
    check(t.count("DC_ChargeLoopReq") > 0, "no charge loop")


@case(
    "TC_EVCC_DC_VTB_Power_002",
    purpose="BPT sign convention: the EVCC's discharge limits follow the PICS.",
    requirement="facts §4.4 (BPT sign convention)",
    pics=("service:MCS_BPT",),
    pre="MCS_BPT offered",
    stimulus="A complete session",
    expected="Discharge limits in CPD and charge loop are magnitudes (or negative when PICS "
    "negative_discharge)",
    fault="evcc_negative_discharge",
)
def power_bpt_signs(ctx: CaseContext) -> None:
    t = _default(ctx, service=ServiceId.MCS_BPT)
    req = _stop_at(t, "DC_ChargeParameterDiscoveryReq")
    check_bpt_signs(req.transfer_mode, ctx.pics.negative_discharge, "CPD request")
    _finish(t)


# -- timing -------------------------------------------------------------------------------------
@case(
    "TC_EVCC_DC_VTB_Timing_001",
    purpose="The EVCC paces the charge loop within 0.25 s of each response.",
    requirement="facts §5.2 (V2G_EVCC_Sequence_Performance_Time 0.25 s in the loop)",
    pre="Charge loop running",
    stimulus="DC_ChargeLoopRes at once",
    expected="Every next DC_ChargeLoopReq within 0.25 s",
    fault="evcc_slow",
)
def timing_pacing(ctx: CaseContext) -> None:
    t = _default(ctx)
    t.serve()
    check(t.count("DC_ChargeLoopReq") >= 2, "fewer than two charge-loop cycles")


@case(
    "TC_EVCC_CMN_VTB_Timing_002",
    purpose="The EVCC sends each request within V2G_EVCC_Sequence_Performance_Time (40 s).",
    requirement="facts §5.1",
    pre="SAP done",
    stimulus="A complete session, every response at once",
    expected="No gap above 40 s before the next request",
    fault="evcc_very_slow",
)
def timing_sequence(ctx: CaseContext) -> None:
    t = _default(ctx)
    t.serve()
    check(t.first("SessionStopReq") is not None, "the EVCC ended the session before SessionStop")
    worst = max((s.gap or 0.0) for s in t.seen)
    ctx.log.note(t.now(), f"longest gap before a request {worst:.3f} s")


@case(
    "TC_EVCC_CMN_ITB_Timing_003",
    purpose="Without a SessionSetupRes the EVCC gives up after V2G_EVCC_Msg_Timeout (2 s).",
    requirement="facts §5.1 (V2G_EVCC_Msg_Timeout 2 s)",
    pre="SAP done",
    stimulus="No answer to SessionSetupReq",
    expected="The EVCC closes within 2 s (+ PIXIT tolerance) and sends nothing else",
    fault="evcc_patient",
)
def timing_msg_timeout(ctx: CaseContext) -> None:
    t = _default(ctx)
    _stop_at(t, "SessionSetupReq")
    t0 = t.now()
    try:
        req = t.next_request(EVCC_MSG_TIMEOUT + t.tol + 0.05)
    except ChannelClosed:
        took = t.now() - t0
        check(took >= EVCC_MSG_TIMEOUT - t.tol - 1e-9, f"gave up after {took:.3f} s, before 2 s")
        return
    if req is not None:
        raise CaseFailed(f"the EVCC sent {type(req).__name__} while waiting for SessionSetupRes")
    raise CaseFailed("the EVCC still waits for SessionSetupRes after 2 s")


@case(
    "TC_EVCC_DC_ITB_Timing_004",
    purpose="Without a DC_ChargeLoopRes the EVCC gives up after 0.5 s.",
    requirement="facts §5.2 (V2G_EVCC_Msg_Timeout 0.5 s for DC_ChargeLoopReq)",
    pre="Charge loop running",
    stimulus="No answer to the third DC_ChargeLoopReq",
    expected="The EVCC closes within 0.5 s (+ tolerance)",
    fault="evcc_patient",
)
def timing_loop_timeout(ctx: CaseContext) -> None:
    t = _default(ctx)
    _stop_at(t, "DC_ChargeLoopReq", 3)
    t0 = t.now()
    try:
        req = t.next_request(EVCC_MSG_TIMEOUT_LOOP + t.tol + 0.05)
    except ChannelClosed:
        took = t.now() - t0
        check(took >= EVCC_MSG_TIMEOUT_LOOP - t.tol - 1e-9, f"gave up after {took:.3f} s")
        return
    if req is not None:
        raise CaseFailed(f"the EVCC sent {type(req).__name__} while waiting for DC_ChargeLoopRes")
    raise CaseFailed("the EVCC still waits for DC_ChargeLoopRes after 0.5 s")


# -- notifications, pause/resume, renegotiation, metering --------------------------------------
def _notify(t: TesterSecc, note: EvseNotification, cycle: int = 3, **extra: Any) -> float:
    """Answer the ``cycle``-th DC_ChargeLoopReq with ``note`` (deaf SUTs get no notification)."""
    t.terminate_after = None
    req = _stop_at(t, "DC_ChargeLoopReq", cycle)
    t.loop_cycles += 1
    res = t.loop_response(req, note)
    res.evse_status.notification_max_delay = NOTIFY_DELAY
    _crafted(t, req, res)
    return t.now()


def _notification_case(
    cid: str,
    note: EvseNotification,
    pics: tuple[str, ...],
    expected: str,
    judge: Callable[[TesterSecc, float], None],
) -> None:
    @case(
        cid,
        purpose=f"The EVCC acts on EVSENotification={note.value} within NotificationMaxDelay.",
        requirement="facts §4.2 (evseNotificationType, NotificationMaxDelay), §4.3 rows 12-15",
        pics=pics,
        pre="Charge loop running (the EVCC would charge for another minute)",
        stimulus=f"DC_ChargeLoopRes with EVSEStatus {note.value}, NotificationMaxDelay "
        f"{NOTIFY_DELAY} s",
        expected=expected,
        fault="evcc_deaf",
    )
    def run(ctx: CaseContext) -> None:
        t = _default(ctx, duration_s=60.0)
        since = _notify(t, note)
        judge(t, since)


def _judge_stop(kind: ChargingSession) -> Callable[[TesterSecc, float], None]:
    def judge(t: TesterSecc, since: float) -> None:
        req = _until_other(t, since, NOTIFY_DELAY, "the notification")
        check(
            type(req).__name__ == "PowerDeliveryReq" and req.charge_progress is ChargeProgress.STOP,
            f"{type(req).__name__} instead of PowerDeliveryReq(Stop)",
        )
        _finish(t)
        stop = t.first("SessionStopReq")
        check(stop is not None, "no SessionStopReq")
        assert stop is not None
        check(
            stop.message.charging_session is kind,
            f"SessionStop({stop.message.charging_session.value}), expected {kind.value}",
        )

    return judge


def _judge_schedule(t: TesterSecc, since: float) -> None:
    req = _until_other(t, since, NOTIFY_DELAY, "ScheduleRenegotiation")
    check(
        type(req).__name__ == "PowerDeliveryReq"
        and req.charge_progress is ChargeProgress.SCHEDULE_RENEGOTIATION,
        f"{type(req).__name__} instead of PowerDeliveryReq(ScheduleRenegotiation)",
    )
    t.terminate_after = t.loop_cycles + 4
    _finish(t)
    names = t.names()
    i = names.index("PowerDeliveryReq", names.index("DC_ChargeLoopReq"))
    check("ScheduleExchangeReq" in names[i:], "no ScheduleExchangeReq after renegotiation")


def _judge_service(t: TesterSecc, since: float) -> None:
    req = _until_other(t, since, NOTIFY_DELAY, "ServiceRenegotiation")
    check(
        type(req).__name__ == "PowerDeliveryReq" and req.charge_progress is ChargeProgress.STOP,
        f"{type(req).__name__} instead of PowerDeliveryReq(Stop)",
    )
    t.terminate_after = t.loop_cycles + 4
    _finish(t)
    stops = [s for s in t.seen if s.name == "SessionStopReq"]
    check(bool(stops), "no SessionStopReq")
    check(
        stops[0].message.charging_session is ChargingSession.SERVICE_RENEGOTIATION,
        f"SessionStop({stops[0].message.charging_session.value})",
    )
    check(t.count("ServiceDiscoveryReq") >= 2, "no ServiceDiscoveryReq after SessionStop")


_notification_case(
    "TC_EVCC_DC_VTB_Notification_001",
    EvseNotification.TERMINATE,
    (),
    "PowerDeliveryReq(Stop) within NotificationMaxDelay, then SessionStop(Terminate)",
    _judge_stop(ChargingSession.TERMINATE),
)
_notification_case(
    "TC_EVCC_DC_VTB_Notification_002",
    EvseNotification.PAUSE,
    ("pause_resume",),
    "PowerDeliveryReq(Stop) within NotificationMaxDelay, then SessionStop(Pause)",
    _judge_stop(ChargingSession.PAUSE),
)
_notification_case(
    "TC_EVCC_CMN_VTB_ScheduleRenegotiation_001",
    EvseNotification.SCHEDULE_RENEGOTIATION,
    ("schedule_renegotiation",),
    "PowerDeliveryReq(ScheduleRenegotiation), ScheduleExchangeReq, PowerDeliveryReq(Start)",
    _judge_schedule,
)
_notification_case(
    "TC_EVCC_CMN_VTB_ServiceRenegotiation_001",
    EvseNotification.SERVICE_RENEGOTIATION,
    ("service_renegotiation",),
    "PowerDeliveryReq(Stop) ... SessionStop(ServiceRenegotiation), then ServiceDiscoveryReq",
    _judge_service,
)


@case(
    "TC_EVCC_CMN_VTB_PauseResume_001",
    purpose="After a pause the EVCC resumes with the paused SessionID.",
    requirement="facts §4.1 (OK_OldSessionJoined), §4.3 row 15",
    pics=("pause_resume",),
    pre="A session paused by EVSENotification=Pause",
    stimulus="The EVCC reconnects; SessionSetupRes OK_OldSessionJoined",
    expected="SessionSetupReq with the paused SessionID, then DC_ChargeParameterDiscoveryReq",
    fault="evcc_forget_pause",
)
def pause_resume(ctx: CaseContext) -> None:
    t = _default(ctx, duration_s=60.0)
    since = _notify(t, EvseNotification.PAUSE)
    _judge_stop(ChargingSession.PAUSE)(t, since)
    paused = t.session_id
    t2 = _default(ctx, duration_s=2.0)
    t2.paused = dict(t.paused)
    t2._paused_selection = t.selected
    req = _stop_at(t2, "SessionSetupReq")
    check(
        req.header.session_id == paused,
        f"SessionSetupReq with {req.header.session_id.hex()}, paused was {paused.hex()}",
    )
    _finish(t2)
    names = t2.names()
    check(
        names[names.index("SessionSetupReq") + 1] == "DC_ChargeParameterDiscoveryReq",
        "the resumed session did not continue at ChargeParameterDiscovery",
    )


def _metering_case(cid: str, auth: str, fault: str) -> None:
    @case(
        cid,
        purpose=f"The EVCC confirms the meter reading when asked ({auth}).",
        requirement="V2G20-1083/1084/1085; facts §4.3 row 12a (0x8102 side stream)",
        pics=("metering_confirmation", f"auth:{auth}") + (("tls",) if auth == "PnC" else ()),
        pre="Charge loop running",
        stimulus="DC_ChargeLoopRes with MeterInfo and EVSENotification=MeteringConfirmation",
        expected="MeteringConfirmationReq on 0x8102 within NotificationMaxDelay naming this "
        "session and meter"
        + ("; signature verifies with the contract chain" if auth == "PnC" else ""),
        fault=fault,
    )
    def run(ctx: CaseContext) -> None:
        t = _default(ctx, auth=AUTH[auth], duration_s=60.0)
        since = _notify(t, EvseNotification.METERING_CONFIRMATION)
        req = _until_other(t, since, NOTIFY_DELAY, "MeteringConfirmation")
        check(
            type(req).__name__ == "MeteringConfirmationReq",
            f"{type(req).__name__} instead of MeteringConfirmationReq",
        )
        data = req.signed_metering_data
        check(data.session_id == t.session_id, "SignedMeteringData names another session")
        check(data.meter_info.meter_id == "TESTMETER", f"meter {data.meter_info.meter_id}")
        if auth == "PnC":
            check(req.header.signature is not None, "unsigned MeteringConfirmationReq under PnC")


_metering_case("TC_EVCC_CMN_VTB_MeteringConfirmation_001", "EIM", "evcc_deaf")
_metering_case("TC_EVCC_CMN_VTB_MeteringConfirmation_002", "PnC", "evcc_bad_signature")


@case(
    "TC_EVCC_DC_ITB_WrongChargeParameter_001",
    purpose="After FAILED_WrongChargeParameter the EVCC ends the session.",
    requirement="facts §4.3",
    pre="Service selected",
    stimulus="DC_ChargeParameterDiscoveryRes FAILED_WrongChargeParameter",
    expected="No ScheduleExchangeReq; the EVCC closes (SessionStop tolerated)",
    fault="evcc_ignore_errors",
)
def cpd_failed(ctx: CaseContext) -> None:
    t = _default(ctx)
    req = _stop_at(t, "DC_ChargeParameterDiscoveryReq")
    good = t.default_response(req, "DC_ChargeParameterDiscoveryReq")
    bad = dataclasses.replace(good, response_code=ResponseCode.FAILED_WRONG_CHARGE_PARAMETER)
    assert isinstance(bad, DC_ChargeParameterDiscoveryRes)
    _crafted(t, req, bad)
    _expect_stop(t, "FAILED_WrongChargeParameter")


# -- TLS ----------------------------------------------------------------------------------------
def _tls_server(ctx: CaseContext, variant: str, manifest: Any = None) -> tuple[bool, str]:
    """Accept the EVCC with a server context ``variant``; True when it completed the handshake
    and sent its SAP request."""
    if ctx.pkis is None:
        raise Inconclusive("TLS cases need the PIXIT pki_dir")
    sctx = server_context(manifest or ctx.pkis.good, variant, client_root=ctx.pkis.good)
    raw = ctx.sut.raw_connection()
    raw.settimeout(5.0)
    try:
        s = sctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        ctx.log.note(0.0, f"handshake refused: {exc}")
        return False, str(exc)
    cipher = s.cipher()
    info = f"{s.version()} {cipher[0] if cipher else ''}"
    ctx.log.note(0.0, f"handshake completed: {info}")
    try:
        s.settimeout(3.0)
        data = s.recv(65536)
        frames = FrameDecoder().feed(data) if data else []
        peer = s.getpeercert(binary_form=True)
        return bool(frames), info + (" client-cert" if peer else " no-client-cert")
    except (ssl.SSLError, OSError) as exc:
        ctx.log.note(0.0, f"EVCC closed after the handshake: {exc}")
        return False, str(exc)
    finally:
        s.close()


@case(
    "TC_EVCC_CMN_VTB_TLS_001",
    purpose="The EVCC negotiates TLS 1.3 with a -20 suite and presents its OEM certificate.",
    requirement="V2G20-1264 (mutual TLS 1.3), Table 6, V2G20-2399",
    pics=("tls",),
    pre="The tester SECC accepts TLS 1.2 and 1.3 and every suite",
    stimulus="Accept the EVCC's connection",
    expected="TLSv1.3, a Table 6 suite, a client certificate, then a SAP request",
    fault="evcc_tls_no_client_cert",
)
def tls_valid(ctx: CaseContext) -> None:
    ok, info = _tls_server(ctx, "permissive")
    check(ok, f"no SAP request after the handshake ({info})")
    check(info.startswith("TLSv1.3"), f"negotiated {info}")
    check(
        "TLS_AES_256_GCM_SHA384" in info or "TLS_CHACHA20_POLY1305_SHA256" in info,
        f"suite outside Table 6: {info}",
    )
    check(info.endswith(" client-cert"), "the EVCC presented no certificate (V2G20-1264)")


@case(
    "TC_EVCC_CMN_ITB_TLS_002",
    purpose="The EVCC refuses a TLS 1.2-only SECC.",
    requirement="V2G20-1237 (no -20 over TLS <= 1.2)",
    pics=("tls",),
    pre="The tester SECC speaks TLS 1.2 only",
    stimulus="Accept the EVCC's connection",
    expected="Handshake refused; no SAP request",
    fault="evcc_tls12",
)
def tls12(ctx: CaseContext) -> None:
    ok, info = _tls_server(ctx, "tls12")
    check(not ok, f"the EVCC talked to a TLS 1.2 SECC ({info})")


@case(
    "TC_EVCC_CMN_ITB_TLS_003",
    purpose="The EVCC refuses an SECC chain from an unknown root.",
    requirement="V2G20-2399 (chain to a root the EVCC trusts)",
    pics=("tls",),
    pre="The tester SECC presents a certificate of another PKI",
    stimulus="Accept the EVCC's connection",
    expected="Handshake refused; no SAP request",
    fault="evcc_tls_trust_any",
)
def tls_unknown_root(ctx: CaseContext) -> None:
    if ctx.pkis is None:
        raise Inconclusive("TLS cases need the PIXIT pki_dir")
    ok, info = _tls_server(ctx, "permissive", ctx.pkis.other)
    check(not ok, f"the EVCC accepted an SECC of an unknown root ({info})")


def _tls_refusal(n: int, variant: str, purpose: str, req: str, what: str) -> None:
    @case(
        f"TC_EVCC_CMN_ITB_TLS_{n:03d}",
        purpose=purpose,
        requirement=req,
        pics=("tls",),
        pre=f"The tester SECC offers {what} only",
        stimulus="Accept the EVCC's connection",
        expected="Handshake refused; no SAP request",
        fault="evcc_tls_any_suite",
    )
    def run(ctx: CaseContext) -> None:
        ok, info = _tls_server(ctx, variant)
        check(not ok, f"the EVCC accepted {what} ({info})")


_tls_refusal(
    5,
    "aes128",
    "The EVCC refuses TLS_AES_128_GCM_SHA256 (not in the -20 profile).",
    "Table 6, V2G20-2458/2459",
    "the suite TLS_AES_128_GCM_SHA256",
)
_tls_refusal(
    6,
    "p256",
    "The EVCC refuses key exchange on P-256 (not in the -20 profile).",
    "Table 7, V2G20-1634/1637/1638",
    "the group prime256v1",
)


@case(
    "TC_EVCC_CMN_ITB_TLS_004",
    purpose="The EVCC refuses an expired SECC certificate.",
    requirement="V2G20-2399; facts §6.3",
    pics=("tls",),
    pre="The tester SECC presents a leaf that expired yesterday (right root)",
    stimulus="Accept the EVCC's connection",
    expected="Handshake refused; no SAP request",
    fault="evcc_tls_trust_any",
)
def tls_expired(ctx: CaseContext) -> None:
    if ctx.pkis is None:
        raise Inconclusive("TLS cases need the PIXIT pki_dir")
    ok, info = _tls_server(ctx, "permissive", ctx.pkis.expired)
    check(not ok, f"the EVCC accepted an expired SECC certificate ({info})")


# -- PowerDelivery(Standby) refused (facts §4.2 WARNING_StandbyNotAllowed) ------------------------
@case(
    "TC_EVCC_CMN_ITB_PowerDelivery_010",
    purpose="An EVCC whose PowerDelivery(Standby) is refused keeps charging.",
    requirement="facts §4.2 (WARNING_StandbyNotAllowed: power transfer goes on); §4.3",
    pics=("standby",),
    pre="Charge loop running; the EVCC under test asks for standby (PIXIT / its own plan)",
    stimulus="PowerDeliveryRes WARNING_StandbyNotAllowed to PowerDeliveryReq(Standby)",
    expected="The next DC_ChargeLoopReq still asks for power (EVMaximumChargePower or "
    "EVTargetCurrent > 0); no SessionStop because of the warning",
    fault="evcc_standby_despite_warning",
)
def power_delivery_standby_refused(ctx: CaseContext) -> None:
    t = _default(ctx, standby=(0.6, 0.6), duration_s=3.0)

    def standby(s: Seen) -> bool:
        return s.name == "PowerDeliveryReq" and s.message.charge_progress is ChargeProgress.STANDBY

    if t.serve(until=standby) != "until":
        raise Inconclusive("the EVCC did not ask for standby")
    req = t.seen[-1].message
    res = PowerDeliveryRes(
        header=header(t.session_id), response_code=ResponseCode.WARNING_STANDBY_NOT_ALLOWED
    )
    _crafted(t, req, res)
    t.serve(until=lambda s: s.name != "MeteringConfirmationReq")
    nxt = t.seen[-1]
    check(nxt.name == "DC_ChargeLoopReq", f"{nxt.name} after WARNING_StandbyNotAllowed")
    mode = nxt.message.control_mode
    power = getattr(mode, "ev_maximum_charge_power", None)
    asked = val(power) if power is not None else val(mode.ev_target_current)
    check(abs(asked) > 0, "the EVCC asks for no power although its standby was refused")


# -- authorization warning: retry with EIM (facts §4.2: -20 lets the session go on) -------------
@case(
    "TC_EVCC_CMN_VTB_Authorization_010",
    purpose="After a WARNING on its PnC authorization the EVCC retries with EIM when offered.",
    requirement="facts §4.2 (AuthorizationRes WARNING_ codes do not end a -20 session); §4.3",
    pics=("auth:PnC", "auth:EIM"),
    pre="AuthorizationSetup offered PnC and EIM; the EVCC under test uses PnC",
    stimulus="AuthorizationRes WARNING_GeneralPnCAuthorizationError, Finished",
    expected="The next request is an AuthorizationReq with SelectedAuthorizationService=EIM",
    fault="evcc_no_auth_retry",
)
def authorization_warning_retry(ctx: CaseContext) -> None:
    t = _default(ctx, auth=AuthorizationType.PNC)
    t.offer_auth = (AuthorizationType.PNC, AuthorizationType.EIM)
    req = _stop_at(t, "AuthorizationReq")
    if req.selected_authorization_service is not AuthorizationType.PNC:
        raise Inconclusive("the EVCC did not use PnC")
    res = AuthorizationRes(
        header=header(t.session_id),
        response_code=ResponseCode.WARNING_GENERAL_PNC_AUTHORIZATION_ERROR,
        evse_processing=Processing.FINISHED,
    )
    _crafted(t, req, res)
    r = t.serve(until=lambda s: True, wait=5.0)
    check(r == "until", f"the EVCC gave up after the warning ({r})")
    nxt = t.seen[-1]
    check(nxt.name == "AuthorizationReq", f"{nxt.name} after the authorization warning")
    chosen = nxt.message.selected_authorization_service
    check(chosen is AuthorizationType.EIM, f"retried with {chosen.value}, expected EIM")
