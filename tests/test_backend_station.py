"""The OCPP station end to end on loopback: a real CSMS (mcscomm.ems.Csms) over WebSocket, the
station, and a truck+charger pair in the power layer (LoopbackSession, time sped up 20x)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mcscomm.backend import ChargingStation, OfflinePolicy, StationConfig
from mcscomm.backend.loopback import LoopbackSession
from mcscomm.ems import Csms, StationCallError
from mcscomm.power.limits import BatterySpec, ChargerSpec
from mcscomm.power.profiles import load_charger, load_truck

SCALE = 20.0  # session seconds per wall second


@pytest.fixture
def charger() -> ChargerSpec:
    return load_charger("mcs_1mw_bpt")


@pytest.fixture
def truck() -> BatterySpec:
    return load_truck("mcs_7pack")


@pytest.fixture
async def csms() -> AsyncIterator[Csms]:
    c = Csms(heartbeat_s=1, response_timeout_s=3.0)
    await c.start()
    yield c
    await c.stop()


def make_station(csms: Csms, charger: ChargerSpec, sid: str = "CS1", **kw: Any) -> ChargingStation:
    cfg = StationConfig(
        csms.url(sid),
        charger_limits=charger.limits,
        heartbeat_s=0.2,
        meter_interval_s=0.1,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        response_timeout_s=3.0,
        **kw,
    )
    return ChargingStation(cfg)


def dynamic(
    pid: int,
    setpoint: float,
    *,
    limit: float = 750e3,
    dis: float = -750e3,
    purpose: str = "TxProfile",
) -> dict[str, Any]:
    return {
        "id": pid,
        "stack_level": 0,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Dynamic",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {
                        "start_period": 0,
                        "limit": limit,
                        "discharge_limit": dis,
                        "setpoint": setpoint,
                        "operation_mode": "CentralSetpoint",
                    }
                ],
            }
        ],
    }


class Running:
    """A station with one loopback truck plugged in."""

    def __init__(self, csms: Csms, station: ChargingStation, session: LoopbackSession) -> None:
        self.csms, self.station, self.session = csms, station, session
        self.task: asyncio.Task[str] | None = None

    async def start(self) -> str:
        await self.station.start()
        assert await self.station.wait_online(5)
        self.task = asyncio.create_task(self.session.run(self.station))
        rec = self.csms.stations[self.station.id]
        assert await self.csms.wait_for(lambda: 1 in rec.needs and 1 in rec.active_tx, 5)
        return rec.active_tx[1]

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.session.stop()
            await asyncio.wait_for(self.task, 5)
        await self.station.drain(3)
        await self.station.close()


@pytest.fixture
async def running(csms: Csms, charger: ChargerSpec, truck: BatterySpec) -> AsyncIterator[Running]:
    st = make_station(csms, charger)
    r = Running(csms, st, LoopbackSession(charger, truck, time_scale=SCALE, cycle_s=0.02))
    yield r
    await r.close()


async def settle(session: LoopbackSession, setpoint: float, wall_s: float = 0.8) -> list[float]:
    """Wait for the change to settle, then return the powers of the next 0.3 s."""
    await asyncio.sleep(wall_s)
    n = len(session.samples)
    await asyncio.sleep(0.3)
    return [s.power_w for s in session.samples[n:]]


async def test_boot_status_and_heartbeat(csms: Csms, charger: ChargerSpec) -> None:
    st = make_station(csms, charger)
    await st.start()
    try:
        assert await st.wait_online(5)
        rec = csms.stations["CS1"]
        assert await csms.wait_for(lambda: rec.status.get(1) == "Available", 3)
        assert rec.boots == 1 and rec.protocol == "ocpp2.1"
        await asyncio.sleep(0.5)
        assert rec.heartbeats >= 1
    finally:
        await st.close()


async def test_charging_needs_authorize_and_transaction_start(running: Running) -> None:
    tx_id = await running.start()
    rec = running.csms.stations["CS1"]
    needs = rec.needs[1]
    assert needs["requested_energy_transfer"] == "DC_BPT"
    assert needs["control_mode"] == "DynamicControl"
    v2x = needs["v2x_charging_parameters"]
    assert v2x["max_discharge_power"] == 750e3 and v2x["max_charge_power"] == 750e3
    assert rec.authorizations == ["MCSCOMM-EIM"]  # EIM: Authorize went to the CSMS
    assert rec.status[1] == "Occupied"
    tx = running.csms.transactions[tx_id]
    assert tx.event_types[0] == "Started" and tx.triggers[0] == "CablePluggedIn"
    assert await running.csms.wait_for(lambda: "Authorized" in tx.triggers, 3)


async def test_setpoints_are_followed_in_both_directions(running: Running) -> None:
    tx_id = await running.start()
    csms, sess = running.csms, running.session
    assert await csms.set_charging_profile("CS1", 1, dynamic(7, 300e3)) == ("Accepted", None)
    charge = await settle(sess, 300e3)
    assert charge and all(abs(p - 300e3) <= 30e3 for p in charge)
    assert await csms.update_dynamic_schedule("CS1", 7, {"setpoint": -250e3}) == ("Accepted", None)
    discharge = await settle(sess, -250e3)
    assert discharge and all(abs(p + 250e3) <= 25e3 for p in discharge)
    # never outside the envelope, at any cycle, in either direction
    for s in sess.samples:
        assert s.power_w <= s.max_charge_w * (1 + 1e-9) + 1e-6
        assert -s.power_w <= s.max_discharge_w * (1 + 1e-9) + 1e-6
        assert -750e3 - 1e-6 <= s.power_w <= 750e3 + 1e-6  # the truck's ratings
    # the CSMS sees it in the meter values: import, then export
    tx = csms.transactions[tx_id]
    assert await csms.wait_for(lambda: tx.meter.get("Power.Active.Export", 0) > 200e3, 3)
    assert tx.meter["Energy.Active.Export.Register"] > 0
    assert tx.operation_mode == "CentralSetpoint"


async def test_a_setpoint_beyond_a_station_max_is_capped_not_exceeded(running: Running) -> None:
    await running.start()
    csms, sess = running.csms, running.session
    station_max = {
        "id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "ChargingStationMaxProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {"start_period": 0, "limit": 200e3, "discharge_limit": -200e3}
                ],
            }
        ],
    }
    assert await csms.set_charging_profile("CS1", 0, station_max) == ("Accepted", None)
    assert (await csms.set_charging_profile("CS1", 1, dynamic(2, 500e3)))[0] == "Accepted"
    powers = await settle(sess, 200e3)
    assert powers and all(180e3 <= p <= 200e3 + 1e-6 for p in powers)
    comp = await csms.get_composite_schedule("CS1", 1, 3600)
    assert comp is not None
    per = comp["charging_schedule_period"][0]
    assert per["limit"] == 200e3 and per["setpoint"] == 200e3
    assert await csms.clear_charging_profile("CS1", 2) == "Accepted"
    assert await csms.clear_charging_profile("CS1", 99) == "Unknown"


async def test_stop_by_the_backend(running: Running) -> None:
    tx_id = await running.start()
    csms = running.csms
    assert await csms.request_stop("CS1", "no-such-tx") == "Rejected"
    assert await csms.request_stop("CS1", tx_id) == "Accepted"
    assert running.task is not None
    assert await asyncio.wait_for(running.task, 5) == "stopped by the backend"
    tx = csms.transactions[tx_id]
    assert await csms.wait_for(lambda: tx.ended, 3)
    assert tx.stopped_reason == "Remote" and tx.triggers[-1] == "RemoteStop"
    assert await csms.wait_for(lambda: csms.stations["CS1"].status[1] == "Available", 3)


async def test_invalid_and_unsatisfiable_profiles(running: Running) -> None:
    await running.start()
    csms = running.csms
    # malformed beyond the schema: periods out of order -> OCPP CALLERROR
    bad = dynamic(3, 100e3)
    bad["charging_schedule"][0]["charging_schedule_period"].append(
        {"start_period": 0, "limit": 1.0}
    )
    with pytest.raises(StationCallError) as exc:
        await csms.set_charging_profile("CS1", 1, bad)
    assert exc.value.code == "PropertyConstraintViolation"
    # schema-invalid (dischargeLimit > 0): the station's schema check answers
    worse = dynamic(4, 100e3, dis=5.0)
    with pytest.raises(StationCallError) as exc:
        await csms.set_charging_profile("CS1", 1, worse, validate=False)
    assert exc.value.code == "FormatViolation"  # the ocpp library's schema check
    # well-formed but unsatisfiable: Rejected with a reason, nothing installed
    status = await csms.set_charging_profile("CS1", 1, dynamic(5, 2e6, limit=3e6))
    assert status == ("Rejected", "SetpointOutOfRange")
    status = await csms.set_charging_profile(
        "CS1",
        1,
        dynamic(6, 100e3, limit=200e3, dis=-5e3, purpose="TxDefaultProfile")
        | {
            "charging_schedule": [
                {
                    "id": 1,
                    "charging_rate_unit": "A",
                    "charging_schedule_period": [{"start_period": 0, "limit": 100.0}],
                }
            ]
        },
    )
    assert status == ("Rejected", "UnsupportedRateUnit")
    assert await csms.update_dynamic_schedule("CS1", 42, {"setpoint": 1.0}) == (
        "Rejected",
        "UnknownProfile",
    )
    assert len(running.station.profiles) == 0


async def test_no_v2x_on_a_unidirectional_session(
    csms: Csms, charger: ChargerSpec, truck: BatterySpec
) -> None:
    st = make_station(csms, charger)
    r = Running(
        csms, st, LoopbackSession(charger, truck, service="MCS", time_scale=SCALE, cycle_s=0.02)
    )
    try:
        await r.start()
        assert csms.stations["CS1"].needs[1]["requested_energy_transfer"] == "DC"
        status = await csms.set_charging_profile("CS1", 1, dynamic(1, -100e3))
        assert status == ("Rejected", "V2XNotSupported")
        assert (await csms.set_charging_profile("CS1", 1, dynamic(2, 100e3)))[0] == "Accepted"
    finally:
        await r.close()


async def test_csms_outage_loses_no_transaction_event(running: Running) -> None:
    tx_id = await running.start()
    csms, sess, st = running.csms, running.session, running.station
    assert (await csms.set_charging_profile("CS1", 1, dynamic(7, 200e3)))[0] == "Accepted"
    await asyncio.sleep(0.5)
    assert csms.address is not None
    host, port = csms.address
    await csms.stop()  # the CSMS goes away
    await asyncio.sleep(0.8)
    assert not st.online
    queued = len(st.queue)
    assert queued > 0  # meter values kept coming, queued
    n = len(sess.samples)
    await asyncio.sleep(0.3)
    held = [s.power_w for s in sess.samples[n:]]
    assert held and all(abs(p - 200e3) <= 20e3 for p in held)  # 'hold': last limits kept
    await csms.start(host, port)  # back
    assert await st.wait_online(5)
    sess.stop()
    assert running.task is not None
    await asyncio.wait_for(running.task, 5)
    assert await st.drain(5)
    tx = csms.transactions[tx_id]
    assert await csms.wait_for(lambda: tx.ended, 3)
    assert tx.seq_nos == list(range(len(tx.seq_nos)))  # every event, in order, no gap
    assert tx.event_types[0] == "Started" and tx.event_types[-1] == "Ended"
    assert tx.event_types.count("Started") == 1 and tx.event_types.count("Ended") == 1
    assert any(tx.offline_flags) and not tx.offline_flags[0]
    assert st.connects == 2


async def test_offline_fallback_policy_stops_v2g_until_the_link_returns(
    csms: Csms, charger: ChargerSpec, truck: BatterySpec
) -> None:
    st = make_station(csms, charger, offline_policy=OfflinePolicy.FALLBACK, fallback_limit_w=100e3)
    r = Running(csms, st, LoopbackSession(charger, truck, time_scale=SCALE, cycle_s=0.02))
    try:
        await r.start()
        assert (await csms.set_charging_profile("CS1", 1, dynamic(7, -300e3)))[0] == "Accepted"
        assert all(abs(p + 300e3) <= 30e3 for p in await settle(r.session, -300e3))
        assert csms.address is not None
        host, port = csms.address
        await csms.stop()
        fallback = await settle(r.session, 100e3)
        assert fallback and all(0.0 <= p <= 100e3 + 1e-6 for p in fallback)  # no V2G, capped
        await csms.start(host, port)
        assert await st.wait_online(5)
        restored = await settle(r.session, -300e3)
        assert all(abs(p + 300e3) <= 30e3 for p in restored)
    finally:
        await r.close()


async def test_remote_start_authorizes_the_next_truck(
    csms: Csms, charger: ChargerSpec, truck: BatterySpec
) -> None:
    st = make_station(csms, charger)
    await st.start()
    try:
        assert await st.wait_online(5)
        status, _ = await csms.request_start(
            "CS1", "DRIVER-42", 17, evse_id=1, profile=dynamic(9, 150e3)
        )
        assert status == "Accepted"
        sess = LoopbackSession(charger, truck, time_scale=SCALE, cycle_s=0.02)
        task = asyncio.create_task(sess.run(st))
        rec = csms.stations["CS1"]
        assert await csms.wait_for(lambda: 1 in rec.active_tx, 5)
        tx = csms.transactions[rec.active_tx[1]]
        assert tx.triggers[0] == "RemoteStart" and tx.remote_start_id == 17
        assert tx.id_token == "DRIVER-42" and rec.authorizations == []  # no Authorize needed
        powers = await settle(sess, 150e3)
        assert powers and all(abs(p - 150e3) <= 15e3 for p in powers)  # its TxProfile
        sess.stop()
        await asyncio.wait_for(task, 5)
    finally:
        await st.drain(3)
        await st.close()


async def test_speaks_ocpp_201_when_that_is_all_there_is(
    csms: Csms, charger: ChargerSpec, truck: BatterySpec
) -> None:
    st = make_station(csms, charger, protocols=("ocpp2.0.1",))
    r = Running(csms, st, LoopbackSession(charger, truck, time_scale=SCALE, cycle_s=0.02))
    try:
        await r.start()
        rec = csms.stations["CS1"]
        assert rec.protocol == "ocpp2.0.1"
        assert "v2x_charging_parameters" not in rec.needs[1]
    finally:
        await r.close()


async def test_hold_policy_falls_back_after_the_hold_time(
    csms: Csms, charger: ChargerSpec, truck: BatterySpec
) -> None:
    st = make_station(csms, charger, offline_hold_s=0.3, fallback_limit_w=50e3)
    r = Running(csms, st, LoopbackSession(charger, truck, time_scale=SCALE, cycle_s=0.02))
    try:
        await r.start()
        assert (await csms.set_charging_profile("CS1", 1, dynamic(7, -300e3)))[0] == "Accepted"
        await settle(r.session, -300e3, 0.5)
        await csms.stop()
        held = await settle(r.session, -300e3, 0.1)  # within the hold time: last limits kept
        assert held and sum(1 for p in held if abs(p + 300e3) <= 30e3) >= len(held) // 2
        later = await settle(r.session, 50e3, 0.6)  # hold time over: fallback
        assert later and all(0.0 <= p <= 50e3 + 1e-6 for p in later)
    finally:
        await r.close()


class FakeControl:
    """A session that only reports (for payload-level tests)."""

    def __init__(self) -> None:
        self.plans: list[object] = []
        self.stops = 0

    def apply_plan(self, plan: object, epoch_now: float) -> None:
        self.plans.append(plan)

    def renegotiate(self) -> None:
        pass

    def stop(self) -> None:
        self.stops += 1


async def test_ev_power_profile_is_sent_as_notify_ev_charging_schedule(
    csms: Csms, charger: ChargerSpec, truck: BatterySpec
) -> None:
    from mcscomm.backend.port import SessionSnapshot

    st = make_station(csms, charger)
    await st.start()
    try:
        assert await st.wait_online(5)
        ctl = FakeControl()
        h = st.open_session(ctl)
        prof = ((600.0, 300e3), (900.0, -100e3))
        h.update(
            SessionSnapshot(
                t=0.0,
                service="MCS_BPT",
                control_mode="Scheduled",
                ev_limits=truck.limits,
                authorized=True,
                ev_power_profile=prof,
            )
        )
        rec = csms.stations["CS1"]
        assert await csms.wait_for(lambda: 1 in rec.ev_schedules, 3)
        periods = rec.ev_schedules[1]["charging_schedule_period"]
        assert [p["start_period"] for p in periods] == [0, 600]
        assert periods[0]["limit"] == 300e3 and periods[1]["setpoint"] == -100e3
        assert rec.needs[1]["control_mode"] == "ScheduledControl"
        h.close("done")
        assert await csms.wait_for(lambda: rec.status.get(1) == "Available", 3)
    finally:
        await st.drain(3)
        await st.close()
