#!/usr/bin/env python3
"""OCPP backend benchmark: CSMS -> station steering latency and event throughput, loopback only.

Measured in the same run:

* ``backend_echo_rtt_ms`` -- baseline: a bare ``websockets`` echo of an OCPP-sized JSON frame;
* ``backend_update_rtt_ms`` -- UpdateDynamicSchedule CALL -> CALLRESULT between our CSMS and our
  station with a running session: both schema validations, the profile update, the composite
  schedule and the new backend plan installed in the power layer (the station answers only after
  the plan is in force, so this is the full "setpoint reaches the SECC" latency);
* ``backend_update_ratio`` -- update / echo;
* ``backend_tx_events_per_s`` -- TransactionEvents queued during an outage, delivered per second
  once the link is back (one CALL at a time: order is the contract);
* ``backend_composite_per_s`` -- 24 h composite schedules per second (3 stacked profiles).

Medians over repetitions.  ``python tools/bench_backend.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any


async def _echo_rtt(n: int) -> float:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for msg in ws:
            await ws.send(msg)

    frame = json.dumps(
        [
            2,
            "0" * 36,
            "UpdateDynamicSchedule",
            {"chargingProfileId": 7, "scheduleUpdate": {"setpoint": -250000.0}},
        ]
    )
    server = await serve(echo, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    times = []
    async with connect(f"ws://127.0.0.1:{port}") as ws:
        for _ in range(n):
            t = time.perf_counter()
            await ws.send(frame)
            await ws.recv()
            times.append(time.perf_counter() - t)
    server.close()
    await server.wait_closed()
    return statistics.median(times) * 1000


async def _ocpp(n: int, events: int) -> tuple[float, float]:
    import logging

    from mcscomm.backend import ChargingStation, StationConfig
    from mcscomm.backend.loopback import LoopbackSession
    from mcscomm.ems import Csms
    from mcscomm.power.profiles import load_charger, load_truck

    logging.getLogger("mcscomm").setLevel(logging.ERROR)
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    logging.getLogger("websockets").setLevel(logging.ERROR)
    charger, truck = load_charger("mcs_1mw_bpt"), load_truck("mcs_7pack")
    csms = Csms(heartbeat_s=60)
    host, port = await csms.start()
    st = ChargingStation(
        StationConfig(
            csms.url("B1"),
            charger_limits=charger.limits,
            meter_interval_s=3600,
            reconnect_min_s=0.01,
            reconnect_max_s=0.05,
        )
    )
    await st.start()
    await st.wait_online(5)
    sess = LoopbackSession(charger, truck, cycle_s=0.05)
    task = asyncio.create_task(sess.run(st))
    rec = csms.stations["B1"]
    await csms.wait_for(lambda: 1 in rec.active_tx, 5)
    prof = {
        "id": 7,
        "stack_level": 0,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Dynamic",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {
                        "start_period": 0,
                        "setpoint": 100e3,
                        "limit": 750e3,
                        "discharge_limit": -750e3,
                        "operation_mode": "CentralSetpoint",
                    }
                ],
            }
        ],
    }
    await csms.set_charging_profile("B1", 1, prof)
    times = []
    for k in range(n):
        t = time.perf_counter()
        await csms.update_dynamic_schedule("B1", 7, {"setpoint": (-1) ** k * 200e3})
        times.append(time.perf_counter() - t)
    # outage: queue `events` meter samples, then time their delivery
    await csms.stop()
    while st.online:  # noqa: ASYNC110 - polling a flag of the station under test
        await asyncio.sleep(0.01)
    evse = st.evses[0]
    for _ in range(events):
        st._tx_event(evse, "Updated", "MeterValuePeriodic", time.time(), meter="Sample.Periodic")
    await csms.start(host, port)
    await st.wait_online(5)
    t = time.perf_counter()
    await st.drain(60)
    rate = events / (time.perf_counter() - t)
    sess.stop()
    await asyncio.wait_for(task, 5)
    await st.drain(5)
    await st.close()
    await csms.stop()
    return statistics.median(times) * 1000, rate


def _composite(n: int) -> float:
    from mcscomm.backend.profiles import ProfileStore, format_time, parse_profile

    t0 = 1_800_000_000.0

    def raw(pid: int, purpose: str, periods: int) -> dict[str, Any]:
        return {
            "id": pid,
            "stack_level": 0,
            "charging_profile_purpose": purpose,
            "charging_profile_kind": "Absolute",
            "charging_schedule": [
                {
                    "id": 1,
                    "charging_rate_unit": "W",
                    "start_schedule": format_time(t0),
                    "charging_schedule_period": [
                        {
                            "start_period": 900 * k,
                            "limit": 100e3 + k,
                            "setpoint": 50e3,
                            "operation_mode": "CentralSetpoint",
                        }
                        for k in range(periods)
                    ],
                }
            ],
        }

    store = ProfileStore()
    store.install(parse_profile(raw(1, "ChargingStationMaxProfile", 24), evse_id=0, received_at=t0))
    store.install(parse_profile(raw(2, "TxDefaultProfile", 48), evse_id=0, received_at=t0))
    store.install(parse_profile(raw(3, "TxProfile", 96), evse_id=1, received_at=t0))
    t = time.perf_counter()
    for _ in range(n):
        store.segments(t0, 86_400, 1, "tx", t0)
    return n / (time.perf_counter() - t)


def run(quick: bool) -> dict[str, object]:
    n = 100 if quick else 1000
    echo = asyncio.run(_echo_rtt(n))
    update, rate = asyncio.run(_ocpp(n, 300 if quick else 3000))
    return {
        "backend_echo_rtt_ms": round(echo, 3),
        "backend_update_rtt_ms": round(update, 3),
        "backend_update_ratio": round(update / echo, 1),
        "backend_tx_events_per_s": round(rate),
        "backend_composite_per_s": round(_composite(20 if quick else 200), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
