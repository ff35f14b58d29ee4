"""Charger power stage: tracks a target current (and, before power delivery, a target voltage)
with the charger's ramp limits. Plain floats, mutated in place: it runs every cycle.

Ramps bound *voluntary* changes. A reduction forced by a lower limit in force (backend cap,
safe-state ramp-down, a truck that asks for less than we deliver) is applied at once: safety
beats smoothness, and real stages can cut current far faster than they may raise it.
"""

from __future__ import annotations

from mcscomm.power.limits import Ramp


class PowerStage:
    """Output state of one charger power stage. Current > 0 charges the truck."""

    __slots__ = ("_di_max", "_dp_max", "_dv_max", "contactors_closed", "current_a", "voltage_v")

    def __init__(self, ramp: Ramp) -> None:
        self._di_max = ramp.current_a_per_s
        self._dp_max = ramp.power_w_per_s
        self._dv_max = ramp.voltage_v_per_s
        self.current_a = 0.0
        self.voltage_v = 0.0
        self.contactors_closed = False

    def track_voltage(self, target_v: float, dt_s: float) -> float:
        """Move the output voltage towards ``target_v`` (pre-charge, cable check); no current."""
        step = self._dv_max * dt_s if dt_s > 0.0 else 0.0
        v = self.voltage_v
        v = min(target_v, v + step) if target_v > v else max(target_v, v - step)
        self.voltage_v = v
        return v

    def track_current(
        self, target_a: float, dt_s: float, voltage_v: float, lo_a: float, hi_a: float
    ) -> float:
        """Ramp towards ``target_a`` then force into ``[lo_a, hi_a]`` (lo <= 0 <= hi). Returns I."""
        cur = self.current_a
        di = self._di_max * dt_s if dt_s > 0.0 else 0.0
        if voltage_v > 1.0:
            dp = self._dp_max * dt_s / voltage_v if dt_s > 0.0 else 0.0
            if dp < di:
                di = dp
        if target_a > cur + di:
            target_a = cur + di
        elif target_a < cur - di:
            target_a = cur - di
        if target_a > hi_a:
            target_a = hi_a
        elif target_a < lo_a:
            target_a = lo_a
        if not self.contactors_closed or -1e-9 < target_a < 1e-9:
            target_a = 0.0  # (snap float dust to zero: "zero" must mean zero to open contactors)
        self.current_a = target_a
        self.voltage_v = voltage_v
        return target_a
