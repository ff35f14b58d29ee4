"""The tester SECC: plays a charger against an EVCC under test.

It answers every request with a valid response built here (typed messages -> XmlCodec ->
V2GTP) and judges every request: allowed in the sequence, right SessionID, the charge-parameter
variant of the selected service, a selected service and parameter set that were offered, valid
PnC signatures over the GenChallenge it sent, the power envelope, BPT signs, and the
V2G_EVCC_Sequence_Performance_Time (0.25 s in the charge loop, 40 s elsewhere). Cases steer it
through ``offer_*`` attributes and per-request ``hooks`` (replace, delay or drop an answer,
inject a notification) and then look at ``seen`` (the names of the requests, in order).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from mcscomm import sap
from mcscomm.codec import CodecError
from mcscomm.conformance.channel import BrokenFrame, Channel, ChannelClosed
from mcscomm.conformance.model import CaseFailed
from mcscomm.conformance.pics import Pics
from mcscomm.conformance.tester_evcc import BPT_SERVICES, MCS_MAX_A, check_bpt_signs
from mcscomm.conformance.wire import (
    EVCC_LOOP_PACING,
    EVCC_SEQUENCE_PERFORMANCE,
    ZERO_SESSION,
    Log,
    check,
    codec,
    describe,
    header,
    rn,
    val,
    wire_codec,
)
from mcscomm.messages.app_protocol import SupportedAppProtocolReq
from mcscomm.messages.common_messages import (
    AuthorizationRes,
    AuthorizationSetupRes,
    ChargingSchedule,
    Dynamic_SEResControlMode,
    EIM_ASResAuthorizationMode,
    MeteringConfirmationRes,
    Parameter,
    ParameterSet,
    PnC_AReqAuthorizationMode,
    PnC_ASResAuthorizationMode,
    PowerDeliveryRes,
    PowerSchedule,
    PowerScheduleEntry,
    PowerScheduleEntryList,
    Scheduled_SEResControlMode,
    ScheduleExchangeRes,
    ScheduleTuple,
    Service,
    ServiceDetailRes,
    ServiceDiscoveryRes,
    ServiceList,
    ServiceParameterList,
    ServiceSelectionRes,
    SessionSetupRes,
    SessionStopRes,
)
from mcscomm.messages.common_types import EVSEStatus, MeterInfo
from mcscomm.messages.dc import (
    BPT_DC_CPDReqEnergyTransferMode,
    BPT_DC_CPDResEnergyTransferMode,
    BPT_Dynamic_DC_CLReqControlMode,
    BPT_Dynamic_DC_CLResControlMode,
    BPT_Scheduled_DC_CLReqControlMode,
    BPT_Scheduled_DC_CLResControlMode,
    DC_CableCheckRes,
    DC_ChargeLoopRes,
    DC_ChargeParameterDiscoveryRes,
    DC_CPDResEnergyTransferMode,
    DC_PreChargeRes,
    DC_WeldingDetectionRes,
    Dynamic_DC_CLReqControlMode,
    Dynamic_DC_CLResControlMode,
    Scheduled_DC_CLReqControlMode,
    Scheduled_DC_CLResControlMode,
)
from mcscomm.messages.enums import (
    AuthorizationType,
    ChargeProgress,
    ChargingSession,
    ControlMode,
    EvseNotification,
    Processing,
    ResponseCode,
    ServiceId,
)
from mcscomm.v2gtp import PayloadType, build_frame

#: What the EVCC may send after the response to each request (facts §4.3), written here
#: independently of the session layer's tables.
NEXT: dict[str, tuple[str, ...]] = {
    "": ("SupportedAppProtocolReq",),
    "SupportedAppProtocolReq": ("SessionSetupReq",),
    "SessionSetupReq": ("AuthorizationSetupReq", "DC_ChargeParameterDiscoveryReq"),
    "AuthorizationSetupReq": ("AuthorizationReq", "CertificateInstallationReq"),
    "CertificateInstallationReq": ("AuthorizationReq", "CertificateInstallationReq"),
    "AuthorizationReq": ("AuthorizationReq", "ServiceDiscoveryReq"),
    "ServiceDiscoveryReq": ("ServiceDetailReq", "ServiceSelectionReq"),
    "ServiceDetailReq": ("ServiceDetailReq", "ServiceSelectionReq"),
    "ServiceSelectionReq": ("DC_ChargeParameterDiscoveryReq",),
    "DC_ChargeParameterDiscoveryReq": ("ScheduleExchangeReq",),
    "ScheduleExchangeReq": ("ScheduleExchangeReq", "DC_CableCheckReq", "PowerDeliveryReq"),
    "DC_CableCheckReq": ("DC_CableCheckReq", "DC_PreChargeReq"),
    "DC_PreChargeReq": ("DC_PreChargeReq", "PowerDeliveryReq"),
    "PowerDeliveryReq:Start": ("DC_ChargeLoopReq",),
    "PowerDeliveryReq:Stop": ("DC_WeldingDetectionReq", "SessionStopReq"),
    "PowerDeliveryReq:ScheduleRenegotiation": ("ScheduleExchangeReq",),
    # Standby keeps the charge loop alive; PowerDelivery(Start) leaves it (facts §4.2)
    "PowerDeliveryReq:Standby": ("DC_ChargeLoopReq", "PowerDeliveryReq", "MeteringConfirmationReq"),
    "DC_ChargeLoopReq": ("DC_ChargeLoopReq", "PowerDeliveryReq", "MeteringConfirmationReq"),
    "MeteringConfirmationReq": ("DC_ChargeLoopReq", "PowerDeliveryReq"),
    "DC_WeldingDetectionReq": ("DC_WeldingDetectionReq", "SessionStopReq"),
    "SessionStopReq:ServiceRenegotiation": ("ServiceDiscoveryReq",),
}

#: a hook's answer meaning "do not answer this request"
NO_ANSWER = object()

Hook = Callable[[Any, Any], Any]


@dataclass(slots=True)
class Seen:
    """One request the EVCC sent: when, what, and how long after our previous answer."""

    t: float
    name: str
    message: Any
    gap: float | None


class TesterSecc:
    """A scripted SECC on a :class:`Channel`; every check failure raises CaseFailed."""

    def __init__(
        self,
        channel: Channel,
        pics: Pics,
        log: Log,
        *,
        manifest: Any | None = None,
        services: tuple[ServiceId, ...] | None = None,
        controls: tuple[ControlMode, ...] | None = None,
        auths: tuple[AuthorizationType, ...] | None = None,
    ) -> None:
        self.ch = channel
        self.pics = pics
        self.log = log
        self.manifest = manifest
        self.codec = codec() if channel.virtual else wire_codec(pics.pixit.encoding)
        self.tol = 0.0 if channel.virtual else pics.pixit.tolerance_s
        self.offer_services = services or pics.service_ids()
        self.offer_controls = controls or pics.control_mode_values()
        self.offer_auth = auths or tuple(
            a for a in pics.auth_types() if a is not AuthorizationType.PNC or manifest is not None
        )
        self.session_id = os.urandom(8)
        self.paused: dict[bytes, str] = {}
        self.gen_challenge = os.urandom(16)
        self.hooks: dict[str, Hook] = {}
        self.seen: list[Seen] = []
        self.prev_key = ""
        self.last_answer_at: float | None = None
        self.selected: tuple[int, int] | None = None
        self.ev_cpd: Any = None
        self.loop_cycles = 0
        self.terminate_after: int | None = pics.pixit.charge_loop_cycles * 4
        self.notify_at: dict[int, EvseNotification] = {}
        self.meter_wh = 0
        self.check_sequence = True
        self.check_pacing = True
        self.judge_envelope = True
        x = pics.pixit
        self.evse = dict(
            max_v=x.evse_max_voltage,
            min_v=x.evse_min_voltage,
            max_a=min(x.evse_max_current, MCS_MAX_A),
            max_w=x.evse_max_power,
        )

    # -- wire ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.ch.now()

    def next_request(self, timeout: float) -> Any | None:
        """The next request, None on timeout; ChannelClosed when the EVCC closed."""
        try:
            frame = self.ch.recv_frame(timeout)
        except BrokenFrame as exc:
            raise CaseFailed(f"EVCC sent a broken V2GTP frame: {exc}") from None
        except ChannelClosed:
            self.log.note(self.now(), "EVCC closed the connection")
            raise
        if frame is None:
            return None
        try:
            msg = self.codec.decode(frame.payload_type, frame.payload)
        except CodecError as exc:
            self.log.add(self.now(), "sut->tester", f"invalid document ({frame.payload_type:#06x})")
            raise CaseFailed(f"EVCC sent a document that does not validate: {exc}") from None
        self.log.add(self.now(), "sut->tester", describe(msg))
        return msg

    def send(self, message: Any, *, fallback: Any = None, payload_type: int | None = None) -> None:
        pt = payload_type if payload_type is not None else self.codec.payload_type_for(message)
        data = build_frame(pt, self.codec.encode(message))
        fb = None
        if fallback is not None:
            fb = build_frame(self.codec.payload_type_for(fallback), self.codec.encode(fallback))
        self.log.add(self.now(), "tester->sut", describe(message))
        self.ch.send(data, fallback=fb)
        self.last_answer_at = self.now()

    def send_raw(self, data: bytes, what: str, *, fallback: bytes | None = None) -> None:
        self.log.add(self.now(), "tester->sut", what, f"{len(data)} bytes")
        self.ch.send(data, fallback=fallback)
        self.last_answer_at = self.now()

    # -- serving ----------------------------------------------------------------------------
    def serve(
        self,
        *,
        until: Callable[[Seen], bool] | None = None,
        max_requests: int = 400,
        wait: float | None = None,
    ) -> str:
        """Answer requests until the EVCC closes (``closed``), ``until`` holds for a request
        (``until``, that request not answered), or nothing comes (``silent``, only when ``wait``
        bounds the wait; otherwise silence beyond the performance time fails the case)."""
        for _ in range(max_requests):
            prev_loop = self.prev_key == "DC_ChargeLoopReq"
            limit = EVCC_LOOP_PACING if prev_loop else EVCC_SEQUENCE_PERFORMANCE
            timeout = wait if wait is not None else limit + self.tol
            try:
                req = self.next_request(timeout)
            except ChannelClosed:
                return "closed"
            if req is None:
                if wait is not None:
                    return "silent"
                what = "DC_ChargeLoopReq cycle" if prev_loop else "next request"
                raise CaseFailed(
                    f"EVCC sent no {what} within V2G_EVCC_Sequence_Performance_Time ({limit:g} s)"
                )
            name = type(req).__name__
            gap = self.now() - self.last_answer_at if self.last_answer_at is not None else None
            seen = Seen(self.now(), name, req, gap)
            self.seen.append(seen)
            if self.check_pacing and prev_loop and gap is not None and name == "DC_ChargeLoopReq":
                check(
                    gap <= EVCC_LOOP_PACING + self.tol + 1e-9,
                    f"DC_ChargeLoopReq {gap:.3f} s after the previous response "
                    f"(V2G_EVCC_Sequence_Performance_Time {EVCC_LOOP_PACING} s)",
                )
            self.judge(req, name)
            if until is not None and until(seen):
                return "until"
            default = self.default_response(req, name)
            hook = self.hooks.get(name)
            answer = hook(req, default) if hook is not None else default
            if answer is NO_ANSWER:
                self.prev_key = self._key(req, name)
                continue
            if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == "crafted":
                message, fallback = answer[1]
                self.send(message, fallback=fallback, payload_type=self._pt(req))
            else:
                self.send(answer, payload_type=self._pt(req))
            self.prev_key = self._key(req, name)
        raise CaseFailed(f"EVCC still sending after {max_requests} requests")

    @staticmethod
    def _pt(req: Any) -> int | None:
        if type(req).__name__ == "MeteringConfirmationReq":
            return int(PayloadType.METERING_CONFIRMATION)
        return None

    @staticmethod
    def _key(req: Any, name: str) -> str:
        if name == "PowerDeliveryReq":
            return f"{name}:{req.charge_progress.value}"
        if name == "SessionStopReq":
            return f"{name}:{req.charging_session.value}"
        return name

    # -- judging ------------------------------------------------------------------------------
    def judge(self, req: Any, name: str) -> None:
        if self.check_sequence:
            allowed = NEXT.get(self.prev_key, ())
            check(
                name in allowed,
                f"sequence error: {name} after {self.prev_key or 'connection setup'} "
                f"(allowed: {', '.join(allowed) or 'nothing'})",
            )
        if name not in ("SupportedAppProtocolReq", "SessionSetupReq"):
            sid = req.header.session_id
            check(
                sid == self.session_id,
                f"{name} carries SessionID {sid.hex()}, the session is {self.session_id.hex()}",
            )
        if name == "SessionSetupReq":
            sid = req.header.session_id
            check(
                sid == ZERO_SESSION or sid in self.paused,
                f"SessionSetupReq with SessionID {sid.hex()} that is neither zero nor paused",
            )
        elif name == "ServiceSelectionReq":
            sel = req.selected_energy_transfer_service
            check(
                sel.service_id in [int(s) for s in self.offer_services],
                f"ServiceSelectionReq selects service {sel.service_id} that was not offered",
            )
            check(
                sel.parameter_set_id in [int(c) for c in self.offer_controls],
                f"ServiceSelectionReq selects parameter set {sel.parameter_set_id} that was not "
                "offered",
            )
            self.selected = (sel.service_id, sel.parameter_set_id)
        elif name == "DC_ChargeParameterDiscoveryReq":
            bpt = self._bpt()
            mode = req.transfer_mode
            check(
                isinstance(mode, BPT_DC_CPDReqEnergyTransferMode) == bpt,
                f"{type(mode).__name__} for the {'BPT' if bpt else 'unidirectional'} service "
                f"{ServiceId(self.selected[0]).name if self.selected else '?'}",
            )
            if bpt:
                check_bpt_signs(mode, self.pics.negative_discharge, name)
            self.ev_cpd = mode
        elif name == "AuthorizationReq":
            if req.selected_authorization_service is AuthorizationType.PNC:
                self._judge_pnc(req)
        elif name == "DC_ChargeLoopReq":
            self._judge_loop(req)
        elif (
            name == "MeteringConfirmationReq"
            and self.manifest is not None
            and req.header.signature is not None
        ):
            self._verify(req.header.signature, req.signed_metering_data, self._contract)

    _contract: list[bytes] | None = None

    def _bpt(self) -> bool:
        return self.selected is not None and self.selected[0] in [int(s) for s in BPT_SERVICES]

    def _control(self) -> ControlMode:
        return ControlMode(self.selected[1]) if self.selected else ControlMode.DYNAMIC

    def _verify(self, signature: Any, fragment: Any, chain: list[bytes] | None) -> None:
        from mcscomm.security import xmldsig
        from mcscomm.security.errors import SignatureError

        assert self.manifest is not None
        check(signature is not None, "signed part without Signature")
        check(chain is not None, "no contract certificate to verify with")
        try:
            xmldsig.verify(
                signature,
                {fragment.id: fragment},
                chain or [],
                self.manifest.certificate("mo_root"),
                self.codec,
            )
        except SignatureError as exc:
            raise CaseFailed(f"signature does not verify: {exc}") from None

    def _judge_pnc(self, req: Any) -> None:
        mode = req.authorization_mode
        check(isinstance(mode, PnC_AReqAuthorizationMode), "PnC selected without PnC mode")
        check(
            mode.gen_challenge == self.gen_challenge,
            "PnC AuthorizationReq carries another GenChallenge than the one sent",
        )
        ccc = mode.contract_certificate_chain
        chain = [ccc.certificate, *ccc.sub_certificates.certificate]
        for der in chain:
            x509.load_der_x509_certificate(der)
        self._contract = chain
        if self.manifest is not None:
            self._verify(req.header.signature, mode, chain)

    def _judge_loop(self, req: Any) -> None:
        mode = req.control_mode
        bpt = self._bpt()
        if self._control() is ControlMode.SCHEDULED:
            want: type = BPT_Scheduled_DC_CLReqControlMode if bpt else Scheduled_DC_CLReqControlMode
        else:
            want = BPT_Dynamic_DC_CLReqControlMode if bpt else Dynamic_DC_CLReqControlMode
        bpt_mode = isinstance(
            mode, BPT_Scheduled_DC_CLReqControlMode | BPT_Dynamic_DC_CLReqControlMode
        )
        check(
            isinstance(mode, want) and bpt_mode == bpt,
            f"DC_ChargeLoopReq with {type(mode).__name__}, the session is "
            f"{self._control().name.title()}{' BPT' if bpt else ''}",
        )
        if bpt:
            check_bpt_signs(mode, self.pics.negative_discharge, "DC_ChargeLoopReq")
        if not self.judge_envelope:
            return
        ev_max_i = abs(val(self.ev_cpd.ev_maximum_charge_current)) if self.ev_cpd else MCS_MAX_A
        if isinstance(mode, Scheduled_DC_CLReqControlMode):
            i = abs(val(mode.ev_target_current))
            cap = min(self.evse["max_a"], ev_max_i)
            check(
                i <= cap * 1.005 + 0.5,
                f"EVTargetCurrent {i:g} A exceeds the negotiated {cap:g} A",
            )
            v = val(mode.ev_target_voltage)
            check(
                v <= self.evse["max_v"] + 0.5,
                f"EVTargetVoltage {v:g} V exceeds EVSEMaximumVoltage {self.evse['max_v']:g} V",
            )
        mc = getattr(mode, "ev_maximum_charge_current", None)
        if mc is not None:
            check(
                abs(val(mc)) <= ev_max_i * 1.005 + 0.5,
                f"EVMaximumChargeCurrent {val(mc):g} A above the {ev_max_i:g} A of "
                "ChargeParameterDiscovery",
            )

    # -- default (valid) responses -------------------------------------------------------------
    def _h(self) -> Any:
        return header(self.session_id)

    def default_response(self, req: Any, name: str) -> Any:
        fn = getattr(self, f"_res_{name}", None)
        if fn is None:
            raise CaseFailed(f"EVCC sent {name}, which this tester does not serve")
        return fn(req)

    def _res_SupportedAppProtocolReq(self, req: SupportedAppProtocolReq) -> Any:
        return sap.negotiate(req).response

    def _res_SessionSetupReq(self, req: Any) -> Any:
        sid = req.header.session_id
        if sid != ZERO_SESSION and sid in self.paused:
            self.session_id = sid
            self.selected = self._paused_selection
            code = ResponseCode.OK_OLD_SESSION_JOINED
        else:
            code = ResponseCode.OK_NEW_SESSION_ESTABLISHED
        return SessionSetupRes(header=self._h(), response_code=code, evseid="DE*TST*E0001*1")

    _paused_selection: tuple[int, int] | None = None

    def _res_AuthorizationSetupReq(self, req: Any) -> Any:
        pnc = AuthorizationType.PNC in self.offer_auth
        return AuthorizationSetupRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            authorization_services=list(self.offer_auth),
            certificate_installation_service=False,
            authorization_mode=PnC_ASResAuthorizationMode(gen_challenge=self.gen_challenge)
            if pnc
            else EIM_ASResAuthorizationMode(),
        )

    def _res_AuthorizationReq(self, req: Any) -> Any:
        return AuthorizationRes(
            header=self._h(), response_code=ResponseCode.OK, evse_processing=Processing.FINISHED
        )

    def _res_ServiceDiscoveryReq(self, req: Any) -> Any:
        return ServiceDiscoveryRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            service_renegotiation_supported=True,
            energy_transfer_service_list=ServiceList(
                service=[Service(service_id=int(s), free_service=True) for s in self.offer_services]
            ),
        )

    def _res_ServiceDetailReq(self, req: Any) -> Any:
        sid = req.service_id
        mcs = sid in (int(ServiceId.MCS), int(ServiceId.MCS_BPT))
        bpt = sid in [int(s) for s in BPT_SERVICES]
        sets = []
        for control in self.offer_controls:
            params = [
                Parameter(name="Connector", int_value=1 if mcs else 2),
                Parameter(name="ControlMode", int_value=int(control)),
                Parameter(name="MobilityNeedsMode", int_value=1),
                Parameter(name="Pricing", int_value=0),
            ]
            if bpt:
                params += [
                    Parameter(name="BPTChannel", int_value=1),
                    Parameter(name="GeneratorMode", int_value=1),
                ]
            sets.append(ParameterSet(parameter_set_id=int(control), parameter=params))
        return ServiceDetailRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            service_id=sid,
            service_parameter_list=ServiceParameterList(parameter_set=sets),
        )

    def _res_ServiceSelectionReq(self, req: Any) -> Any:
        return ServiceSelectionRes(header=self._h(), response_code=ResponseCode.OK)

    def _cpd_mode(self, bpt: bool) -> Any:
        e = self.evse
        base: dict[str, Any] = dict(
            evse_maximum_charge_power=rn(e["max_w"]),
            evse_minimum_charge_power=rn(0),
            evse_maximum_charge_current=rn(e["max_a"]),
            evse_minimum_charge_current=rn(0),
            evse_maximum_voltage=rn(e["max_v"]),
            evse_minimum_voltage=rn(e["min_v"]),
        )
        if not bpt:
            return DC_CPDResEnergyTransferMode(**base)
        sign = -1.0 if self.pics.negative_discharge else 1.0
        return BPT_DC_CPDResEnergyTransferMode(
            **base,
            evse_maximum_discharge_power=rn(sign * e["max_w"]),
            evse_minimum_discharge_power=rn(0),
            evse_maximum_discharge_current=rn(sign * e["max_a"]),
            evse_minimum_discharge_current=rn(0),
        )

    def _res_DC_ChargeParameterDiscoveryReq(self, req: Any) -> Any:
        return DC_ChargeParameterDiscoveryRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            transfer_mode=self._cpd_mode(self._bpt()),
        )

    def _res_ScheduleExchangeReq(self, req: Any) -> Any:
        mode: Any
        if self._control() is ControlMode.SCHEDULED:
            entries = PowerScheduleEntryList(
                power_schedule_entry=[
                    PowerScheduleEntry(duration=86_400, power=rn(self.evse["max_w"]))
                ]
            )
            schedule = ChargingSchedule(
                power_schedule=PowerSchedule(
                    time_anchor=self._h().timestamp, power_schedule_entries=entries
                )
            )
            mode = Scheduled_SEResControlMode(
                schedule_tuple=[ScheduleTuple(schedule_tuple_id=1, charging_schedule=schedule)]
            )
        else:
            mode = Dynamic_SEResControlMode(departure_time=7200)
        return ScheduleExchangeRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            evse_processing=Processing.FINISHED,
            control_mode=mode,
        )

    def _res_DC_CableCheckReq(self, req: Any) -> Any:
        return DC_CableCheckRes(
            header=self._h(), response_code=ResponseCode.OK, evse_processing=Processing.FINISHED
        )

    def _res_DC_PreChargeReq(self, req: Any) -> Any:
        return DC_PreChargeRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            evse_present_voltage=req.ev_target_voltage,
        )

    def _res_PowerDeliveryReq(self, req: Any) -> Any:
        return PowerDeliveryRes(header=self._h(), response_code=ResponseCode.OK)

    def _loop_mode(self) -> Any:
        e = self.evse
        bpt = self._bpt()
        charge: dict[str, Any] = dict(
            evse_maximum_charge_power=rn(e["max_w"]),
            evse_minimum_charge_power=rn(0),
            evse_maximum_charge_current=rn(e["max_a"]),
            evse_maximum_voltage=rn(e["max_v"]),
        )
        sign = -1.0 if self.pics.negative_discharge else 1.0
        discharge: dict[str, Any] = dict(
            evse_maximum_discharge_power=rn(sign * e["max_w"]),
            evse_minimum_discharge_power=rn(0),
            evse_maximum_discharge_current=rn(sign * e["max_a"]),
            evse_minimum_voltage=rn(e["min_v"]),
        )
        if self._control() is ControlMode.SCHEDULED:
            return (
                BPT_Scheduled_DC_CLResControlMode(**charge, **discharge)
                if bpt
                else Scheduled_DC_CLResControlMode(**charge)
            )
        return (
            BPT_Dynamic_DC_CLResControlMode(**charge, **discharge)
            if bpt
            else Dynamic_DC_CLResControlMode(**charge)
        )

    def loop_response(self, req: Any, notification: EvseNotification | None = None) -> Any:
        """A valid DC_ChargeLoopRes to ``req`` (with ``notification`` when given)."""
        mode = req.control_mode
        if isinstance(mode, Scheduled_DC_CLReqControlMode):
            i = min(abs(val(mode.ev_target_current)), self.evse["max_a"])
        else:
            i = min(self.evse["max_a"], abs(val(getattr(mode, "ev_maximum_charge_current", None))))
        self.meter_wh += 1000
        status = None
        meter = None
        if notification is not None:
            status = EVSEStatus(notification_max_delay=10, evse_notification=notification)
            if notification is EvseNotification.METERING_CONFIRMATION:
                meter = MeterInfo(meter_id="TESTMETER", charged_energy_reading_wh=self.meter_wh)
        return DC_ChargeLoopRes(
            header=self._h(),
            response_code=ResponseCode.OK,
            evse_status=status,
            meter_info=meter,
            evse_present_current=rn(i),
            evse_present_voltage=req.ev_present_voltage,
            evse_power_limit_achieved=False,
            evse_current_limit_achieved=False,
            evse_voltage_limit_achieved=False,
            control_mode=self._loop_mode(),
        )

    def _res_DC_ChargeLoopReq(self, req: Any) -> Any:
        self.loop_cycles += 1
        note = self.notify_at.get(self.loop_cycles)
        if (
            note is None
            and self.terminate_after is not None
            and self.loop_cycles >= self.terminate_after
        ):
            note = EvseNotification.TERMINATE
        return self.loop_response(req, note)

    def _res_MeteringConfirmationReq(self, req: Any) -> Any:
        return MeteringConfirmationRes(header=self._h(), response_code=ResponseCode.OK)

    def _res_DC_WeldingDetectionReq(self, req: Any) -> Any:
        return DC_WeldingDetectionRes(
            header=self._h(), response_code=ResponseCode.OK, evse_present_voltage=rn(0)
        )

    def _res_SessionStopReq(self, req: Any) -> Any:
        if req.charging_session is ChargingSession.PAUSE:
            self.paused[self.session_id] = "paused"
            self._paused_selection = self.selected
        return SessionStopRes(header=self._h(), response_code=ResponseCode.OK)

    # -- helpers for cases -----------------------------------------------------------------------
    def names(self) -> list[str]:
        return [s.name for s in self.seen]

    def count(self, name: str) -> int:
        return sum(1 for s in self.seen if s.name == name)

    def first(self, name: str) -> Seen | None:
        return next((s for s in self.seen if s.name == name), None)

    def power_delivery(self, progress: ChargeProgress) -> Seen | None:
        return next(
            (
                s
                for s in self.seen
                if s.name == "PowerDeliveryReq" and s.message.charge_progress is progress
            ),
            None,
        )

    def failed(self, res_cls: type, code: ResponseCode, **fields: Any) -> Any:
        """A response of ``res_cls`` with a FAILED/WARNING ``code`` and the mandatory fields."""
        return res_cls(header=self._h(), response_code=code, **fields)
