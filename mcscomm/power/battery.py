"""Truck battery model: SoC integration with efficiencies, OCV(SoC), IR drop, SoC derating.

Simple to read on purpose. Energy bookkeeping is exact: energy *at the terminals* (what the
charger's meter counts) becomes ``charge_efficiency`` x that in the cells when charging, and the
cells lose terminal energy / ``discharge_efficiency`` when discharging, so
``stored change = charged x eta_c - discharged / eta_d``.
"""

from __future__ import annotations

from bisect import bisect_right

from mcscomm.power.limits import BatterySpec, LimitsError


def _check_spec(spec: BatterySpec) -> None:
    if spec.capacity_wh <= 0:
        raise LimitsError(f"{spec.name}: capacity must be > 0")
    if len(spec.ocv_curve) < 2:
        raise LimitsError(f"{spec.name}: OCV curve needs at least two points")
    socs = [s for s, _ in spec.ocv_curve]
    if socs != sorted(socs) or len(set(socs)) != len(socs):
        raise LimitsError(f"{spec.name}: OCV curve SoC points must be strictly ascending")
    if any(v <= 0 for _, v in spec.ocv_curve):
        raise LimitsError(f"{spec.name}: OCV curve voltages must be > 0")
    if not 0 < spec.charge_efficiency <= 1 or not 0 < spec.discharge_efficiency <= 1:
        raise LimitsError(f"{spec.name}: efficiencies must be in (0, 1]")
    if not 0 <= spec.v2g_min_soc <= spec.max_soc <= 1:
        raise LimitsError(f"{spec.name}: need 0 <= v2g_min_soc <= max_soc <= 1")
    if spec.discharge_taper_soc <= 0 or not 0 <= spec.taper_floor <= 1:
        raise LimitsError(f"{spec.name}: discharge_taper_soc must be > 0, taper_floor in [0, 1]")
    if not 0 <= spec.initial_soc <= 1 or not 0 <= spec.target_soc <= 1:
        raise LimitsError(f"{spec.name}: initial_soc and target_soc must be in [0, 1]")
    if spec.internal_resistance_ohm < 0:
        raise LimitsError(f"{spec.name}: internal resistance must be >= 0")


class Battery:
    """Mutable battery state for one truck. ``soc`` is a fraction; energies in Wh."""

    __slots__ = ("_ocv_s", "_ocv_v", "energy_wh", "spec")

    def __init__(self, spec: BatterySpec, soc: float | None = None) -> None:
        _check_spec(spec)
        self.spec = spec
        start = spec.initial_soc if soc is None else soc
        if not 0.0 <= start <= 1.0:
            raise LimitsError(f"{spec.name}: SoC {start} outside [0, 1]")
        self.energy_wh = start * spec.capacity_wh
        self._ocv_s = [s for s, _ in spec.ocv_curve]
        self._ocv_v = [v for _, v in spec.ocv_curve]

    @property
    def soc(self) -> float:
        """State of charge, fraction 0..1."""
        return self.energy_wh / self.spec.capacity_wh

    def ocv(self, soc: float | None = None) -> float:
        """Open-circuit voltage at ``soc`` (default: now), linear between curve points."""
        s = self.soc if soc is None else soc
        xs, ys = self._ocv_s, self._ocv_v
        if s <= xs[0]:
            return ys[0]
        if s >= xs[-1]:
            return ys[-1]
        k = bisect_right(xs, s)
        x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
        return y0 + (y1 - y0) * (s - x0) / (x1 - x0)

    def terminal_voltage(self, current_a: float) -> float:
        """Voltage at the inlet with ``current_a`` flowing (> 0 charging raises it)."""
        return self.ocv() + current_a * self.spec.internal_resistance_ohm

    def charge_derate(self) -> float:
        """Factor 0..1 on charge current/power: tapers towards full, zero at ``max_soc``."""
        sp = self.spec
        s = self.soc
        if s >= sp.max_soc:
            return 0.0
        if s <= sp.charge_taper_soc or sp.max_soc <= sp.charge_taper_soc:
            return 1.0
        frac = (s - sp.charge_taper_soc) / (sp.max_soc - sp.charge_taper_soc)
        return 1.0 - (1.0 - sp.taper_floor) * frac

    def discharge_derate(self) -> float:
        """Factor 0..1 on discharge: zero at the V2G floor, linear over the taper band above it.

        The linear taper makes the floor unreachable by any step shorter than
        taper x capacity x eta_d / P_max (about a minute for the profiles shipped), so the
        SoC never leaves the V2G window.
        """
        sp = self.spec
        margin = self.soc - sp.v2g_min_soc
        if margin <= 0.0:
            return 0.0
        if margin >= sp.discharge_taper_soc:
            return 1.0
        return margin / sp.discharge_taper_soc

    def max_charge_current_a(self) -> float:
        """Derated charge current the battery accepts now."""
        return self.spec.limits.max_charge_current_a * self.charge_derate()

    def max_charge_power_w(self) -> float:
        """Derated charge power the battery accepts now."""
        return self.spec.limits.max_charge_power_w * self.charge_derate()

    def max_discharge_current_a(self) -> float:
        """Derated discharge current the battery can give now (0 at the V2G floor)."""
        return self.spec.limits.max_discharge_current_a * self.discharge_derate()

    def max_discharge_power_w(self) -> float:
        """Derated discharge power the battery can give now (0 at the V2G floor)."""
        return self.spec.limits.max_discharge_power_w * self.discharge_derate()

    def discharge_headroom_w(self, horizon_s: float) -> float:
        """Most terminal power that cannot cross the V2G floor within ``horizon_s`` seconds."""
        above = self.energy_wh - self.spec.v2g_min_soc * self.spec.capacity_wh
        if above <= 0.0:
            return 0.0
        return above * self.spec.discharge_efficiency * 3600.0 / horizon_s

    def charge_headroom_w(self, horizon_s: float) -> float:
        """Most terminal power that cannot cross ``max_soc`` within ``horizon_s`` seconds."""
        below = self.spec.max_soc * self.spec.capacity_wh - self.energy_wh
        if below <= 0.0:
            return 0.0
        return below / self.spec.charge_efficiency * 3600.0 / horizon_s

    def energy_to_soc_wh(self, soc: float) -> float:
        """Terminal energy needed to reach ``soc`` (negative: energy that may be taken out)."""
        delta = (soc - self.soc) * self.spec.capacity_wh
        if delta >= 0:
            return delta / self.spec.charge_efficiency
        return delta * self.spec.discharge_efficiency

    def apply(self, terminal_power_w: float, dt_s: float) -> float:
        """Integrate ``terminal_power_w`` (> 0 charging) for ``dt_s``; return stored change, Wh."""
        if dt_s <= 0.0 or terminal_power_w == 0.0:
            return 0.0
        e_wh = terminal_power_w * dt_s / 3600.0
        d = (
            e_wh * self.spec.charge_efficiency
            if e_wh > 0
            else e_wh / self.spec.discharge_efficiency
        )
        self.energy_wh += d
        return d
