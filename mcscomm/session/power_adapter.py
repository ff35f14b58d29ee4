"""The sessions' bridge to the pure power layer (``mcscomm.power``), in physical units.

``SeccPower`` owns the charger side of one session: the :class:`SeccController` (built at
ChargeParameterDiscovery, when the truck's limits are known), the backend plan (an EMS scenario
played against ``now`` or setpoints set by the application) and the schedules for Scheduled
control. ``TruckPower`` owns the truck side: the battery model and the :class:`TruckController`.
No protocol types cross this boundary: the handlers convert messages to these floats and back.
"""

from __future__ import annotations

import math

from mcscomm.power.battery import Battery
from mcscomm.power.controller import EvRequest, Mode, SeccController, SeccDecision
from mcscomm.power.ems import Ems, EmsStep, Scenario
from mcscomm.power.envelope import build_parties, negotiate
from mcscomm.power.ev import EvseLimits, TruckController
from mcscomm.power.limits import INF, MCS_ENVELOPE, BatterySpec, ChargerSpec, PartyLimits
from mcscomm.power.safety import SafeStateCause
from mcscomm.power.schedule import ScheduleTuple, build_schedules

_BLEED_TAU_S = 0.2


def _finite(x: float, cap: float) -> float:
    """``inf`` ("no limit") becomes ``cap`` so it can be encoded as a RationalNumber."""
    return cap if math.isinf(x) else x


def finite_limits(p: PartyLimits) -> PartyLimits:
    """``p`` with every unbounded maximum capped at the MCS envelope (facts §7)."""
    m = MCS_ENVELOPE
    return PartyLimits(
        name=p.name,
        max_voltage_v=_finite(p.max_voltage_v, m.max_voltage_v),
        min_voltage_v=p.min_voltage_v,
        max_charge_current_a=_finite(p.max_charge_current_a, m.max_charge_current_a),
        min_charge_current_a=p.min_charge_current_a,
        max_charge_power_w=_finite(p.max_charge_power_w, m.max_charge_power_w),
        min_charge_power_w=p.min_charge_power_w,
        max_discharge_current_a=_finite(p.max_discharge_current_a, m.max_discharge_current_a),
        min_discharge_current_a=p.min_discharge_current_a,
        max_discharge_power_w=_finite(p.max_discharge_power_w, m.max_discharge_power_w),
        min_discharge_power_w=p.min_discharge_power_w,
    )


class SeccPower:
    """Charger side of one session (see module docstring)."""

    def __init__(
        self,
        charger: ChargerSpec,
        scenario: Scenario | None = None,
        *,
        start: float = 0.0,
        cable_check_hold_s: float = 0.5,
    ) -> None:
        self.charger = charger
        self.scenario = scenario
        self.start_t = start
        self.ems: Ems | None = Ems(scenario, t0=start) if scenario is not None else None
        self.controller: SeccController | None = None
        self.bpt = charger.bidirectional
        self.mcs = True
        self.cable_check_hold_s = cable_check_hold_s
        self.last: SeccDecision | None = None
        self._stopped: tuple[float, float] | None = None  # (time, voltage) at PowerDelivery(Stop)

    @property
    def bidirectional(self) -> bool:
        """True when the charger and its grid link can discharge a truck."""
        return self.charger.bidirectional

    # -- backend -----------------------------------------------------------------------------
    def play(self, scenario: Scenario, now: float) -> None:
        """Play an EMS scenario from ``now`` on."""
        self.scenario = scenario
        self.ems = Ems(scenario, t0=now)
        if self.controller is not None:
            self.controller.ems = self.ems

    def set_backend(
        self,
        setpoint_w: float,
        now: float,
        *,
        max_charge_power_w: float = INF,
        max_discharge_power_w: float = INF,
        grid_import_w: float = INF,
        grid_export_w: float = INF,
    ) -> None:
        """A backend setpoint (W, > 0 charge, < 0 discharge, inf = as much as allowed) and caps,
        in force from ``now`` until changed."""
        step = EmsStep(
            0.0,
            setpoint_w,
            max_charge_power_w,
            max_discharge_power_w,
            grid_import_w,
            grid_export_w,
            label="set_backend",
        )
        self.play(Scenario(name="backend", steps=(step,), duration_s=INF), now)

    def setpoint(self, now: float) -> float | None:
        """Backend setpoint in force (None without a backend)."""
        return None if self.ems is None else self.ems.at(now).setpoint_w

    # -- negotiation -------------------------------------------------------------------------
    def evse_limits(self, now: float) -> PartyLimits:
        """The EVSE-side limits (charger ∩ cable ∩ grid ∩ MCS ∩ backend caps) at ``now``, finite."""
        c = self.charger
        parties = [MCS_ENVELOPE, c.cable, c.limits if self.bpt else c.limits.without_discharge()]
        imp, exp = c.grid_import_w, c.grid_export_w
        if self.ems is not None:
            s = self.ems.at(now)
            imp, exp = min(imp, s.grid_import_w), min(exp, s.grid_export_w)
            parties.append(
                PartyLimits(
                    "backend",
                    max_charge_power_w=s.max_charge_power_w,
                    max_discharge_power_w=s.max_discharge_power_w,
                )
            )
        parties.append(c.grid_party(imp, exp))
        env = negotiate(parties, strict=False)
        lim = env.as_limits("EVSE")
        return finite_limits(lim)

    def negotiate(
        self, ev: PartyLimits, *, bidirectional: bool, mcs: bool, scheduled: bool, now: float
    ) -> None:
        """ChargeParameterDiscovery: build the controller. Raises LimitsError when nothing fits."""
        self.bpt = bidirectional and self.charger.bidirectional
        self.mcs = mcs
        parties = build_parties(self.charger, ev, bidirectional=self.bpt, mcs=mcs)
        self.controller = SeccController(
            parties,
            self.charger,
            mode=Mode.SCHEDULED if scheduled else Mode.DYNAMIC,
            ems=self.ems,
            start=now,
            cable_check_hold_s=self.cable_check_hold_s,
        )

    def _ctl(self) -> SeccController:
        if self.controller is None:
            raise RuntimeError("power controller used before ChargeParameterDiscovery")
        return self.controller

    def set_mode(self, scheduled: bool) -> None:
        """Control mode after a service renegotiation."""
        self._ctl().mode = Mode.SCHEDULED if scheduled else Mode.DYNAMIC

    def schedules(
        self, now: float, duration_s: float, max_entries: int, power_tolerance_w: float = 0.0
    ) -> list[ScheduleTuple]:
        """Up to three ScheduleTuples from ``now`` following the backend plan."""
        ctl = self._ctl()
        return build_schedules(
            ctl.envelope,
            start=now,
            duration_s=duration_s,
            ems=self.ems,
            max_entries=max_entries,
            bidirectional=self.bpt,
            efficiency=self.charger.efficiency,
            power_tolerance_w=power_tolerance_w,
        )

    def select_schedule(self, offer: ScheduleTuple | None) -> None:
        self._ctl().select_schedule(offer)

    # -- phases ------------------------------------------------------------------------------
    def cable_check(self, now: float) -> tuple[float, bool]:
        """(output voltage, isolation test finished)."""
        return self._ctl().cable_check(now)

    def pre_charge(self, now: float, target_v: float) -> float:
        return self._ctl().precharge(now, target_v)

    def start(self, now: float) -> bool:
        """PowerDelivery(Start): False when a latched fault keeps the contactors open."""
        return self._ctl().start_power_delivery(now)

    def step(self, now: float, request: EvRequest) -> SeccDecision:
        self.last = self._ctl().step(now, request)
        return self.last

    def stop(self, now: float) -> float:
        """PowerDelivery(Stop): ramp down; returns the present voltage."""
        ctl = self._ctl()
        ctl.stop_power_delivery(now)
        self.last = ctl.tick(now)
        self._stopped = (now, self.last.present_voltage_v)
        return self.last.present_voltage_v

    def welding_detection(self, now: float) -> float:
        """Output voltage while the EV checks its contactors: after the stop, the output
        capacitance discharges through the bleeder (simple model: time constant 0.2 s)."""
        if self.controller is None:
            return 0.0
        self.last = self.controller.tick(now)
        if self._stopped is None:
            return self.last.present_voltage_v
        t0, v0 = self._stopped
        return v0 * math.exp(-max(0.0, now - t0) / _BLEED_TAU_S)

    def safe_state(self, now: float, reason: str) -> tuple[float, float]:
        """Communication loss/timeout: trip the safe state; returns (time at zero current,
        current then). The ramp is bounded by the charger's ``safe_ramp_down_s``."""
        ctl = self.controller
        if ctl is None:
            return now, 0.0
        ctl.trigger_safe_state(now, SafeStateCause.TIMEOUT)
        t_zero = now + ctl.safe.ramp_down_s
        self.last = ctl.tick(t_zero)
        return t_zero, self.last.present_current_a

    def meter(self) -> tuple[int, int]:
        """(charged Wh, discharged Wh), monotonic."""
        return (0, 0) if self.controller is None else self.controller.meter.readings()

    @property
    def meter_id(self) -> str:
        return "MCSCOMM-METER-1" if self.controller is None else self.controller.meter.meter_id


class TruckPower:
    """Truck side of one session: battery + truck controller."""

    def __init__(
        self,
        truck: BatterySpec,
        *,
        scheduled: bool,
        bidirectional: bool,
        start: float = 0.0,
        initial_soc: float | None = None,
        target_soc: float | None = None,
        departure_s: float | None = None,
    ) -> None:
        self.spec = truck
        self.battery = Battery(truck, initial_soc)
        self.controller = TruckController(
            self.battery,
            mode=Mode.SCHEDULED if scheduled else Mode.DYNAMIC,
            start=start,
            v2g=bidirectional,
            target_soc=target_soc,
            departure_s=departure_s,
        )
        self.last_request: EvRequest | None = None

    @property
    def bidirectional(self) -> bool:
        return self.controller.v2g

    def set_mode(self, scheduled: bool, bidirectional: bool) -> None:
        self.controller.mode = Mode.SCHEDULED if scheduled else Mode.DYNAMIC
        self.controller.v2g = bidirectional and self.spec.bidirectional

    def cpd_limits(self) -> PartyLimits:
        """What the truck declares in ChargeParameterDiscoveryReq."""
        return finite_limits(self.controller.cpd_limits())

    def accept_evse_limits(self, limits: EvseLimits) -> None:
        self.controller.accept_evse_limits(limits)

    def request(self, now: float) -> EvRequest:
        self.last_request = self.controller.request(now)
        return self.last_request

    def observe(self, now: float, current_a: float, voltage_v: float) -> None:
        self.controller.observe(now, current_a, voltage_v)

    @property
    def soc_percent(self) -> float:
        return max(0.0, min(100.0, self.battery.soc * 100.0))

    @property
    def target_soc_percent(self) -> float:
        return max(0.0, min(100.0, self.controller.target_soc * 100.0))

    def present_voltage(self) -> float:
        return self.battery.terminal_voltage(self.controller.current_a)

    def at_target(self) -> bool:
        return self.battery.soc >= self.controller.target_soc

    @property
    def fault(self) -> str | None:
        return self.controller.fault
