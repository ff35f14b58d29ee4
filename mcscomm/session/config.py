"""Session configuration: ``SeccConfig`` / ``EvccConfig``, profiles, authorization, fault hooks.

Everything a session needs that is not a message: which services and control modes, how to
authorize, the profile (strict or lenient), the PKI manifest for signatures, the power objects,
timers, and -- in one clearly named place, :class:`SeccFaults` / :class:`EvccFaults` -- the
deliberate misbehaviours conformance scripts and the fuzzer use to prove they can see a defect.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mcscomm.messages.enums import AuthorizationType, ControlMode, EvseNotification, ServiceId
from mcscomm.power.ems import Scenario
from mcscomm.power.limits import BatterySpec, ChargerSpec
from mcscomm.session.services import ENERGY_SERVICES
from mcscomm.session.timings import Timings

#: SAP namespace of -20 DC (facts §3); MCS runs on it too (facts §7).
DC_NAMESPACE = "urn:iso:std:iso:15118:-20:DC"


class Profile(enum.Enum):
    """``strict``: ISO 15118-20 as written. ``lenient``: tolerate known peer quirks.

    Lenient accepts (and, with ``negative_discharge``, sends) negative discharge values (Josev,
    facts §4.4) and allows -20 over plain TCP (Josev's default; V2G20-1237/2356 forbid it).
    """

    STRICT = "strict"
    LENIENT = "lenient"


class Authorizer(Protocol):
    """The SECC's authorization decision (the backend). Pluggable.

    ``decide`` is called for each AuthorizationReq: True accept, False reject, None still pending
    (the SECC answers EVSEProcessing=Ongoing and asks again on the next request).
    """

    def decide(self, auth: AuthorizationType, emaid: str | None, now: float) -> bool | None: ...


@dataclass(slots=True)
class ImmediateAccept:
    """Default authorizer: accept, after ``ongoing_rounds`` Ongoing answers (0 = at once)."""

    ongoing_rounds: int = 0
    accept: bool = True
    _asked: int = 0

    def decide(self, auth: AuthorizationType, emaid: str | None, now: float) -> bool | None:
        self._asked += 1
        if self._asked <= self.ongoing_rounds:
            return None
        return self.accept


@dataclass(frozen=True, slots=True)
class PausedSession:
    """What the SECC keeps of a paused session so that it can be resumed (OK_OldSessionJoined)."""

    session_id: bytes
    evccid: str
    service: ServiceId
    parameter_set_id: int
    control_mode: ControlMode
    paused_at: float
    #: SHA-256 of the TLS client certificate (DER) of the pausing connection, when known: a
    #: resume must come from the same certificate (as libiso15118 checks).
    peer_cert_hash: bytes | None = None


#: How long a paused session can be resumed by default (a depot truck pausing overnight).
DEFAULT_MAX_PAUSED_S = 86_400.0


@dataclass(slots=True)
class SessionStore:
    """Paused sessions, shared by all connections of one SECC (so a new TCP/TLS connection can
    resume). Not thread-safe; the asyncio server runs on one loop.

    A paused session expires ``max_paused_s`` after it was paused (None: never); an expired
    SessionID is then unknown, and a SessionSetupReq carrying it gets a new session
    (OK_NewSessionEstablished), like any unknown id. Times are session ``now`` values, so all
    connections of one store must share one clock (the endpoints' clock, real or virtual).
    """

    paused: dict[bytes, PausedSession] = field(default_factory=dict)
    max_paused_s: float | None = DEFAULT_MAX_PAUSED_S

    def __post_init__(self) -> None:
        if self.max_paused_s is not None and not self.max_paused_s >= 0:
            raise ValueError("SessionStore.max_paused_s must be >= 0 or None")

    def put(self, session: PausedSession) -> None:
        self.paused[session.session_id] = session

    def take(self, session_id: bytes, now: float | None = None) -> PausedSession | None:
        """Remove and return a paused session (None if unknown or, given ``now``, expired)."""
        if now is not None:
            self.expire(now)
        return self.paused.pop(session_id, None)

    def expire(self, now: float) -> list[bytes]:
        """Drop every session paused longer than ``max_paused_s`` ago; returns their ids."""
        limit = self.max_paused_s
        if limit is None:
            return []
        gone = [sid for sid, p in self.paused.items() if now - p.paused_at > limit]
        for sid in gone:
            del self.paused[sid]
        return gone


@dataclass(frozen=True, slots=True)
class SeccFaults:
    """Deliberate SECC defects for conformance/fuzz self-tests. All off by default.

    * ``accept_out_of_order``: serve a request the state does not allow instead of
      FAILED_SequenceError (and continue the session after it).
    * ``answer_delay_s``: hold every response back this long (beyond the performance time).
    * ``exceed_limit``: report/command this factor times the allowed current (e.g. 1.2).
    * ``accept_bad_signature``: treat failing signatures as valid.
    * ``hang_in``: name of a SeccState in which requests are never answered.
    * ``crash_on``: name of a request type whose handling raises ``InjectedCrash``.
    * ``ignore_timeouts``: never end the session on a silent EVCC.
    * ``standby_ignored``: refuse PowerDelivery(Standby) with WARNING_StandbyNotAllowed even
      when the charger allows standby.
    * ``check_in_wrong_status``: answer VehicleCheckIn with ResponseCode FAILED and
      VehicleCheckOut with the wrong EVSECheckOutStatus (Scheduled for a check-out that is
      due, Completed for one that lies ahead).
    * ``adopt_session_id``: keep an unknown non-zero SessionID the EVCC proposes in
      SessionSetupReq instead of handing out a new one.
    * ``skip_parameter_checks``: serve a ChargeParameterDiscovery variant that does not fit
      the selected service.
    """

    accept_out_of_order: bool = False
    answer_delay_s: float = 0.0
    exceed_limit: float = 1.0
    accept_bad_signature: bool = False
    hang_in: str | None = None
    crash_on: str | None = None
    ignore_timeouts: bool = False
    standby_ignored: bool = False
    check_in_wrong_status: bool = False
    adopt_session_id: bool = False
    skip_parameter_checks: bool = False


@dataclass(frozen=True, slots=True)
class EvccFaults:
    """Deliberate EVCC defects (to test an SECC's error paths). All off by default.

    * ``wrong_session_id_in``: name of a request sent with a random SessionID.
    * ``skip``: names of requests the EVCC skips (sends the following one instead).
    * ``bad_signature``: flip a byte of every SignatureValue the EVCC sends.
    * ``wrong_challenge``: answer PnC with a different GenChallenge.
    * ``request_delay_s``: wait this long before every request (beyond the pacing timer).
    * ``stop_answering_after``: stop sending after this many requests (simulates a dead truck).
    * ``wrong_charge_parameters``: send the other ChargeParameterDiscovery variant (DC for a
      BPT service, BPT for a DC one).
    * ``select_parameter_set``: force this ParameterSetID in ServiceSelection.
    * ``select_service``: force this ServiceID in ServiceDetail/ServiceSelection.
    * ``exceed_power_profile``: announce an EVPowerProfile at twice the schedule (Scheduled).
    * ``standby_despite_warning``: enter standby (ask for no power) even when PowerDelivery
      (Standby) was answered WARNING_StandbyNotAllowed.
    * ``ignore_errors``: carry on after FAILED response codes (and final WARNINGs) as if OK.
    * ``exceed_factor``: ask for this factor times the target current (Scheduled), e.g. 3.0.
    """

    wrong_session_id_in: str | None = None
    skip: tuple[str, ...] = ()
    bad_signature: bool = False
    wrong_challenge: bool = False
    request_delay_s: float = 0.0
    stop_answering_after: int | None = None
    wrong_charge_parameters: bool = False
    select_parameter_set: int | None = None
    select_service: int | None = None
    exceed_power_profile: bool = False
    standby_despite_warning: bool = False
    ignore_errors: bool = False
    exceed_factor: float = 1.0


def _default_random(n: int) -> bytes:
    return os.urandom(n)


@dataclass(slots=True)
class SeccConfig:
    """Everything an SECC session needs besides messages.

    ``charger`` and ``scenario`` are power-layer objects (a charger profile and the backend plan
    played from the start of the session). ``notifications`` scripts EVSENotifications as
    (seconds after the first DC_ChargeLoopReq, notification). ``metering_interval_s`` asks the
    EVCC for a signed MeteringConfirmation that often (None: never).
    """

    services: tuple[ServiceId, ...] = ENERGY_SERVICES
    control_modes: tuple[ControlMode, ...] = (ControlMode.SCHEDULED, ControlMode.DYNAMIC)
    auth_services: tuple[AuthorizationType, ...] = (AuthorizationType.PNC, AuthorizationType.EIM)
    certificate_installation: bool = True
    service_renegotiation: bool = True
    profile: Profile = Profile.STRICT
    negative_discharge: bool = False
    evseid: str = "DE*MCS*E0001*1"
    authorizer: Authorizer = field(default_factory=ImmediateAccept)
    schedule_exchange_ongoing_rounds: int = 0
    metering_interval_s: float | None = None
    notification_max_delay_s: int = 10
    notifications: tuple[tuple[float, EvseNotification], ...] = ()
    charger: ChargerSpec | None = None
    scenario: Scenario | None = None
    schedule_duration_s: float = 86_400.0
    #: PowerTolerance (W) sent in every offered PowerSchedule; 0 = not sent. Within it an EV
    #: that confirmed the tolerance gets WARNING_EVPowerProfileViolation instead of FAILED.
    schedule_power_tolerance_w: float = 0.0
    pki: object | None = None
    timings: Timings = field(default_factory=Timings)
    store: SessionStore = field(default_factory=SessionStore)
    faults: SeccFaults = field(default_factory=SeccFaults)
    random_bytes: Callable[[int], bytes] = _default_random
    max_service_details: int = 16
    #: AuthorizationReq answered with a WARNING this many times ends the session.
    max_authorization_attempts: int = 3
    #: False: PowerDelivery(Standby) is answered WARNING_StandbyNotAllowed (power goes on).
    standby_allowed: bool = True
    #: Optional parking guidance in VehicleCheckInRes (XSD shorts; None = not sent).
    parking_space: int | None = None
    device_location: int | None = None
    target_distance: int | None = None


@dataclass(slots=True)
class EvccConfig:
    """Everything an EVCC session needs besides messages.

    ``duration_s`` ends the charge loop after that long (None: when the truck reaches its target
    or the SECC says stop); ``stop`` chooses SessionStop Terminate or Pause at the end;
    ``resume_session_id`` resumes a paused session; ``switch_channel_at`` scripts BPT channel
    switches for Scheduled control (seconds after charge-loop start).
    """

    service: ServiceId = ServiceId.MCS_BPT
    control_mode: ControlMode = ControlMode.DYNAMIC
    auth: AuthorizationType = AuthorizationType.PNC
    profile: Profile = Profile.STRICT
    negative_discharge: bool = False
    evccid: str = "0A1B2C3D4E5F"
    has_contract: bool = True
    namespaces: tuple[str, ...] = (DC_NAMESPACE,)
    duration_s: float | None = None
    stop: str = "terminate"
    resume_session_id: bytes | None = None
    welding_detection: bool = True
    pre_charge_tolerance_v: float = 10.0
    meter_info_requested: bool = False
    truck: BatterySpec | None = None
    initial_soc: float | None = None
    target_soc: float | None = None
    departure_s: float | None = None
    pki: object | None = None
    timings: Timings = field(default_factory=Timings)
    faults: EvccFaults = field(default_factory=EvccFaults)
    random_bytes: Callable[[int], bytes] = _default_random
    maximum_supporting_points: int = 1024
    #: PnC answered with an authorization WARNING: try EIM next when the SECC offered it.
    auth_fallback_to_eim: bool = True
    #: V2G floor rule (bidirectional services): leave the loop (SessionStop(Terminate), reason
    #: "at its V2G floor") when the battery is within 0.5 % SoC of its V2G floor
    #: (``BatterySpec.v2g_min_soc``) and has not been charged (< 1 kW) for ``v2g_floor_idle_s``:
    #: the backend keeps discharging, which the truck can no longer give, and offers no charge.
    #: The same idle time ends a bidirectional session without ``duration_s`` and without a
    #: departure once the truck is at its target SoC and has not been discharged (> -1 kW) for
    #: that long (reason "at its target SoC"): nothing else would ever end it.
    #: None disables both. Checked besides duration, departure, target SoC and SECC stops.
    v2g_floor_idle_s: float | None = 600.0
    #: (seconds after charge-loop start, length s): PowerDelivery(Standby), then Start again.
    standby: tuple[float, float] | None = None
    #: Send the optional VehicleCheckInReq after SessionSetup / VehicleCheckOutReq before
    #: SessionStop(Terminate) (facts §4.3).
    vehicle_check_in: bool = False
    vehicle_check_out: bool = False

    def __post_init__(self) -> None:
        if self.stop not in ("terminate", "pause"):
            raise ValueError(f"EvccConfig.stop must be 'terminate' or 'pause', not {self.stop!r}")
        if self.service not in ENERGY_SERVICES:
            raise ValueError(f"EvccConfig.service must be one of {ENERGY_SERVICES}")
        if not 12 <= self.maximum_supporting_points <= 1024:
            raise ValueError("maximum_supporting_points must be within 12..1024 (XSD)")
