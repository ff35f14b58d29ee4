"""SECC controller, truck controller, schedules and the BPT field mapping."""

from __future__ import annotations

import math

import pytest

from mcscomm.power import (
    EvRequest,
    EvseLimits,
    Mode,
    OverVoltage,
    ProfileVerdict,
    SafeStateCause,
    ScheduleError,
    SeccController,
    SeccDecision,
    SignConvention,
    bpt,
    build_parties,
    build_schedules,
    load_charger,
    load_scenario,
    load_truck,
    negotiate,
    simulate,
    validate_ev_power_profile,
)
from mcscomm.power.ems import Ems, EmsStep, Scenario
from mcscomm.power.limits import LimitsError, PartyLimits
from mcscomm.power.schedule import PowerSchedule, ScheduleTuple
from mcscomm.power.sim import pair

INF = math.inf


def controller(mode: Mode = Mode.DYNAMIC, scenario: Scenario | None = None) -> SeccController:
    ch = load_charger("mcs_1mw_bpt")
    parties = build_parties(ch, load_truck("mcs_7pack").limits)
    ctl = SeccController(parties, ch, mode=mode, ems=Ems(scenario) if scenario else None)
    assert ctl.start_power_delivery(0.0)
    return ctl


def run(
    ctl: SeccController, req: EvRequest, until: float, dt: float = 0.25, t0: float = 0.0
) -> list[SeccDecision]:
    out, t = [], t0
    while t < t0 + until:
        t += dt
        out.append(ctl.step(t, req))
    return out


# -- SECC controller ------------------------------------------------------------------------


def test_dynamic_follows_setpoint_and_ramps() -> None:
    ctl = controller(scenario=Scenario("s", (EmsStep(0.0, 300_000.0),)))
    ds = run(ctl, EvRequest(750.0), 2.0)
    # ramp: 2 000 A/s and 1.5 MW/s at 750 V = 2 000 A/s -> 500 A per 0.25 s step
    assert ds[0].present_current_a == pytest.approx(400.0)  # 300 kW / 750 V reached in one step
    assert ds[-1].present_power_w == pytest.approx(300_000.0)
    assert not (ds[-1].power_limit_achieved or ds[-1].current_limit_achieved)
    assert ds[-1].binding == "request"


def test_scheduled_target_current_is_clamped_and_flags_exact() -> None:
    ctl = controller(Mode.SCHEDULED)
    ds = run(ctl, EvRequest(750.0, target_current_a=5000.0), 3.0)
    d = ds[-1]
    # the truck's 1 000 A binds: that is not the EVSE's limit -> no current flag
    assert d.present_current_a == pytest.approx(1000.0)
    assert d.binding == "EV current limit" and not d.current_limit_achieved
    # now a truck that declares more than the charger: the charger's 1 500 A binds
    ch = load_charger("mcs_1mw_bpt")
    big = PartyLimits("big", max_voltage_v=1250.0)
    ctl = SeccController(build_parties(ch, big), ch, mode=Mode.SCHEDULED)
    ctl.start_power_delivery(0.0)
    d = run(ctl, EvRequest(600.0, target_current_a=5000.0), 3.0)[-1]
    assert d.present_current_a == 1500.0 and d.current_limit_achieved
    assert not d.power_limit_achieved  # 900 kW < 1 MW
    d = run(ctl, EvRequest(800.0, target_current_a=5000.0), 1.0)[-1]
    assert d.power_limit_achieved and d.present_power_w == pytest.approx(1e6)
    assert d.present_current_a == pytest.approx(1250.0) and not d.current_limit_achieved


def test_voltage_limit_flag_and_cut() -> None:
    ctl = controller(Mode.SCHEDULED)
    run(ctl, EvRequest(750.0, target_current_a=500.0), 1.0)
    d = ctl.step(1.5, EvRequest(871.0, target_current_a=500.0))  # above the truck's 870 V
    assert d.present_current_a == 0.0 and d.binding == "voltage limit"
    assert not d.voltage_limit_achieved  # the EVSE's own limit (1 250 V) is far away
    assert d.over_voltage is OverVoltage.TOLERATED


def test_discharge_and_backend_export_cap() -> None:
    sc = Scenario("s", (EmsStep(0.0, -900_000.0, grid_export_w=240_000.0),))
    ds = run(controller(scenario=sc), EvRequest(740.0), 3.0)
    d = ds[-1]
    assert d.discharging and d.present_power_w == pytest.approx(-250_000.0)  # 240 kW / 0.96
    assert d.power_limit_achieved and d.binding == "backend grid export cap"


def test_energy_request_gates_dynamic_mode() -> None:
    ctl = controller()
    d = run(ctl, EvRequest(750.0, max_energy_wh=0.0), 1.0)[-1]
    assert d.present_current_a == 0.0
    sc = Scenario("s", (EmsStep(0.0, -100_000.0),))
    d = run(controller(scenario=sc), EvRequest(750.0, min_v2x_energy_wh=0.0), 1.0)[-1]
    assert d.present_current_a == 0.0


def test_stop_and_resume() -> None:
    ctl = controller()
    run(ctl, EvRequest(750.0), 1.0)
    ctl.stop_power_delivery(1.0)
    d = ctl.step(1.25, EvRequest(750.0))
    assert d.safe_state and abs(d.present_current_a) <= 1000.0 * 0.5 + 1e-9
    d = ctl.step(1.5, EvRequest(750.0))
    assert d.present_current_a == 0.0 and d.contactors_open
    assert ctl.start_power_delivery(2.0)  # a normal stop may resume
    assert run(ctl, EvRequest(750.0), 1.0, t0=2.0)[-1].present_current_a > 0.0


def test_fault_latches_until_reset() -> None:
    ctl = controller()
    run(ctl, EvRequest(750.0), 1.0)
    ctl.trigger_safe_state(1.0, SafeStateCause.EMERGENCY)
    d = ctl.step(1.0, EvRequest(750.0))
    assert d.present_current_a == 0.0 and d.contactors_open
    assert not ctl.start_power_delivery(2.0)


def test_timer_trips_on_missing_requests() -> None:
    ctl = controller()
    run(ctl, EvRequest(750.0), 1.0)
    assert not ctl.tick(1.4).safe_state
    d = ctl.tick(1.6)
    assert d.safe_state and ctl.safe.cause is SafeStateCause.TIMEOUT
    assert ctl.tick(2.0).present_current_a == 0.0  # 1.5 s trip + 0.5 s ramp-down


def test_over_voltage_error_after_400_ms() -> None:
    ch = load_charger("mcs_1mw_bpt")
    ev = PartyLimits("ev", max_voltage_v=900.0)
    ctl = SeccController(build_parties(ch, ev), ch, mode=Mode.DYNAMIC)
    ctl.start_power_delivery(0.0)
    ctl.step(0.1, EvRequest(850.0, max_voltage_v=INF))
    ctl.step(0.2, EvRequest(905.0))
    assert not ctl.step(0.5, EvRequest(905.0)).safe_state
    d = ctl.step(0.65, EvRequest(905.0))
    assert d.safe_state and d.present_current_a == 0.0 and d.over_voltage is OverVoltage.ERROR
    assert ctl.safe.cause is SafeStateCause.OVER_VOLTAGE


def test_cable_check_and_precharge() -> None:
    ctl = controller()
    t, done = 0.0, False
    while not done:
        t += 0.1
        v, done = ctl.cable_check(t)
        assert v <= 957.0 + 1e-9
    assert v == pytest.approx(957.0)  # min(1 250, 1.1 x 870)
    assert ctl.precharge(t + 5.0, 2000.0) == 870.0  # clamped to the envelope
    assert ctl.precharge(t + 10.0, 745.0) == 745.0


# -- truck controller -----------------------------------------------------------------------


def test_truck_asks_only_what_battery_and_charger_allow() -> None:
    _secc, tc = pair(load_truck("mcs_7pack"), load_charger("dc_400kw"))
    r = tc.request(0.0)
    assert r.max_charge_power_w == 375_000.0 * 0 + 375_000.0 or r.max_charge_power_w <= 400_000.0
    assert r.max_charge_power_w <= 400_000.0 and r.max_charge_current_a <= 500.0
    assert r.max_discharge_power_w == 0.0  # unidirectional charger: no V2G
    tc.accept_evse_limits(EvseLimits(2e6, 3000.0, 2e6, 3000.0, 1250.0, 0.0))
    assert any("charge current" in x for x in tc.refused)
    r = tc.request(0.25)
    assert r.max_charge_current_a <= 1000.0  # never above its own battery


def test_truck_departure_guard_blocks_v2g() -> None:
    _secc, tc = pair(load_truck("mcs_7pack"), load_charger("mcs_1mw_bpt"))
    tc.departure = 600.0
    tc.target_soc = 0.9
    assert tc.departure_guard(0.0)
    assert tc.request(0.0).max_discharge_power_w == 0.0
    tc.departure = INF
    assert tc.request(0.0).max_discharge_power_w > 0.0


def test_scheduled_truck_follows_the_plan() -> None:
    res = simulate(load_truck("mcs_7pack"), load_charger("mcs_1mw_bpt"),
                   load_scenario("depot_peak_shaving"), mode=Mode.SCHEDULED)  # fmt: skip
    currents = [s.decision.present_current_a for s in res.samples]
    assert max(currents) > 900.0 and min(currents) < -500.0
    assert res.truck.fault is None


def test_depot_scenario_shows_charge_then_discharge_then_top_up() -> None:
    res = simulate(load_truck("mcs_7pack"), load_charger("mcs_1mw_bpt"),
                   load_scenario("depot_peak_shaving"))  # fmt: skip
    by_phase: dict[int, list[float]] = {}
    for s in res.samples:
        phase = 0 if s.t < 600 else 1 if s.t < 1140 else 2
        by_phase.setdefault(phase, []).append(s.decision.present_power_w)
    assert max(by_phase[0]) > 700_000.0
    assert min(by_phase[1]) == pytest.approx(-450_000.0)
    assert max(by_phase[2]) > 700_000.0
    assert res.samples[-1].soc == pytest.approx(0.55, abs=0.005)


# -- schedules ------------------------------------------------------------------------------


def test_build_schedules_respects_envelope_and_plan() -> None:
    ch = load_charger("mcs_1mw_bpt")
    env = negotiate(build_parties(ch, load_truck("mcs_7pack").limits))
    sc = load_scenario("depot_peak_shaving")
    offers = build_schedules(env, start=10.0, duration_s=1800.0, ems=Ems(sc, t0=10.0),
                             efficiency=ch.efficiency)  # fmt: skip
    assert 1 <= len(offers) <= 3
    plan = offers[0]
    assert plan.charge_power_at(20.0) == 750_000.0  # envelope binds below the 960 kW import
    assert plan.discharge_power_at(20.0) == 0.0
    assert plan.charge_power_at(700.0) == 0.0
    assert plan.discharge_power_at(700.0) == 450_000.0
    assert offers[1].discharging is None
    for o in offers:
        for sched in (o.charging, o.discharging):
            if sched is not None:
                assert len(sched.entries) <= 1024
                assert all(p <= 750_000.0 for _, p in sched.entries)


def test_schedule_merging_never_promises_more() -> None:
    env = negotiate(build_parties(load_charger("mcs_1mw_bpt"), load_truck("mcs_7pack").limits))
    steps = tuple(
        EmsStep(
            float(k),
            1000.0 * (k % 7),
        )
        for k in range(3000)
    )
    ems = Ems(Scenario("many", steps, duration_s=3000.0))
    offers = build_schedules(env, start=0.0, duration_s=3000.0, ems=ems, max_entries=12)
    sched = offers[0].charging
    assert len(sched.entries) <= 12
    assert sum(d for d, _ in sched.entries) == pytest.approx(3000.0)
    for k in range(3000):
        assert sched.power_at(k + 0.5) <= 1000.0 * (k % 7)
    with pytest.raises(ScheduleError):
        build_schedules(env, start=0.0, duration_s=10.0, max_entries=11)
    with pytest.raises(ScheduleError):
        PowerSchedule(0.0, ())


def test_validate_ev_power_profile() -> None:
    offer = ScheduleTuple(
        1,
        PowerSchedule(0.0, ((100.0, 500_000.0), (100.0, 0.0)), power_tolerance_w=10_000.0),
        PowerSchedule(0.0, ((100.0, 0.0), (100.0, 300_000.0)), power_tolerance_w=10_000.0),
    )
    ok = validate_ev_power_profile(0.0, [(100.0, 500_000.0), (100.0, -300_000.0)], offer)
    assert ok.verdict is ProfileVerdict.OK
    warn = validate_ev_power_profile(0.0, [(100.0, 505_000.0)], offer)
    assert warn.verdict is ProfileVerdict.WARNING_VIOLATION and warn.entry == 0
    strict = validate_ev_power_profile(0.0, [(100.0, 505_000.0)], offer, tolerance_accepted=False)
    assert strict.verdict is ProfileVerdict.FAILED_VIOLATION
    # an entry that runs into the zero-power interval violates it
    bad = validate_ev_power_profile(0.0, [(150.0, 400_000.0)], offer)
    assert bad.verdict is ProfileVerdict.FAILED_VIOLATION and bad.allowed_w == 0.0
    assert validate_ev_power_profile(0.0, [], offer).verdict is ProfileVerdict.FAILED_INVALID
    assert (
        validate_ev_power_profile(0.0, [(math.nan, 1.0)], offer).verdict
        is ProfileVerdict.FAILED_INVALID
    )
    no_dis = ScheduleTuple(2, offer.charging)
    assert (
        validate_ev_power_profile(0.0, [(10.0, -1.0)], no_dis).verdict
        is ProfileVerdict.FAILED_VIOLATION
    )
    assert ProfileVerdict.FAILED_VIOLATION.value == "FAILED_EVPowerProfileViolation"


# -- BPT field mapping ----------------------------------------------------------------------


@pytest.mark.parametrize("conv", list(SignConvention))
def test_cpd_fields_round_trip(conv: SignConvention) -> None:
    truck = load_truck("mcs_7pack").limits
    f = bpt.ev_cpd_fields(truck, bpt=True, convention=conv, target_soc=0.8)
    assert f["target_soc"] == 80
    if conv is SignConvention.NEGATIVE_DISCHARGE:
        assert f["ev_maximum_discharge_power"] == -750_000.0
    else:
        assert f["ev_maximum_discharge_power"] == 750_000.0
    back = bpt.ev_limits_from_cpd(f)
    assert back.max_discharge_power_w == 750_000.0 and back.max_charge_current_a == 1000.0
    plain = bpt.ev_cpd_fields(truck, bpt=False)
    assert "ev_maximum_discharge_power" not in plain
    assert not bpt.ev_limits_from_cpd(plain).can_discharge
    env = negotiate(build_parties(load_charger("mcs_1mw_bpt"), truck))
    ef = bpt.evse_cpd_fields(env.as_limits(), bpt=True, convention=conv,
                             power_ramp_limitation_w_per_s=1.5e6)  # fmt: skip
    assert ef["evse_power_ramp_limitation"] == 1.5e6
    assert bpt.evse_limits_from_cpd(ef).max_discharge_current_a == 1000.0


def test_cpd_nonsense_from_a_peer_is_a_typed_error() -> None:
    good = bpt.ev_cpd_fields(load_truck("mcs_7pack").limits, bpt=True)
    with pytest.raises(LimitsError, match="min_charge_current_a above"):
        bpt.ev_limits_from_cpd({**good, "ev_minimum_charge_current": 5000.0})


def test_cpd_missing_field_is_a_typed_error() -> None:
    with pytest.raises(bpt.FieldError, match="ev_maximum_voltage"):
        bpt.ev_limits_from_cpd({"ev_maximum_charge_power": 1.0, "ev_maximum_charge_current": 1.0})
    good = bpt.ev_cpd_fields(load_truck("mcs_7pack").limits, bpt=True)
    with pytest.raises(bpt.FieldError, match="not finite"):
        bpt.ev_limits_from_cpd({**good, "ev_maximum_charge_power": math.inf})
    with pytest.raises(bpt.FieldError, match="not a number"):
        bpt.ev_limits_from_cpd({**good, "ev_maximum_charge_power": "lots"})


@pytest.mark.parametrize("conv", list(SignConvention))
@pytest.mark.parametrize("mode", list(Mode))
def test_loop_fields_round_trip(conv: SignConvention, mode: Mode) -> None:
    r = EvRequest(740.0, target_current_a=-300.0 if mode is Mode.SCHEDULED else math.nan,
                  target_voltage_v=850.0 if mode is Mode.SCHEDULED else math.nan,
                  max_charge_power_w=700_000.0, max_discharge_power_w=600_000.0,
                  max_discharge_current_a=800.0, max_energy_wh=1e5, min_v2x_energy_wh=-5e4,
                  departure_s=1200.0)  # fmt: skip
    f = bpt.ev_loop_fields(r, bpt=True, mode=mode, convention=conv)
    back = bpt.ev_request_from_loop_fields(f, mode=mode, discharging=True, convention=conv)
    assert back.max_discharge_power_w == 600_000.0 and back.max_charge_power_w == 700_000.0
    if mode is Mode.SCHEDULED:
        assert back.target_current_a == -300.0
        if conv is SignConvention.POSITIVE:
            assert f["ev_target_current"] == 300.0
    else:
        assert back.min_v2x_energy_wh == -5e4 and back.departure_s == 1200.0
    ctl = controller(mode)
    d = ctl.step(0.25, back)
    res = bpt.evse_loop_fields(d, bpt=True, mode=mode, convention=conv)
    assert res["evse_present_voltage"] == 740.0
    for k in ("evse_power_limit_achieved", "evse_current_limit_achieved",
              "evse_voltage_limit_achieved"):  # fmt: skip
        assert isinstance(res[k], bool)
    lim = bpt.evse_limits_from_loop_fields(res)
    assert lim.evse_max_discharge_power_w == d.evse_max_discharge_power_w
    i = bpt.present_current_from_loop_fields(res, discharging=d.discharging, convention=conv)
    assert i == d.present_current_a
    assert bpt.meter_fields(1234.9, 10.2, bpt=True) == {
        "charged_energy_reading_wh": 1234.0, "bpt_discharged_energy_reading_wh": 10.0,
    }  # fmt: skip
