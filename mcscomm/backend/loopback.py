"""A charger and a truck joined by the power layer only: a -20 session without the wire.

:class:`LoopbackSession` plays what an SECC session does for the OCPP station -- authorize,
negotiate the envelope, run the charge loop with the backend plan in force -- with the pure power
objects (:class:`SeccPower`, :class:`TruckPower`) and the -20 charge-loop field mapping
(``power.bpt``) between them, in real time (optionally sped up by ``time_scale``). Tests of the
backend and the ``mcscomm ems --demo`` trucks use it; the real SECC uses ``secc_link``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mcscomm.backend.port import SessionSnapshot
from mcscomm.backend.station import ChargingStation, EvseHandle
from mcscomm.power import bpt
from mcscomm.power.controller import Mode
from mcscomm.power.ems import Scenario
from mcscomm.power.ev import EvseLimits
from mcscomm.power.limits import BatterySpec, ChargerSpec
from mcscomm.session.power_adapter import SeccPower, TruckPower


@dataclass(frozen=True, slots=True)
class Sample:
    """One loop cycle: session time, power (> 0 charge), backend setpoint, limits in force."""

    t: float
    power_w: float
    setpoint_w: float
    max_charge_w: float
    max_discharge_w: float
    soc: float


def fin(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class LoopbackSession:
    """One truck on one EVSE of ``station`` (see the module docstring)."""

    def __init__(
        self,
        charger: ChargerSpec,
        truck: BatterySpec,
        *,
        service: str = "MCS_BPT",
        auth: str = "EIM",
        emaid: str | None = None,
        time_scale: float = 1.0,
        cycle_s: float = 0.05,
        initial_soc: float | None = None,
        target_soc: float | None = None,
        departure_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.bpt_service = service.endswith("_BPT")
        self.auth, self.emaid = auth, emaid
        self.time_scale = time_scale
        self.cycle_s = cycle_s
        self._clock = clock
        self._m0 = clock()
        self.secc = SeccPower(charger)
        self.truck = TruckPower(
            truck,
            scheduled=False,
            bidirectional=self.bpt_service,
            initial_soc=initial_soc,
            target_soc=target_soc,
            departure_s=departure_s,
        )
        self.samples: list[Sample] = []
        self.stopped = False
        self.renegotiations = 0
        self.plans: list[Scenario | None] = []
        self.handle: EvseHandle | None = None
        self.result: str | None = None

    def session_time(self) -> float:
        return (self._clock() - self._m0) * self.time_scale

    # -- SessionControl ------------------------------------------------------------------------
    def apply_plan(self, plan: Scenario | None, epoch_now: float) -> None:
        self.plans.append(plan)
        now = self.session_time()
        if plan is None:
            self.secc.ems = None
            if self.secc.controller is not None:
                self.secc.controller.ems = None
            return
        # plan step times are wall seconds after epoch_now; session time runs time_scale faster
        self.secc.play(replace(plan, time_scale=plan.time_scale * self.time_scale), now)

    def renegotiate(self) -> None:
        self.renegotiations += 1

    def stop(self) -> None:
        self.stopped = True

    # -- running -------------------------------------------------------------------------------
    def _snapshot(self, now: float, *, authorized: bool, loop: bool) -> SessionSnapshot:
        d = self.secc.last
        req = self.truck.last_request
        ctl = self.secc.controller
        return SessionSnapshot(
            t=now,
            service=self.service,
            control_mode="Dynamic",
            auth=self.auth,
            id_token=self.emaid,
            authorized=authorized,
            ev_limits=self.truck.cpd_limits() if ctl is not None else None,
            evse_limits=self.secc.evse_limits(now) if ctl is not None else None,
            soc=self.truck.soc_percent,
            target_soc=self.truck.target_soc_percent,
            voltage_v=0.0 if d is None else d.present_voltage_v,
            current_a=0.0 if d is None else d.present_current_a,
            power_w=0.0 if d is None else d.present_power_w,
            charged_wh=0.0 if ctl is None else ctl.meter.charged_wh,
            discharged_wh=0.0 if ctl is None else ctl.meter.discharged_wh,
            in_charge_loop=loop,
            target_energy_wh=None if req is None else fin(req.target_energy_wh),
            min_energy_wh=None if req is None else fin(req.min_energy_wh),
            max_energy_wh=None if req is None else fin(req.max_energy_wh),
            min_v2x_energy_wh=None if req is None else fin(req.min_v2x_energy_wh),
            max_v2x_energy_wh=None if req is None else fin(req.max_v2x_energy_wh),
            departure_s=None if req is None else fin(req.departure_s),
            setpoint_w=None if d is None else d.setpoint_w,
        )

    async def run(
        self,
        station: ChargingStation,
        *,
        duration_s: float | None = None,
        evse_id: int | None = None,
    ) -> str:
        """Plug in at ``station``, charge as the backend says, return why it ended."""
        handle = station.open_session(self, evse_id)
        self.handle = handle
        try:
            self.result = await self._run(handle, duration_s)
        finally:
            handle.close(self.result or "aborted", by_ev=self.result != "fault")
        return self.result

    async def _run(self, handle: EvseHandle, duration_s: float | None) -> str:
        now = self.session_time()
        handle.update(self._snapshot(now, authorized=False, loop=False))
        while True:  # authorization (EVSEProcessing=Ongoing until the CSMS answered)
            ok = handle.decide(self.auth, self.emaid, now)
            if ok is not None:
                break
            await asyncio.sleep(self.cycle_s)
            now = self.session_time()
        if not ok:
            return "not authorized"
        handle.update(self._snapshot(now, authorized=True, loop=False))
        self.secc.negotiate(
            self.truck.cpd_limits(),
            bidirectional=self.bpt_service,
            mcs=True,
            scheduled=False,
            now=now,
        )
        self.truck.accept_evse_limits(EvseLimits.from_party(self.secc.evse_limits(now)))
        handle.update(self._snapshot(now, authorized=True, loop=False))
        self.secc.start(now)
        t_end = None if duration_s is None else now + duration_s * self.time_scale
        while True:
            await asyncio.sleep(self.cycle_s)
            now = self.session_time()
            if self.stopped:
                return "stopped by the backend"
            if t_end is not None and now >= t_end:
                return "duration reached"
            req = self.truck.request(now)
            d = self.secc.step(now, req)
            fields = bpt.evse_loop_fields(d, bpt=self.secc.bpt, mode=Mode.DYNAMIC)
            self.truck.accept_evse_limits(bpt.evse_limits_from_loop_fields(fields))
            self.truck.observe(now, d.present_current_a, d.present_voltage_v)
            self.samples.append(
                Sample(
                    now,
                    d.present_power_w,
                    d.setpoint_w,
                    d.max_charge_power_w,
                    d.max_discharge_power_w,
                    self.truck.soc_percent,
                )
            )
            handle.update(self._snapshot(now, authorized=True, loop=True))
            if self.truck.fault is not None:
                return "fault"
            if not self.bpt_service and self.truck.at_target():
                return "truck full"
