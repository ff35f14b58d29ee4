"""The depot EMS at work: the CSMS's records in, Dynamic charging profiles out.

Every ``control_interval_s`` (real seconds) :class:`Depot` reads the trucks with an open
transaction and charging needs from the :class:`~mcscomm.ems.csms.Csms`, asks the
:class:`~mcscomm.ems.manager.DepotManager` for setpoints at the current *depot time of day*
(``start`` + elapsed x ``time_scale``, so an evening plays in minutes), and steers each
transaction with one OCPP 2.1 TxProfile of kind Dynamic (operationMode CentralSetpoint, limit and
dischargeLimit = the truck's maxima) installed once and then moved with UpdateDynamicSchedule.

What the EMS cannot learn over OCPP is estimated and said so: the battery capacity from the
first NotifyEVChargingNeeds (energy amount / (full SoC - SoC)), else ``default_capacity_wh``; the
V2G floor from the V2X minimum energy request, else ``v2g_min_soc``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcscomm.backend.profiles import key, parse_time
from mcscomm.ems.csms import Csms, StationCallError, StationOffline
from mcscomm.ems.manager import DAY_S, Decision, DepotLimits, DepotManager, Truck

_log = logging.getLogger("mcscomm.ems.depot")


@dataclass(slots=True)
class DepotConfig:
    """The depot: grid connection, day windows, time scale and truck defaults."""

    limits: DepotLimits
    start_tod_s: float = 16 * 3600.0
    time_scale: float = 1.0
    control_interval_s: float = 5.0
    departure_tod_s: float | None = 6 * 3600.0
    target_soc: float = 0.8
    v2g_min_soc: float = 0.3
    default_capacity_wh: float = 600_000.0
    max_evse_w: float = math.inf
    update_threshold_w: float = 1000.0


@dataclass(slots=True)
class _Steer:
    profile_id: int
    setpoint_w: float
    rejected: str | None = None


@dataclass(slots=True)
class Depot:
    """CSMS + manager loop (see the module docstring)."""

    csms: Csms
    config: DepotConfig
    clock: Callable[[], float] = time.time
    manager: DepotManager = field(init=False)
    history: list[tuple[float, float, Decision]] = field(default_factory=list)
    _t0: float = field(init=False)
    _steer: dict[str, _Steer] = field(default_factory=dict)
    _capacity: dict[str, float] = field(default_factory=dict)
    _next_id: int = 1000
    _print: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        # the manager thinks in depot seconds: one control interval is interval x time_scale
        self.manager = DepotManager(
            self.config.limits,
            control_interval_s=self.config.control_interval_s * self.config.time_scale,
        )
        self._t0 = self.clock()

    def depot_tod(self) -> float:
        """Depot time of day (s since midnight) now."""
        c = self.config
        return (c.start_tod_s + (self.clock() - self._t0) * c.time_scale) % DAY_S

    # -- reading the CSMS --------------------------------------------------------------------------
    def trucks(self) -> list[tuple[str, str, int, Truck]]:
        """(transaction id, station id, evse id, truck) for every steerable transaction."""
        out = []
        c = self.config
        now = self.clock()
        for sid, rec in self.csms.stations.items():
            if not rec.connected:
                continue
            for evse_id, txid in list(rec.active_tx.items()):
                needs = rec.needs.get(evse_id)
                tx = self.csms.transactions.get(txid)
                if needs is None or tx is None or tx.ended:
                    continue
                dc = key(needs, "dcChargingParameters") or {}
                v2x = key(needs, "v2xChargingParameters") or {}
                bpt = key(needs, "requestedEnergyTransfer") == "DC_BPT"
                soc0 = key(dc, "stateOfCharge")
                soc_pct = tx.soc if tx.soc is not None else soc0
                if soc_pct is None:
                    continue
                soc = float(soc_pct) / 100.0
                full = key(dc, "fullSoC") or key(v2x, "targetSoC")
                target = float(full) / 100.0 if full is not None else c.target_soc
                cap = self._capacity.get(txid)
                if cap is None:
                    energy = key(dc, "energyAmount")
                    cap = c.default_capacity_wh
                    if energy and soc0 is not None and full is not None and full > soc0:
                        cap = float(energy) / ((float(full) - float(soc0)) / 100.0)
                    self._capacity[txid] = cap
                floor = c.v2g_min_soc
                min_v2x = key(v2x, "evMinV2XEnergyRequest")
                if min_v2x is not None and soc0 is not None and cap > 0:
                    floor = max(0.0, float(soc0) / 100.0 + float(min_v2x) / cap)
                mc = float(key(v2x, "maxChargePower") or key(dc, "evMaxPower") or 0.0)
                md = float(key(v2x, "maxDischargePower") or 0.0) if bpt else 0.0
                # time left in depot seconds; a truck's own departure time is wall time, which
                # only means depot time when the depot clock is not scaled
                dep = key(needs, "departureTime")
                if dep is not None and c.time_scale == 1.0:
                    left = parse_time(dep, "departureTime") - now
                elif c.departure_tod_s is not None:
                    left = (c.departure_tod_s - self.depot_tod()) % DAY_S
                else:
                    left = math.inf
                truck = Truck(
                    key=f"{sid}/{evse_id}",
                    soc=soc,
                    capacity_wh=cap,
                    max_charge_w=min(mc, c.max_evse_w),
                    max_discharge_w=min(md, c.max_evse_w),
                    target_soc=target,
                    v2g_min_soc=floor,
                    time_left_s=left,
                    bidirectional=bpt,
                )
                out.append((txid, sid, evse_id, truck))
        return out

    # -- steering ----------------------------------------------------------------------------------
    async def step(self) -> Decision:
        """One control decision, sent to the stations."""
        fleet = self.trucks()
        tod = self.depot_tod()
        decision = self.manager.decide([t for *_, t in fleet], tod)
        self.history.append((self.clock(), tod, decision))
        for txid, sid, evse_id, truck in fleet:
            sp = decision.setpoints.get(truck.key, 0.0)
            try:
                await self._send(txid, sid, evse_id, truck, sp)
            except (StationOffline, StationCallError, TimeoutError) as exc:
                _log.warning("%s: cannot steer transaction %s: %s", truck.key, txid, exc)
        if self._print is not None:
            self._print(self.describe(decision, tod, fleet))
        return decision

    async def _send(self, txid: str, sid: str, evse_id: int, t: Truck, sp: float) -> None:
        st = self._steer.get(txid)
        if st is None:
            self._next_id += 1
            pid = self._next_id
            period: dict[str, Any] = {
                "start_period": 0,
                "limit": t.max_charge_w,
                "setpoint": sp,
                "operation_mode": "CentralSetpoint",
            }
            if t.bidirectional and t.max_discharge_w > 0:
                period["discharge_limit"] = -t.max_discharge_w
            profile = {
                "id": pid,
                "stack_level": 0,
                "charging_profile_purpose": "TxProfile",
                "charging_profile_kind": "Dynamic",
                "transaction_id": txid,
                "charging_schedule": [
                    {"id": 1, "charging_rate_unit": "W", "charging_schedule_period": [period]}
                ],
            }
            status, reason = await self.csms.set_charging_profile(sid, evse_id, profile)
            self._steer[txid] = _Steer(pid, sp, None if status == "Accepted" else reason)
            _log.info("%s: TxProfile %d %s%s", t.key, pid, status, f" ({reason})" if reason else "")
            return
        if st.rejected is None and abs(sp - st.setpoint_w) < self.config.update_threshold_w:
            return
        status, reason = await self.csms.update_dynamic_schedule(
            sid, st.profile_id, {"setpoint": sp}
        )
        if status == "Accepted":
            st.setpoint_w, st.rejected = sp, None
        else:
            st.rejected = reason
            _log.warning("%s: setpoint %.0f kW rejected (%s)", t.key, sp / 1000, reason)

    def describe(self, d: Decision, tod: float, fleet: list[tuple[str, str, int, Truck]]) -> str:
        hh, mm = int(tod // 3600), int(tod % 3600 // 60)
        parts = [f"depot {hh:02d}:{mm:02d} {d.period:5s}"]
        for _tx, _sid, _e, t in fleet:
            sp = d.setpoints.get(t.key, 0.0)
            parts.append(f"{t.key} SoC {t.soc * 100:4.1f}% -> {sp / 1000:+7.1f} kW")
        parts.append(f"grid +{d.total_charge_w / 1000:.0f}/-{d.total_discharge_w / 1000:.0f} kW DC")
        parts.extend(d.notes)
        return " | ".join(parts)

    async def run(
        self, duration_s: float | None = None, *, echo: Callable[[str], None] | None = None
    ) -> None:
        """Control until cancelled or ``duration_s`` real seconds passed."""
        self._print = echo
        end = None if duration_s is None else self.clock() + duration_s
        while end is None or self.clock() < end:
            try:
                await self.step()
            except Exception:  # a bug in one decision must not end the depot's control
                _log.exception("depot control step failed")
            await asyncio.sleep(self.config.control_interval_s)
