"""The truck-side controller: what the EVCC asks for each cycle, and defence in depth.

The truck never trusts the charger: it only ever asks for what its battery accepts *now*
(SoC-derated), never asks beyond what the charger offered, keeps discharge inside its V2G window
and stops (``stop=True``, zero limits) as soon as the charger delivers more than the battery's
limits (:attr:`TruckController.fault`).

Policy (simple and documented):
* it charges up to ``target_soc``; V2G discharge is allowed down to ``v2g_min_soc`` unless the
  *departure guard* says the remaining time is needed to reach ``target_soc`` by departure;
* Scheduled mode: it charges while the schedule allows charge power and the SoC is below target;
  it discharges when the schedule allows only discharge; otherwise it holds at 0 A;
* Dynamic mode: it sends its limits and energy requests; the charger chooses the power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from mcscomm.power.battery import Battery
from mcscomm.power.controller import EvRequest, Mode
from mcscomm.power.limits import INF, PartyLimits

NAN = math.nan


class EvseLimitsLike(Protocol):
    """The EVSE-side limits in force as the truck last heard them (magnitudes)."""

    @property
    def evse_max_charge_power_w(self) -> float: ...
    @property
    def evse_max_charge_current_a(self) -> float: ...
    @property
    def evse_max_discharge_power_w(self) -> float: ...
    @property
    def evse_max_discharge_current_a(self) -> float: ...
    @property
    def evse_max_voltage_v(self) -> float: ...
    @property
    def evse_min_voltage_v(self) -> float: ...


@dataclass(frozen=True, slots=True)
class EvseLimits:
    """Plain holder of EVSE-side limits (from a ChargeLoopRes or ChargeParameterDiscoveryRes)."""

    evse_max_charge_power_w: float = INF
    evse_max_charge_current_a: float = INF
    evse_max_discharge_power_w: float = 0.0
    evse_max_discharge_current_a: float = 0.0
    evse_max_voltage_v: float = INF
    evse_min_voltage_v: float = 0.0

    @classmethod
    def from_party(cls, p: PartyLimits) -> EvseLimits:
        """From a charger's declared limits (ChargeParameterDiscovery)."""
        return cls(
            p.max_charge_power_w, p.max_charge_current_a, p.max_discharge_power_w,
            p.max_discharge_current_a, p.max_voltage_v, p.min_voltage_v,
        )  # fmt: skip


class TruckController:
    """Per-session EVCC power logic around one :class:`Battery`."""

    def __init__(
        self,
        battery: Battery,
        *,
        mode: Mode = Mode.DYNAMIC,
        start: float = 0.0,
        v2g: bool = True,
        target_soc: float | None = None,
        departure_s: float | None = None,
        fault_tolerance: float = 0.02,
        horizon_s: float = 2.0,
    ) -> None:
        spec = battery.spec
        self.battery = battery
        self.mode = mode
        self.v2g = v2g and spec.bidirectional
        self.target_soc = spec.target_soc if target_soc is None else target_soc
        dep = spec.departure_s if departure_s is None else departure_s
        self.departure = start + dep  # absolute session time (inf: no departure)
        self.fault: str | None = None
        self.refused: list[str] = []
        self.evse: EvseLimitsLike = EvseLimits()
        self.current_a = 0.0  # what the charger last said flows
        self.voltage_v = battery.terminal_voltage(0.0)
        self._t = start
        self._tol = fault_tolerance
        # Longest time one request's limits may stay in force (cycle + comm timeout + safe
        # ramp-down): the truck never offers more energy than fits its SoC window in that time.
        self.horizon_s = horizon_s
        lim = spec.limits
        self._max_ci, self._max_cp = lim.max_charge_current_a, lim.max_charge_power_w
        self._max_di, self._max_dp = lim.max_discharge_current_a, lim.max_discharge_power_w
        self._vmax, self._vmin = lim.max_voltage_v, lim.min_voltage_v
        self._rated_cp = 0.0  # best charge power the charger has offered (departure guard)

    def cpd_limits(self) -> PartyLimits:
        """What the truck declares in ChargeParameterDiscoveryReq (its battery's ratings)."""
        lim = self.battery.spec.limits
        return lim if self.v2g else lim.without_discharge()

    def accept_evse_limits(self, evse: EvseLimitsLike) -> None:
        """Take the charger's offered limits; anything above the battery's own is refused
        (recorded in :attr:`refused`) — the truck keeps asking only for its own limits."""
        ci, cp = evse.evse_max_charge_current_a, evse.evse_max_charge_power_w
        di, dp = evse.evse_max_discharge_current_a, evse.evse_max_discharge_power_w
        if ci > self._max_ci or cp > self._max_cp or di > self._max_di or dp > self._max_dp:
            checks = (
                ("charge current", ci, self._max_ci),
                ("charge power", cp, self._max_cp),
                ("discharge current", di, self._max_di),
                ("discharge power", dp, self._max_dp),
            )
            self.refused = [f"EVSE {n} {o:g} above battery {m:g}" for n, o, m in checks if o > m]
        elif self.refused:
            self.refused = []
        self.evse = evse
        offer = cp if cp < self._max_cp else self._max_cp
        if offer > self._rated_cp:
            self._rated_cp = offer

    def _integrate(self, now: float) -> None:
        dt = now - self._t
        if dt > 0.0:
            self.battery.apply(self.current_a * self.voltage_v, dt)
            self._t = now

    def departure_guard(self, now: float) -> bool:
        """True when the time left is needed to reach ``target_soc`` by departure (no V2G)."""
        if math.isinf(self.departure):
            return False
        need_wh = self.battery.energy_to_soc_wh(self.target_soc)
        if need_wh <= 0.0:
            return False
        p = self._rated_cp if self._rated_cp > 0.0 else self._max_cp
        if not p > 0.0 or math.isinf(p):
            return not p > 0.0
        # 20 % margin for the taper and ramps, plus one minute of slack
        return need_wh * 3600.0 / p * 1.2 + 60.0 >= self.departure - now

    def request(self, now: float) -> EvRequest:
        """Integrate the battery up to ``now`` and build this cycle's request."""
        self._integrate(now)
        b = self.battery
        v = b.terminal_voltage(self.current_a)
        if self.fault is not None:
            return EvRequest(
                v, 0.0, NAN, 0.0, 0.0, 0.0, self._vmax, self._vmin, 0.0, 0.0, 0.0, stop=True
            )
        ev = self.evse
        soc = b.soc
        # never ask beyond the battery (derated now) nor beyond the charger's offer
        ci = min(b.max_charge_current_a(), ev.evse_max_charge_current_a)
        cp = min(b.max_charge_power_w(), ev.evse_max_charge_power_w)
        cp = min(cp, b.charge_headroom_w(self.horizon_s))
        if soc >= self.target_soc:
            ci = cp = 0.0
        if self.v2g and not self.departure_guard(now):
            di = min(b.max_discharge_current_a(), ev.evse_max_discharge_current_a)
            dp = min(b.max_discharge_power_w(), ev.evse_max_discharge_power_w)
            dp = min(dp, b.discharge_headroom_w(self.horizon_s))
        else:
            di = dp = 0.0
        target_wh = b.energy_to_soc_wh(self.target_soc)
        min_v2x = b.energy_to_soc_wh(b.spec.v2g_min_soc) if di > 0.0 else 0.0
        if self.mode is Mode.SCHEDULED:
            if cp > 0.0 and ci > 0.0:
                target_i = min(ci, cp / v)
            elif dp > 0.0 and di > 0.0 and ev.evse_max_charge_power_w <= 0.0:
                # discharge only where the schedule allows no charge (else it would oscillate)
                target_i = -min(di, dp / v)
            else:
                target_i = 0.0
            target_v = min(self._vmax, ev.evse_max_voltage_v)
        else:
            target_i = target_v = NAN
        return EvRequest(
            v, target_i, target_v, cp, 0.0, ci, self._vmax, self._vmin, dp, 0.0, di,
            target_wh, target_wh, b.energy_to_soc_wh(b.spec.v2g_min_soc),
            target_wh, min_v2x, self.departure - now,
        )  # fmt: skip

    def observe(self, now: float, present_current_a: float, present_voltage_v: float) -> None:
        """Record what the charger says flows from ``now`` on; latch a fault if it exceeds the
        battery's limits (defence in depth: the truck then asks to stop)."""
        self._integrate(now)
        i = present_current_a
        tol = 1.0 + self._tol
        if i > self._max_ci * tol + 1.0 or -i > self._max_di * tol + 1.0:
            self.fault = f"EVSE current {i:g} A beyond battery limits"
        elif abs(i) * present_voltage_v > (self._max_cp if i > 0 else self._max_dp) * tol + 100.0:
            self.fault = f"EVSE power {i * present_voltage_v:g} W beyond battery limits"
        elif present_voltage_v > self._vmax * tol + 1.0:
            self.fault = f"EVSE voltage {present_voltage_v:g} V above battery maximum"
        self.current_a = i
        self.voltage_v = present_voltage_v
