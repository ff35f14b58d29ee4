"""Backend (depot EMS) setpoints and limits over time.

A :class:`Scenario` is a piecewise-constant plan: each :class:`EmsStep` holds from its ``at_s``
until the next one. ``setpoint_w`` > 0 asks to charge the truck, < 0 to discharge it (V2G),
``inf`` means "as fast as every other limit allows", 0 means hold. Caps bound the DC power each
way and the depot's grid import/export. ``time_scale`` stretches the plan: a step written at
600 s happens at 600 x time_scale seconds of session time, so a plan written to play out in a
30-minute emulated session can be replayed over a real depot evening (time_scale = 24 -> 12 h).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

from mcscomm.power.limits import INF, LimitsError


@dataclass(frozen=True, slots=True)
class EmsStep:
    """One plan step, in force from ``at_s`` (scenario seconds) until the next step."""

    at_s: float
    setpoint_w: float = INF
    max_charge_power_w: float = INF
    max_discharge_power_w: float = INF
    grid_import_w: float = INF
    grid_export_w: float = INF
    label: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A backend plan. Optional truck overrides let a scenario set the stage (SoC, departure)."""

    name: str
    steps: tuple[EmsStep, ...]
    duration_s: float = 1800.0
    time_scale: float = 1.0
    description: str = ""
    initial_soc: float | None = None
    target_soc: float | None = None
    departure_s: float | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise LimitsError(f"{self.name}: a scenario needs at least one step")
        ats = [s.at_s for s in self.steps]
        if ats != sorted(ats) or ats[0] != 0.0:
            raise LimitsError(f"{self.name}: steps must start at 0 s and be in time order")
        if not self.time_scale > 0 or math.isinf(self.time_scale):
            raise LimitsError(f"{self.name}: time_scale must be finite and > 0")
        for s in self.steps:
            for v in (s.max_charge_power_w, s.max_discharge_power_w, s.grid_import_w,
                      s.grid_export_w):  # fmt: skip
                if math.isnan(v) or v < 0:
                    raise LimitsError(f"{self.name}: step at {s.at_s:g} s has a negative cap")
            if math.isnan(s.setpoint_w):
                raise LimitsError(f"{self.name}: step at {s.at_s:g} s has a NaN setpoint")

    @property
    def session_duration_s(self) -> float:
        """How long the plan lasts in session time (duration x time_scale)."""
        return self.duration_s * self.time_scale


@dataclass(slots=True)
class Ems:
    """Answers "what does the backend want now?" for session time ``now`` (start = ``t0``)."""

    scenario: Scenario
    t0: float = 0.0
    _ats: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ats = [s.at_s * self.scenario.time_scale for s in self.scenario.steps]

    def at(self, now: float) -> EmsStep:
        """The step in force at ``now`` (before t0: the first step)."""
        k = bisect_right(self._ats, now - self.t0) - 1
        return self.scenario.steps[k if k > 0 else 0]

    def changes(self) -> list[float]:
        """Session times at which the plan changes (for schedules and timers)."""
        return [self.t0 + a for a in self._ats]


def constant(setpoint_w: float = INF, name: str = "constant") -> Scenario:
    """A one-step plan: the same setpoint forever (default: charge as fast as allowed)."""
    return Scenario(name=name, steps=(EmsStep(0.0, setpoint_w),), duration_s=INF)
