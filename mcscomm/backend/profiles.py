"""OCPP 2.1 charging profiles: parsing, validation, stacking and the composite schedule (pure).

Theory of operation. A CSMS installs profiles with SetChargingProfile; each has a *purpose*
(ChargingStationMaxProfile for the whole station on EVSE 0, TxDefaultProfile for every
transaction, TxProfile for one transaction), a *stack level* (the highest valid one of a purpose
wins), a *kind* (Absolute: periods from ``startSchedule``; Relative: from the transaction start;
Recurring: daily/weekly from ``startSchedule``; Dynamic: one period whose values the CSMS moves
with UpdateDynamicSchedule) and periods carrying the OCPP 2.1 V2X fields: ``limit`` (most charge
power, W), ``dischargeLimit`` (<= 0, most discharge power), ``setpoint`` (< 0 = discharge) and
``operationMode``. :class:`ProfileStore` answers "what does the backend want on EVSE *e* at time
*t*": the tx-level profile (TxProfile, else TxDefaultProfile on that EVSE, else on EVSE 0) gives
setpoint and mode; every level's limits combine by taking the smallest (OCPP 2.1 K08, composite
schedule). Time is epoch seconds, passed in; nothing here reads a clock.

Units: only ``chargingRateUnit = W`` is honoured. A DC charger's ampere limits would need the
DC voltage of the moment to become power; the station rejects them (reason UnsupportedRateUnit)
rather than guess (documented deviation, docs/backend.md).

Every structural problem is a :class:`ProfileMalformed` with the OCPP error code; whether the
*station* can honour a valid profile is decided by :func:`check_honourable`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mcscomm.backend.errors import ProfileMalformed, ProfileRejected

INF = math.inf
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S

FORMATION = "FormationViolation"
PROPERTY = "PropertyConstraintViolation"
OCCURRENCE = "OccurrenceConstraintViolation"
FORMAT = "FormatViolation"


class Purpose(StrEnum):
    """ChargingProfilePurposeEnumType (OCPP 2.1)."""

    STATION_MAX = "ChargingStationMaxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    PRIORITY = "PriorityCharging"
    LOCAL_GENERATION = "LocalGeneration"


class Kind(StrEnum):
    """ChargingProfileKindEnumType (OCPP 2.1)."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"
    DYNAMIC = "Dynamic"


class OperationMode(StrEnum):
    """OperationModeEnumType (OCPP 2.1, V2X)."""

    IDLE = "Idle"
    CHARGING_ONLY = "ChargingOnly"
    CENTRAL_SETPOINT = "CentralSetpoint"
    EXTERNAL_SETPOINT = "ExternalSetpoint"
    EXTERNAL_LIMITS = "ExternalLimits"
    CENTRAL_FREQUENCY = "CentralFrequency"
    LOCAL_FREQUENCY = "LocalFrequency"
    LOCAL_LOAD_BALANCING = "LocalLoadBalancing"


#: Modes whose periods must carry a setpoint.
SETPOINT_MODES = frozenset({OperationMode.CENTRAL_SETPOINT, OperationMode.EXTERNAL_SETPOINT})
#: Modes this station implements (frequency modes need a grid-frequency measurement we lack).
SUPPORTED_MODES = frozenset(OperationMode) - {
    OperationMode.CENTRAL_FREQUENCY,
    OperationMode.LOCAL_FREQUENCY,
}


def key(d: Mapping[str, Any], name: str) -> Any:
    """``d[name]`` tolerant of the ``ocpp`` library's key mangling.

    The library turns camelCase into snake_case, but not always as one would guess
    (``targetSoC`` becomes ``target_so_c``); comparing keys without underscores and case makes
    lookups independent of that.
    """
    if name in d:
        return d[name]
    want = name.replace("_", "").lower()
    for k, v in d.items():
        if k.replace("_", "").lower() == want:
            return v
    return None


def parse_time(value: Any, what: str) -> float:
    """An OCPP dateTime (RFC 3339, ``Z`` or offset) as epoch seconds."""
    if not isinstance(value, str):
        raise ProfileMalformed(FORMAT, f"{what} must be an RFC 3339 date-time, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ProfileMalformed(FORMAT, f"{what}: not a date-time: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # OCPP times are UTC unless an offset says otherwise
    return dt.timestamp()


def format_time(t: float) -> str:
    """Epoch seconds as an OCPP dateTime (UTC, millisecond precision, ``Z``)."""
    dt = datetime.fromtimestamp(t, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Period:
    """One ChargingSchedulePeriod, in W. ``discharge_limit_w`` is a magnitude (>= 0)."""

    start_s: float
    limit_w: float | None = None
    discharge_limit_w: float | None = None
    setpoint_w: float | None = None
    mode: OperationMode = OperationMode.CHARGING_ONLY


@dataclass(frozen=True, slots=True)
class Schedule:
    """One ChargingSchedule: periods from ``start`` (epoch s, None: by kind) for ``duration_s``."""

    id: int
    periods: tuple[Period, ...]
    start: float | None = None
    duration_s: float | None = None
    rate_unit: str = "W"


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """A validated charging profile installed on ``evse_id`` (0 = the whole station)."""

    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedules: tuple[Schedule, ...]
    evse_id: int = 0
    received_at: float = 0.0
    recurrency: str | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    transaction_id: str | None = None
    max_offline_s: float | None = None
    invalid_after_offline: bool = False
    dyn_update_interval_s: float | None = None

    @property
    def schedule(self) -> Schedule:
        """The schedule in force (OCPP 2.1 allows up to 3 for ISO 15118 offers; we use #1)."""
        return self.schedules[0]

    def origin(self, t: float, tx_start: float | None) -> float | None:
        """Epoch time of the schedule's period 0 for evaluation at ``t`` (None: not anchored)."""
        s = self.schedule
        if self.kind is Kind.RELATIVE:
            return tx_start
        base = s.start if s.start is not None else self.received_at
        if self.kind is Kind.RECURRING:
            p = WEEK_S if self.recurrency == "Weekly" else DAY_S
            if t < base:
                return base
            return base + math.floor((t - base) / p) * p
        return base

    def active_period(self, t: float, tx_start: float | None) -> Period | None:
        """The period in force at ``t`` or None (not valid, not started, or over)."""
        if self.valid_from is not None and t < self.valid_from:
            return None
        if self.valid_to is not None and t >= self.valid_to:
            return None
        o = self.origin(t, tx_start)
        if o is None or t < o:
            return None
        el = t - o
        s = self.schedule
        dur = s.duration_s
        if self.kind is Kind.RECURRING:
            p = WEEK_S if self.recurrency == "Weekly" else DAY_S
            dur = p if dur is None else min(dur, p)
        if dur is not None and el >= dur:
            return None
        found: Period | None = None
        for per in s.periods:
            if per.start_s <= el:
                found = per
            else:
                break
        return found

    def next_change(self, t: float, tx_start: float | None) -> float:
        """Earliest time after ``t`` at which :meth:`active_period` may change (inf: never)."""
        cands = [INF]
        if self.valid_from is not None and self.valid_from > t:
            cands.append(self.valid_from)
        if self.valid_to is not None and self.valid_to > t:
            cands.append(self.valid_to)
        o = self.origin(t, tx_start)
        if o is not None:
            s = self.schedule
            marks = [o + p.start_s for p in s.periods]
            if s.duration_s is not None:
                marks.append(o + s.duration_s)
            if self.kind is Kind.RECURRING:
                p = WEEK_S if self.recurrency == "Weekly" else DAY_S
                marks.append(o + p)
            cands += [m for m in marks if m > t]
        return min(cands)


# -- parsing -------------------------------------------------------------------------------------


def _num(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ProfileMalformed(FORMATION, f"{what} must be a finite number, got {v!r}")
    return float(v)


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProfileMalformed(FORMATION, f"{what} must be an integer, got {v!r}")
    return v


def _enum(cls: type[StrEnum], v: Any, what: str) -> Any:
    try:
        return cls(v)
    except ValueError as exc:
        raise ProfileMalformed(FORMATION, f"{what}: unknown value {v!r}") from exc


def parse_period(raw: Mapping[str, Any], where: str, default_mode: OperationMode | None) -> Period:
    """One ChargingSchedulePeriodType (snake_case or camelCase keys) -> :class:`Period`."""
    if not isinstance(raw, Mapping):
        raise ProfileMalformed(FORMATION, f"{where} must be an object")
    start = _num(key(raw, "startPeriod"), f"{where}.startPeriod")
    if start is None:
        raise ProfileMalformed(OCCURRENCE, f"{where}.startPeriod is required")
    limit = _num(key(raw, "limit"), f"{where}.limit")
    dis = _num(key(raw, "dischargeLimit"), f"{where}.dischargeLimit")
    sp = _num(key(raw, "setpoint"), f"{where}.setpoint")
    m = key(raw, "operationMode")
    if m is not None:
        mode = _enum(OperationMode, m, f"{where}.operationMode")
    elif default_mode is not None:
        mode = default_mode
    else:
        # OCPP 2.1: operationMode defaults to ChargingOnly. A period that nevertheless carries a
        # setpoint clearly means central setpoint control; reading it so beats rejecting it.
        mode = OperationMode.CENTRAL_SETPOINT if sp is not None else OperationMode.CHARGING_ONLY
    if limit is not None and limit < 0:
        raise ProfileMalformed(PROPERTY, f"{where}.limit must be >= 0, got {limit:g}")
    if dis is not None and dis > 0:
        raise ProfileMalformed(PROPERTY, f"{where}.dischargeLimit must be <= 0, got {dis:g}")
    if mode in SETPOINT_MODES and sp is None:
        raise ProfileMalformed(OCCURRENCE, f"{where}: operationMode {mode} needs a setpoint")
    if sp is not None:
        if mode is OperationMode.CHARGING_ONLY and sp < 0:
            raise ProfileMalformed(PROPERTY, f"{where}: negative setpoint in ChargingOnly mode")
        if limit is not None and sp > limit:
            raise ProfileMalformed(PROPERTY, f"{where}: setpoint {sp:g} above limit {limit:g}")
        if dis is not None and sp < dis:
            raise ProfileMalformed(
                PROPERTY, f"{where}: setpoint {sp:g} below dischargeLimit {dis:g}"
            )
    return Period(start, limit, None if dis is None else -dis, sp, mode)


def parse_schedule(raw: Mapping[str, Any], where: str) -> Schedule:
    """One ChargingScheduleType -> :class:`Schedule` (periods checked for order)."""
    if not isinstance(raw, Mapping):
        raise ProfileMalformed(FORMATION, f"{where} must be an object")
    sid = _int(key(raw, "id"), f"{where}.id")
    unit = key(raw, "chargingRateUnit")
    if unit not in ("W", "A"):
        raise ProfileMalformed(FORMATION, f"{where}.chargingRateUnit must be W or A, got {unit!r}")
    raw_periods = key(raw, "chargingSchedulePeriod")
    if not isinstance(raw_periods, Sequence) or isinstance(raw_periods, str) or not raw_periods:
        raise ProfileMalformed(OCCURRENCE, f"{where}.chargingSchedulePeriod needs >= 1 period")
    periods = tuple(
        parse_period(p, f"{where}.chargingSchedulePeriod[{i}]", None)
        for i, p in enumerate(raw_periods)
    )
    if periods[0].start_s != 0:
        raise ProfileMalformed(PROPERTY, f"{where}: the first startPeriod must be 0")
    for a, b in itertools.pairwise(periods):
        if not b.start_s > a.start_s:
            raise ProfileMalformed(PROPERTY, f"{where}: startPeriod values must increase")
    start_raw = key(raw, "startSchedule")
    start = None if start_raw is None else parse_time(start_raw, f"{where}.startSchedule")
    dur = _num(key(raw, "duration"), f"{where}.duration")
    if dur is not None and dur <= 0:
        raise ProfileMalformed(PROPERTY, f"{where}.duration must be > 0")
    return Schedule(sid, periods, start, dur, unit)


def parse_profile(raw: Mapping[str, Any], *, evse_id: int, received_at: float) -> ChargingProfile:
    """A ChargingProfileType as the ``ocpp`` library hands it over -> :class:`ChargingProfile`.

    Raises :class:`ProfileMalformed` for anything OCPP itself forbids.
    """
    if not isinstance(raw, Mapping):
        raise ProfileMalformed(FORMATION, "chargingProfile must be an object")
    pid = _int(key(raw, "id"), "chargingProfile.id")
    level = _int(key(raw, "stackLevel"), "chargingProfile.stackLevel")
    if level < 0:
        raise ProfileMalformed(PROPERTY, "stackLevel must be >= 0")
    purpose = _enum(Purpose, key(raw, "chargingProfilePurpose"), "chargingProfilePurpose")
    kind = _enum(Kind, key(raw, "chargingProfileKind"), "chargingProfileKind")
    raw_scheds = key(raw, "chargingSchedule")
    if not isinstance(raw_scheds, Sequence) or isinstance(raw_scheds, str):
        raise ProfileMalformed(OCCURRENCE, "chargingSchedule is required")
    if not 1 <= len(raw_scheds) <= 3:
        raise ProfileMalformed(OCCURRENCE, "chargingSchedule needs 1..3 schedules")
    scheds = tuple(parse_schedule(s, f"chargingSchedule[{i}]") for i, s in enumerate(raw_scheds))
    rec = key(raw, "recurrencyKind")
    if kind is Kind.RECURRING:
        if rec not in ("Daily", "Weekly"):
            raise ProfileMalformed(OCCURRENCE, "a Recurring profile needs recurrencyKind")
        if scheds[0].start is None:
            raise ProfileMalformed(OCCURRENCE, "a Recurring profile needs startSchedule")
    if kind is Kind.RELATIVE and scheds[0].start is not None:
        raise ProfileMalformed(PROPERTY, "a Relative profile must not have startSchedule")
    vf_raw, vt_raw = key(raw, "validFrom"), key(raw, "validTo")
    vf = None if vf_raw is None else parse_time(vf_raw, "validFrom")
    vt = None if vt_raw is None else parse_time(vt_raw, "validTo")
    if vf is not None and vt is not None and vt <= vf:
        raise ProfileMalformed(PROPERTY, "validTo must be after validFrom")
    tx = key(raw, "transactionId")
    if tx is not None and purpose is not Purpose.TX:
        raise ProfileMalformed(PROPERTY, "transactionId is only allowed in a TxProfile")
    mod = _num(key(raw, "maxOfflineDuration"), "maxOfflineDuration")
    dyn = _num(key(raw, "dynUpdateInterval"), "dynUpdateInterval")
    return ChargingProfile(
        id=pid,
        stack_level=level,
        purpose=purpose,
        kind=kind,
        schedules=scheds,
        evse_id=evse_id,
        received_at=received_at,
        recurrency=rec,
        valid_from=vf,
        valid_to=vt,
        transaction_id=tx,
        max_offline_s=mod,
        invalid_after_offline=bool(key(raw, "invalidAfterOfflineDuration") or False),
        dyn_update_interval_s=dyn,
    )


def apply_dynamic_update(profile: ChargingProfile, update: Mapping[str, Any]) -> ChargingProfile:
    """UpdateDynamicSchedule: new limit/dischargeLimit/setpoint for a Dynamic profile.

    The values replace those of the period in force (period 0: a Dynamic profile is one period
    updated in place, OCPP 2.1 K-section "Dynamic charging profiles"); absent values are kept.
    """
    if profile.kind is not Kind.DYNAMIC:
        raise ProfileRejected("NotDynamic", f"profile {profile.id} is {profile.kind}, not Dynamic")
    s = profile.schedule
    p0 = s.periods[0]
    raw = {
        "startPeriod": 0,
        "limit": key(update, "limit") if key(update, "limit") is not None else p0.limit_w,
        "dischargeLimit": key(update, "dischargeLimit")
        if key(update, "dischargeLimit") is not None
        else (None if p0.discharge_limit_w is None else -p0.discharge_limit_w),
        "setpoint": key(update, "setpoint")
        if key(update, "setpoint") is not None
        else p0.setpoint_w,
        "operationMode": p0.mode.value,
    }
    new0 = parse_period(raw, "scheduleUpdate", p0.mode)
    new_s = replace(s, periods=(new0, *s.periods[1:]))
    return replace(profile, schedules=(new_s, *profile.schedules[1:]))


# -- the station's view: can it honour a profile? -------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvseCaps:
    """What one EVSE can do right now (magnitudes, W), for :func:`check_honourable`.

    ``can_discharge`` is False for a unidirectional charger and for a session on a non-BPT
    service (DC / MCS, service ids 2/8). Minimums are the truck's operating floors.
    ``transaction_id`` is the ongoing transaction on this EVSE (None: none).
    """

    evse_exists: bool = True
    can_discharge: bool = True
    max_charge_w: float = INF
    max_discharge_w: float = INF
    min_charge_w: float = 0.0
    min_discharge_w: float = 0.0
    transaction_id: str | None = None


# Relative tolerance on "beyond the rated envelope": a setpoint computed by an EMS in floats may
# land a hair above a rating it was computed from.
_TOL = 1e-6


def check_honourable(profile: ChargingProfile, caps: EvseCaps) -> None:
    """Raise :class:`ProfileRejected` (with an OCPP reasonCode) if the station cannot honour it."""
    if not caps.evse_exists:
        raise ProfileRejected("UnknownEVSE", f"no EVSE {profile.evse_id}")
    if profile.purpose in (Purpose.EXTERNAL, Purpose.PRIORITY, Purpose.LOCAL_GENERATION):
        # ExternalConstraints may only come from a local EMS, never from the CSMS (OCPP 2.1
        # K01.FR.22); priority charging / local generation are not implemented here.
        raise ProfileRejected("UnsupportedPurpose", f"{profile.purpose} is not accepted")
    if profile.purpose is Purpose.STATION_MAX and profile.evse_id != 0:
        raise ProfileRejected("UnknownEVSE", "ChargingStationMaxProfile only on evseId 0")
    if profile.purpose is Purpose.TX:
        if profile.evse_id == 0:
            raise ProfileRejected("UnknownEVSE", "a TxProfile needs an EVSE (evseId > 0)")
        if caps.transaction_id is None:
            raise ProfileRejected("NoTransaction", f"no transaction on EVSE {profile.evse_id}")
        if profile.transaction_id not in (None, caps.transaction_id):
            raise ProfileRejected("TxNotFound", f"transaction {profile.transaction_id} unknown")
    for s in profile.schedules:
        if s.rate_unit != "W":
            raise ProfileRejected("UnsupportedRateUnit", "a DC MCS station is steered in W only")
        for k, p in enumerate(s.periods):
            where = f"schedule {s.id} period {k}"
            if p.mode not in SUPPORTED_MODES:
                raise ProfileRejected("UnsupportedOpMode", f"{where}: {p.mode} (no grid frequency)")
            sp = p.setpoint_w
            if sp is None or sp == 0.0:
                continue
            if sp < 0 and not caps.can_discharge:
                raise ProfileRejected("V2XNotSupported", f"{where}: discharge setpoint {sp:g} W")
            hi = caps.max_charge_w if sp > 0 else caps.max_discharge_w
            lo = caps.min_charge_w if sp > 0 else caps.min_discharge_w
            if abs(sp) > hi * (1 + _TOL):
                raise ProfileRejected(
                    "SetpointOutOfRange", f"{where}: |{sp:g}| W beyond the {hi:g} W rating"
                )
            if abs(sp) < lo * (1 - _TOL):
                raise ProfileRejected(
                    "SetpointBelowMinimum", f"{where}: |{sp:g}| W below the {lo:g} W minimum"
                )


# -- stacking and the composite ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What the backend wants on one EVSE over one interval (W; ``None`` = not restricted).

    ``setpoint_w`` is signed (> 0 charge, < 0 discharge) and already inside the limits;
    ``discharge_limit_w`` is a magnitude. ``sources`` names the profile ids that contributed.
    """

    mode: OperationMode = OperationMode.CHARGING_ONLY
    limit_w: float | None = None
    discharge_limit_w: float | None = None
    setpoint_w: float | None = None
    sources: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    """A :class:`Target` in force from ``start`` until ``end`` (epoch s; ``end`` may be inf)."""

    start: float
    end: float
    target: Target | None


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class ProfileStore:
    """The profiles installed on a station (all EVSEs), with OCPP's replacement rules."""

    def __init__(self) -> None:
        self._profiles: dict[int, ChargingProfile] = {}

    def __len__(self) -> int:
        return len(self._profiles)

    def get(self, profile_id: int) -> ChargingProfile | None:
        return self._profiles.get(profile_id)

    def profiles(self) -> list[ChargingProfile]:
        return list(self._profiles.values())

    def install(self, profile: ChargingProfile) -> None:
        """Add ``profile``; it replaces one with the same id, and one with the same purpose,
        stack level and EVSE (OCPP 2.1 K01.FR.05/06; TxProfiles only within a transaction)."""
        self._profiles.pop(profile.id, None)
        for pid, p in list(self._profiles.items()):
            if (
                p.purpose is profile.purpose
                and p.stack_level == profile.stack_level
                and p.evse_id == profile.evse_id
                and (p.purpose is not Purpose.TX or p.transaction_id == profile.transaction_id)
            ):
                del self._profiles[pid]
        self._profiles[profile.id] = profile

    def replace(self, profile: ChargingProfile) -> None:
        """Put an updated version of an installed profile back (UpdateDynamicSchedule)."""
        self._profiles[profile.id] = profile

    def clear(
        self,
        profile_id: int | None = None,
        *,
        evse_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> list[ChargingProfile]:
        """ClearChargingProfile: by id, or every profile matching all given criteria."""
        if profile_id is not None:
            p = self._profiles.pop(profile_id, None)
            return [] if p is None else [p]
        gone = [
            p
            for p in self._profiles.values()
            if (evse_id is None or p.evse_id == evse_id)
            and (purpose is None or p.purpose is purpose)
            and (stack_level is None or p.stack_level == stack_level)
        ]
        for p in gone:
            del self._profiles[p.id]
        return gone

    def end_transaction(self, transaction_id: str | None, evse_id: int) -> None:
        """TxProfiles die with their transaction (OCPP 2.1 K01.FR.?: 'removed after tx end')."""
        for pid, p in list(self._profiles.items()):
            mine = p.purpose is Purpose.TX and p.evse_id == evse_id
            if mine and p.transaction_id in (None, transaction_id):
                del self._profiles[pid]

    def drop_offline_invalid(self, offline_s: float) -> list[ChargingProfile]:
        """Profiles with invalidAfterOfflineDuration whose maxOfflineDuration has run out."""
        gone = [
            p
            for p in self._profiles.values()
            if p.invalid_after_offline
            and p.max_offline_s is not None
            and offline_s >= p.max_offline_s
        ]
        for p in gone:
            del self._profiles[p.id]
        return gone

    # -- evaluation ------------------------------------------------------------------------------
    def _relevant(self, evse_id: int, tx_id: str | None) -> list[ChargingProfile]:
        def applies(p: ChargingProfile) -> bool:
            if p.purpose is Purpose.STATION_MAX:
                return True
            if p.purpose is Purpose.TX_DEFAULT:
                return p.evse_id in (0, evse_id)
            return (
                p.purpose is Purpose.TX
                and p.evse_id == evse_id
                and tx_id is not None
                and p.transaction_id in (None, tx_id)
            )

        return [p for p in self._profiles.values() if applies(p)]

    def target_at(
        self, t: float, evse_id: int, tx_id: str | None, tx_start: float | None
    ) -> Target | None:
        """The composite :class:`Target` at ``t`` on ``evse_id`` (None: no profile applies)."""
        best: dict[tuple[Purpose, bool], tuple[int, ChargingProfile, Period]] = {}
        for p in self._relevant(evse_id, tx_id):
            per = p.active_period(t, tx_start)
            if per is None:
                continue
            slot = (p.purpose, p.evse_id == evse_id)
            cur = best.get(slot)
            if cur is None or p.stack_level > cur[0]:
                best[slot] = (p.stack_level, p, per)
        mx = best.get((Purpose.STATION_MAX, False)) or best.get((Purpose.STATION_MAX, True))
        tx = (
            best.get((Purpose.TX, True))
            or best.get((Purpose.TX_DEFAULT, True))
            or best.get((Purpose.TX_DEFAULT, False))
        )
        if mx is None and tx is None:
            return None
        limit = dis = sp = None
        mode = OperationMode.CHARGING_ONLY
        sources: list[int] = []
        if tx is not None:
            _, prof, per = tx
            sources.append(prof.id)
            limit, dis, sp, mode = per.limit_w, per.discharge_limit_w, per.setpoint_w, per.mode
        if mx is not None:
            _, prof, per = mx
            sources.append(prof.id)
            limit = _min(limit, per.limit_w)
            dis = _min(dis, per.discharge_limit_w)
        if mode is OperationMode.CHARGING_ONLY:
            dis = 0.0  # ChargingOnly: no discharge whatever a limit would allow
        if sp is not None:
            # A station-wide maximum below a transaction's setpoint binds: never exceed a limit.
            if limit is not None:
                sp = min(sp, limit)
            if dis is not None:
                sp = max(sp, -dis)
        return Target(mode, limit, dis, sp, tuple(sources))

    def segments(
        self,
        t0: float,
        horizon_s: float,
        evse_id: int,
        tx_id: str | None,
        tx_start: float | None,
        *,
        max_segments: int = 1024,
    ) -> list[Segment]:
        """The composite from ``t0`` for ``horizon_s`` as piecewise-constant segments."""
        end = t0 + horizon_s
        rel = self._relevant(evse_id, tx_id)
        out: list[Segment] = []
        t = t0
        while t < end and len(out) < max_segments:
            tgt = self.target_at(t, evse_id, tx_id, tx_start)
            nxt = min([p.next_change(t, tx_start) for p in rel] + [INF])
            seg_end = min(nxt, end) if len(out) < max_segments - 1 else end
            if out and out[-1].target == tgt:
                out[-1] = Segment(out[-1].start, seg_end, tgt)
            else:
                out.append(Segment(t, seg_end, tgt))
            t = seg_end
        return out
