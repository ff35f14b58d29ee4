"""Mutable per-session state shared by the SECC handlers (libiso15118's ``d20::Context``).

Handlers are functions ``handle_x(req, ctx) -> (response, outcome)``: everything they read or
change beyond the request lives here, so a handler can be unit-tested with a hand-built context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mcscomm.messages.enums import AuthorizationType, ControlMode, EvseNotification, ServiceId
from mcscomm.power.limits import PartyLimits
from mcscomm.power.schedule import ScheduleTuple
from mcscomm.session.config import SeccConfig
from mcscomm.session.events import SessionEvent
from mcscomm.session.power_adapter import SeccPower
from mcscomm.session.services import ParameterSet
from mcscomm.session.signing import SignaturePort

#: TimeStamp base for a virtual clock that starts near zero: 2026-01-01T00:00:00Z. A ``now``
#: that already looks like Unix time is used as is (facts §4.1: TimeStamp is Unix seconds).
EPOCH_BASE = 1_767_225_600


def timestamp(now: float) -> int:
    """MessageHeader TimeStamp for ``now``."""
    return int(now) if now >= 1_000_000_000 else EPOCH_BASE + int(now)


def session_time(ts: int, now: float) -> float:
    """Inverse of :func:`timestamp`: a TimeAnchor as session time (whole seconds), using ``now``
    to tell a virtual clock (offset EPOCH_BASE) from Unix time (offset 0)."""
    return float(ts - (timestamp(now) - math.floor(now)))


@dataclass(slots=True)
class Counters:
    """Summary-worthy figures, updated every charge-loop cycle."""

    energy_charged_wh: float = 0.0
    energy_discharged_wh: float = 0.0
    peak_charge_power_w: float = 0.0
    peak_discharge_power_w: float = 0.0
    charge_loop_cycles: int = 0
    last_sample_t: float | None = None
    last_power_w: float = 0.0
    soc: float | None = None

    def add_sample(self, t: float, power_w: float) -> None:
        """Integrate energy with the previous power over the elapsed time (rectangle rule)."""
        if self.last_sample_t is not None and t > self.last_sample_t:
            wh = self.last_power_w * (t - self.last_sample_t) / 3600.0
            if wh >= 0:
                self.energy_charged_wh += wh
            else:
                self.energy_discharged_wh -= wh
        self.last_sample_t = t
        self.last_power_w = power_w
        self.charge_loop_cycles += 1
        if power_w > self.peak_charge_power_w:
            self.peak_charge_power_w = power_w
        if -power_w > self.peak_discharge_power_w:
            self.peak_discharge_power_w = -power_w


@dataclass(frozen=True, slots=True)
class EnergyRequest:
    """The truck's needs from ScheduleExchangeReq (Wh; NaN = not sent), kept for the whole
    session so Scheduled-mode charging needs carry them (the Scheduled charge loop need not
    repeat them). ``departure_s`` was relative to ``received_at`` (DepartureTime, facts §4.3)."""

    received_at: float
    departure_s: float = math.nan
    target_energy_wh: float = math.nan
    max_energy_wh: float = math.nan
    min_energy_wh: float = math.nan
    max_v2x_energy_wh: float = math.nan
    min_v2x_energy_wh: float = math.nan
    target_soc: float | None = None
    minimum_soc: float | None = None

    def departure_in(self, now: float) -> float:
        """Seconds from ``now`` to the announced departure (NaN when none was sent)."""
        return self.departure_s - (now - self.received_at)


@dataclass(slots=True)
class SeccContext:
    """Everything an SECC handler may read or change."""

    config: SeccConfig
    power: SeccPower
    tls: bool
    signatures: SignaturePort | None = None
    # SHA-256 of the TLS client certificate when the endpoint supplied it (resume check)
    peer_cert_hash: bytes | None = None
    now: float = 0.0
    session_id: bytes = b"\x00" * 8
    evccid: str = ""
    resumed: bool = False
    offered_auth: tuple[AuthorizationType, ...] = ()
    gen_challenge: bytes | None = None
    selected_auth: AuthorizationType | None = None
    authorized: bool = False
    authorization_warnings: int = 0  # AuthorizationRes answered with a WARNING so far
    standby: bool = False  # ChargeProgress=Standby accepted, not yet left
    check_in_status: str | None = None  # last EVCheckInStatus (VehicleCheckInReq)
    contract_installed: bool = False
    contract_chain: list[bytes] | None = None
    emaid: str | None = None
    offered_services: tuple[ServiceId, ...] = ()
    details_sent: int = 0
    parameter_sets: dict[ServiceId, list[ParameterSet]] = field(default_factory=dict)
    service: ServiceId | None = None
    parameter_set: ParameterSet | None = None
    control_mode: ControlMode | None = None
    ev_limits: PartyLimits | None = None
    evse_limits: PartyLimits | None = None
    schedules: list[ScheduleTuple] = field(default_factory=list)
    selected_schedule_id: int | None = None
    # ScheduleExchangeReq needs (read by the OCPP backend and the Scheduled charge loop)
    schedule_request: EnergyRequest | None = None
    maximum_supporting_points: int | None = None  # of the last ScheduleExchangeReq
    # EVPowerProfile of the last PowerDeliveryReq(Start): (duration s, signed W; < 0 discharge)
    ev_power_profile: tuple[tuple[float, float], ...] | None = None
    schedule_rounds: int = 0
    discharge: bool = False  # BPT channel of the last PowerDelivery(Start)
    charge_loop_started: float | None = None
    pending_notification: EvseNotification | None = None
    notifications_done: int = 0
    metering_requested_at: float | None = None
    last_metering_at: float | None = None
    ongoing_since: dict[str, float] = field(default_factory=dict)
    cable_check_started: float | None = None
    counters: Counters = field(default_factory=Counters)
    events: list[SessionEvent] = field(default_factory=list)
    stop_kind: str | None = None  # terminate / pause / service_renegotiation
