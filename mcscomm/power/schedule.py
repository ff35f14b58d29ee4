"""Scheduled mode: PowerSchedules the SECC offers, and checking the EV's power profile.

The SECC offers 1..3 ScheduleTuples (facts §4.4: ``Scheduled_SEResControlMode`` holds 1-3
ScheduleTuple, each a ChargingSchedule and optionally a DischargingSchedule, each PowerSchedule
with at most 1 024 entries of {Duration, Power}). Powers here are magnitudes in W: a charging
entry is the most the truck may take, a discharging entry the most it may give back. Every entry
is clipped to the negotiated envelope, so a schedule can never promise more than may flow.

Tuples built by :func:`build_schedules`:
  1. "backend plan": follows the EMS plan (charge where it wants charge, discharge where it
     wants discharge), always within the envelope;
  2. "charge only": the plan's charge allowances, no discharging schedule;
  3. "envelope": the flat envelope maxima (what would flow without a backend).

The EV's power profile (PowerDeliveryReq EVPowerProfile: entries {Duration, Power}, signed, > 0
charging in our internal convention) is checked by :func:`validate_ev_power_profile`. The exact
normative wording of when a violation is a WARNING and when it is FAILED was not at hand
(facts §4.2 lists both codes); we follow the PowerTolerance idea of the schedule: excess within
the schedule's PowerTolerance -> WARNING_EVPowerProfileViolation, beyond it ->
FAILED_EVPowerProfileViolation, a malformed profile -> FAILED_EVPowerProfileInvalid.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mcscomm.power.ems import Ems
from mcscomm.power.envelope import Envelope
from mcscomm.power.limits import LimitsError

MAX_SCHEDULE_ENTRIES = 1024  # PowerSchedule entries (facts §4.4)
MAX_SCHEDULE_TUPLES = 3  # ScheduleTuples in Scheduled_SEResControlMode (facts §4.4)
MAX_PROFILE_ENTRIES = 2048  # EVPowerProfile entries (facts §4.4)
MIN_SUPPORTING_POINTS = 12  # MaximumSupportingPoints range 12..1024 (facts §4.3)


class ScheduleError(LimitsError):
    """A schedule that breaks the -20 cardinalities or is not physically meaningful."""


@dataclass(frozen=True, slots=True)
class PowerSchedule:
    """Entries of (duration_s, power_w >= 0) from ``time_anchor`` (session seconds).

    The last entry holds until the schedule is replaced (it is built to reach departure).
    """

    time_anchor: float
    entries: tuple[tuple[float, float], ...]
    power_tolerance_w: float = 0.0
    available_energy_wh: float | None = None
    _ends: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= len(self.entries) <= MAX_SCHEDULE_ENTRIES:
            raise ScheduleError(f"PowerSchedule needs 1..{MAX_SCHEDULE_ENTRIES} entries")
        ends: list[float] = []
        t = self.time_anchor
        for d, p in self.entries:
            if not d > 0 or math.isinf(d) or not p >= 0 or math.isinf(p):
                raise ScheduleError(f"bad schedule entry (duration={d!r}, power={p!r})")
            t += d
            ends.append(t)
        object.__setattr__(self, "_ends", tuple(ends))

    def power_at(self, now: float) -> float:
        """Power allowed at ``now``; before the anchor the first entry, after the end the last."""
        k = bisect_right(self._ends, now)
        return self.entries[k if k < len(self.entries) else -1][1]

    @property
    def end(self) -> float:
        """Session time at which the last entry's duration runs out."""
        return self._ends[-1]


@dataclass(frozen=True, slots=True)
class ScheduleTuple:
    """One offer: a charging schedule and (BPT) an optional discharging schedule."""

    schedule_tuple_id: int
    charging: PowerSchedule
    discharging: PowerSchedule | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.schedule_tuple_id <= 255:
            raise ScheduleError("ScheduleTupleID must be 1..255")

    def charge_power_at(self, now: float) -> float:
        """Most the truck may take at ``now`` (W)."""
        return self.charging.power_at(now)

    def discharge_power_at(self, now: float) -> float:
        """Most the truck may give back at ``now`` (W); 0 without a discharging schedule."""
        return 0.0 if self.discharging is None else self.discharging.power_at(now)


def _merge(entries: list[tuple[float, float]], limit: int) -> tuple[tuple[float, float], ...]:
    """Join equal neighbours, then, if still too many, merge the shortest with its lower
    neighbour taking the *smaller* power (a merged entry never promises more)."""
    out: list[list[float]] = []
    for d, p in entries:
        if out and out[-1][1] == p:
            out[-1][0] += d
        else:
            out.append([d, p])
    while len(out) > limit:
        k = min(range(len(out) - 1), key=lambda i: out[i][0] + out[i + 1][0])
        a, b = out[k], out[k + 1]
        out[k : k + 2] = [[a[0] + b[0], min(a[1], b[1])]]
    return tuple((d, p) for d, p in out)


def build_schedules(
    envelope: Envelope,
    *,
    start: float,
    duration_s: float,
    ems: Ems | None = None,
    max_entries: int = MAX_SCHEDULE_ENTRIES,
    bidirectional: bool = True,
    power_tolerance_w: float = 0.0,
    efficiency: float = 1.0,
) -> list[ScheduleTuple]:
    """Offer up to three ScheduleTuples from ``start`` for ``duration_s`` (see module docstring).

    ``max_entries`` is the EV's MaximumSupportingPoints (12..1024). ``efficiency`` converts the
    backend's grid import/export caps to the DC side (as :class:`SeccController` does).
    """
    if not MIN_SUPPORTING_POINTS <= max_entries <= MAX_SCHEDULE_ENTRIES:
        raise ScheduleError(
            f"MaximumSupportingPoints must be {MIN_SUPPORTING_POINTS}..{MAX_SCHEDULE_ENTRIES}"
        )
    if not duration_s > 0 or math.isinf(duration_s):
        raise ScheduleError("schedule duration must be finite and > 0")
    c_max = envelope.charge.max_power_w if envelope.charge.available else 0.0
    d_max = (
        envelope.discharge.max_power_w if envelope.discharge.available and bidirectional else 0.0
    )
    end = start + duration_s
    times = [start]
    if ems is not None:
        times += [t for t in ems.changes() if start < t < end]
    times.append(end)
    charge: list[tuple[float, float]] = []
    discharge: list[tuple[float, float]] = []
    for a, b in itertools.pairwise(times):
        c, d = c_max, d_max
        if ems is not None:
            s = ems.at((a + b) / 2)  # midpoint: immune to rounding at change times
            c = min(c, s.max_charge_power_w, s.grid_import_w * efficiency)
            d = min(d, s.max_discharge_power_w, s.grid_export_w / efficiency)
            if s.setpoint_w >= 0:
                # the backend wants charge (or hold): no discharge, charge up to the setpoint
                c, d = min(c, s.setpoint_w), 0.0
            else:
                c, d = 0.0, min(d, -s.setpoint_w)
        charge.append((b - a, c))
        discharge.append((b - a, d))
    tuples = [
        ScheduleTuple(
            1,
            PowerSchedule(start, _merge(charge, max_entries), power_tolerance_w),
            PowerSchedule(start, _merge(discharge, max_entries), power_tolerance_w)
            if d_max > 0
            else None,
            "backend plan",
        )
    ]
    if ems is not None:
        tuples.append(
            ScheduleTuple(
                2,
                PowerSchedule(start, _merge(charge, max_entries), power_tolerance_w),
                None,
                "charge only",
            )
        )
        flat = PowerSchedule(start, ((duration_s, c_max),), power_tolerance_w)
        tuples.append(
            ScheduleTuple(
                3,
                flat,
                PowerSchedule(start, ((duration_s, d_max),), power_tolerance_w) if d_max else None,
                "envelope",
            )
        )
    return tuples[:MAX_SCHEDULE_TUPLES]


class ProfileVerdict(StrEnum):
    """Outcome of checking an EV power profile; values are the -20 ResponseCode names."""

    OK = "OK"
    WARNING_VIOLATION = "WARNING_EVPowerProfileViolation"
    FAILED_VIOLATION = "FAILED_EVPowerProfileViolation"
    FAILED_INVALID = "FAILED_EVPowerProfileInvalid"


@dataclass(frozen=True, slots=True)
class ProfileCheck:
    """Verdict plus where it went wrong (entry index, profile power, allowed power)."""

    verdict: ProfileVerdict
    entry: int | None = None
    power_w: float = 0.0
    allowed_w: float = 0.0
    reason: str = ""


def validate_ev_power_profile(
    time_anchor: float,
    entries: Sequence[tuple[float, float]],
    offer: ScheduleTuple,
    *,
    tolerance_accepted: bool = True,
) -> ProfileCheck:
    """Check EVPowerProfile entries (duration_s, signed power_w; > 0 charge) against ``offer``.

    Each profile entry is compared with the schedule at every change point inside it.
    ``tolerance_accepted`` reflects PowerToleranceAcceptance: without it, any excess fails.
    """
    if not 1 <= len(entries) <= MAX_PROFILE_ENTRIES:
        return ProfileCheck(ProfileVerdict.FAILED_INVALID, reason="profile needs 1..2048 entries")
    worst = ProfileCheck(ProfileVerdict.OK)
    t = time_anchor
    for k, (d, p) in enumerate(entries):
        if not (math.isfinite(d) and d > 0 and math.isfinite(p)):
            return ProfileCheck(ProfileVerdict.FAILED_INVALID, k, p, reason="bad entry")
        sched = offer.charging if p >= 0 else offer.discharging
        if sched is None:
            if p < 0:
                return ProfileCheck(
                    ProfileVerdict.FAILED_VIOLATION, k, p, 0.0, "discharge without a schedule"
                )
            continue
        probes = [t] + [e for e in sched._ends if t < e < t + d]
        allowed = min(sched.power_at(x) for x in probes)
        excess = abs(p) - allowed
        if excess > 1e-9 * max(1.0, allowed):
            tol = sched.power_tolerance_w if tolerance_accepted else 0.0
            verdict = (
                ProfileVerdict.WARNING_VIOLATION
                if excess <= tol
                else ProfileVerdict.FAILED_VIOLATION
            )
            if verdict is ProfileVerdict.FAILED_VIOLATION:
                return ProfileCheck(verdict, k, p, allowed, "beyond schedule and tolerance")
            if worst.verdict is ProfileVerdict.OK:
                worst = ProfileCheck(verdict, k, p, allowed, "within power tolerance")
        t += d
    return worst
