"""The depot EMS end to end on loopback: CSMS + manager steer two trucks through OCPP 2.1."""

from __future__ import annotations

import asyncio

from mcscomm.backend import ChargingStation, StationConfig
from mcscomm.backend.loopback import LoopbackSession
from mcscomm.ems import Csms
from mcscomm.ems.depot import Depot, DepotConfig
from mcscomm.ems.manager import DepotLimits
from mcscomm.power.profiles import load_charger, load_truck


async def test_depot_discharges_into_the_peak_then_charges_within_the_grid() -> None:
    charger, truck = load_charger("mcs_1mw_bpt"), load_truck("mcs_7pack")
    csms = Csms(heartbeat_s=1)
    await csms.start()
    limits = DepotLimits(grid_import_w=1000e3, grid_export_w=400e3, efficiency=0.96)
    depot = Depot(csms, DepotConfig(limits, control_interval_s=1.0, time_scale=1.0))
    stations, tasks, sessions = [], [], []
    try:
        for k in range(2):
            st = ChargingStation(
                StationConfig(
                    csms.url(f"CS{k}"),
                    charger_limits=charger.limits,
                    meter_interval_s=0.1,
                    heartbeat_s=0.5,
                )
            )
            await st.start()
            assert await st.wait_online(5)
            sess = LoopbackSession(charger, truck, initial_soc=0.6, time_scale=20.0, cycle_s=0.02)
            stations.append(st)
            sessions.append(sess)
            tasks.append(asyncio.create_task(sess.run(st)))
        assert await csms.wait_for(lambda: len(depot.trucks()) == 2, 5)

        depot.config.start_tod_s = 18 * 3600.0  # the evening peak
        peak = await depot.step()
        assert peak.period == "peak"
        assert all(p < 0 for p in peak.setpoints.values())
        assert peak.total_discharge_w <= 400e3 / 0.96 + 1e-6
        await asyncio.sleep(1.0)
        for sess, sp in zip(sessions, peak.setpoints.values(), strict=True):
            recent = [s.power_w for s in sess.samples[-10:]]
            assert all(abs(p - sp) <= 0.1 * abs(sp) for p in recent)
        assert sum(-s.samples[-1].power_w for s in sessions) <= 400e3 / 0.96 + 1e-6

        depot.config.start_tod_s = 23 * 3600.0  # the night: charge with the import headroom
        night = await depot.step()
        assert night.period == "night"
        assert all(p > 0 for p in night.setpoints.values())
        assert night.total_charge_w <= 1000e3 * 0.96 + 1e-6
        await asyncio.sleep(1.0)
        for sess, sp in zip(sessions, night.setpoints.values(), strict=True):
            recent = [s.power_w for s in sess.samples[-10:]]
            assert all(abs(p - sp) <= 0.1 * abs(sp) for p in recent)
        for tx in csms.transactions.values():
            assert tx.meter["Energy.Active.Export.Register"] > 0  # V2G happened, metered
        line = depot.describe(night, 23 * 3600.0, depot.trucks())
        assert line.startswith("depot 23:00 night")
    finally:
        for sess in sessions:
            sess.stop()
        for t in tasks:
            await asyncio.wait_for(t, 5)
        for st in stations:
            await st.drain(3)
            await st.close()
        await csms.stop()
