"""A truck and a charger coupled without any protocol: the power layer on its own.

Used by tests, the benchmark and anyone who wants to see what a scenario does before running a
full session. Each cycle does what a session does: the truck builds its request, the SECC
controller decides, the truck observes what flows. The energy the meter counts over a cycle is
exactly what the battery integrates (same current, voltage and interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mcscomm.power.battery import Battery
from mcscomm.power.controller import Mode, SeccController, SeccDecision
from mcscomm.power.ems import Ems, Scenario
from mcscomm.power.envelope import build_parties
from mcscomm.power.ev import EvseLimits, TruckController
from mcscomm.power.limits import BatterySpec, ChargerSpec, LimitsError
from mcscomm.power.schedule import build_schedules


@dataclass(frozen=True, slots=True)
class Sample:
    """One cycle of a simulation, for plots and checks."""

    t: float
    soc: float
    decision: SeccDecision


@dataclass(slots=True)
class SimResult:
    """Samples plus the objects at the end (for energy-balance checks)."""

    samples: list[Sample]
    battery: Battery
    secc: SeccController
    truck: TruckController
    start_energy_wh: float
    setup: list[str] = field(default_factory=list)


def pair(
    truck: BatterySpec,
    charger: ChargerSpec,
    scenario: Scenario | None = None,
    *,
    mode: Mode = Mode.DYNAMIC,
    start: float = 0.0,
) -> tuple[SeccController, TruckController]:
    """Build a matching SECC controller and truck controller (scenario overrides applied)."""
    spec = truck
    if scenario is not None:
        scale = scenario.time_scale
        spec = replace(
            truck,
            initial_soc=truck.initial_soc if scenario.initial_soc is None else scenario.initial_soc,
            target_soc=truck.target_soc if scenario.target_soc is None else scenario.target_soc,
            departure_s=truck.departure_s
            if scenario.departure_s is None
            else scenario.departure_s * scale,
        )
    tc = TruckController(Battery(spec), mode=mode, start=start, v2g=charger.bidirectional)
    bidir = charger.bidirectional and spec.bidirectional
    parties = build_parties(charger, tc.cpd_limits(), bidirectional=bidir)
    ems = Ems(scenario, t0=start) if scenario is not None else None
    secc = SeccController(parties, charger, mode=mode, ems=ems, start=start)
    if mode is Mode.SCHEDULED:
        horizon = scenario.session_duration_s if scenario is not None else 24 * 3600.0
        if horizon == float("inf"):
            horizon = 24 * 3600.0
        offers = build_schedules(
            secc.envelope, start=start, duration_s=horizon, ems=ems,
            bidirectional=bidir, efficiency=charger.efficiency,
        )  # fmt: skip
        secc.select_schedule(offers[0])
    tc.accept_evse_limits(EvseLimits.from_party(secc.evse_envelope.as_limits()))
    return secc, tc


def simulate(
    truck: BatterySpec,
    charger: ChargerSpec,
    scenario: Scenario | None = None,
    *,
    mode: Mode = Mode.DYNAMIC,
    duration_s: float | None = None,
    dt_s: float = 0.25,
) -> SimResult:
    """Run cable check, pre-charge and the charge loop every ``dt_s`` for ``duration_s``."""
    secc, tc = pair(truck, charger, scenario, mode=mode)
    if duration_s is None:
        duration_s = scenario.session_duration_s if scenario is not None else 600.0
    t = 0.0
    setup: list[str] = []
    while True:  # cable check
        v, done = secc.cable_check(t)
        if done:
            setup.append(f"cable check at {v:.0f} V done at {t:.2f} s")
            break
        t += dt_s
    ev_v = tc.battery.terminal_voltage(0.0)
    env = secc.envelope
    if not env.min_voltage_v <= ev_v <= env.max_voltage_v:
        raise LimitsError(
            f"battery voltage {ev_v:.0f} V outside the envelope "
            f"{env.min_voltage_v:g}..{env.max_voltage_v:g} V"
        )
    while abs(secc.precharge(t, ev_v) - ev_v) > 2.0:  # pre-charge convergence (within 2 V)
        t += dt_s
    setup.append(f"pre-charge to {ev_v:.0f} V done at {t:.2f} s")
    secc.start_power_delivery(t)
    t0 = t
    battery = tc.battery
    start_energy = battery.energy_wh
    samples: list[Sample] = []
    end = t0 + duration_s
    while t <= end:
        req = tc.request(t)
        d = secc.step(t, req)
        tc.accept_evse_limits(d)
        tc.observe(t, d.present_current_a, d.present_voltage_v)
        samples.append(Sample(t, battery.soc, d))
        t += dt_s
    return SimResult(samples, battery, secc, tc, start_energy, setup)
