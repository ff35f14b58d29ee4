"""One handler per request the SECC serves: ``handle_x(req, ctx) -> (response, outcome)``.

Pure in the libiso15118 sense: a handler reads the request and the :class:`SeccContext`, may
update the context (and ask the power layer), and returns the response plus an outcome label that
``transitions.SECC_TABLE`` maps to the next state. Errors are raised as ``SessionError``
subclasses carrying the response code; the session turns them into a FAILED answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from mcscomm import sap
from mcscomm.messages import (
    AuthorizationReq,
    AuthorizationRes,
    AuthorizationSetupReq,
    AuthorizationSetupRes,
    CertificateInstallationReq,
    MeteringConfirmationReq,
    MeteringConfirmationRes,
    PowerDeliveryReq,
    PowerDeliveryRes,
    ScheduleExchangeReq,
    ScheduleExchangeRes,
    ServiceDetailReq,
    ServiceDetailRes,
    ServiceDiscoveryReq,
    ServiceDiscoveryRes,
    ServiceSelectionReq,
    ServiceSelectionRes,
    SessionSetupReq,
    SessionSetupRes,
    SessionStopReq,
    SessionStopRes,
    SupportedAppProtocolReq,
    SupportedAppProtocolRes,
)
from mcscomm.messages.common_messages import (
    ChargingSchedule,
    Dynamic_SEReqControlMode,
    Dynamic_SEResControlMode,
    EIM_ASResAuthorizationMode,
    Parameter,
    PnC_AReqAuthorizationMode,
    PnC_ASResAuthorizationMode,
    PowerSchedule,
    PowerScheduleEntry,
    PowerScheduleEntryList,
    Scheduled_EVPPTControlMode,
    Scheduled_SEReqControlMode,
    Scheduled_SEResControlMode,
    ScheduleTuple,
    Service,
    ServiceList,
    ServiceParameterList,
    VehicleCheckInReq,
    VehicleCheckInRes,
    VehicleCheckOutReq,
    VehicleCheckOutRes,
)
from mcscomm.messages.common_messages import ParameterSet as MsgParameterSet
from mcscomm.messages.common_types import EVSEStatus, MessageHeader, MeterInfo
from mcscomm.messages.dc import (
    BPT_DC_CPDReqEnergyTransferMode,
    BPT_DC_CPDResEnergyTransferMode,
    BPT_Dynamic_DC_CLReqControlMode,
    BPT_Dynamic_DC_CLResControlMode,
    BPT_Scheduled_DC_CLReqControlMode,
    BPT_Scheduled_DC_CLResControlMode,
    DC_CableCheckReq,
    DC_CableCheckRes,
    DC_ChargeLoopReq,
    DC_ChargeLoopRes,
    DC_ChargeParameterDiscoveryReq,
    DC_ChargeParameterDiscoveryRes,
    DC_CPDResEnergyTransferMode,
    DC_PreChargeReq,
    DC_PreChargeRes,
    DC_WeldingDetectionReq,
    DC_WeldingDetectionRes,
    Dynamic_DC_CLReqControlMode,
    Dynamic_DC_CLResControlMode,
    Scheduled_DC_CLReqControlMode,
    Scheduled_DC_CLResControlMode,
)
from mcscomm.messages.enums import (
    AuthorizationType,
    ChannelSelection,
    ChargeProgress,
    ChargingSession,
    ControlMode,
    EvCheckOutStatus,
    EvseCheckOutStatus,
    EvseNotification,
    PowerToleranceAcceptance,
    Processing,
    ResponseCode,
    ServiceId,
)
from mcscomm.power.controller import EvRequest
from mcscomm.power.limits import INF, LimitsError, PartyLimits
from mcscomm.power.schedule import PowerSchedule as PowerScheduleModel
from mcscomm.power.schedule import ProfileVerdict, validate_ev_power_profile
from mcscomm.power.schedule import ScheduleTuple as PowerScheduleTuple
from mcscomm.security.errors import SignatureError
from mcscomm.session import errors
from mcscomm.session.config import PausedSession, Profile
from mcscomm.session.context import EnergyRequest, SeccContext, session_time, timestamp
from mcscomm.session.convert import discharge_out, magnitude_in, rn, rn_down, value
from mcscomm.session.events import (
    MeteringConfirmed,
    PowerSample,
    ProtocolError,
    ServiceSelected,
    SessionEstablished,
    SessionPaused,
    SessionResumed,
)
from mcscomm.session.installation import certificate_installation
from mcscomm.session.services import (
    MCS_SERVICES,
    find_parameter_set,
    is_bidirectional,
    parameter_sets,
)
from mcscomm.session.signing import MO_ROOT

Handler = Callable[[Any, SeccContext], tuple[Any, str]]
_ZERO_ID = b"\x00" * 8


def _header(ctx: SeccContext) -> MessageHeader:
    return MessageHeader(session_id=ctx.session_id, timestamp=timestamp(ctx.now))


def _lenient(ctx: SeccContext) -> bool:
    return ctx.config.profile is Profile.LENIENT


# -- SupportedAppProtocol (facts §3) --------------------------------------------------------------
def handle_supported_app_protocol(
    req: SupportedAppProtocolReq, ctx: SeccContext
) -> tuple[SupportedAppProtocolRes, str]:
    """Choose the best -20 DC entry (``mcscomm.sap``). -20 only over TLS 1.3 (V2G20-2356),
    unless the lenient profile allows -20 over plain TCP (as Josev runs it by default)."""
    result = sap.negotiate(req, tls13=ctx.tls or _lenient(ctx))
    return result.response, "ok" if result.selected is not None else "failed"


# -- SessionSetup ---------------------------------------------------------------------------------
def handle_session_setup(req: SessionSetupReq, ctx: SeccContext) -> tuple[SessionSetupRes, str]:
    """New session (random 8-byte id) or join a paused one (OK_OldSessionJoined, facts §4.1)."""
    sid = req.header.session_id
    paused = ctx.config.store.take(sid, ctx.now) if sid != _ZERO_ID else None
    if paused is not None and paused.evccid == req.evccid:
        if ctx.peer_cert_hash is not None and paused.peer_cert_hash != ctx.peer_cert_hash:
            # libiso15118 session_setup: a resume must come with the same TLS client
            # certificate; keep the paused session for its owner and refuse this one.
            ctx.config.store.put(paused)
            raise errors.UnknownSession(
                f"SessionID {sid.hex()}: TLS client certificate differs from the paused one"
            )
        ctx.session_id = sid
        ctx.evccid = req.evccid
        ctx.resumed = True
        ctx.service = paused.service
        ctx.control_mode = paused.control_mode
        sets = parameter_sets(paused.service, (paused.control_mode,))
        ctx.parameter_sets = {paused.service: sets}
        ctx.parameter_set = find_parameter_set(sets, paused.parameter_set_id) or sets[0]
        ctx.authorized = True
        ctx.events.append(SessionResumed(t=ctx.now, session_id=sid.hex()))
        ctx.events.append(SessionEstablished(t=ctx.now, session_id=sid.hex(), resumed=True))
        res = SessionSetupRes(
            header=_header(ctx),
            response_code=ResponseCode.OK_OLD_SESSION_JOINED,
            evseid=ctx.config.evseid,
        )
        return res, "resumed"
    if paused is not None:  # someone else's paused id: keep it for its owner
        ctx.config.store.put(paused)
    new_id = ctx.config.random_bytes(8)
    while new_id == _ZERO_ID:
        new_id = ctx.config.random_bytes(8)
    if ctx.config.faults.adopt_session_id and sid != _ZERO_ID:
        new_id = sid  # deliberate defect: keeps the EVCC's unknown id (conformance self-test)
    ctx.session_id = new_id
    ctx.evccid = req.evccid
    ctx.events.append(SessionEstablished(t=ctx.now, session_id=new_id.hex()))
    res = SessionSetupRes(
        header=_header(ctx),
        response_code=ResponseCode.OK_NEW_SESSION_ESTABLISHED,
        evseid=ctx.config.evseid,
    )
    return res, "new"


# -- Authorization --------------------------------------------------------------------------------
def handle_authorization_setup(
    req: AuthorizationSetupReq, ctx: SeccContext
) -> tuple[AuthorizationSetupRes, str]:
    """Offer EIM and/or PnC (PnC only over TLS); a fresh GenChallenge for PnC."""
    offered = tuple(
        a for a in ctx.config.auth_services if a is not AuthorizationType.PNC or ctx.tls
    ) or (AuthorizationType.EIM,)
    ctx.offered_auth = offered
    mode: EIM_ASResAuthorizationMode | PnC_ASResAuthorizationMode
    if AuthorizationType.PNC in offered:
        ctx.gen_challenge = ctx.config.random_bytes(16)
        mode = PnC_ASResAuthorizationMode(gen_challenge=ctx.gen_challenge)
    else:
        mode = EIM_ASResAuthorizationMode()
    res = AuthorizationSetupRes(
        header=_header(ctx),
        response_code=ResponseCode.OK,
        authorization_services=list(offered),
        certificate_installation_service=ctx.config.certificate_installation
        and AuthorizationType.PNC in offered,
        authorization_mode=mode,
    )
    return res, "ok"


def _emaid_of(der: bytes) -> str | None:
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else None
    except Exception:  # an unparsable certificate just has no EMAID for the backend
        return None


def _verify(ctx: SeccContext, signature: Any, fragment: Any, chain: list[bytes]) -> None:
    """Verify a signed fragment; SignatureError propagates unless the fault hook swallows it."""
    if ctx.config.faults.accept_bad_signature:
        return
    if ctx.signatures is None:
        raise SignatureError("no signature verifier configured (no PKI)")
    ctx.signatures.verify(signature, fragment, chain, MO_ROOT, ctx.now)


#: Authorization outcomes answered with a WARNING code after which the session goes on: the EVCC
#: may send another AuthorizationReq (e.g. EIM after a refused PnC contract) or SessionStop.
_AUTH_WARNINGS = (
    errors.ChallengeInvalid,
    errors.AuthorizationFailed,
    errors.AuthorizationSelectionInvalid,
)


def handle_authorization(req: AuthorizationReq, ctx: SeccContext) -> tuple[AuthorizationRes, str]:
    """EIM or PnC (signature with the contract key, GenChallenge); Ongoing while the backend
    decides, at most V2G_SECC_Ongoing_Performance_Time (55 s, facts §5.1).

    WARNING codes (ChallengeInvalid, AuthorizationSelectionInvalid, EIMAuthorizationFailure,
    GeneralPnCAuthorizationError) do not end the session: -20 reserves FAILED_* for "the session
    ends" and WARNING_* for "processed, not successful" (facts §4.2), so the SECC stays ready for
    another AuthorizationReq (EVSEProcessing=Finished, not authorized). ServiceDiscovery stays
    refused until an authorization succeeds. After ``SeccConfig.max_authorization_attempts``
    warnings, or when the backend never decided within the ongoing time, the warning is final.
    """
    try:
        return _authorize(req, ctx)
    except _AUTH_WARNINGS as exc:
        if exc.final or exc.response_code is None:
            raise
        ctx.authorization_warnings += 1
        if ctx.authorization_warnings >= ctx.config.max_authorization_attempts:
            raise
        ctx.ongoing_since.pop("AuthorizationReq", None)
        # nothing of the refused attempt stays (a later EIM session has no contract to verify
        # MeteringConfirmation with)
        ctx.contract_chain = None
        ctx.emaid = None
        ctx.selected_auth = None
        res = AuthorizationRes(
            header=_header(ctx),
            response_code=ResponseCode(exc.response_code),
            evse_processing=Processing.FINISHED,
        )
        return res, "warning"


def _authorize(req: AuthorizationReq, ctx: SeccContext) -> tuple[AuthorizationRes, str]:
    selected = req.selected_authorization_service
    if selected not in ctx.offered_auth:
        raise errors.AuthorizationSelectionInvalid(f"{selected.value} was not offered")
    mode = req.authorization_mode
    if selected is AuthorizationType.PNC:
        if not isinstance(mode, PnC_AReqAuthorizationMode):
            raise errors.AuthorizationSelectionInvalid("PnC selected without PnC mode")
        if mode.gen_challenge != ctx.gen_challenge:
            raise errors.ChallengeInvalid("GenChallenge differs from the one sent")
        ccc = mode.contract_certificate_chain
        chain = [ccc.certificate, *ccc.sub_certificates.certificate]
        try:
            _verify(ctx, req.header.signature, mode, chain)
        except SignatureError as exc:
            raise errors.SignatureFailure(f"AuthorizationReq: {exc}") from exc
        ctx.contract_chain = chain
        ctx.emaid = _emaid_of(ccc.certificate)
    elif isinstance(mode, PnC_AReqAuthorizationMode):
        raise errors.AuthorizationSelectionInvalid("EIM selected with PnC mode")
    ctx.selected_auth = selected
    decision = ctx.config.authorizer.decide(selected, ctx.emaid, ctx.now)
    if decision is None:
        since = ctx.ongoing_since.setdefault("AuthorizationReq", ctx.now)
        if ctx.now - since >= ctx.config.timings.secc_ongoing_performance_s:
            late = _auth_failure(selected, "backend did not decide within the ongoing time")
            late.final = True  # V2G_SECC_Ongoing_Performance_Time is over: the session ends
            raise late
        res = AuthorizationRes(
            header=_header(ctx), response_code=ResponseCode.OK, evse_processing=Processing.ONGOING
        )
        return res, "ongoing"
    if not decision:
        raise _auth_failure(selected, "backend refused")
    ctx.authorized = True
    res = AuthorizationRes(
        header=_header(ctx), response_code=ResponseCode.OK, evse_processing=Processing.FINISHED
    )
    return res, "ok"


def _auth_failure(selected: AuthorizationType, detail: str) -> errors.AuthorizationFailed:
    exc = errors.AuthorizationFailed(detail)
    if selected is AuthorizationType.PNC:
        exc.response_code = ResponseCode.WARNING_GENERAL_PNC_AUTHORIZATION_ERROR.value
    return exc


def handle_certificate_installation(
    req: CertificateInstallationReq, ctx: SeccContext
) -> tuple[Any, str]:
    """Install a contract certificate for a truck without one (only when offered)."""
    if not ctx.config.certificate_installation or AuthorizationType.PNC not in ctx.offered_auth:
        raise errors.SequenceError("CertificateInstallation was not offered")
    return certificate_installation(req, ctx, _header(ctx)), "ok"


# -- Services -------------------------------------------------------------------------------------
def handle_service_discovery(
    req: ServiceDiscoveryReq, ctx: SeccContext
) -> tuple[ServiceDiscoveryRes, str]:
    """The energy services we offer (BPT only with a bidirectional charger), filtered by the
    EV's SupportedServiceIDs when given."""
    if not ctx.authorized:
        raise errors.SequenceError("ServiceDiscovery before a finished Authorization")
    services = [
        s for s in ctx.config.services if not is_bidirectional(s) or ctx.power.bidirectional
    ]
    if req.supported_service_ids is not None:
        wanted = set(req.supported_service_ids.service_id)
        services = [s for s in services if int(s) in wanted] or services
    ctx.offered_services = tuple(services)
    ctx.parameter_sets = {s: parameter_sets(s, ctx.config.control_modes) for s in services}
    res = ServiceDiscoveryRes(
        header=_header(ctx),
        response_code=ResponseCode.OK,
        service_renegotiation_supported=ctx.config.service_renegotiation,
        energy_transfer_service_list=ServiceList(
            service=[Service(service_id=int(s), free_service=True) for s in services]
        ),
    )
    return res, "ok"


def handle_service_detail(req: ServiceDetailReq, ctx: SeccContext) -> tuple[ServiceDetailRes, str]:
    """Parameter sets of one offered service (facts §4.5); FAILED_ServiceIDInvalid otherwise."""
    try:
        service = ServiceId(req.service_id)
    except ValueError:
        service = None
    if service is None or service not in ctx.parameter_sets:
        raise errors.ServiceIdInvalid(f"ServiceID {req.service_id} was not offered")
    ctx.details_sent += 1
    if ctx.details_sent > ctx.config.max_service_details:
        raise errors.SequenceError("too many ServiceDetailReq")
    sets = [
        MsgParameterSet(
            parameter_set_id=ps.set_id,
            parameter=[Parameter(name=n, int_value=v) for n, v in ps.parameters],
        )
        for ps in ctx.parameter_sets[service]
    ]
    res = ServiceDetailRes(
        header=_header(ctx),
        response_code=ResponseCode.OK,
        service_id=int(service),
        service_parameter_list=ServiceParameterList(parameter_set=sets),
    )
    return res, "ok"


def handle_service_selection(
    req: ServiceSelectionReq, ctx: SeccContext
) -> tuple[ServiceSelectionRes, str]:
    """Accept an offered service and parameter set; FAILED_ServiceSelectionInvalid otherwise."""
    sel = req.selected_energy_transfer_service
    try:
        service = ServiceId(sel.service_id)
    except ValueError:
        service = None
    if service is None or service not in ctx.parameter_sets:
        raise errors.ServiceSelectionInvalid(f"ServiceID {sel.service_id} was not offered")
    ps = find_parameter_set(ctx.parameter_sets[service], sel.parameter_set_id)
    if ps is None:
        raise errors.ServiceSelectionInvalid(
            f"ParameterSetID {sel.parameter_set_id} was not offered for {service.name}"
        )
    ctx.service = service
    ctx.parameter_set = ps
    ctx.control_mode = ps.control
    ctx.events.append(
        ServiceSelected(
            t=ctx.now,
            service=service.name,
            parameter_set_id=ps.set_id,
            control_mode=ps.control.name,
        )
    )
    return ServiceSelectionRes(header=_header(ctx), response_code=ResponseCode.OK), "ok"


# -- DC_ChargeParameterDiscovery ------------------------------------------------------------------
def _ev_limits_from_cpd(mode: Any, bpt: bool, lenient: bool) -> PartyLimits:
    def m(r: Any, name: str) -> float:
        return magnitude_in(r, name, lenient)

    kw: dict[str, float] = dict(
        max_charge_power_w=m(mode.ev_maximum_charge_power, "EVMaximumChargePower"),
        min_charge_power_w=m(mode.ev_minimum_charge_power, "EVMinimumChargePower"),
        max_charge_current_a=m(mode.ev_maximum_charge_current, "EVMaximumChargeCurrent"),
        min_charge_current_a=m(mode.ev_minimum_charge_current, "EVMinimumChargeCurrent"),
        max_voltage_v=m(mode.ev_maximum_voltage, "EVMaximumVoltage"),
        min_voltage_v=m(mode.ev_minimum_voltage, "EVMinimumVoltage"),
        max_discharge_power_w=0.0,
        max_discharge_current_a=0.0,
    )
    if bpt:
        kw.update(
            max_discharge_power_w=m(mode.ev_maximum_discharge_power, "EVMaximumDischargePower"),
            min_discharge_power_w=m(mode.ev_minimum_discharge_power, "EVMinimumDischargePower"),
            max_discharge_current_a=m(
                mode.ev_maximum_discharge_current, "EVMaximumDischargeCurrent"
            ),
            min_discharge_current_a=m(
                mode.ev_minimum_discharge_current, "EVMinimumDischargeCurrent"
            ),
        )
    for k in ("max_charge_power_w", "max_charge_current_a", "max_voltage_v"):
        if kw[k] <= 0:
            raise errors.WrongChargeParameter(f"EV {k} must be > 0")
    try:
        return PartyLimits("EV", **kw)
    except LimitsError as exc:
        raise errors.WrongChargeParameter(str(exc)) from exc


def _cpd_res_mode(lim: PartyLimits, bpt: bool, negative: bool) -> DC_CPDResEnergyTransferMode:
    base: dict[str, Any] = dict(
        evse_maximum_charge_power=rn_down(lim.max_charge_power_w),
        evse_minimum_charge_power=rn(lim.min_charge_power_w),
        evse_maximum_charge_current=rn_down(lim.max_charge_current_a),
        evse_minimum_charge_current=rn(lim.min_charge_current_a),
        evse_maximum_voltage=rn_down(lim.max_voltage_v),
        evse_minimum_voltage=rn(lim.min_voltage_v),
    )
    if not bpt:
        return DC_CPDResEnergyTransferMode(**base)
    return BPT_DC_CPDResEnergyTransferMode(
        **base,
        evse_maximum_discharge_power=discharge_out(lim.max_discharge_power_w, negative),
        evse_minimum_discharge_power=discharge_out(lim.min_discharge_power_w, negative),
        evse_maximum_discharge_current=discharge_out(lim.max_discharge_current_a, negative),
        evse_minimum_discharge_current=discharge_out(lim.min_discharge_current_a, negative),
    )


def handle_dc_charge_parameter_discovery(
    req: DC_ChargeParameterDiscoveryReq, ctx: SeccContext
) -> tuple[DC_ChargeParameterDiscoveryRes, str]:
    """Negotiate the envelope. The BPT variant iff a BPT service was selected, else
    FAILED_WrongChargeParameter (libiso15118 dc_charge_parameter_discovery.cpp)."""
    assert ctx.service is not None and ctx.control_mode is not None
    bpt = is_bidirectional(ctx.service)
    mode = req.transfer_mode
    if ctx.config.faults.skip_parameter_checks:  # deliberate defect: any variant goes
        bpt = isinstance(mode, BPT_DC_CPDReqEnergyTransferMode)
    if isinstance(mode, BPT_DC_CPDReqEnergyTransferMode) != bpt:
        raise errors.WrongChargeParameter(
            f"{type(mode).__name__} does not fit the selected service {ctx.service.name}"
        )
    ev = _ev_limits_from_cpd(mode, bpt, _lenient(ctx))
    ctx.ev_limits = ev
    try:
        ctx.power.negotiate(
            ev,
            bidirectional=bpt,
            mcs=ctx.service in MCS_SERVICES,
            scheduled=ctx.control_mode is ControlMode.SCHEDULED,
            now=ctx.now,
        )
    except LimitsError as exc:
        raise errors.WrongChargeParameter(f"no common envelope: {exc}") from exc
    lim = ctx.power.evse_limits(ctx.now)
    if not bpt:
        lim = lim.without_discharge()
    ctx.evse_limits = lim
    res = DC_ChargeParameterDiscoveryRes(
        header=_header(ctx),
        response_code=ResponseCode.OK,
        transfer_mode=_cpd_res_mode(lim, bpt, ctx.config.negative_discharge),
    )
    return res, "ok"


# -- ScheduleExchange -----------------------------------------------------------------------------
def _power_schedule(ps: Any, anchor: int, sign: float) -> PowerSchedule:
    # ps is already on the wire grid (see _on_wire): whole-second durations, wire powers
    entries = [
        PowerScheduleEntry(duration=max(1, round(d)), power=rn_down(sign * p))
        for d, p in ps.entries
    ]
    tol = ps.power_tolerance_w
    return PowerSchedule(
        time_anchor=anchor,
        power_tolerance=rn_down(tol) if tol > 0 else None,
        power_schedule_entries=PowerScheduleEntryList(power_schedule_entry=entries),
    )


def _schedule_tuples(offers: list[PowerScheduleTuple], ctx: SeccContext) -> list[ScheduleTuple]:
    anchor = timestamp(ctx.now)
    sign = -1.0 if ctx.config.negative_discharge else 1.0
    out = []
    for o in offers:
        discharging = None
        if o.discharging is not None:
            discharging = ChargingSchedule(
                power_schedule=_power_schedule(o.discharging, anchor, sign)
            )
        out.append(
            ScheduleTuple(
                schedule_tuple_id=o.schedule_tuple_id,
                charging_schedule=ChargingSchedule(
                    power_schedule=_power_schedule(o.charging, anchor, 1.0)
                ),
                discharging_schedule=discharging,
            )
        )
    return out


def handle_schedule_exchange(
    req: ScheduleExchangeReq, ctx: SeccContext
) -> tuple[ScheduleExchangeRes, str]:
    """Scheduled: up to 3 ScheduleTuples (with discharging schedules for BPT) from the backend
    plan; Dynamic: departure/SoC targets. Ongoing for the configured rounds (≤ 55 s)."""
    assert ctx.control_mode is not None
    scheduled = ctx.control_mode is ControlMode.SCHEDULED
    mode = req.control_mode
    if isinstance(mode, Scheduled_SEReqControlMode) != scheduled or not isinstance(
        mode, Scheduled_SEReqControlMode | Dynamic_SEReqControlMode
    ):
        raise errors.WrongChargeParameter(
            f"{type(mode).__name__} does not fit the selected control mode {ctx.control_mode.name}"
        )
    ctx.schedule_request = _energy_request(mode, ctx.now)
    ctx.maximum_supporting_points = req.maximum_supporting_points
    if ctx.schedule_rounds < ctx.config.schedule_exchange_ongoing_rounds:
        ctx.schedule_rounds += 1
        since = ctx.ongoing_since.setdefault("ScheduleExchangeReq", ctx.now)
        if ctx.now - since < ctx.config.timings.secc_ongoing_performance_s:
            pending: Scheduled_SEResControlMode | Dynamic_SEResControlMode = (
                Dynamic_SEResControlMode()
                if not scheduled
                else Scheduled_SEResControlMode(
                    schedule_tuple=_schedule_tuples(_offers(req, ctx)[:1], ctx)
                )
            )
            res = ScheduleExchangeRes(
                header=_header(ctx),
                response_code=ResponseCode.OK,
                evse_processing=Processing.ONGOING,
                control_mode=pending,
            )
            return res, "ongoing"
    ctx.schedule_rounds = 0
    ctx.ongoing_since.pop("ScheduleExchangeReq", None)
    result_mode: Scheduled_SEResControlMode | Dynamic_SEResControlMode
    if scheduled:
        offers = _offers(req, ctx)
        ctx.schedules = offers
        result_mode = Scheduled_SEResControlMode(schedule_tuple=_schedule_tuples(offers, ctx))
    else:
        assert isinstance(mode, Dynamic_SEReqControlMode)
        result_mode = Dynamic_SEResControlMode(
            departure_time=mode.departure_time,
            target_soc=mode.target_soc,
            minimum_soc=mode.minimum_soc,
        )
    res = ScheduleExchangeRes(
        header=_header(ctx),
        response_code=ResponseCode.OK,
        evse_processing=Processing.FINISHED,
        control_mode=result_mode,
    )
    return res, "ok"


def _energy_request(
    mode: Scheduled_SEReqControlMode | Dynamic_SEReqControlMode, now: float
) -> EnergyRequest:
    """The truck's needs as sent in ScheduleExchangeReq (NaN where it sent nothing)."""
    nan = math.nan
    dep = mode.departure_time
    kw: dict[str, Any] = {}
    if isinstance(mode, Dynamic_SEReqControlMode):
        kw = dict(
            max_v2x_energy_wh=value(mode.ev_maximum_v2x_energy_request, nan),
            min_v2x_energy_wh=value(mode.ev_minimum_v2x_energy_request, nan),
            target_soc=None if mode.target_soc is None else float(mode.target_soc),
            minimum_soc=None if mode.minimum_soc is None else float(mode.minimum_soc),
        )
    return EnergyRequest(
        received_at=now,
        departure_s=nan if dep is None else float(dep),
        target_energy_wh=value(mode.ev_target_energy_request, nan),
        max_energy_wh=value(mode.ev_maximum_energy_request, nan),
        min_energy_wh=value(mode.ev_minimum_energy_request, nan),
        **kw,
    )


def _offers(req: ScheduleExchangeReq, ctx: SeccContext) -> list[PowerScheduleTuple]:
    max_entries = min(req.maximum_supporting_points, 1024)
    try:
        # anchored at a whole second so TimeAnchor (integer seconds) maps back exactly
        start = math.floor(ctx.now)
        offers = ctx.power.schedules(
            start,
            ctx.config.schedule_duration_s,
            max(12, max_entries),
            ctx.config.schedule_power_tolerance_w,
        )
    except LimitsError as exc:
        raise errors.WrongChargeParameter(f"cannot build a schedule: {exc}") from exc
    return [
        dataclasses.replace(
            o,
            charging=_on_wire(o.charging),
            discharging=None if o.discharging is None else _on_wire(o.discharging),
        )
        for o in offers
    ]


def _on_wire(ps: PowerScheduleModel) -> PowerScheduleModel:
    """``ps`` exactly as the EV will read it: change times on whole seconds (Duration is an
    unsignedInt, facts §4.4) and powers as sent (RationalNumber, rounded towards zero).

    The backend plan changes at fractional session times (its t0 is the fractional start of the
    session, steps are scaled), and truncating every Duration on its own both moved the change
    points and let them drift. The EV follows the wire schedule, so the SECC checks its
    EVPowerProfile and enforces the charge loop against this same schedule, not the fractional
    one. Each change time is rounded to the nearest second (no drift); an entry that shrinks to
    nothing lasted under a second and is dropped.
    """
    anchor = round(ps.time_anchor)
    out: list[tuple[float, float]] = []
    prev = anchor
    end = ps.time_anchor
    for d, p in ps.entries:
        end += d
        stop = round(end)
        if stop <= prev:
            continue
        w = float(rn_down(p))
        if out and out[-1][1] == w:
            out[-1] = (out[-1][0] + (stop - prev), w)
        else:
            out.append((float(stop - prev), w))
        prev = stop
    if not out:  # the whole schedule rounds to under a second: keep its first power for 1 s
        out.append((1.0, float(rn_down(ps.entries[0][1]))))
    return PowerScheduleModel(
        float(anchor), tuple(out), ps.power_tolerance_w, ps.available_energy_wh
    )


# -- DC phases ------------------------------------------------------------------------------------
def handle_dc_cable_check(req: DC_CableCheckReq, ctx: SeccContext) -> tuple[DC_CableCheckRes, str]:
    """Ongoing until the isolation test is done; FAILED after the SECC's cable-check time."""
    if ctx.cable_check_started is None:
        ctx.cable_check_started = ctx.now
    _, done = ctx.power.cable_check(ctx.now)
    if not done and ctx.now - ctx.cable_check_started >= ctx.config.timings.secc_cable_check_s:
        raise errors.InvalidRequest("isolation test did not finish in time")
    processing = Processing.FINISHED if done else Processing.ONGOING
    res = DC_CableCheckRes(
        header=_header(ctx), response_code=ResponseCode.OK, evse_processing=processing
    )
    return res, "ok" if done else "ongoing"


def _voltage_window(ctx: SeccContext) -> tuple[float, float] | None:
    """The negotiated voltage window (EV ∩ EVSE from ChargeParameterDiscovery), if any."""
    ev, evse = ctx.ev_limits, ctx.evse_limits
    if ev is None or evse is None:
        return None
    return max(ev.min_voltage_v, evse.min_voltage_v), min(ev.max_voltage_v, evse.max_voltage_v)


def _ev_voltage(ctx: SeccContext, field: str, v: float) -> float:
    """An EV voltage checked against the negotiated window: outside it, FAILED_WrongChargeParameter
    in the strict profile; the lenient profile clamps it into the window and records a warning
    (interop: Josev's simulated EV reports 20 kV with EVMaximumVoltage 400 V, docs/interop.md)."""
    window = _voltage_window(ctx)
    if window is None or not math.isfinite(v):
        return v
    lo, hi = window
    if lo <= v <= hi:
        return v
    detail = f"{field} {v:g} V outside the negotiated {lo:g}-{hi:g} V"
    if not _lenient(ctx):
        raise errors.WrongChargeParameter(detail)
    clamped = min(max(v, lo), hi)
    ctx.events.append(
        ProtocolError(
            t=ctx.now,
            kind="voltage_out_of_window",
            detail=f"{detail}; clamped to {clamped:g} V (lenient)",
            response_code=ResponseCode.OK.value,
        )
    )
    return clamped


def _evse_voltage(ctx: SeccContext, v: float) -> float:
    """EVSEPresentVoltage as reported: never above the SECC's own maximum voltage (what it
    announced in ChargeParameterDiscoveryRes); the power layer already keeps the output there,
    this guards the report against a model that follows an out-of-window EV target."""
    lim = ctx.evse_limits
    return v if lim is None or v <= lim.max_voltage_v else lim.max_voltage_v


def handle_dc_pre_charge(req: DC_PreChargeReq, ctx: SeccContext) -> tuple[DC_PreChargeRes, str]:
    """Drive the output towards the EV's target voltage (the EV loops until they match)."""
    _ev_voltage(ctx, "EVPresentVoltage", value(req.ev_present_voltage))
    target = _ev_voltage(ctx, "EVTargetVoltage", value(req.ev_target_voltage))
    v = _evse_voltage(ctx, ctx.power.pre_charge(ctx.now, target))
    res = DC_PreChargeRes(
        header=_header(ctx), response_code=ResponseCode.OK, evse_present_voltage=rn(v)
    )
    return res, "ok"


def _evse_status(ctx: SeccContext, notification: EvseNotification) -> EVSEStatus:
    return EVSEStatus(
        notification_max_delay=ctx.config.notification_max_delay_s, evse_notification=notification
    )


def handle_power_delivery(req: PowerDeliveryReq, ctx: SeccContext) -> tuple[PowerDeliveryRes, str]:
    """Start (with the BPT channel), Stop, ScheduleRenegotiation; Standby is not supported."""
    assert ctx.service is not None
    progress = req.charge_progress
    code = ResponseCode.OK
    if progress is ChargeProgress.START:
        channel = req.bpt_channel_selection
        if channel is ChannelSelection.DISCHARGE and not is_bidirectional(ctx.service):
            raise errors.WrongChargeParameter("Discharge channel on a non-BPT service")
        ctx.discharge = channel is ChannelSelection.DISCHARGE
        if req.ev_power_profile is not None:
            ctx.ev_power_profile = tuple(
                (float(e.duration), float(e.power))
                for e in req.ev_power_profile.ev_power_profile_entries.ev_power_profile_entry
            )
        if ctx.control_mode is ControlMode.SCHEDULED and ctx.schedules:
            code = _select_schedule(req, ctx)
        if not ctx.power.start(ctx.now):
            raise errors.PowerDeliveryNotApplied("contactors latched open by a fault")
        ctx.standby = False
        if ctx.pending_notification is EvseNotification.EXIT_STANDBY:
            ctx.pending_notification = None  # the EV acted on it
        if ctx.charge_loop_started is None:
            ctx.charge_loop_started = ctx.now
        outcome = "start"
    elif progress is ChargeProgress.STOP:
        ctx.power.stop(ctx.now)
        ctx.pending_notification = None  # the EV acted on Pause/Terminate/renegotiation
        outcome = "stop"
    elif progress is ChargeProgress.SCHEDULE_RENEGOTIATION:
        if ctx.pending_notification is EvseNotification.SCHEDULE_RENEGOTIATION:
            ctx.pending_notification = None
        outcome = "renegotiate"
    else:
        # ChargeProgress=Standby: power transfer pauses with the contactors closed; the EV keeps
        # the charge loop alive and leaves standby with PowerDelivery(Start) (possibly on the
        # SECC's EVSENotification=ExitStandby). A charger that does not allow it answers
        # WARNING_StandbyNotAllowed and keeps delivering power (facts §4.2).
        if ctx.charge_loop_started is None:
            raise errors.SequenceError("ChargeProgress=Standby before PowerDelivery(Start)")
        if ctx.config.standby_allowed and not ctx.config.faults.standby_ignored:
            ctx.standby = True
        else:
            code = ResponseCode.WARNING_STANDBY_NOT_ALLOWED
        outcome = "standby"
    return PowerDeliveryRes(header=_header(ctx), response_code=code), outcome


def _select_schedule(req: PowerDeliveryReq, ctx: SeccContext) -> ResponseCode:
    """Scheduled: the tuple the EV selected, and its EVPowerProfile checked against it
    (FAILED_EVPowerProfileViolation beyond the schedule and its tolerance; WARNING within)."""
    profile = req.ev_power_profile
    chosen = ctx.schedules[0]
    code = ResponseCode.OK
    if profile is not None and isinstance(profile.control_mode, Scheduled_EVPPTControlMode):
        wanted = profile.control_mode.selected_schedule_tuple_id
        match = [s for s in ctx.schedules if s.schedule_tuple_id == wanted]
        if not match:
            raise errors.ScheduleSelectionInvalid(f"ScheduleTupleID {wanted} was not offered")
        chosen = match[0]
        entries = [
            (float(e.duration), float(e.power))
            for e in profile.ev_power_profile_entries.ev_power_profile_entry
        ]
        tolerance = (
            profile.control_mode.power_tolerance_acceptance
            is PowerToleranceAcceptance.POWER_TOLERANCE_CONFIRMED
        )
        check = validate_ev_power_profile(
            session_time(profile.time_anchor, ctx.now),
            entries,
            chosen,
            tolerance_accepted=tolerance,
        )
        if check.verdict is ProfileVerdict.WARNING_VIOLATION:
            code = ResponseCode.WARNING_EV_POWER_PROFILE_VIOLATION
        elif check.verdict is not ProfileVerdict.OK:
            exc = errors.PowerProfileViolation(
                f"EVPowerProfile entry {check.entry}: {check.power_w:g} W, "
                f"allowed {check.allowed_w:g} W ({check.reason})"
            )
            exc.response_code = check.verdict.value
            raise exc
    ctx.selected_schedule_id = chosen.schedule_tuple_id
    ctx.power.select_schedule(chosen)
    return code


# -- DC_ChargeLoop --------------------------------------------------------------------------------
def _ev_request(req: DC_ChargeLoopReq, ctx: SeccContext, bpt: bool) -> EvRequest:
    mode = req.control_mode
    lenient = _lenient(ctx)

    def opt(r: Any, default: float) -> float:
        return default if r is None else magnitude_in(r, "limit", lenient)

    v = value(req.ev_present_voltage)
    nan = math.nan
    if isinstance(mode, Scheduled_DC_CLReqControlMode):
        target_i = value(mode.ev_target_current)
        if bpt and ctx.discharge and target_i > 0:
            target_i = -target_i  # Discharge channel: magnitudes on the wire (strict profile)
        if not bpt and target_i < 0:
            raise errors.WrongChargeParameter("negative target current on a non-BPT service")
        d_p = d_i = 0.0
        if isinstance(mode, BPT_Scheduled_DC_CLReqControlMode):
            d_p = opt(mode.ev_maximum_discharge_power, INF)
            d_i = opt(mode.ev_maximum_discharge_current, INF)
        # Scheduled: the energy needs come from the loop when the truck repeats them, else
        # from ScheduleExchangeReq (kept in the context for the backend, e.g. OCPP needs)
        se = ctx.schedule_request
        se_nan = EnergyRequest(received_at=ctx.now) if se is None else se
        return EvRequest(
            present_voltage_v=v,
            target_current_a=target_i,
            target_energy_wh=value(mode.ev_target_energy_request, se_nan.target_energy_wh),
            max_energy_wh=value(mode.ev_maximum_energy_request, se_nan.max_energy_wh),
            min_energy_wh=value(mode.ev_minimum_energy_request, se_nan.min_energy_wh),
            max_v2x_energy_wh=se_nan.max_v2x_energy_wh,
            min_v2x_energy_wh=se_nan.min_v2x_energy_wh,
            departure_s=se_nan.departure_in(ctx.now),
            target_voltage_v=value(mode.ev_target_voltage),
            max_charge_power_w=opt(mode.ev_maximum_charge_power, INF),
            max_charge_current_a=opt(mode.ev_maximum_charge_current, INF),
            max_voltage_v=opt(mode.ev_maximum_voltage, INF),
            min_voltage_v=opt(mode.ev_minimum_voltage, 0.0),
            max_discharge_power_w=d_p if bpt else 0.0,
            max_discharge_current_a=d_i if bpt else 0.0,
        )
    assert isinstance(mode, Dynamic_DC_CLReqControlMode)
    kw: dict[str, Any] = {}
    if isinstance(mode, BPT_Dynamic_DC_CLReqControlMode):
        kw = dict(
            max_discharge_power_w=opt(mode.ev_maximum_discharge_power, 0.0),
            min_discharge_power_w=opt(mode.ev_minimum_discharge_power, 0.0),
            max_discharge_current_a=opt(mode.ev_maximum_discharge_current, 0.0),
            max_v2x_energy_wh=value(mode.ev_maximum_v2x_energy_request, nan),
            min_v2x_energy_wh=value(mode.ev_minimum_v2x_energy_request, nan),
        )
    else:
        kw = dict(max_discharge_power_w=0.0, max_discharge_current_a=0.0)
    departure = mode.departure_time
    return EvRequest(
        present_voltage_v=v,
        max_charge_power_w=opt(mode.ev_maximum_charge_power, INF),
        min_charge_power_w=opt(mode.ev_minimum_charge_power, 0.0),
        max_charge_current_a=opt(mode.ev_maximum_charge_current, INF),
        max_voltage_v=opt(mode.ev_maximum_voltage, INF),
        min_voltage_v=opt(mode.ev_minimum_voltage, 0.0),
        target_energy_wh=value(mode.ev_target_energy_request),
        max_energy_wh=value(mode.ev_maximum_energy_request),
        min_energy_wh=value(mode.ev_minimum_energy_request),
        departure_s=float(departure) if departure is not None else nan,
        **kw,
    )


def _cl_res_mode(d: Any, scheduled: bool, bpt: bool, negative: bool) -> Any:
    charge: dict[str, Any] = dict(
        evse_maximum_charge_power=rn_down(d.evse_max_charge_power_w),
        evse_minimum_charge_power=rn(d.evse_min_charge_power_w),
        evse_maximum_charge_current=rn_down(d.evse_max_charge_current_a),
        evse_maximum_voltage=rn_down(d.evse_max_voltage_v),
    )
    discharge: dict[str, Any] = dict(
        evse_maximum_discharge_power=discharge_out(d.evse_max_discharge_power_w, negative),
        evse_minimum_discharge_power=discharge_out(d.evse_min_discharge_power_w, negative),
        evse_maximum_discharge_current=discharge_out(d.evse_max_discharge_current_a, negative),
        evse_minimum_voltage=rn(d.evse_min_voltage_v),
    )
    if scheduled:
        if bpt:
            return BPT_Scheduled_DC_CLResControlMode(**charge, **discharge)
        return Scheduled_DC_CLResControlMode(**charge)
    if bpt:
        return BPT_Dynamic_DC_CLResControlMode(**charge, **discharge)
    return Dynamic_DC_CLResControlMode(**charge)


def handle_dc_charge_loop(req: DC_ChargeLoopReq, ctx: SeccContext) -> tuple[DC_ChargeLoopRes, str]:
    """One control cycle: the power layer decides, we report (flags exact), sample, notify."""
    assert ctx.service is not None and ctx.control_mode is not None
    bpt = is_bidirectional(ctx.service)
    scheduled = ctx.control_mode is ControlMode.SCHEDULED
    mode = req.control_mode
    want_mode: tuple[type, type] = (
        (BPT_Scheduled_DC_CLReqControlMode, Scheduled_DC_CLReqControlMode)
        if scheduled
        else (BPT_Dynamic_DC_CLReqControlMode, Dynamic_DC_CLReqControlMode)
    )
    is_bpt_mode = isinstance(mode, want_mode[0])
    if not isinstance(mode, want_mode[1]) or is_bpt_mode != bpt:
        # libiso15118 dc_charge_loop.cpp answers a control-mode mismatch with FAILED
        raise errors.InvalidRequest(f"{type(mode).__name__} does not fit the session")
    request = _ev_request(req, ctx, bpt)
    present_v = _ev_voltage(ctx, "EVPresentVoltage", request.present_voltage_v)
    target_v = _ev_voltage(ctx, "EVTargetVoltage", request.target_voltage_v)
    if present_v is not request.present_voltage_v or target_v is not request.target_voltage_v:
        request = dataclasses.replace(
            request, present_voltage_v=present_v, target_voltage_v=target_v
        )
    if ctx.standby:
        request = dataclasses.replace(request, stop=True)  # no power in standby
    d = ctx.power.step(ctx.now, request)
    current = d.present_current_a
    factor = ctx.config.faults.exceed_limit
    if factor != 1.0:  # planted bug: report/command beyond the limit
        lim = d.evse_max_charge_current_a if current >= 0 else d.evse_max_discharge_current_a
        current = math.copysign(max(abs(current), lim) * factor, current or 1.0)
    soc = None
    if req.display_parameters is not None and req.display_parameters.present_soc is not None:
        soc = float(req.display_parameters.present_soc)
    present_v = _evse_voltage(ctx, d.present_voltage_v)
    power_w = current * present_v
    ctx.counters.add_sample(ctx.now, power_w)
    ctx.counters.soc = soc
    setpoint = d.setpoint_w if math.isfinite(d.setpoint_w) else None
    ctx.events.append(
        PowerSample(
            t=ctx.now,
            voltage_v=present_v,
            current_a=current,
            power_w=power_w,
            soc=soc,
            binding_limit=d.binding,
            setpoint_w=setpoint,
            max_charge_power_w=d.evse_max_charge_power_w,
            max_discharge_power_w=d.evse_max_discharge_power_w,
        )
    )
    status, meter_info = _notification(ctx)
    if meter_info is None and req.meter_info_requested:
        meter_info = _meter_info(ctx)
    res = DC_ChargeLoopRes(
        header=_header(ctx),
        response_code=ResponseCode.OK,
        evse_status=status,
        meter_info=meter_info,
        evse_present_current=rn(current),
        evse_present_voltage=rn(present_v),
        evse_power_limit_achieved=d.power_limit_achieved,
        evse_current_limit_achieved=d.current_limit_achieved,
        evse_voltage_limit_achieved=d.voltage_limit_achieved,
        control_mode=_cl_res_mode(d, scheduled, bpt, ctx.config.negative_discharge),
    )
    return res, "ok"


def _meter_info(ctx: SeccContext) -> MeterInfo:
    charged, discharged = ctx.power.meter()
    bpt = ctx.service is not None and is_bidirectional(ctx.service)
    return MeterInfo(
        meter_id=ctx.power.meter_id,
        charged_energy_reading_wh=charged,
        bpt_discharged_energy_reading_wh=discharged if bpt else None,
        meter_timestamp=timestamp(ctx.now),
    )


def _notification(ctx: SeccContext) -> tuple[EVSEStatus | None, MeterInfo | None]:
    """Pending EVSENotification, or a MeteringConfirmation trigger (V2G20-1083): the trigger is
    not repeated until a MeteringConfirmationReq or NotificationMaxDelay passes (V2G20-2105)."""
    if ctx.pending_notification is EvseNotification.EXIT_STANDBY and not ctx.standby:
        ctx.pending_notification = None  # nothing to exit
    if ctx.pending_notification is not None:
        kind = ctx.pending_notification
        if kind is EvseNotification.METERING_CONFIRMATION:
            ctx.pending_notification = None
            ctx.metering_requested_at = ctx.now
            return _evse_status(ctx, kind), _meter_info(ctx)
        # Pause/Terminate/renegotiation stay in force until the EV acts on them
        return _evse_status(ctx, kind), None
    interval = ctx.config.metering_interval_s
    if interval is None or ctx.charge_loop_started is None:
        return None, None
    last = ctx.last_metering_at if ctx.last_metering_at is not None else ctx.charge_loop_started
    waiting = ctx.metering_requested_at
    if waiting is not None and ctx.now - waiting < ctx.config.notification_max_delay_s:
        return None, None
    if ctx.now - last >= interval:
        ctx.metering_requested_at = ctx.now
        return _evse_status(ctx, EvseNotification.METERING_CONFIRMATION), _meter_info(ctx)
    return None, None


def handle_metering_confirmation(
    req: MeteringConfirmationReq, ctx: SeccContext
) -> tuple[MeteringConfirmationRes, str]:
    """Signed meter reading from the EV (contract key), on the 0x8102 side stream."""
    data = req.signed_metering_data
    if data.session_id != ctx.session_id:
        raise errors.UnknownSession("SignedMeteringData names another session")
    # PnC: verify with the contract certificate of the Authorization. EIM has no contract
    # certificate, so an unsigned confirmation is accepted (documented in docs/session.md).
    if ctx.contract_chain is not None:
        try:
            _verify(ctx, req.header.signature, data, ctx.contract_chain)
        except SignatureError as exc:
            raise errors.MeteringSignatureInvalid(str(exc)) from exc
    ctx.metering_requested_at = None
    ctx.last_metering_at = ctx.now
    mi = data.meter_info
    ctx.events.append(
        MeteringConfirmed(
            t=ctx.now,
            charged_wh=mi.charged_energy_reading_wh,
            discharged_wh=mi.bpt_discharged_energy_reading_wh,
        )
    )
    return MeteringConfirmationRes(header=_header(ctx), response_code=ResponseCode.OK), "ok"


def handle_dc_welding_detection(
    req: DC_WeldingDetectionReq, ctx: SeccContext
) -> tuple[DC_WeldingDetectionRes, str]:
    v = _evse_voltage(ctx, ctx.power.welding_detection(ctx.now))
    res = DC_WeldingDetectionRes(
        header=_header(ctx), response_code=ResponseCode.OK, evse_present_voltage=rn(v)
    )
    return res, "ok"


def handle_session_stop(req: SessionStopReq, ctx: SeccContext) -> tuple[SessionStopRes, str]:
    """Terminate, Pause (kept for a later OK_OldSessionJoined) or ServiceRenegotiation."""
    kind = req.charging_session
    if kind is ChargingSession.SERVICE_RENEGOTIATION:
        if not ctx.config.service_renegotiation:
            raise errors.NoServiceRenegotiation("service renegotiation is not supported")
        ctx.stop_kind = "service_renegotiation"
        ctx.details_sent = 0
        ctx.pending_notification = None
        outcome = "service_renegotiation"
    elif kind is ChargingSession.PAUSE:
        if ctx.service is None or ctx.parameter_set is None or ctx.control_mode is None:
            raise errors.PauseNotAllowed("nothing selected to resume later")
        ctx.config.store.put(
            PausedSession(
                session_id=ctx.session_id,
                evccid=ctx.evccid,
                service=ctx.service,
                parameter_set_id=ctx.parameter_set.set_id,
                control_mode=ctx.control_mode,
                paused_at=ctx.now,
                peer_cert_hash=ctx.peer_cert_hash,
            )
        )
        ctx.events.append(SessionPaused(t=ctx.now, session_id=ctx.session_id.hex()))
        ctx.stop_kind = "pause"
        outcome = "pause"
    else:
        ctx.stop_kind = "terminate"
        outcome = "terminate"
    return SessionStopRes(header=_header(ctx), response_code=ResponseCode.OK), outcome


# -- VehicleCheckIn / VehicleCheckOut (optional, facts §4.3 rows 1a and "—") -------------------
def handle_vehicle_check_in(
    req: VehicleCheckInReq, ctx: SeccContext
) -> tuple[VehicleCheckInRes, str]:
    """Acknowledge the truck's check-in (after SessionSetup); the optional parking guidance
    comes from the configuration (``SeccConfig.parking_space`` and friends)."""
    ctx.check_in_status = req.ev_check_in_status.value
    cfg = ctx.config
    code = ResponseCode.OK
    if cfg.faults.check_in_wrong_status:  # deliberate defect (conformance self-test)
        code = ResponseCode.FAILED
    res = VehicleCheckInRes(
        header=_header(ctx),
        response_code=code,
        parking_space=cfg.parking_space,
        device_location=cfg.device_location,
        target_distance=cfg.target_distance,
    )
    return res, "ok"


def handle_vehicle_check_out(
    req: VehicleCheckOutReq, ctx: SeccContext
) -> tuple[VehicleCheckOutRes, str]:
    """The truck announces it leaves at CheckOutTime (Unix s): ``Completed`` when that time has
    come (power delivery is already stopped in this state), ``Scheduled`` when it lies ahead."""
    ahead = req.check_out_time > timestamp(ctx.now)
    done = req.ev_check_out_status is EvCheckOutStatus.COMPLETED or not ahead
    if ctx.config.faults.check_in_wrong_status:  # deliberate defect (conformance self-test)
        done = not done
    status = EvseCheckOutStatus.COMPLETED if done else EvseCheckOutStatus.SCHEDULED
    res = VehicleCheckOutRes(
        header=_header(ctx), response_code=ResponseCode.OK, evse_check_out_status=status
    )
    return res, "ok"


HANDLERS: dict[str, Handler] = {
    "SupportedAppProtocolReq": handle_supported_app_protocol,
    "SessionSetupReq": handle_session_setup,
    "AuthorizationSetupReq": handle_authorization_setup,
    "AuthorizationReq": handle_authorization,
    "CertificateInstallationReq": handle_certificate_installation,
    "ServiceDiscoveryReq": handle_service_discovery,
    "ServiceDetailReq": handle_service_detail,
    "ServiceSelectionReq": handle_service_selection,
    "DC_ChargeParameterDiscoveryReq": handle_dc_charge_parameter_discovery,
    "ScheduleExchangeReq": handle_schedule_exchange,
    "DC_CableCheckReq": handle_dc_cable_check,
    "DC_PreChargeReq": handle_dc_pre_charge,
    "PowerDeliveryReq": handle_power_delivery,
    "DC_ChargeLoopReq": handle_dc_charge_loop,
    "MeteringConfirmationReq": handle_metering_confirmation,
    "DC_WeldingDetectionReq": handle_dc_welding_detection,
    "SessionStopReq": handle_session_stop,
    "VehicleCheckInReq": handle_vehicle_check_in,
    "VehicleCheckOutReq": handle_vehicle_check_out,
}
