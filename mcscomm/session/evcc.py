"""The EVCC (truck) side of an ISO 15118-20 session, sans-IO.

``EvccSession`` sends a request, waits for its response under V2G_EVCC_Msg_Timeout, reads it with
the handler for that response (``_on_<response>``), and uses ``transitions.EVCC_TABLE`` to pick the
next request and when it goes out (at once, after the poll interval of an Ongoing loop, or at the
charge-loop cycle: the EVCC paces the loop itself, next DC_ChargeLoopReq due ``now + cycle``).
The truck's battery and controller live in :class:`TruckPower`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mcscomm import sap
from mcscomm.messages import (
    AuthorizationReq,
    AuthorizationSetupReq,
    MeteringConfirmationReq,
    PowerDeliveryReq,
    ScheduleExchangeReq,
    ServiceDetailReq,
    ServiceDiscoveryReq,
    ServiceSelectionReq,
    SessionSetupReq,
    SessionStopReq,
    SupportedAppProtocolReq,
)
from mcscomm.messages.common_messages import (
    ContractCertificateChain,
    Dynamic_EVPPTControlMode,
    Dynamic_SEReqControlMode,
    Dynamic_SMDTControlMode,
    EIM_AReqAuthorizationMode,
    EVPowerProfile,
    EVPowerProfileEntryList,
    PnC_AReqAuthorizationMode,
    PnC_ASResAuthorizationMode,
    PowerScheduleEntry,
    Scheduled_EVPPTControlMode,
    Scheduled_SEReqControlMode,
    Scheduled_SEResControlMode,
    Scheduled_SMDTControlMode,
    SelectedService,
    SignedMeteringData,
    SubCertificates,
    VehicleCheckInReq,
    VehicleCheckOutReq,
)
from mcscomm.messages.common_types import DisplayParameters, MessageHeader, MeterInfo
from mcscomm.messages.dc import (
    BPT_DC_CPDReqEnergyTransferMode,
    BPT_Dynamic_DC_CLReqControlMode,
    BPT_Scheduled_DC_CLReqControlMode,
    DC_CableCheckReq,
    DC_ChargeLoopReq,
    DC_ChargeParameterDiscoveryReq,
    DC_CPDReqEnergyTransferMode,
    DC_PreChargeReq,
    DC_WeldingDetectionReq,
    Dynamic_DC_CLReqControlMode,
    Scheduled_DC_CLReqControlMode,
)
from mcscomm.messages.enums import (
    AuthorizationType,
    ChannelSelection,
    ChargeProgress,
    ChargingSession,
    ControlMode,
    EvCheckInStatus,
    EvCheckOutStatus,
    EvseNotification,
    ParkingMethod,
    PowerToleranceAcceptance,
    Processing,
    ResponseCode,
    ServiceId,
)
from mcscomm.power.ev import EvseLimits
from mcscomm.power.limits import INF, MCS_ENVELOPE
from mcscomm.security.errors import SignatureError
from mcscomm.session import errors
from mcscomm.session.config import EvccConfig, Profile
from mcscomm.session.context import Counters, timestamp
from mcscomm.session.convert import discharge_out, magnitude_in, rn, rn_down, to_float, value
from mcscomm.session.events import (
    RESULT_FAILED,
    RESULT_PAUSED,
    RESULT_SUCCESS,
    MeteringConfirmed,
    Notification,
    PowerSample,
    ProtocolError,
    ServiceSelected,
    SessionEnded,
    SessionEstablished,
    SessionEvent,
    SessionPaused,
    SessionResumed,
    SessionSummary,
    StateChanged,
    TimeoutOccurred,
)
from mcscomm.session.installation import accept_installation, build_installation_request
from mcscomm.session.power_adapter import TruckPower
from mcscomm.session.services import is_bidirectional
from mcscomm.session.signing import CONTRACT, SignaturePort
from mcscomm.session.transitions import EVCC_REQUEST, EVCC_TABLE, Delay, EvccState, response_name
from mcscomm.v2gtp import PayloadType

E = EvccState
_ZERO_ID = b"\x00" * 8
# A WARNING on these ends the session at once. AuthorizationRes warnings are handled by
# _on_AuthorizationRes (retry with EIM, or SessionStop): -20 lets the session go on after them.
_WARNING_IS_FINAL = frozenset(
    {"AuthorizationSetupRes", "CertificateInstallationRes", "SessionSetupRes"}
)
_FLOOR_SOC_TOLERANCE = 0.005  # "at the V2G floor": within 0.5 % SoC of it
_IDLE_POWER_W = 1000.0  # below this no charge flows (V2G floor rule)
_WELDING_DONE_V = 60.0  # below this the EV considers its contactors open (not normative)
_MAX_WELDING_ROUNDS = 20


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request to send on ``payload_type``."""

    payload_type: int
    message: Any


@dataclass(slots=True)
class EvccContext:
    """What the EVCC knows about its session."""

    session_id: bytes = _ZERO_ID
    resumed: bool = False
    offered_auth: tuple[AuthorizationType, ...] = ()
    gen_challenge: bytes | None = None
    cert_install_offered: bool = False
    has_contract: bool = True
    auth: AuthorizationType = AuthorizationType.EIM
    services: tuple[int, ...] = ()
    service: ServiceId = ServiceId.MCS_BPT
    parameter_set_id: int | None = None
    parameter_sets: dict[int, list[tuple[int, dict[str, int]]]] = field(default_factory=dict)
    schedule: Scheduled_SEResControlMode | None = None
    selected_tuple_id: int | None = None
    discharge: bool = False
    charge_loop_started: float | None = None
    stop_kind: ChargingSession = ChargingSession.TERMINATE
    welding_rounds: int = 0
    pre_charge_target_v: float = 0.0
    requests_sent: int = 0
    last_meter: MeterInfo | None = None
    counters: Counters = field(default_factory=Counters)
    fell_back_to_eim: bool = False
    failure: str | None = None  # ends the session as failed after a clean SessionStop
    standby: str = "none"  # none -> active -> done (or refused)
    standby_since: float | None = None
    floor_idle_since: float | None = None
    end_reason: str | None = None  # why the truck left the charge loop, for the summary


class EvccSession:
    """EVCC state machine: call :meth:`start`, feed responses with :meth:`receive`, drain
    :meth:`outgoing`/:meth:`next_event`, and call :meth:`handle_timer` at :meth:`get_timer`."""

    def __init__(
        self,
        config: EvccConfig,
        *,
        now: float = 0.0,
        tls: bool = True,
        power: TruckPower | None = None,
        signatures: SignaturePort | None = None,
    ) -> None:
        self.config = config
        self.tls = tls
        if power is None:
            if config.truck is None:
                raise ValueError("EvccConfig.truck is required (a power-layer BatterySpec)")
            power = TruckPower(
                config.truck,
                scheduled=config.control_mode is ControlMode.SCHEDULED,
                bidirectional=is_bidirectional(config.service),
                start=now,
                initial_soc=config.initial_soc,
                target_soc=config.target_soc,
                departure_s=config.departure_s,
            )
        self.power = power
        self.signatures = signatures
        self.ctx = EvccContext(has_contract=config.has_contract, auth=config.auth)
        self.ctx.service = config.service
        self.state = E.IDLE
        self.started_at = now
        self._out: deque[Outgoing] = deque()
        self._events: deque[SessionEvent] = deque()
        self._ended = False
        self.close_reason: str | None = None
        self.result: str | None = None
        self._offer: SupportedAppProtocolReq | None = None
        self._send_at: float | None = None
        self._awaiting: str | None = None  # response name we wait for
        self._response_deadline: float | None = None
        self._phase_deadline: float | None = None
        self._phase_name = ""
        self._side_deadline: float | None = None
        self._setup_deadline: float | None = None
        self._stop_requested = False

    # -- public API -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._ended and not self._out

    @property
    def ended(self) -> bool:
        return self._ended

    def start(self, now: float) -> None:
        """Begin: send the SAP request; V2G_EVCC_CommunicationSetup_Timeout starts (20 s)."""
        if self.state is not E.IDLE:
            return
        self._setup_deadline = now + self.config.timings.evcc_communication_setup_s
        self._enter(E.SAP, Delay.NOW, now)

    def outgoing(self) -> list[Outgoing]:
        out = list(self._out)
        self._out.clear()
        return out

    def next_event(self) -> SessionEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        if self._ended:
            return None
        times = [
            t
            for t in (
                self._send_at,
                self._response_deadline,
                self._phase_deadline,
                self._side_deadline,
                self._setup_deadline,
            )
            if t is not None
        ]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self._ended:
            return
        checks = (
            (self._response_deadline, "V2G_EVCC_Msg_Timeout", f"no {self._awaiting}"),
            (self._side_deadline, "V2G_EVCC_Msg_Timeout", "no MeteringConfirmationRes"),
            (self._setup_deadline, "V2G_EVCC_CommunicationSetup_Timeout", "no SessionSetupRes"),
            (self._phase_deadline, self._phase_name, f"still {self.state.name}"),
        )
        for deadline, name, detail in checks:
            if deadline is not None and now >= deadline:
                self._emit(TimeoutOccurred(t=now, timer=name, state=self.state.name, detail=detail))
                self._end(now, RESULT_FAILED, f"timeout: {name} ({detail})")
                return
        if self._send_at is not None and now >= self._send_at:
            self._send_at = None
            self._send_request(now)

    def receive(self, message: Any, payload_type: int, now: float) -> None:
        """Handle one decoded response from the SECC."""
        if self._ended:
            return
        name = type(message).__name__
        try:
            if name == "MeteringConfirmationRes" and self._side_deadline is not None:
                self._check_code(message, name)
                self._side_deadline = None
                if self.ctx.last_meter is not None:
                    self._metering_confirmed(self.ctx.last_meter, now)
                return
            if name != self._awaiting:
                raise errors.UnexpectedMessage(f"{name} while waiting for {self._awaiting}")
            self._response_deadline = None
            self._awaiting = None
            if name != "SupportedAppProtocolRes":
                self._check_code(message, name)
                if name != "SessionSetupRes" and message.header.session_id != self.ctx.session_id:
                    raise errors.UnknownSession(
                        f"{name} for session {message.header.session_id.hex()}"
                    )
            handler = getattr(self, "_on_" + name)
            outcome: str = handler(message, now)
        except errors.SessionError as exc:
            self._emit(ProtocolError(t=now, kind=exc.kind, detail=exc.detail, response_code=None))
            self._end(now, RESULT_FAILED, f"{exc.kind}: {exc.detail}")
            return
        except Exception as exc:  # a defect in our handler: fail the session, never escape
            detail = f"{type(exc).__name__}: {exc}"
            self._emit(ProtocolError(t=now, kind="internal_error", detail=detail))
            self._end(now, RESULT_FAILED, f"internal_error: {detail}")
            return
        nxt, delay = EVCC_TABLE[self.state][outcome]
        if nxt is E.CLOSED:
            reason = f"SessionStop({self.ctx.stop_kind.value})"
            if self.ctx.failure is not None:
                self._end(now, RESULT_FAILED, f"{self.ctx.failure}; {reason}")
                return
            result = (
                RESULT_PAUSED if self.ctx.stop_kind is ChargingSession.PAUSE else RESULT_SUCCESS
            )
            if self.ctx.end_reason is not None:
                reason = f"{reason}: {self.ctx.end_reason}"
            self._end(now, result, reason)
            return
        self._enter(nxt, delay, now)

    def fail(self, reason: str, now: float) -> None:
        """The connection reports a problem (undecodable response, transport loss)."""
        if not self._ended:
            self._emit(ProtocolError(t=now, kind="connection", detail=reason))
            self._end(now, RESULT_FAILED, reason)

    def stop(self, kind: ChargingSession = ChargingSession.TERMINATE) -> None:
        """Application request: leave the charge loop at the next response and stop."""
        self.ctx.stop_kind = kind
        self._stop_requested = True

    # -- sending ----------------------------------------------------------------------------------
    def _enter(self, state: EvccState, delay: Delay, now: float) -> None:
        if state is not self.state:
            self._emit(StateChanged(t=now, old=self.state.name, new=state.name))
        old = self.state
        self.state = state
        t = self.config.timings
        self._arm_phase(old, state, now)
        extra = self.config.faults.request_delay_s
        if delay is Delay.NOW:
            at = now
        elif delay is Delay.POLL:
            at = now + t.evcc_poll_interval_s
        elif delay is Delay.CYCLE:
            at = now + t.charge_loop_cycle_s
        else:
            return
        self._send_at = at + extra
        if self._send_at <= now:
            self._send_at = None
            self._send_request(now)

    def _arm_phase(self, old: EvccState, new: EvccState, now: float) -> None:
        """Ongoing / cable-check / pre-charge deadlines start when a loop is entered."""
        if old is new:
            return
        t = self.config.timings
        if new is E.CABLE_CHECK:
            self._phase_deadline = now + t.evcc_cable_check_timeout_s
            self._phase_name = "V2G_EVCC_CableCheck_Timeout"
        elif new is E.PRE_CHARGE:
            self._phase_deadline = now + t.evcc_pre_charge_timeout_s
            self._phase_name = "V2G_EVCC_PreCharge_Timeout"
        elif new in (E.AUTHORIZATION, E.SCHEDULE_EXCHANGE, E.RENEGOTIATED_SCHEDULE,
                     E.CERTIFICATE_INSTALLATION):  # fmt: skip
            self._phase_deadline = now + t.evcc_ongoing_timeout_s
            self._phase_name = "V2G_EVCC_Ongoing_Timeout"
        else:
            self._phase_deadline = None

    def _send_request(self, now: float) -> None:
        faults = self.config.faults
        limit = faults.stop_answering_after
        if limit is not None and self.ctx.requests_sent >= limit:
            return  # planted defect: the truck goes silent
        name = EVCC_REQUEST[self.state]
        while name in faults.skip:
            outcome = "ok"
            nxt, _ = EVCC_TABLE[self.state][outcome]
            self.state = nxt
            name = EVCC_REQUEST[self.state]
        builder = getattr(self, "_build_" + self.state.name.lower())
        try:
            message = builder(now)
        except Exception as exc:  # building must not escape either (e.g. signing failed)
            detail = f"{type(exc).__name__}: {exc}"
            self._emit(ProtocolError(t=now, kind="internal_error", detail=detail))
            self._end(now, RESULT_FAILED, f"cannot build {name}: {detail}")
            return
        if faults.wrong_session_id_in == name and hasattr(message, "header"):
            message.header.session_id = self.config.random_bytes(8)
        payload = PayloadType.SAP if name == "SupportedAppProtocolReq" else _payload_of(message)
        self._out.append(Outgoing(int(payload), message))
        self.ctx.requests_sent += 1
        self._awaiting = response_name(name)
        self._response_deadline = now + self.config.timings.evcc_msg_timeout(name)

    def _header(self, now: float) -> MessageHeader:
        return MessageHeader(session_id=self.ctx.session_id, timestamp=timestamp(now))

    def _check_code(self, message: Any, name: str) -> None:
        """FAILED ends the session; so does a WARNING on the authorization steps (it means "not
        authorized"). Other warnings (e.g. WARNING_EVPowerProfileViolation) let it go on."""
        code = message.response_code
        if not isinstance(code, ResponseCode) or code.is_ok:
            return
        if self.config.faults.ignore_errors:  # deliberate defect (conformance self-test)
            return
        if code.is_failed or name in _WARNING_IS_FINAL:
            raise errors.PeerFailed(f"{name} answered {code.value}")

    # -- request builders (one per state) ---------------------------------------------------------
    def _build_sap(self, now: float) -> SupportedAppProtocolReq:
        versions = [sap.ProtocolVersion(ns, 1, 0) for ns in self.config.namespaces]
        self._offer = sap.build_offer(versions)
        return self._offer

    def _build_session_setup(self, now: float) -> SessionSetupReq:
        rid = self.config.resume_session_id
        self.ctx.session_id = rid if rid is not None else _ZERO_ID
        return SessionSetupReq(header=self._header(now), evccid=self.config.evccid)

    def _build_vehicle_check_in(self, now: float) -> VehicleCheckInReq:
        return VehicleCheckInReq(
            header=self._header(now),
            ev_check_in_status=EvCheckInStatus.CHECK_IN,
            parking_method=ParkingMethod.MANUAL,
        )

    def _build_vehicle_check_out(self, now: float) -> VehicleCheckOutReq:
        return VehicleCheckOutReq(
            header=self._header(now),
            ev_check_out_status=EvCheckOutStatus.CHECK_OUT,
            check_out_time=timestamp(now),
        )

    def _build_authorization_setup(self, now: float) -> AuthorizationSetupReq:
        return AuthorizationSetupReq(header=self._header(now))

    def _build_certificate_installation(self, now: float) -> Any:
        return build_installation_request(self, now)

    def _build_authorization(self, now: float) -> AuthorizationReq:
        header = self._header(now)
        if self.ctx.auth is AuthorizationType.PNC:
            if self.signatures is None:
                raise RuntimeError("PnC needs a PKI (EvccConfig.pki / signatures)")
            chain = self.signatures.chain(CONTRACT)
            challenge = self.ctx.gen_challenge or b"\x00" * 16
            if self.config.faults.wrong_challenge:
                challenge = bytes(b ^ 0xFF for b in challenge)
            mode = PnC_AReqAuthorizationMode(
                id="pnc-auth",
                gen_challenge=challenge,
                contract_certificate_chain=ContractCertificateChain(
                    certificate=chain[0], sub_certificates=SubCertificates(certificate=chain[1:])
                ),
            )
            header.signature = self.signed(mode)
            return AuthorizationReq(
                header=header,
                selected_authorization_service=AuthorizationType.PNC,
                authorization_mode=mode,
            )
        return AuthorizationReq(
            header=header,
            selected_authorization_service=AuthorizationType.EIM,
            authorization_mode=EIM_AReqAuthorizationMode(),
        )

    def signed(self, fragment: Any, role: str = CONTRACT) -> Any:
        """Sign with the key of ``role`` (the ``bad_signature`` fault flips a byte)."""
        assert self.signatures is not None
        signature = self.signatures.sign(fragment, role)
        if self.config.faults.bad_signature:
            raw = bytearray(signature.signature_value)
            raw[len(raw) // 2] ^= 0x01
            signature.signature_value = bytes(raw)
        return signature

    def _build_service_discovery(self, now: float) -> ServiceDiscoveryReq:
        return ServiceDiscoveryReq(header=self._header(now))

    def _chosen_service(self) -> int:
        forced = self.config.faults.select_service
        return int(forced) if forced is not None else int(self.ctx.service)

    def _build_service_detail(self, now: float) -> ServiceDetailReq:
        return ServiceDetailReq(header=self._header(now), service_id=self._chosen_service())

    def _build_service_selection(self, now: float) -> ServiceSelectionReq:
        forced = self.config.faults.select_parameter_set
        set_id = forced if forced is not None else self.ctx.parameter_set_id
        if set_id is None:
            raise RuntimeError("no parameter set chosen")
        return ServiceSelectionReq(
            header=self._header(now),
            selected_energy_transfer_service=SelectedService(
                service_id=self._chosen_service(), parameter_set_id=set_id
            ),
        )

    @property
    def _negative(self) -> bool:
        return self.config.negative_discharge and self.config.profile is Profile.LENIENT

    def _build_charge_parameter_discovery(self, now: float) -> DC_ChargeParameterDiscoveryReq:
        lim = self.power.cpd_limits()
        base: dict[str, Any] = dict(
            ev_maximum_charge_power=rn_down(lim.max_charge_power_w),
            ev_minimum_charge_power=rn(lim.min_charge_power_w),
            ev_maximum_charge_current=rn_down(lim.max_charge_current_a),
            ev_minimum_charge_current=rn(lim.min_charge_current_a),
            ev_maximum_voltage=rn_down(lim.max_voltage_v),
            ev_minimum_voltage=rn(lim.min_voltage_v),
            target_soc=round(self.power.target_soc_percent),
        )
        mode: DC_CPDReqEnergyTransferMode
        bpt = is_bidirectional(self.ctx.service)
        if self.config.faults.wrong_charge_parameters:
            bpt = not bpt  # planted defect: the variant that does not fit the service
        if bpt:
            neg = self._negative
            mode = BPT_DC_CPDReqEnergyTransferMode(
                **base,
                ev_maximum_discharge_power=discharge_out(lim.max_discharge_power_w, neg),
                ev_minimum_discharge_power=discharge_out(lim.min_discharge_power_w, neg),
                ev_maximum_discharge_current=discharge_out(lim.max_discharge_current_a, neg),
                ev_minimum_discharge_current=discharge_out(lim.min_discharge_current_a, neg),
            )
        else:
            mode = DC_CPDReqEnergyTransferMode(**base)
        return DC_ChargeParameterDiscoveryReq(header=self._header(now), transfer_mode=mode)

    def _departure(self, now: float) -> int:
        dep = self.power.controller.departure - now
        return int(min(max(dep, 0.0), 4_294_967_295.0)) if math.isfinite(dep) else 86_400

    def _build_schedule_exchange(self, now: float) -> ScheduleExchangeReq:
        req = self.power.request(now)
        target = max(0.0, value_or(req.target_energy_wh))
        mode: Scheduled_SEReqControlMode | Dynamic_SEReqControlMode
        if self.config.control_mode is ControlMode.SCHEDULED:
            mode = Scheduled_SEReqControlMode(
                departure_time=self._departure(now),
                ev_target_energy_request=rn(target),
                ev_maximum_energy_request=rn(max(target, value_or(req.max_energy_wh))),
                ev_minimum_energy_request=rn(value_or(req.min_energy_wh)),
            )
        else:
            bpt = is_bidirectional(self.ctx.service)
            mode = Dynamic_SEReqControlMode(
                departure_time=self._departure(now),
                target_soc=round(self.power.target_soc_percent),
                ev_target_energy_request=rn(target),
                ev_maximum_energy_request=rn(max(target, value_or(req.max_energy_wh))),
                ev_minimum_energy_request=rn(value_or(req.min_energy_wh)),
                ev_maximum_v2x_energy_request=rn(value_or(req.max_v2x_energy_wh)) if bpt else None,
                ev_minimum_v2x_energy_request=rn(value_or(req.min_v2x_energy_wh)) if bpt else None,
            )
        return ScheduleExchangeReq(
            header=self._header(now),
            maximum_supporting_points=self.config.maximum_supporting_points,
            control_mode=mode,
        )

    _build_renegotiated_schedule = _build_schedule_exchange

    def _build_cable_check(self, now: float) -> DC_CableCheckReq:
        return DC_CableCheckReq(header=self._header(now))

    def _build_pre_charge(self, now: float) -> DC_PreChargeReq:
        v = self.power.present_voltage()
        self.ctx.pre_charge_target_v = v
        return DC_PreChargeReq(
            header=self._header(now),
            ev_processing=Processing.ONGOING,
            ev_present_voltage=rn(v),
            ev_target_voltage=rn(v),
        )

    def _build_power_delivery_start(self, now: float) -> PowerDeliveryReq:
        bpt = is_bidirectional(self.ctx.service)
        channel = None
        if bpt:
            channel = ChannelSelection.DISCHARGE if self.ctx.discharge else ChannelSelection.CHARGE
        return PowerDeliveryReq(
            header=self._header(now),
            ev_processing=Processing.FINISHED,
            charge_progress=ChargeProgress.START,
            ev_power_profile=self._power_profile(now),
            bpt_channel_selection=channel,
        )

    def _power_profile(self, now: float) -> EVPowerProfile | None:
        """The EVPowerProfile of PowerDelivery(Start), anchored at the current whole second.

        Scheduled: select the first offered tuple; the profile is that tuple's plan from ``now``
        on (charge > 0 from the charging schedule, discharge < 0 from the discharging one), with
        PowerToleranceAcceptance when the tuple carries a PowerTolerance. Dynamic: one entry of
        the power the truck plans to ask for until departure (the XSD allows the profile with an
        empty Dynamic_EVPPTControlMode; Josev's SECC requires it, docs/interop.md).
        """
        anchor = timestamp(now)
        if self.config.control_mode is ControlMode.DYNAMIC:
            return self._dynamic_power_profile(now, anchor)
        if self.ctx.schedule is None:
            return None
        tuples = self.ctx.schedule.schedule_tuple
        if not tuples:
            return None
        chosen = tuples[0]
        self.ctx.selected_tuple_id = chosen.schedule_tuple_id
        plan = _profile_from_schedule(
            chosen, anchor, bidirectional=is_bidirectional(self.ctx.service)
        )
        if self.config.faults.exceed_power_profile:
            plan = [(d, p * 2.0 + math.copysign(1000.0, p or 1.0)) for d, p in plan]
        entries = [PowerScheduleEntry(duration=d, power=rn_down(p)) for d, p in plan]
        return EVPowerProfile(
            time_anchor=anchor,
            control_mode=Scheduled_EVPPTControlMode(
                selected_schedule_tuple_id=chosen.schedule_tuple_id,
                power_tolerance_acceptance=self._tolerance_acceptance(chosen, plan),
            ),
            ev_power_profile_entries=EVPowerProfileEntryList(ev_power_profile_entry=entries),
        )

    def _tolerance_acceptance(
        self, chosen: Any, plan: list[tuple[int, float]]
    ) -> PowerToleranceAcceptance | None:
        """Answer a PowerTolerance of the selected tuple (None when it carries none): the EV
        confirms when it can keep every planned power within schedule + tolerance, i.e. no
        non-zero entry lies below the truck's minimum charge/discharge power minus the
        tolerance (interop: Josev's SECC expects the element when it sent a tolerance)."""
        tolerances = [
            float(s.power_schedule.power_tolerance)
            for s in (chosen.charging_schedule, chosen.discharging_schedule)
            if s is not None and s.power_schedule.power_tolerance is not None
        ]
        if not tolerances:
            return None
        lim = self.power.cpd_limits()
        return tolerance_acceptance(
            plan, min(tolerances), lim.min_charge_power_w, lim.min_discharge_power_w
        )

    def _dynamic_power_profile(self, now: float, anchor: int) -> EVPowerProfile:
        req = self.power.request(now)
        if self.ctx.discharge:
            p = -finite(req.max_discharge_power_w, _P_MAX)
        else:
            p = finite(req.max_charge_power_w, _P_MAX)
        duration = max(1, self._departure(now))
        entry = PowerScheduleEntry(duration=duration, power=rn_down(p))
        return EVPowerProfile(
            time_anchor=anchor,
            control_mode=Dynamic_EVPPTControlMode(),
            ev_power_profile_entries=EVPowerProfileEntryList(ev_power_profile_entry=[entry]),
        )

    def _build_charge_loop(self, now: float) -> DC_ChargeLoopReq:
        req = self.power.request(now)
        if self.ctx.standby == "active":  # standby: the truck asks for no power either way
            req = dataclasses.replace(
                req,
                target_current_a=0.0,
                max_charge_power_w=0.0,
                min_charge_power_w=0.0,
                max_charge_current_a=0.0,
                max_discharge_power_w=0.0,
                min_discharge_power_w=0.0,
                max_discharge_current_a=0.0,
            )
        bpt = is_bidirectional(self.ctx.service)
        neg = self._negative
        v = req.present_voltage_v
        display = DisplayParameters(
            present_soc=round(self.power.soc_percent),
            target_soc=round(self.power.target_soc_percent),
        )
        mode: Any
        common: dict[str, Any]
        if self.config.control_mode is ControlMode.SCHEDULED:
            target_i = 0.0 if math.isnan(req.target_current_a) else req.target_current_a
            target_i *= self.config.faults.exceed_factor  # 1.0 unless a deliberate defect
            # strict: magnitudes, the channel says the direction; lenient+negative: signed
            wire_i = target_i if (neg or not bpt) else abs(target_i)
            if not bpt:
                wire_i = max(0.0, wire_i)
            common = dict(
                ev_target_current=rn_down(wire_i),
                ev_target_voltage=rn_down(value_or(req.target_voltage_v, v)),
                ev_maximum_charge_power=rn_down(finite(req.max_charge_power_w, _P_MAX)),
                ev_maximum_charge_current=rn_down(finite(req.max_charge_current_a, _I_MAX)),
                ev_maximum_voltage=rn_down(finite(req.max_voltage_v, _V_MAX)),
                ev_minimum_voltage=rn(req.min_voltage_v),
            )
            if bpt:
                mode = BPT_Scheduled_DC_CLReqControlMode(
                    **common,
                    ev_maximum_discharge_power=discharge_out(
                        finite(req.max_discharge_power_w, _P_MAX), neg
                    ),
                    ev_maximum_discharge_current=discharge_out(
                        finite(req.max_discharge_current_a, _I_MAX), neg
                    ),
                )
            else:
                mode = Scheduled_DC_CLReqControlMode(**common)
        else:
            common = dict(
                departure_time=self._departure(now),
                ev_target_energy_request=rn(max(0.0, value_or(req.target_energy_wh))),
                ev_maximum_energy_request=rn(max(0.0, value_or(req.max_energy_wh))),
                ev_minimum_energy_request=rn(value_or(req.min_energy_wh)),
                ev_maximum_charge_power=rn_down(finite(req.max_charge_power_w, _P_MAX)),
                ev_minimum_charge_power=rn(req.min_charge_power_w),
                ev_maximum_charge_current=rn_down(finite(req.max_charge_current_a, _I_MAX)),
                ev_maximum_voltage=rn_down(finite(req.max_voltage_v, _V_MAX)),
                ev_minimum_voltage=rn(req.min_voltage_v),
            )
            if bpt:
                mode = BPT_Dynamic_DC_CLReqControlMode(
                    **common,
                    ev_maximum_discharge_power=discharge_out(
                        finite(req.max_discharge_power_w, _P_MAX), neg
                    ),
                    ev_minimum_discharge_power=discharge_out(req.min_discharge_power_w, neg),
                    ev_maximum_discharge_current=discharge_out(
                        finite(req.max_discharge_current_a, _I_MAX), neg
                    ),
                    ev_maximum_v2x_energy_request=rn(value_or(req.max_v2x_energy_wh)),
                    ev_minimum_v2x_energy_request=rn(value_or(req.min_v2x_energy_wh)),
                )
            else:
                mode = Dynamic_DC_CLReqControlMode(**common)
        return DC_ChargeLoopReq(
            header=self._header(now),
            display_parameters=display,
            meter_info_requested=self.config.meter_info_requested,
            ev_present_voltage=rn(v),
            control_mode=mode,
        )

    def _build_power_delivery_standby(self, now: float) -> PowerDeliveryReq:
        return PowerDeliveryReq(
            header=self._header(now),
            ev_processing=Processing.FINISHED,
            charge_progress=ChargeProgress.STANDBY,
        )

    def _build_power_delivery_renegotiate(self, now: float) -> PowerDeliveryReq:
        return PowerDeliveryReq(
            header=self._header(now),
            ev_processing=Processing.FINISHED,
            charge_progress=ChargeProgress.SCHEDULE_RENEGOTIATION,
        )

    def _build_power_delivery_stop(self, now: float) -> PowerDeliveryReq:
        return PowerDeliveryReq(
            header=self._header(now),
            ev_processing=Processing.FINISHED,
            charge_progress=ChargeProgress.STOP,
        )

    def _build_welding_detection(self, now: float) -> DC_WeldingDetectionReq:
        return DC_WeldingDetectionReq(header=self._header(now), ev_processing=Processing.ONGOING)

    def _build_session_stop(self, now: float) -> SessionStopReq:
        return SessionStopReq(header=self._header(now), charging_session=self.ctx.stop_kind)

    def _send_metering_confirmation(self, meter: MeterInfo, now: float) -> None:
        """Answer the SECC's MeteringConfirmation trigger on the 0x8102 side stream, signed
        with the contract key under PnC (V2G20-1083/1084)."""
        control: Scheduled_SMDTControlMode | Dynamic_SMDTControlMode
        if self.config.control_mode is ControlMode.SCHEDULED:
            control = Scheduled_SMDTControlMode(
                selected_schedule_tuple_id=self.ctx.selected_tuple_id or 1
            )
        else:
            control = Dynamic_SMDTControlMode()
        data = SignedMeteringData(
            id="metering", session_id=self.ctx.session_id, meter_info=meter, control_mode=control
        )
        header = self._header(now)
        if self.ctx.auth is AuthorizationType.PNC and self.signatures is not None:
            header.signature = self.signed(data)
        msg = MeteringConfirmationReq(header=header, signed_metering_data=data)
        self._out.append(Outgoing(int(PayloadType.METERING_CONFIRMATION), msg))
        self._side_deadline = now + self.config.timings.evcc_msg_timeout("MeteringConfirmationReq")

    # -- response handlers: return an outcome of EVCC_TABLE[state] --------------------------------
    def _on_SupportedAppProtocolRes(self, res: Any, now: float) -> str:
        assert self._offer is not None
        try:
            sap.check_response(self._offer, res)
        except sap.SapError as exc:
            raise errors.PeerFailed(f"SAP: {exc}") from exc
        return "ok"

    def _on_SessionSetupRes(self, res: Any, now: float) -> str:
        self._setup_deadline = None
        sid = res.header.session_id
        if res.response_code is ResponseCode.OK_OLD_SESSION_JOINED:
            if sid != self.config.resume_session_id:
                raise errors.UnknownSession("OK_OldSessionJoined for a session we did not ask for")
            self.ctx.session_id = sid
            self.ctx.resumed = True
            self._emit(SessionResumed(t=now, session_id=sid.hex()))
            self._emit(SessionEstablished(t=now, session_id=sid.hex(), resumed=True))
            if self.ctx.parameter_set_id is None:
                self.ctx.parameter_set_id = int(self.config.control_mode)
            return "resumed"
        if sid == _ZERO_ID:
            raise errors.PeerFailed("SessionSetupRes with an all-zero SessionID")
        self.ctx.session_id = sid
        self._emit(SessionEstablished(t=now, session_id=sid.hex()))
        return "check_in" if self.config.vehicle_check_in else "new"

    def _on_VehicleCheckInRes(self, res: Any, now: float) -> str:
        return "ok"

    def _on_VehicleCheckOutRes(self, res: Any, now: float) -> str:
        return "ok"

    def _on_AuthorizationSetupRes(self, res: Any, now: float) -> str:
        ctx = self.ctx
        ctx.offered_auth = tuple(res.authorization_services)
        ctx.cert_install_offered = bool(res.certificate_installation_service)
        if isinstance(res.authorization_mode, PnC_ASResAuthorizationMode):
            ctx.gen_challenge = res.authorization_mode.gen_challenge
        want = self.config.auth
        if want is AuthorizationType.PNC and AuthorizationType.PNC in ctx.offered_auth:
            if ctx.gen_challenge is None:
                raise errors.PeerFailed("PnC offered without GenChallenge")
            ctx.auth = AuthorizationType.PNC
            if not ctx.has_contract:
                if not ctx.cert_install_offered:
                    raise errors.PeerFailed("no contract certificate and no installation offered")
                return "install"
            return "ok"
        if AuthorizationType.EIM in ctx.offered_auth:
            ctx.auth = AuthorizationType.EIM
            return "ok"
        raise errors.PeerFailed(f"{want.value} not offered ({[a.value for a in ctx.offered_auth]})")

    def _on_CertificateInstallationRes(self, res: Any, now: float) -> str:
        if res.evse_processing is not Processing.FINISHED:
            return "ongoing"
        try:
            accept_installation(self, res, now)
        except SignatureError as exc:
            raise errors.SignatureFailure(f"CertificateInstallationRes: {exc}") from exc
        self.ctx.has_contract = True
        return "ok"

    def _on_AuthorizationRes(self, res: Any, now: float) -> str:
        code = res.response_code
        if isinstance(code, ResponseCode) and not code.is_ok:  # a WARNING (FAILED raised)
            ctx = self.ctx
            can_fall_back = (
                ctx.auth is AuthorizationType.PNC
                and AuthorizationType.EIM in ctx.offered_auth
                and self.config.auth_fallback_to_eim
                and not ctx.fell_back_to_eim
            )
            if can_fall_back:
                ctx.auth = AuthorizationType.EIM
                ctx.fell_back_to_eim = True
                return "retry"
            ctx.failure = f"not authorized: AuthorizationRes answered {code.value}"
            ctx.stop_kind = ChargingSession.TERMINATE
            self._emit(
                ProtocolError(t=now, kind="not_authorized", detail=ctx.failure, response_code=None)
            )
            return "give_up"
        return "ok" if res.evse_processing is Processing.FINISHED else "ongoing"

    def _on_ServiceDiscoveryRes(self, res: Any, now: float) -> str:
        offered = tuple(s.service_id for s in res.energy_transfer_service_list.service)
        self.ctx.services = offered
        if self._chosen_service() not in offered and self.config.faults.select_service is None:
            raise errors.ServiceSelectionInvalid(
                f"{self.ctx.service.name} not offered (offered: {list(offered)})"
            )
        return "ok"

    def _on_ServiceDetailRes(self, res: Any, now: float) -> str:
        sets = []
        for ps in res.service_parameter_list.parameter_set:
            params = {p.name: p.int_value for p in ps.parameter if p.int_value is not None}
            sets.append((ps.parameter_set_id, params))
        self.ctx.parameter_sets[res.service_id] = sets
        want = int(self.config.control_mode)
        match = [sid for sid, params in sets if params.get("ControlMode") == want]
        if not match and self.config.faults.select_parameter_set is None:
            raise errors.ServiceSelectionInvalid(
                f"no parameter set with ControlMode={self.config.control_mode.name}"
            )
        self.ctx.parameter_set_id = match[0] if match else None
        return "ok"

    def _on_ServiceSelectionRes(self, res: Any, now: float) -> str:
        self._emit(
            ServiceSelected(
                t=now,
                service=self.ctx.service.name,
                parameter_set_id=self.ctx.parameter_set_id or 0,
                control_mode=self.config.control_mode.name,
            )
        )
        return "ok"

    def _on_DC_ChargeParameterDiscoveryRes(self, res: Any, now: float) -> str:
        mode = res.transfer_mode
        lenient = self.config.profile is Profile.LENIENT
        bpt = hasattr(mode, "evse_maximum_discharge_power")
        if bpt != is_bidirectional(self.ctx.service):
            raise errors.WrongChargeParameter(f"{type(mode).__name__} for {self.ctx.service.name}")
        limits = EvseLimits(
            evse_max_charge_power_w=value(mode.evse_maximum_charge_power),
            evse_max_charge_current_a=value(mode.evse_maximum_charge_current),
            evse_max_discharge_power_w=magnitude_in(
                getattr(mode, "evse_maximum_discharge_power", None),
                "EVSEMaximumDischargePower",
                lenient,
            ),
            evse_max_discharge_current_a=magnitude_in(
                getattr(mode, "evse_maximum_discharge_current", None),
                "EVSEMaximumDischargeCurrent",
                lenient,
            ),
            evse_max_voltage_v=value(mode.evse_maximum_voltage),
            evse_min_voltage_v=value(mode.evse_minimum_voltage),
        )
        self.power.accept_evse_limits(limits)
        problem = self._voltage_mismatch(limits)
        if problem is not None:
            # interop (docs/interop.md): pre-charging to a target the EVSE cannot reach only
            # ends in a timeout; leave cleanly with SessionStop(Terminate) and say why
            self.ctx.failure = problem
            self.ctx.stop_kind = ChargingSession.TERMINATE
            self._emit(
                ProtocolError(t=now, kind="voltage_mismatch", detail=problem, response_code=None)
            )
            return "give_up"
        return "ok"

    def _voltage_mismatch(self, evse: EvseLimits) -> str | None:
        """Why the EVSE's voltage window cannot serve this truck (None when it can): the
        windows do not overlap, or the battery's present voltage (the pre-charge target) lies
        outside the EVSE's window."""
        lim = self.power.cpd_limits()
        lo, hi = evse.evse_min_voltage_v, evse.evse_max_voltage_v
        if hi < lim.min_voltage_v or lo > lim.max_voltage_v:
            return (
                f"no common voltage window: EV {lim.min_voltage_v:g}-{lim.max_voltage_v:g} V, "
                f"EVSE {lo:g}-{hi:g} V"
            )
        v = self.power.present_voltage()
        if not lo <= v <= hi:
            return f"battery at {v:g} V, outside the EVSE's {lo:g}-{hi:g} V: pre-charge unreachable"
        return None

    def _on_ScheduleExchangeRes(self, res: Any, now: float) -> str:
        if res.evse_processing is not Processing.FINISHED:
            return "ongoing"
        if isinstance(res.control_mode, Scheduled_SEResControlMode):
            if self.config.control_mode is not ControlMode.SCHEDULED:
                raise errors.WrongChargeParameter("Scheduled schedule for a Dynamic session")
            self.ctx.schedule = res.control_mode
        elif self.config.control_mode is ControlMode.SCHEDULED:
            raise errors.WrongChargeParameter("Dynamic answer for a Scheduled session")
        return "ok"

    def _on_DC_CableCheckRes(self, res: Any, now: float) -> str:
        return "ok" if res.evse_processing is Processing.FINISHED else "ongoing"

    def _on_DC_PreChargeRes(self, res: Any, now: float) -> str:
        v = value(res.evse_present_voltage)
        if abs(v - self.ctx.pre_charge_target_v) <= self.config.pre_charge_tolerance_v:
            return "ok"
        return "ongoing"

    def _on_PowerDeliveryRes(self, res: Any, now: float) -> str:
        ctx = self.ctx
        if self.state is E.POWER_DELIVERY_START:
            if ctx.charge_loop_started is None:
                ctx.charge_loop_started = now
            if ctx.standby == "active":
                ctx.standby = "done"
        if self.state is E.POWER_DELIVERY_STANDBY:
            refused = res.response_code is ResponseCode.WARNING_STANDBY_NOT_ALLOWED
            refused = refused and not self.config.faults.standby_despite_warning
            ctx.standby = "refused" if refused else "active"
            ctx.standby_since = now
        if self.state is E.POWER_DELIVERY_STOP:
            skip = not self.config.welding_detection or (
                ctx.stop_kind is ChargingSession.SERVICE_RENEGOTIATION
            )
            if skip:
                return "check_out" if self._checks_out() else "skip_welding"
            return "ok"
        return "ok"

    def _checks_out(self) -> bool:
        """VehicleCheckOut before SessionStop(Terminate) when configured."""
        return self.config.vehicle_check_out and self.ctx.stop_kind is ChargingSession.TERMINATE

    def _on_DC_ChargeLoopRes(self, res: Any, now: float) -> str:
        ctx = self.ctx
        lenient = self.config.profile is Profile.LENIENT
        i = value(res.evse_present_current)
        v = value(res.evse_present_voltage)
        scheduled = self.config.control_mode is ControlMode.SCHEDULED
        flip = scheduled and ctx.discharge and i > 0 and not self._negative
        if flip and is_bidirectional(ctx.service):
            i = -i  # strict: magnitudes, the Discharge channel gives the sign
        self.power.observe(now, i, v)
        mode = res.control_mode
        self.power.accept_evse_limits(
            EvseLimits(
                evse_max_charge_power_w=_opt(mode.evse_maximum_charge_power, INF),
                evse_max_charge_current_a=_opt(mode.evse_maximum_charge_current, INF),
                evse_max_discharge_power_w=magnitude_in(
                    getattr(mode, "evse_maximum_discharge_power", None), "discharge", lenient
                ),
                evse_max_discharge_current_a=magnitude_in(
                    getattr(mode, "evse_maximum_discharge_current", None), "discharge", lenient
                ),
                evse_max_voltage_v=_opt(mode.evse_maximum_voltage, INF),
                evse_min_voltage_v=_opt(getattr(mode, "evse_minimum_voltage", None), 0.0),
            )
        )
        p = i * v
        ctx.counters.add_sample(now, p)
        ctx.counters.soc = self.power.soc_percent
        self._emit(
            PowerSample(
                t=now, voltage_v=v, current_a=i, power_w=p, soc=self.power.soc_percent,
                binding_limit="",
            )
        )  # fmt: skip
        if res.meter_info is not None:
            ctx.last_meter = res.meter_info
        status = res.evse_status
        if status is not None:
            note = status.evse_notification
            self._emit(Notification(t=now, notification=note.value))
            if note is EvseNotification.METERING_CONFIRMATION and res.meter_info is not None:
                if self._side_deadline is None:
                    self._send_metering_confirmation(res.meter_info, now)
            elif note is EvseNotification.TERMINATE:
                ctx.stop_kind = ChargingSession.TERMINATE
                return "stop"
            elif note is EvseNotification.PAUSE:
                ctx.stop_kind = ChargingSession.PAUSE
                return "stop"
            elif note is EvseNotification.SERVICE_RENEGOTIATION:
                ctx.stop_kind = ChargingSession.SERVICE_RENEGOTIATION
                return "stop"
            elif note is EvseNotification.SCHEDULE_RENEGOTIATION:
                return "renegotiate"
            elif note is EvseNotification.EXIT_STANDBY and ctx.standby == "active":
                return "switch"  # PowerDelivery(Start) ends the standby
        if self._stop_requested or self.power.fault is not None:
            return "stop"
        started = ctx.charge_loop_started if ctx.charge_loop_started is not None else now
        duration = self.config.duration_s
        if duration is not None and now - started >= duration:
            ctx.stop_kind = (
                ChargingSession.PAUSE if self.config.stop == "pause" else ChargingSession.TERMINATE
            )
            return "stop"
        if duration is None:
            # no fixed duration: leave at departure, or when full and not offering V2G
            departure = self.power.controller.departure
            if now >= departure or (self.power.at_target() and not self.power.bidirectional):
                ctx.stop_kind = ChargingSession.TERMINATE
                return "stop"
        idle_end = self._idle_at_bound(i * v, now)
        if idle_end is not None:
            ctx.stop_kind = ChargingSession.TERMINATE
            ctx.end_reason = idle_end
            return "stop"
        standby = self.config.standby
        if standby is not None:
            if ctx.standby == "none" and now - started >= standby[0]:
                return "standby"
            since = ctx.standby_since if ctx.standby_since is not None else now
            if ctx.standby == "active" and now - since >= standby[1]:
                return "switch"  # leave standby: PowerDelivery(Start) on the same channel
        if ctx.standby == "active":
            return "ok"
        if self.config.control_mode is ControlMode.SCHEDULED and is_bidirectional(ctx.service):
            want = self.power.request(now).target_current_a
            if want == want and want != 0.0 and (want < 0) != ctx.discharge:
                ctx.discharge = want < 0
                return "switch"
        return "ok"

    def _idle_at_bound(self, power_w: float, now: float) -> str | None:
        """The idle rule of a bidirectional truck (``EvccConfig.v2g_floor_idle_s``); the reason
        to leave, or None to stay.

        * At its V2G floor (within 0.5 % SoC) and not charged (< 1 kW) for that long -- the
          backend keeps discharging (a trickle tapering towards the floor) or holds it at zero.
        * At its target SoC and not discharged (> -1 kW) for that long, when nothing else will
          end the session: no ``duration_s`` and no departure. Without this a standalone
          ``mcscomm evcc`` on a bidirectional service would sit full at the charger forever.
          With a departure the truck stays: the backend may still want its energy (the depot
          scenario discharges in the evening peak).

        Either way the truck has nothing more to do at this charger."""
        limit = self.config.v2g_floor_idle_s
        ctx = self.ctx
        if limit is None or not self.power.bidirectional or ctx.standby == "active":
            ctx.floor_idle_since = None
            return None
        power = self.power
        reason: str | None = None
        if power.battery.soc <= power.spec.v2g_min_soc + _FLOOR_SOC_TOLERANCE:
            if power_w < _IDLE_POWER_W:  # charging again resets the rule
                reason = "at its V2G floor"
        elif (
            self.config.duration_s is None
            and not math.isfinite(power.controller.departure)
            and power.at_target()
            and power_w > -_IDLE_POWER_W  # discharging again resets the rule
        ):
            reason = "at its target SoC"
        if reason is None:
            ctx.floor_idle_since = None
            return None
        if ctx.floor_idle_since is None:
            ctx.floor_idle_since = now
        return reason if now - ctx.floor_idle_since >= limit else None

    def _on_DC_WeldingDetectionRes(self, res: Any, now: float) -> str:
        self.ctx.welding_rounds += 1
        v = value(res.evse_present_voltage)
        if v < _WELDING_DONE_V or self.ctx.welding_rounds >= _MAX_WELDING_ROUNDS:
            return "check_out" if self._checks_out() else "ok"
        return "ongoing"

    def _on_SessionStopRes(self, res: Any, now: float) -> str:
        kind = self.ctx.stop_kind
        if kind is ChargingSession.PAUSE:
            self._emit(SessionPaused(t=now, session_id=self.ctx.session_id.hex()))
        if kind is ChargingSession.SERVICE_RENEGOTIATION:
            self.ctx.stop_kind = ChargingSession.TERMINATE
            self.ctx.charge_loop_started = None
            self.ctx.discharge = False
            return "service_renegotiation"
        return "ok"

    # -- ending -----------------------------------------------------------------------------------
    def _end(self, now: float, result: str, reason: str) -> None:
        if self._ended:
            return
        c = self.ctx.counters
        self._emit(
            SessionSummary(
                t=now,
                energy_charged_wh=c.energy_charged_wh,
                energy_discharged_wh=c.energy_discharged_wh,
                peak_charge_power_w=c.peak_charge_power_w,
                peak_discharge_power_w=c.peak_discharge_power_w,
                duration_s=now - self.started_at,
                charge_loop_cycles=c.charge_loop_cycles,
                final_soc=self.power.soc_percent,
            )
        )
        if self.state is not E.CLOSED:
            self._emit(StateChanged(t=now, old=self.state.name, new=E.CLOSED.name))
        self._emit(SessionEnded(t=now, result=result, reason=reason))
        self.state = E.CLOSED
        self._ended = True
        self.result = result
        self.close_reason = reason
        self._send_at = self._response_deadline = self._phase_deadline = None
        self._side_deadline = self._setup_deadline = None

    def _emit(self, event: SessionEvent) -> None:
        self._events.append(event)

    def _metering_confirmed(self, meter: MeterInfo, now: float) -> None:
        self._emit(
            MeteringConfirmed(
                t=now,
                charged_wh=meter.charged_energy_reading_wh,
                discharged_wh=meter.bpt_discharged_energy_reading_wh,
            )
        )


def _segments(schedule: Any) -> list[tuple[int, int, float]]:
    """(start, end, |power|) of a ChargingSchedule's entries in TimeAnchor seconds."""
    ps = schedule.power_schedule
    t = ps.time_anchor
    out = []
    for e in ps.power_schedule_entries.power_schedule_entry:
        out.append((t, t + e.duration, abs(float(e.power))))
        t += e.duration
    return out


def _power_at(segments: list[tuple[int, int, float]], t: int) -> float:
    for a, b, p in segments:
        if a <= t < b:
            return p
    return segments[-1][2] if segments and t >= segments[-1][1] else 0.0


def _profile_from_schedule(
    tup: Any, anchor: int, *, bidirectional: bool
) -> list[tuple[int, float]]:
    """Signed (duration, power) entries following ``tup`` from ``anchor`` (<= 2048 entries)."""
    charge = _segments(tup.charging_schedule)
    discharge = (
        _segments(tup.discharging_schedule)
        if bidirectional and tup.discharging_schedule is not None
        else []
    )
    points = {anchor}
    for a, b, _ in charge + discharge:
        points.update(x for x in (a, b) if x > anchor)
    times = sorted(points)
    if len(times) == 1:
        times.append(anchor + 60)  # past the schedule's end: its last entry holds
    plan: list[tuple[int, float]] = []
    for a, b in itertools.pairwise(times):
        cp, dp = _power_at(charge, a), _power_at(discharge, a)
        p = cp if cp > 0 or dp <= 0 else -dp
        if plan and plan[-1][1] == p:
            plan[-1] = (plan[-1][0] + b - a, p)
        else:
            plan.append((b - a, p))
    return plan[:2048]


def tolerance_acceptance(
    plan: list[tuple[int, float]], tolerance_w: float, min_charge_w: float, min_discharge_w: float
) -> PowerToleranceAcceptance:
    """Confirmed when every non-zero planned power (> 0 charge, < 0 discharge) is one the
    truck can hold within ``tolerance_w``: not below its minimum power minus the tolerance."""
    for _, p in plan:
        floor = min_charge_w if p > 0 else min_discharge_w
        if p != 0 and abs(p) + tolerance_w < floor:
            return PowerToleranceAcceptance.POWER_TOLERANCE_NOT_CONFIRMED
    return PowerToleranceAcceptance.POWER_TOLERANCE_CONFIRMED


def value_or(x: float, default: float = 0.0) -> float:
    """``x`` unless NaN/inf (then ``default``)."""
    return x if math.isfinite(x) else default


_P_MAX = MCS_ENVELOPE.max_charge_power_w
_I_MAX = MCS_ENVELOPE.max_charge_current_a
_V_MAX = MCS_ENVELOPE.max_voltage_v


def finite(x: float, cap: float) -> float:
    """A limit for the wire: ``inf`` (no limit) becomes ``cap`` (the MCS envelope's value)."""
    return x if math.isfinite(x) else cap


def _opt(r: Any, default: float) -> float:
    return default if r is None else to_float(r)


def _payload_of(message: Any) -> int:
    from mcscomm.codec.base import payload_type_for

    return payload_type_for(message)


__all__ = ["EvccContext", "EvccSession", "Outgoing"]
