"""Safe state, over-voltage protection and the cable-check test voltage.

* Safe state: on communication loss, timeout, emergency or fault the current is ramped to zero
  within the configured ``ramp_down_s`` and the contactors open once it is zero (the
  current cap falls linearly from the current at the trip to 0 at trip + ramp_down_s).
* Over-voltage (facts §7): emergency threshold from the negotiated maximum voltage per
  IEC 61851-23:2023 Table 103 and IEC 61851-23-3 (draft 2025) Table 202 as EVerest's EvseManager
  implements them; "error" over-voltage when the present voltage stays above the negotiated
  maximum for more than 400 ms (IEC 61851-23:2023 6.3.1.106.3, Table 104).
* Cable check: isolation test voltage per IEC 61851-23 CC.4.1.2 formula CC.1 (facts §7).
"""

from __future__ import annotations

import math
from enum import StrEnum


class SafeStateCause(StrEnum):
    """Why the charger went to safe state."""

    COMMUNICATION_LOSS = "communication loss"
    TIMEOUT = "timeout"
    EMERGENCY = "emergency shutdown"
    OVER_VOLTAGE = "over-voltage"
    EV_FAULT = "EV fault"
    EVSE_FAULT = "EVSE fault"
    STOP = "normal stop"


class SafeState:
    """Bounded ramp-down to zero and contactor opening. Inactive until :meth:`trigger`."""

    __slots__ = ("active", "cause", "contactors_open", "i0", "opened_at", "ramp_down_s", "t0")

    def __init__(self, ramp_down_s: float) -> None:
        if not ramp_down_s > 0.0 or math.isinf(ramp_down_s):
            raise ValueError("safe-state ramp-down time must be finite and > 0")
        self.ramp_down_s = ramp_down_s
        self.active = False
        self.cause: SafeStateCause | None = None
        self.t0 = 0.0
        self.i0 = 0.0
        self.contactors_open = False
        self.opened_at: float | None = None

    def trigger(self, now: float, cause: SafeStateCause, present_current_a: float) -> None:
        """Enter safe state (idempotent: the first trip's clock keeps running)."""
        if self.active:
            return
        self.active = True
        self.cause = cause
        self.t0 = now
        self.i0 = abs(present_current_a)

    def current_cap(self, now: float) -> float:
        """Largest |current| allowed at ``now`` (inf when not in safe state)."""
        if not self.active:
            return math.inf
        if now >= self.t0 + self.ramp_down_s:
            return 0.0  # exactly zero at the deadline, whatever the rounding of the ratio below
        left = 1.0 - (now - self.t0) / self.ramp_down_s
        return self.i0 * left if left > 0.0 else 0.0

    def update(self, now: float, present_current_a: float) -> bool:
        """Open the contactors once the current is zero; returns ``contactors_open``."""
        if self.active and not self.contactors_open and present_current_a == 0.0:
            self.contactors_open = True
            self.opened_at = now
        return self.contactors_open


def emergency_over_voltage_threshold(negotiated_max_v: float) -> float:
    """Emergency over-voltage threshold for a negotiated maximum voltage (facts §7).

    >1000 V -> 1375 V (IEC 61851-23-3 draft Table 202); >850 V -> 1100 V; >750 V -> 935 V;
    >500 V -> 825 V; otherwise 550 V (IEC 61851-23:2023 Table 103).
    """
    if negotiated_max_v > 1000.0:
        return 1375.0
    if negotiated_max_v > 850.0:
        return 1100.0
    if negotiated_max_v > 750.0:
        return 935.0
    if negotiated_max_v > 500.0:
        return 825.0
    return 550.0


class OverVoltage(StrEnum):
    """Verdict of the over-voltage monitor."""

    OK = "ok"
    TOLERATED = "above max < 200 ms"  # allowed
    GREY = "above max 200-400 ms"  # may continue or stop (Table 104); we continue and warn
    ERROR = "above max > 400 ms"  # error shutdown within 50 ms
    EMERGENCY = "above emergency threshold"  # emergency shutdown


class OverVoltageMonitor:
    """Watches the present voltage against the negotiated maximum and the emergency threshold."""

    __slots__ = ("emergency_v", "max_v", "since")

    def __init__(self, negotiated_max_v: float) -> None:
        self.max_v = negotiated_max_v
        self.emergency_v = emergency_over_voltage_threshold(negotiated_max_v)
        self.since: float | None = None

    def check(self, now: float, voltage_v: float) -> OverVoltage:
        """Classify ``voltage_v`` at ``now``; keeps the time the voltage went above max."""
        if voltage_v > self.emergency_v:
            return OverVoltage.EMERGENCY
        if voltage_v <= self.max_v:
            self.since = None
            return OverVoltage.OK
        if self.since is None:
            self.since = now
        over = now - self.since
        if over > 0.4:
            return OverVoltage.ERROR
        if over >= 0.2:
            return OverVoltage.GREY
        return OverVoltage.TOLERATED


def cable_check_voltage(ev_max_v: float, evse_max_v: float) -> float:
    """Isolation test voltage (IEC 61851-23 CC.4.1.2 formula CC.1, facts §7).

    EV max <= 500 V: min(500, EV max + 50, EVSE max); otherwise min(EVSE max, 1.1 x EV max).
    """
    if ev_max_v <= 500.0:
        return min(500.0, ev_max_v + 50.0, evse_max_v)
    return min(evse_max_v, 1.1 * ev_max_v)
