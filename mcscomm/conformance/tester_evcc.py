"""The tester EVCC: plays a truck against an SECC under test, one request at a time.

It builds every request itself (typed messages -> XmlCodec -> V2GTP) and judges every answer:
type, SessionID, ResponseCode, V2G_SECC_Msg_Performance_Time, and the power envelope in the
charge loop. Cases drive it step by step (``session_setup()``, ``charge_loop()``, ...) or run
the valid path up to a stage with :meth:`TesterEvcc.run_to`, then send their own stimulus with
:meth:`send` / :meth:`send_raw` and judge with :meth:`expect_failure` / :meth:`expect_closed`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from mcscomm import sap
from mcscomm.codec import CodecError
from mcscomm.conformance.channel import BrokenFrame, Channel, ChannelClosed
from mcscomm.conformance.model import CaseFailed, Inconclusive
from mcscomm.conformance.pics import Pics
from mcscomm.conformance.wire import (
    ZERO_SESSION,
    Log,
    check,
    codec,
    describe,
    header,
    performance_time,
    response_name,
    rn,
    val,
    wire_codec,
)
from mcscomm.messages.app_protocol import SupportedAppProtocolReq
from mcscomm.messages.common_messages import (
    AuthorizationReq,
    AuthorizationSetupReq,
    ContractCertificateChain,
    Dynamic_SEReqControlMode,
    Dynamic_SMDTControlMode,
    EIM_AReqAuthorizationMode,
    EVPowerProfile,
    EVPowerProfileEntryList,
    MeteringConfirmationReq,
    PnC_AReqAuthorizationMode,
    PnC_ASResAuthorizationMode,
    PowerDeliveryReq,
    PowerScheduleEntry,
    Scheduled_EVPPTControlMode,
    Scheduled_SEReqControlMode,
    Scheduled_SEResControlMode,
    Scheduled_SMDTControlMode,
    SelectedService,
    ServiceDetailReq,
    ServiceDiscoveryReq,
    ServiceSelectionReq,
    SessionSetupReq,
    SessionStopReq,
    SignedMeteringData,
    SubCertificates,
)
from mcscomm.messages.common_types import DisplayParameters
from mcscomm.messages.dc import (
    BPT_DC_CPDReqEnergyTransferMode,
    BPT_DC_CPDResEnergyTransferMode,
    BPT_Dynamic_DC_CLReqControlMode,
    BPT_Dynamic_DC_CLResControlMode,
    BPT_Scheduled_DC_CLReqControlMode,
    BPT_Scheduled_DC_CLResControlMode,
    DC_CableCheckReq,
    DC_ChargeLoopReq,
    DC_ChargeParameterDiscoveryReq,
    DC_CPDReqEnergyTransferMode,
    DC_PreChargeReq,
    DC_WeldingDetectionReq,
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
    EvseNotification,
    Processing,
    ServiceId,
)
from mcscomm.v2gtp import PayloadType, build_frame

BPT_SERVICES = (ServiceId.DC_BPT, ServiceId.MCS_BPT)
#: MCS physical envelope (facts §7): 1 250 V, 3 000 A, 3.75 MW.
MCS_MAX_V, MCS_MAX_A, MCS_MAX_W = 1250.0, 3000.0, 3_750_000.0

STAGES = (
    "sap",
    "session_setup",
    "authorization_setup",
    "authorization",
    "service_discovery",
    "service_detail",
    "service_selection",
    "charge_parameter_discovery",
    "schedule_exchange",
    "cable_check",
    "pre_charge",
    "power_delivery_start",
    "charge_loop",
    "power_delivery_stop",
    "welding_detection",
    "session_stop",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The valid path a case follows: energy service, control mode, authorization."""

    service: ServiceId
    control: ControlMode
    auth: AuthorizationType

    @property
    def bpt(self) -> bool:
        return self.service in BPT_SERVICES

    def label(self) -> str:
        return f"{self.service.name}/{self.control.name.title()}/{self.auth.value}"


def plan_for(
    pics: Pics,
    service: str | None = None,
    control: str | None = None,
    auth: str | None = None,
) -> Plan:
    """A plan the PICS supports (preferring MCS_BPT, Dynamic, EIM unless told otherwise)."""
    svc = service or next(s for s in ("MCS_BPT", "MCS", "DC_BPT", "DC") if s in pics.services)
    ctl = control or ("Dynamic" if "Dynamic" in pics.control_modes else pics.control_modes[0])
    au = auth or ("EIM" if "EIM" in pics.auth else "PnC")
    return Plan(
        ServiceId[svc],
        ControlMode[ctl.upper()],
        AuthorizationType.PNC if au == "PnC" else AuthorizationType.EIM,
    )


@dataclass(slots=True)
class Envelope:
    """What the tester knows of the negotiated limits (EV side from PIXIT, EVSE from CPD)."""

    evse_max_current: float = MCS_MAX_A
    evse_max_power: float = MCS_MAX_W
    evse_max_voltage: float = MCS_MAX_V
    evse_max_discharge_current: float = 0.0
    evse_max_discharge_power: float = 0.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # t, V, A


class TesterEvcc:
    """A scripted EVCC on a :class:`Channel`; every check failure raises CaseFailed."""

    def __init__(
        self,
        channel: Channel,
        pics: Pics,
        log: Log,
        *,
        manifest: Any | None = None,
        evccid: str = "TESTEREVCC01",
    ) -> None:
        self.ch = channel
        self.pics = pics
        self.log = log
        self.manifest = manifest
        self.evccid = evccid
        self.codec = codec() if channel.virtual else wire_codec(pics.pixit.encoding)
        self.tol = 0.0 if channel.virtual else pics.pixit.tolerance_s
        self.session_id = ZERO_SESSION
        self.offer: SupportedAppProtocolReq | None = None
        self.gen_challenge: bytes | None = None
        self.auth_services: list[AuthorizationType] = []
        self.offered_services: list[int] = []
        self.service_renegotiation_supported: bool | None = None
        self.parameter_sets: dict[int, list[Any]] = {}
        self.schedule: Scheduled_SEResControlMode | None = None
        self.envelope = Envelope()
        self.present_voltage = pics.pixit.ev_battery_voltage
        self.plan: Plan | None = None
        self.stage_done: str | None = None
        self.last_rtt = 0.0
        self.rtts: list[tuple[str, float]] = []
        self.notifications: list[EvseNotification] = []
        self.metering_confirmed = 0
        self.channel_selection = ChannelSelection.CHARGE
        self.cpd_res_mode: Any = None

    # -- low level ----------------------------------------------------------------------------
    def now(self) -> float:
        return self.ch.now()

    def encode(self, message: Any) -> bytes:
        return self.codec.encode(message)

    def frame(self, message: Any, payload_type: int | None = None) -> bytes:
        pt = payload_type if payload_type is not None else self.codec.payload_type_for(message)
        return build_frame(pt, self.encode(message))

    def send(self, message: Any, *, payload_type: int | None = None, fallback: Any = None) -> None:
        """Encode and send ``message`` (``fallback``: what a deaf SUT variant gets instead)."""
        data = self.frame(message, payload_type)
        fb = self.frame(fallback) if fallback is not None else None
        self.log.add(self.now(), "tester->sut", describe(message))
        self._send(data, fb)

    def send_raw(self, data: bytes, what: str, *, fallback: bytes | None = None) -> None:
        self.log.add(self.now(), "tester->sut", what, f"{len(data)} bytes")
        self._send(data, fallback)

    def _send(self, data: bytes, fallback: bytes | None) -> None:
        try:
            self.ch.send(data, fallback=fallback)
        except ChannelClosed as exc:
            self.log.note(self.now(), f"connection closed: {exc}")
            raise

    def receive(self, timeout: float) -> Any | None:
        """The next message from the SUT, None when none arrived within ``timeout``.
        Raises ChannelClosed when the SUT closed the connection."""
        try:
            frame = self.ch.recv_frame(timeout)
        except BrokenFrame as exc:
            raise CaseFailed(f"SUT sent a broken V2GTP frame: {exc}") from None
        except ChannelClosed:
            self.log.note(self.now(), "SUT closed the connection")
            raise
        if frame is None:
            return None
        try:
            message = self.codec.decode(frame.payload_type, frame.payload)
        except CodecError as exc:
            self.log.add(self.now(), "sut->tester", f"invalid document ({frame.payload_type:#06x})")
            raise CaseFailed(f"SUT sent a document that does not validate: {exc}") from None
        self.log.add(self.now(), "sut->tester", describe(message))
        return message

    def request(
        self,
        message: Any,
        *,
        payload_type: int | None = None,
        ok: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Send a request and return the SUT's response after the standard checks."""
        name = type(message).__name__
        perf = performance_time(name) if timeout is None else timeout
        t0 = self.now()
        self.send(message, payload_type=payload_type)
        try:
            res = self.receive(perf + self.tol)
        except ChannelClosed:
            raise CaseFailed(f"SUT closed the connection instead of answering {name}") from None
        if res is None:
            raise CaseFailed(
                f"no answer to {name} within V2G_SECC_Msg_Performance_Time ({perf:g} s)"
            )
        self.last_rtt = self.now() - t0
        self.rtts.append((name, self.last_rtt))
        want = response_name(name)
        check(type(res).__name__ == want, f"answered {name} with {type(res).__name__}")
        if name not in ("SupportedAppProtocolReq", "SessionSetupReq"):
            sid = res.header.session_id
            check(
                sid == self.session_id,
                f"{want} carries SessionID {sid.hex()}, not {self.session_id.hex()}",
            )
        code = getattr(res, "response_code", None)
        if ok and name != "SupportedAppProtocolReq" and code is not None:
            check(str(code.value).startswith("OK"), f"{name} answered {code.value}")
        return res

    def expect_failure(
        self,
        message: Any | None,
        codes: tuple[str, ...],
        *,
        raw: bytes | None = None,
        what: str = "",
        may_close: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Send ``message`` (or ``raw`` bytes) and require a response with one of ``codes``
        (ResponseCode values); with ``may_close`` closing without an answer also passes.
        Afterwards the SUT must not continue the session (it closes or stays silent)."""
        name = type(message).__name__ if message is not None else what
        if message is not None:
            self.send(message)
        else:
            assert raw is not None
            self.send_raw(raw, what)
        perf = timeout if timeout is not None else performance_time(name)
        try:
            res = self.receive(perf + self.tol)
        except ChannelClosed:
            if may_close:
                return "closed"
            raise CaseFailed(
                f"SUT closed the connection instead of answering {name} with {'/'.join(codes)}"
            ) from None
        if res is None:
            if may_close and self._closes_soon():
                return "closed"
            raise CaseFailed(f"no answer to {name} within {perf:g} s (expected {'/'.join(codes)})")
        code = getattr(res, "response_code", None)
        got = str(getattr(code, "value", code))
        check(got in codes, f"{name} answered {got}, expected {'/'.join(codes)}")
        return got

    def expect_code(self, message: Any, *codes: str, payload_type: int | None = None) -> Any:
        """Send ``message`` and require a response whose ResponseCode is one of ``codes``
        (the helper for user scripts); returns the response."""
        name = type(message).__name__
        self.send(message, payload_type=payload_type)
        try:
            res = self.receive(performance_time(name) + self.tol)
        except ChannelClosed:
            raise CaseFailed(f"SUT closed the connection instead of answering {name}") from None
        check(res is not None, f"no answer to {name} within {performance_time(name):g} s")
        code = str(getattr(getattr(res, "response_code", None), "value", None))
        check(code in codes, f"{name} answered {code}, expected {'/'.join(codes)}")
        return res

    def default_plan(
        self, service: str | None = None, control: str | None = None, auth: str | None = None
    ) -> Plan:
        """A valid path the PICS supports (see :func:`plan_for`)."""
        return plan_for(self.pics, service, control, auth)

    def _closes_soon(self, within: float = 3.0) -> bool:
        try:
            self.receive(within)
        except ChannelClosed:
            return True
        return False

    def expect_closed(self, within: float, *, what: str = "") -> float:
        """Require that the SUT closes the connection within ``within`` s without sending
        anything. Returns the time it took."""
        t0 = self.now()
        try:
            res = self.receive(within + self.tol)
        except ChannelClosed:
            return self.now() - t0
        if res is not None:
            raise CaseFailed(f"SUT sent {type(res).__name__} instead of closing{what}")
        raise CaseFailed(f"SUT did not close the connection within {within:g} s{what}")

    def expect_no_answer(self, within: float, *, what: str = "") -> None:
        """Require that nothing arrives within ``within`` s (closing is fine)."""
        try:
            res = self.receive(within)
        except ChannelClosed:
            return
        if res is not None:
            raise CaseFailed(f"SUT answered {type(res).__name__}{what}")

    def after_failure(self) -> None:
        """After a FAILED response the SUT ends the session: a further request must not be
        served (ISO 15118-20 §8.8.2, libiso15118 send_sequence_error)."""
        probe = ServiceDiscoveryReq(header=header(self.session_id))
        try:
            self.send(probe)
            res = self.receive(performance_time("ServiceDiscoveryReq") + self.tol)
        except ChannelClosed:
            return
        if res is None:
            return
        code = getattr(res, "response_code", None)
        if code is not None and str(code.value).startswith("OK"):
            raise CaseFailed("SUT continued the session after answering FAILED")

    # -- the valid path ----------------------------------------------------------------------
    def sap(self, offer: SupportedAppProtocolReq | None = None) -> Any:
        self.offer = offer or sap.build_offer([sap.ISO20_DC])
        res = self.request(self.offer)
        code = res.response_code.value
        check(code.startswith("OK"), f"SupportedAppProtocolReq answered {code}")
        offered = {p.schema_id for p in self.offer.app_protocol}
        check(res.schema_id in offered, f"SchemaID {res.schema_id} was not offered")
        return res

    def session_setup(self, session_id: bytes = ZERO_SESSION) -> Any:
        self.session_id = session_id
        res = self.request(SessionSetupReq(header=header(session_id), evccid=self.evccid))
        sid = res.header.session_id
        check(len(sid) == 8 and sid != ZERO_SESSION, f"SessionSetupRes SessionID {sid.hex()}")
        self.session_id = sid
        return res

    def authorization_setup(self) -> Any:
        res = self.request(AuthorizationSetupReq(header=header(self.session_id)))
        self.auth_services = list(res.authorization_services)
        if isinstance(res.authorization_mode, PnC_ASResAuthorizationMode):
            self.gen_challenge = res.authorization_mode.gen_challenge
        return res

    def pnc_mode(self, challenge: bytes | None = None) -> tuple[PnC_AReqAuthorizationMode, Any]:
        """A signed PnC authorization mode (contract key of the PIXIT PKI) and its Signature."""
        if self.manifest is None:
            raise Inconclusive("PnC needs the PIXIT pki_dir (contract certificate and key)")
        from mcscomm.security import xmldsig

        chain = [c.public_bytes(Encoding.DER) for c in self.manifest.chain("contract_leaf")]
        mode = PnC_AReqAuthorizationMode(
            id="pnc-auth",
            gen_challenge=challenge if challenge is not None else (self.gen_challenge or bytes(16)),
            contract_certificate_chain=ContractCertificateChain(
                certificate=chain[0], sub_certificates=SubCertificates(certificate=chain[1:])
            ),
        )
        key = self.manifest.private_key("contract_leaf")
        return mode, xmldsig.sign([mode], key, self.codec)

    def certificate_installation_req(self) -> Any:
        """A CertificateInstallationReq of a truck without contract: the OEM provisioning chain
        of the PIXIT PKI, signed with its key in the header (V2G20-2492 ff., facts §6.2)."""
        if self.manifest is None:
            raise Inconclusive("CertificateInstallation needs the PIXIT pki_dir")
        from mcscomm.messages.common_messages import (
            CertificateInstallationReq,
            SignedCertificateChain,
        )
        from mcscomm.messages.common_types import ListOfRootCertificateIDs
        from mcscomm.messages.xmldsig import X509IssuerSerial
        from mcscomm.security import xmldsig

        chain = [c.public_bytes(Encoding.DER) for c in self.manifest.chain("oem_prov_leaf")]
        part = SignedCertificateChain(
            id="oem-prov-chain",
            certificate=chain[0],
            sub_certificates=SubCertificates(certificate=chain[1:]) if chain[1:] else None,
        )
        h = header(self.session_id)
        h.signature = xmldsig.sign([part], self.manifest.private_key("oem_prov_leaf"), self.codec)
        roots = [self.manifest.certificate(r) for r in ("mo_root", "v2g_root")]
        ids = [
            X509IssuerSerial(
                x509_issuer_name=c.issuer.rfc4514_string(), x509_serial_number=c.serial_number
            )
            for c in roots
        ]
        return CertificateInstallationReq(
            header=h,
            oem_provisioning_certificate_chain=part,
            list_of_root_certificate_ids=ListOfRootCertificateIDs(root_certificate_id=ids),
            maximum_contract_certificate_chains=1,
        )

    def authorization_req(self, auth: AuthorizationType) -> AuthorizationReq:
        h = header(self.session_id)
        if auth is AuthorizationType.PNC:
            mode, signature = self.pnc_mode()
            h.signature = signature
            return AuthorizationReq(
                header=h, selected_authorization_service=auth, authorization_mode=mode
            )
        return AuthorizationReq(
            header=h,
            selected_authorization_service=auth,
            authorization_mode=EIM_AReqAuthorizationMode(),
        )

    def authorize(self, auth: AuthorizationType) -> Any:
        if auth not in self.auth_services:
            raise Inconclusive(f"SUT does not offer {auth.value} authorization")
        t0 = self.now()
        while True:
            res = self.request(self.authorization_req(auth))
            if res.evse_processing is Processing.FINISHED:
                return res
            # V2G_EVCC_Ongoing_Timeout 60 s (facts §5.1)
            check(self.now() - t0 < 60.0, "Authorization still Ongoing after 60 s")
            self.ch.wait(0.25)

    def service_discovery(self) -> Any:
        res = self.request(ServiceDiscoveryReq(header=header(self.session_id)))
        self.offered_services = [s.service_id for s in res.energy_transfer_service_list.service]
        self.service_renegotiation_supported = res.service_renegotiation_supported
        return res

    def service_detail(self, service: int) -> Any:
        res = self.request(ServiceDetailReq(header=header(self.session_id), service_id=service))
        check(res.service_id == service, f"ServiceDetailRes for {res.service_id}, asked {service}")
        self.parameter_sets[service] = list(res.service_parameter_list.parameter_set)
        return res

    def parameter_set_for(self, service: int, control: ControlMode) -> int:
        for ps in self.parameter_sets.get(service, []):
            for p in ps.parameter:
                if p.name == "ControlMode" and p.int_value == int(control):
                    return int(ps.parameter_set_id)
        raise Inconclusive(f"SUT offers no parameter set with ControlMode={control.name}")

    def service_selection(self, service: int, parameter_set_id: int) -> Any:
        return self.request(
            ServiceSelectionReq(
                header=header(self.session_id),
                selected_energy_transfer_service=SelectedService(
                    service_id=service, parameter_set_id=parameter_set_id
                ),
            )
        )

    def cpd_req(self, bpt: bool) -> DC_ChargeParameterDiscoveryReq:
        x = self.pics.pixit
        base: dict[str, Any] = dict(
            ev_maximum_charge_power=rn(x.ev_max_power),
            ev_minimum_charge_power=rn(0),
            ev_maximum_charge_current=rn(x.ev_max_current),
            ev_minimum_charge_current=rn(0),
            ev_maximum_voltage=rn(x.ev_max_voltage),
            ev_minimum_voltage=rn(x.ev_min_voltage),
            target_soc=80,
        )
        mode: DC_CPDReqEnergyTransferMode
        if bpt:
            sign = -1.0 if self.pics.negative_discharge else 1.0
            mode = BPT_DC_CPDReqEnergyTransferMode(
                **base,
                ev_maximum_discharge_power=rn(sign * x.ev_max_discharge_power),
                ev_minimum_discharge_power=rn(0),
                ev_maximum_discharge_current=rn(sign * x.ev_max_discharge_current),
                ev_minimum_discharge_current=rn(0),
            )
        else:
            mode = DC_CPDReqEnergyTransferMode(**base)
        return DC_ChargeParameterDiscoveryReq(header=header(self.session_id), transfer_mode=mode)

    def charge_parameter_discovery(self, bpt: bool) -> Any:
        res = self.request(self.cpd_req(bpt))
        mode = res.transfer_mode
        check(
            isinstance(mode, BPT_DC_CPDResEnergyTransferMode) == bpt,
            f"{type(mode).__name__} answers a {'BPT' if bpt else 'DC'} request",
        )
        self.cpd_res_mode = mode
        env = self.envelope
        env.evse_max_current = val(mode.evse_maximum_charge_current)
        env.evse_max_power = val(mode.evse_maximum_charge_power)
        env.evse_max_voltage = val(mode.evse_maximum_voltage)
        if bpt:
            env.evse_max_discharge_current = abs(val(mode.evse_maximum_discharge_current))
            env.evse_max_discharge_power = abs(val(mode.evse_maximum_discharge_power))
        return res

    def schedule_exchange_req(self, control: ControlMode) -> Any:
        from mcscomm.messages.common_messages import ScheduleExchangeReq

        energy = rn(200_000)
        mode: Any
        if control is ControlMode.SCHEDULED:
            mode = Scheduled_SEReqControlMode(
                departure_time=7200,
                ev_target_energy_request=energy,
                ev_maximum_energy_request=energy,
                ev_minimum_energy_request=rn(0),
            )
        else:
            bpt = self.plan is not None and self.plan.bpt
            mode = Dynamic_SEReqControlMode(
                departure_time=7200,
                target_soc=80,
                ev_target_energy_request=energy,
                ev_maximum_energy_request=energy,
                ev_minimum_energy_request=rn(0),
                ev_maximum_v2x_energy_request=energy if bpt else None,
                ev_minimum_v2x_energy_request=rn(0) if bpt else None,
            )
        return ScheduleExchangeReq(
            header=header(self.session_id), maximum_supporting_points=1024, control_mode=mode
        )

    def schedule_exchange(self, control: ControlMode) -> Any:
        t0 = self.now()
        while True:
            res = self.request(self.schedule_exchange_req(control))
            if res.evse_processing is Processing.FINISHED:
                break
            check(self.now() - t0 < 60.0, "ScheduleExchange still Ongoing after 60 s")
            self.ch.wait(0.25)
        if control is ControlMode.SCHEDULED:
            mode = res.control_mode
            check(
                isinstance(mode, Scheduled_SEResControlMode),
                f"Scheduled request answered with {type(mode).__name__}",
            )
            check(1 <= len(mode.schedule_tuple) <= 3, "ScheduleExchangeRes needs 1..3 tuples")
            for st in mode.schedule_tuple:
                for e in (
                    st.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
                ):
                    p = abs(val(e.power))
                    check(
                        p <= self.envelope.evse_max_power * 1.001 + 1,
                        f"schedule entry {p:g} W above EVSEMaximumChargePower "
                        f"{self.envelope.evse_max_power:g} W",
                    )
            self.schedule = mode
        return res

    def cable_check(self) -> Any:
        t0 = self.now()
        while True:
            res = self.request(DC_CableCheckReq(header=header(self.session_id)))
            if res.evse_processing is Processing.FINISHED:
                return res
            check(self.now() - t0 < 40.0, "cable check not finished within 40 s")
            self.ch.wait(0.25)

    def pre_charge(self) -> Any:
        target = self.pics.pixit.ev_battery_voltage
        t0 = self.now()
        while True:
            res = self.request(
                DC_PreChargeReq(
                    header=header(self.session_id),
                    ev_processing=Processing.ONGOING,
                    ev_present_voltage=rn(target),
                    ev_target_voltage=rn(target),
                )
            )
            v = val(res.evse_present_voltage)
            # the EV contactors are still open: only the EVSE's own maximum binds here (the
            # output may still carry the cable-check test voltage, up to 1.1 x EVMaximumVoltage)
            check(
                v <= self.envelope.evse_max_voltage + 1,
                f"pre-charge voltage {v:g} V above EVSEMaximumVoltage",
            )
            if abs(v - target) <= 10.0:
                self.present_voltage = v
                return res
            # V2G_EVCC_PreCharge_Timeout (facts §5.3, 10 s in -20 implementations)
            check(self.now() - t0 < 10.0, f"pre-charge did not reach {target:g} V in 10 s")
            self.ch.wait(0.1)

    def ev_power_profile(self) -> EVPowerProfile | None:
        if self.schedule is None or not self.schedule.schedule_tuple:
            return None
        chosen = self.schedule.schedule_tuple[0]
        entries = (
            chosen.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
        )
        # mirror the offered schedule exactly, on its own time anchor (the SECC checks the
        # profile against the tuple: V2G20 EVPowerProfile vs PowerSchedule)
        return EVPowerProfile(
            time_anchor=chosen.charging_schedule.power_schedule.time_anchor,
            control_mode=Scheduled_EVPPTControlMode(
                selected_schedule_tuple_id=chosen.schedule_tuple_id
            ),
            ev_power_profile_entries=EVPowerProfileEntryList(
                ev_power_profile_entry=[
                    PowerScheduleEntry(duration=e.duration, power=e.power) for e in entries
                ][:2048]
            ),
        )

    def power_delivery(self, progress: ChargeProgress, *, ok: bool = True) -> Any:
        plan = self.plan
        channel = None
        profile = None
        if progress is ChargeProgress.START:
            if plan is not None and plan.bpt:
                channel = self.channel_selection
            if plan is not None and plan.control is ControlMode.SCHEDULED:
                profile = self.ev_power_profile()
        return self.request(
            PowerDeliveryReq(
                header=header(self.session_id),
                ev_processing=Processing.FINISHED,
                charge_progress=progress,
                ev_power_profile=profile,
                bpt_channel_selection=channel,
            ),
            ok=ok,
        )

    def charge_loop_req(
        self,
        *,
        target_current: float | None = None,
        scheduled: bool | None = None,
        bpt: bool | None = None,
    ) -> DC_ChargeLoopReq:
        plan = self.plan
        assert plan is not None
        x = self.pics.pixit
        sch = plan.control is ControlMode.SCHEDULED if scheduled is None else scheduled
        b = plan.bpt if bpt is None else bpt
        sign = -1.0 if self.pics.negative_discharge else 1.0
        v = self.present_voltage
        mode: Any
        if sch:
            cur = target_current
            if cur is None:
                cur = min(x.ev_max_current, self.envelope.evse_max_current) / 2
            common: dict[str, Any] = dict(
                ev_target_current=rn(cur),
                ev_target_voltage=rn(min(x.ev_max_voltage, v + 10)),
                ev_maximum_charge_power=rn(x.ev_max_power),
                ev_maximum_charge_current=rn(x.ev_max_current),
                ev_maximum_voltage=rn(x.ev_max_voltage),
                ev_minimum_voltage=rn(x.ev_min_voltage),
            )
            if b:
                mode = BPT_Scheduled_DC_CLReqControlMode(
                    **common,
                    ev_maximum_discharge_power=rn(sign * x.ev_max_discharge_power),
                    ev_maximum_discharge_current=rn(sign * x.ev_max_discharge_current),
                )
            else:
                mode = Scheduled_DC_CLReqControlMode(**common)
        else:
            energy = rn(200_000)
            common = dict(
                departure_time=7200,
                ev_target_energy_request=energy,
                ev_maximum_energy_request=energy,
                ev_minimum_energy_request=rn(0),
                ev_maximum_charge_power=rn(x.ev_max_power),
                ev_minimum_charge_power=rn(0),
                ev_maximum_charge_current=rn(x.ev_max_current),
                ev_maximum_voltage=rn(x.ev_max_voltage),
                ev_minimum_voltage=rn(x.ev_min_voltage),
            )
            if b:
                mode = BPT_Dynamic_DC_CLReqControlMode(
                    **common,
                    ev_maximum_discharge_power=rn(sign * x.ev_max_discharge_power),
                    ev_minimum_discharge_power=rn(0),
                    ev_maximum_discharge_current=rn(sign * x.ev_max_discharge_current),
                    ev_maximum_v2x_energy_request=energy,
                    ev_minimum_v2x_energy_request=rn(0),
                )
            else:
                mode = Dynamic_DC_CLReqControlMode(**common)
        return DC_ChargeLoopReq(
            header=header(self.session_id),
            display_parameters=DisplayParameters(present_soc=40, target_soc=80),
            meter_info_requested=False,
            ev_present_voltage=rn(v),
            control_mode=mode,
        )

    def check_envelope(self, req: DC_ChargeLoopReq, res: Any) -> None:
        """The SUT never exceeds the negotiated envelope (either direction) nor the MCS limits,
        and answers with the control-mode variant of the request."""
        plan = self.plan
        assert plan is not None
        env = self.envelope
        x = self.pics.pixit
        i = val(res.evse_present_current)
        v = val(res.evse_present_voltage)
        env.samples.append((self.now(), v, i))
        want: tuple[type, ...]
        if plan.control is ControlMode.SCHEDULED:
            want = (
                (BPT_Scheduled_DC_CLResControlMode,)
                if plan.bpt
                else (Scheduled_DC_CLResControlMode,)
            )
        else:
            want = (
                (BPT_Dynamic_DC_CLResControlMode,) if plan.bpt else (Dynamic_DC_CLResControlMode,)
            )
        mode = res.control_mode
        check(
            isinstance(mode, want[0])
            and (
                plan.bpt
                or not isinstance(
                    mode, BPT_Scheduled_DC_CLResControlMode | BPT_Dynamic_DC_CLResControlMode
                )
            ),
            f"DC_ChargeLoopRes control mode {type(mode).__name__} does not fit {plan.label()}",
        )

        # 0.5 A / 0.5 % slack for RationalNumber rounding of the reported values
        def lim(a: float) -> float:
            return a * 1.005 + 0.5

        if i >= 0:
            cap_i = min(env.evse_max_current, x.ev_max_current, MCS_MAX_A)
            check(i <= lim(cap_i), f"EVSEPresentCurrent {i:g} A exceeds the negotiated {cap_i:g} A")
            cap_p = min(env.evse_max_power, x.ev_max_power, MCS_MAX_W)
            check(
                i * v <= lim(cap_p),
                f"present power {i * v:g} W exceeds the negotiated {cap_p:g} W",
            )
            if isinstance(req.control_mode, Scheduled_DC_CLReqControlMode):
                tgt = abs(val(req.control_mode.ev_target_current))
                if self.channel_selection is ChannelSelection.CHARGE:
                    check(
                        i <= lim(tgt), f"EVSEPresentCurrent {i:g} A above EVTargetCurrent {tgt:g} A"
                    )
        else:
            check(plan.bpt, f"negative EVSEPresentCurrent {i:g} A on a unidirectional service")
            cap_i = min(env.evse_max_discharge_current, x.ev_max_discharge_current)
            check(
                -i <= lim(cap_i), f"discharge current {-i:g} A exceeds the negotiated {cap_i:g} A"
            )
            cap_p = min(env.evse_max_discharge_power, x.ev_max_discharge_power)
            check(-i * v <= lim(cap_p), f"discharge power {-i * v:g} W exceeds {cap_p:g} W")
        cap_v = min(env.evse_max_voltage, x.ev_max_voltage, MCS_MAX_V)
        check(v <= lim(cap_v), f"EVSEPresentVoltage {v:g} V exceeds the negotiated {cap_v:g} V")
        if plan.bpt:
            check_bpt_signs(mode, self.pics.negative_discharge, "DC_ChargeLoopRes")

    def charge_loop(self, cycles: int | None = None, *, pacing: float = 0.2) -> list[Any]:
        """``cycles`` DC_ChargeLoop exchanges paced well inside 0.25 s; answers MeteringConfirmation
        triggers on the 0x8102 side stream. Returns the responses."""
        n = self.pics.pixit.charge_loop_cycles if cycles is None else cycles
        out = []
        for k in range(n):
            if k:
                self.ch.wait(pacing)
            req = self.charge_loop_req()
            res = self.request(req)
            self.check_envelope(req, res)
            out.append(res)
            status = res.evse_status
            if status is not None:
                self.notifications.append(status.evse_notification)
                if (
                    status.evse_notification is EvseNotification.METERING_CONFIRMATION
                    and res.meter_info is not None
                ):
                    self.metering_confirmation(res.meter_info)
                elif status.evse_notification in (
                    EvseNotification.TERMINATE,
                    EvseNotification.PAUSE,
                ):
                    break
        return out

    def metering_confirmation_req(self, meter_info: Any, *, bad_signature: bool = False) -> Any:
        plan = self.plan
        control: Any = (
            Scheduled_SMDTControlMode(selected_schedule_tuple_id=1)
            if plan is not None and plan.control is ControlMode.SCHEDULED
            else Dynamic_SMDTControlMode()
        )
        data = SignedMeteringData(
            id="metering", session_id=self.session_id, meter_info=meter_info, control_mode=control
        )
        h = header(self.session_id)
        if plan is not None and plan.auth is AuthorizationType.PNC and self.manifest is not None:
            from mcscomm.security import xmldsig

            sig = xmldsig.sign([data], self.manifest.private_key("contract_leaf"), self.codec)
            if bad_signature:
                raw = bytearray(sig.signature_value)
                raw[len(raw) // 2] ^= 0x01
                sig = dataclasses.replace(sig, signature_value=bytes(raw))
            h.signature = sig
        return MeteringConfirmationReq(header=h, signed_metering_data=data)

    def metering_confirmation(self, meter_info: Any) -> Any:
        res = self.request(
            self.metering_confirmation_req(meter_info),
            payload_type=int(PayloadType.METERING_CONFIRMATION),
        )
        self.metering_confirmed += 1
        return res

    def welding_detection(self) -> Any:
        return self.request(
            DC_WeldingDetectionReq(
                header=header(self.session_id), ev_processing=Processing.FINISHED
            )
        )

    def session_stop(self, kind: ChargingSession = ChargingSession.TERMINATE) -> Any:
        return self.request(SessionStopReq(header=header(self.session_id), charging_session=kind))

    # -- whole paths ----------------------------------------------------------------------------
    def run_to(self, plan: Plan, until: str = "session_stop", *, cycles: int | None = None) -> None:
        """Play the valid path of ``plan`` up to and including stage ``until``."""
        if until not in STAGES:
            raise ValueError(f"unknown stage {until!r}")
        self.plan = plan
        stop = STAGES.index(until)
        start = 0 if self.stage_done is None else STAGES.index(self.stage_done) + 1
        for stage in STAGES[start : stop + 1]:
            self._stage(stage, plan, cycles)
            self.stage_done = stage

    def _stage(self, stage: str, plan: Plan, cycles: int | None) -> None:
        svc = int(plan.service)
        if stage == "sap":
            self.sap()
        elif stage == "session_setup":
            self.session_setup()
        elif stage == "authorization_setup":
            self.authorization_setup()
        elif stage == "authorization":
            self.authorize(plan.auth)
        elif stage == "service_discovery":
            self.service_discovery()
            if svc not in self.offered_services:
                raise Inconclusive(f"SUT does not offer {plan.service.name}")
        elif stage == "service_detail":
            self.service_detail(svc)
        elif stage == "service_selection":
            self.service_selection(svc, self.parameter_set_for(svc, plan.control))
        elif stage == "charge_parameter_discovery":
            self.charge_parameter_discovery(plan.bpt)
        elif stage == "schedule_exchange":
            self.schedule_exchange(plan.control)
        elif stage == "cable_check":
            self.cable_check()
        elif stage == "pre_charge":
            self.pre_charge()
        elif stage == "power_delivery_start":
            self.power_delivery(ChargeProgress.START)
        elif stage == "charge_loop":
            self.charge_loop(cycles)
        elif stage == "power_delivery_stop":
            self.power_delivery(ChargeProgress.STOP)
        elif stage == "welding_detection":
            self.welding_detection()
        elif stage == "session_stop":
            self.session_stop()


def check_bpt_signs(mode: Any, negative: bool, where: str) -> None:
    """BPT sign convention (facts §4.4): discharge limits are magnitudes (>= 0) unless the PICS
    declares negative discharge values; the convention must be applied consistently."""
    for f in dataclasses.fields(mode):
        if "discharge" not in f.name:
            continue
        r = getattr(mode, f.name)
        if r is None or r.value == 0:
            continue
        x = float(r)
        if negative:
            check(x < 0, f"{where}.{f.name} = {x:g}: PICS declares negative discharge values")
        else:
            check(x > 0, f"{where}.{f.name} = {x:g}: discharge limits are magnitudes (>= 0)")
