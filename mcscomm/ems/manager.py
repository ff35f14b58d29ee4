"""The depot energy manager: share one grid connection among trucks (pure, time passed in).

Theory of operation, one decision (:meth:`DepotManager.decide`):

1. Every truck gets its *must-charge* power: the energy to its departure SoC over the time left
   to departure, with a margin (``departure_margin``) for taper and ramps, capped at its maximum.
   This is what keeps every departure SoC; it is served first, in every period.
2. The depot day has windows (depot time of day, seconds since midnight): in the *peak* window
   trucks with slack discharge into the peak, sharing the grid export limit; in the *night*
   window the import headroom left after step 1 is shared out (water-filling: equal shares up to
   each truck's maximum, repeated until nobody can take more); in between only step 1 runs.
3. A truck discharges only if it is bidirectional, above its V2G floor, and still able to reach
   its departure SoC afterwards at ``feasibility`` of its maximum charge power (the *slack test*).
4. Sums respect the grid: charge / efficiency <= import limit, discharge x efficiency <= export.
   When even the must-charge powers exceed the import limit, they are scaled down alike (and the
   decision says so): the grid connection is a hard limit, a late truck is not.

Everything is in W, Wh and seconds; setpoints are DC-side, > 0 charging, < 0 discharging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

DAY_S = 86_400.0


def parse_hhmm(text: str) -> float:
    """``"17:30"`` -> seconds since midnight."""
    h, _, m = text.strip().partition(":")
    hh, mm = int(h), int(m or 0)
    if not (0 <= hh <= 24 and 0 <= mm < 60):
        raise ValueError(f"not a time of day: {text!r}")
    return (hh * 3600 + mm * 60) % DAY_S


def parse_window(text: str) -> tuple[float, float]:
    """``"17:00-20:00"`` -> (start, end) seconds since midnight (may wrap past midnight)."""
    a, sep, b = text.partition("-")
    if not sep:
        raise ValueError(f"not a window HH:MM-HH:MM: {text!r}")
    return parse_hhmm(a), parse_hhmm(b)


def in_window(tod: float, window: tuple[float, float] | None) -> bool:
    """Is time-of-day ``tod`` inside ``window`` (wrapping past midnight allowed)?"""
    if window is None:
        return False
    a, b = window
    tod %= DAY_S
    return a <= tod < b if a <= b else (tod >= a or tod < b)


@dataclass(frozen=True, slots=True)
class Truck:
    """One truck at a charger as the EMS knows it (from NotifyEVChargingNeeds and meter values).

    ``soc``, ``target_soc`` and ``v2g_min_soc`` are fractions; ``time_left_s`` is real seconds
    until departure (inf: none known).
    """

    key: str
    soc: float
    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float = 0.0
    target_soc: float = 0.8
    v2g_min_soc: float = 0.3
    time_left_s: float = math.inf
    bidirectional: bool = False

    @property
    def need_wh(self) -> float:
        """Energy to the departure SoC (0 when already there)."""
        return max(0.0, (self.target_soc - self.soc) * self.capacity_wh)


@dataclass(frozen=True, slots=True)
class DepotLimits:
    """The grid connection (AC side) and the depot day."""

    grid_import_w: float
    grid_export_w: float = 0.0
    efficiency: float = 0.96
    peak: tuple[float, float] | None = (17 * 3600.0, 20 * 3600.0)
    night: tuple[float, float] | None = (22 * 3600.0, 6 * 3600.0)


@dataclass(frozen=True, slots=True)
class Decision:
    """Setpoints per truck key (W), the period, and what bound the decision."""

    period: str
    setpoints: dict[str, float] = field(default_factory=dict)
    must_w: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def total_charge_w(self) -> float:
        return sum(p for p in self.setpoints.values() if p > 0)

    @property
    def total_discharge_w(self) -> float:
        return -sum(p for p in self.setpoints.values() if p < 0)


@dataclass(slots=True)
class DepotManager:
    """Decides the setpoints (see the module docstring). Stateless between calls."""

    limits: DepotLimits
    departure_margin: float = 1.25
    feasibility: float = 0.7
    control_interval_s: float = 5.0

    def period(self, tod: float) -> str:
        """``peak``, ``night`` or ``day`` at depot time of day ``tod``."""
        if in_window(tod, self.limits.peak):
            return "peak"
        if in_window(tod, self.limits.night):
            return "night"
        return "day"

    def _charge_cap(self, t: Truck) -> float:
        """Most charge power for one interval without overshooting the departure SoC."""
        return min(t.max_charge_w, t.need_wh * 3600.0 / self.control_interval_s)

    def _discharge_cap(self, t: Truck) -> float:
        """Most discharge power for one interval without crossing the V2G floor."""
        above_wh = max(0.0, (t.soc - t.v2g_min_soc) * t.capacity_wh)
        return min(t.max_discharge_w, above_wh * 3600.0 / self.control_interval_s)

    def must_charge_w(self, t: Truck) -> float:
        """Least charge power that still reaches the departure SoC in time (capped at max)."""
        need = t.need_wh
        if need <= 0.0 or t.max_charge_w <= 0.0 or math.isinf(t.time_left_s):
            return 0.0
        left = max(t.time_left_s, 1.0)
        return min(self._charge_cap(t), need * 3600.0 / left * self.departure_margin)

    def has_slack(self, t: Truck, discharge_w: float) -> bool:
        """May ``t`` give ``discharge_w`` for one control interval and still make departure?"""
        if not t.bidirectional or t.max_discharge_w <= 0.0 or t.soc <= t.v2g_min_soc:
            return False
        if math.isinf(t.time_left_s):
            return True
        dt = self.control_interval_s
        after_wh = t.need_wh + discharge_w * dt / 3600.0
        left = t.time_left_s - dt
        return left > 0 and after_wh * 3600.0 * self.departure_margin <= (
            left * t.max_charge_w * self.feasibility
        )

    def decide(self, trucks: Sequence[Truck], tod: float) -> Decision:
        """Setpoints for ``trucks`` at depot time of day ``tod``."""
        lim = self.limits
        period = self.period(tod)
        notes: list[str] = []
        import_dc = lim.grid_import_w * lim.efficiency
        export_dc = lim.grid_export_w / lim.efficiency if lim.efficiency > 0 else 0.0
        givers: dict[str, float] = {}
        if period == "peak":
            # V2G into the peak: every truck that can give for one interval and still make its
            # departure (slack test) gives instead of charging
            for t in trucks:
                cap = self._discharge_cap(t)
                if cap > 0.0 and self.has_slack(t, cap):
                    givers[t.key] = cap
        must = {t.key: 0.0 if t.key in givers else self.must_charge_w(t) for t in trucks}
        total_must = sum(must.values())
        scale = 1.0
        if total_must > import_dc:
            scale = import_dc / total_must if import_dc > 0 else 0.0
            notes.append(f"grid import binds: must-charge scaled to {scale:.0%}")
        sp = {k: v * scale for k, v in must.items()}
        if givers:
            if export_dc <= 0:
                notes.append("no grid export: nothing discharges")
            for k, p in _water_fill(export_dc, givers).items():
                sp[k] = -p
        elif period == "night":
            room = import_dc - sum(sp.values())
            takers = {
                t.key: self._charge_cap(t) - sp[t.key]
                for t in trucks
                if self._charge_cap(t) > sp[t.key]
            }
            for k, p in _water_fill(max(room, 0.0), takers).items():
                sp[k] += p
        return Decision(period, sp, must, tuple(notes))


def _water_fill(budget: float, caps: dict[str, float]) -> dict[str, float]:
    """Share ``budget`` equally among ``caps`` keys, never above a key's cap."""
    out = dict.fromkeys(caps, 0.0)
    left = budget
    open_keys = [k for k, c in caps.items() if c > 0]
    while left > 1e-9 and open_keys:
        share = left / len(open_keys)
        nxt = []
        for k in open_keys:
            give = min(share, caps[k] - out[k])
            out[k] += give
            left -= give
            if caps[k] - out[k] > 1e-9:
                nxt.append(k)
        if len(nxt) == len(open_keys) and share <= 1e-9:
            break
        open_keys = nxt
    return {k: v for k, v in out.items() if v > 0}
