"""Unit tests, one block per power module: limits, envelope, battery, meter, stage, safety, EMS."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from mcscomm.power import (
    MCS_ENVELOPE,
    Battery,
    Ems,
    EmsStep,
    EnvelopeInverted,
    LimitsError,
    Meter,
    OverVoltage,
    OverVoltageMonitor,
    Parties,
    PartyLimits,
    PowerStage,
    Ramp,
    SafeState,
    SafeStateCause,
    Scenario,
    build_parties,
    cable_check_voltage,
    emergency_over_voltage_threshold,
    load_charger,
    load_truck,
    negotiate,
)

INF = math.inf

# -- limits --------------------------------------------------------------------------------


def test_mcs_envelope_figures() -> None:
    assert MCS_ENVELOPE.max_voltage_v == 1250.0
    assert MCS_ENVELOPE.max_charge_current_a == 3000.0
    assert MCS_ENVELOPE.max_charge_power_w == 3_750_000.0
    assert MCS_ENVELOPE.max_discharge_power_w == 3_750_000.0


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_party_limits_reject_nonsense(bad: float) -> None:
    with pytest.raises(LimitsError, match="max_charge_current_a"):
        PartyLimits("x", max_charge_current_a=bad)
    with pytest.raises(LimitsError, match="min_charge_power_w"):
        PartyLimits("x", min_charge_power_w=INF)


def test_party_limits_reject_min_above_own_max() -> None:
    with pytest.raises(LimitsError, match="min_charge_current_a above max_charge_current_a"):
        PartyLimits("x", max_charge_current_a=10.0, min_charge_current_a=11.0)
    with pytest.raises(LimitsError, match="min_voltage_v above max_voltage_v"):
        PartyLimits("x", max_voltage_v=400.0, min_voltage_v=500.0)
    # a direction the party cannot do at all carries no meaningful minimum
    PartyLimits("x", max_discharge_power_w=0.0, min_discharge_power_w=5.0)


def test_without_discharge() -> None:
    p = PartyLimits("x", max_discharge_current_a=10.0, max_discharge_power_w=1e3)
    assert p.can_discharge and not p.without_discharge().can_discharge


# -- envelope -------------------------------------------------------------------------------


def test_negotiation_names_the_binding_party() -> None:
    ch = load_charger("mcs_1mw_bpt")
    truck = load_truck("mcs_7pack")
    env = negotiate(build_parties(ch, truck.limits))
    assert env.charge.max_current_a == 1000.0 and env.charge.current_binding == "truck mcs_7pack"
    assert env.charge.max_power_w == 750_000.0
    assert env.max_voltage_v == 870.0 and env.voltage_binding == "truck mcs_7pack"
    assert env.discharge.available and env.discharge.max_power_w == 750_000.0
    assert "truck mcs_7pack" in env.describe()


def test_grid_connection_binds_at_charger_efficiency() -> None:
    ch = load_charger("mcs_1mw_bpt")
    big = PartyLimits("big truck", max_voltage_v=1250.0)
    env = negotiate(build_parties(ch, big))
    # charger 1 MW DC vs grid import 1.1 MW x 0.96 = 1.056 MW: the charger binds
    assert env.charge.power_binding == "charger mcs_1mw_bpt"
    env = negotiate(build_parties(ch, big, grid_import_w=500_000.0))
    assert env.charge.power_binding == "grid connection"
    assert env.charge.max_power_w == pytest.approx(480_000.0)
    # export 1 MW AC -> 1 MW / 0.96 DC, but the charger's 1 MW binds
    assert env.discharge.max_power_w == 1_000_000.0


def test_unidirectional_and_non_bpt_make_discharge_unavailable() -> None:
    truck = load_truck("mcs_7pack")
    env = negotiate(build_parties(load_charger("mcs_3750kw"), truck.limits))
    assert not env.discharge.available and "allows no discharge" in env.discharge.reason
    env = negotiate(build_parties(load_charger("mcs_1mw_bpt"), truck.limits, bidirectional=False))
    assert not env.discharge.available


def test_inverted_envelope_is_a_typed_error_or_unavailable() -> None:
    evse = PartyLimits("evse", max_voltage_v=1000.0, max_charge_current_a=100.0,
                       max_charge_power_w=1e5, max_discharge_current_a=0.0)  # fmt: skip
    ev = PartyLimits("ev", min_charge_current_a=200.0, max_voltage_v=900.0)
    with pytest.raises(EnvelopeInverted) as info:
        negotiate([evse, ev])
    assert info.value.min_party == "ev" and info.value.max_party == "evse"
    assert "charge current" in str(info.value)
    env = negotiate([evse, ev], strict=False)
    assert not env.charge.available and "exceeds" in env.charge.reason


def test_voltage_window_inversion_and_unbounded() -> None:
    with pytest.raises(EnvelopeInverted, match="voltage"):
        negotiate([PartyLimits("a", max_voltage_v=400.0), PartyLimits("b", min_voltage_v=500.0)])
    with pytest.raises(LimitsError, match="voltage"):
        negotiate([PartyLimits("a")])
    with pytest.raises(LimitsError, match="no party bounds"):
        negotiate([PartyLimits("a", max_voltage_v=400.0)])


def test_as_limits_round_trip() -> None:
    env = negotiate(build_parties(load_charger("dc_400kw"), load_truck("ccs_3pack").limits))
    lim = env.as_limits()
    assert lim.max_charge_power_w == 375_000.0 and lim.max_discharge_power_w == 0.0
    again = negotiate(Parties(evse=lim, ev=lim, mcs=None)).charge
    assert (again.max_current_a, again.max_power_w) == (env.charge.max_current_a, 375_000.0)
    assert env.charge.current_binding == "cable dc_400kw"  # 500 A CCS cable, not MCS


# -- battery ------------------------------------------------------------------------------


def test_ocv_interpolation_and_ir_drop() -> None:
    b = Battery(load_truck("mcs_7pack"), soc=0.4)
    assert b.ocv() == pytest.approx(745.0)  # halfway between 735 V @30 % and 755 V @50 %
    assert b.ocv(-1.0) == 620.0 and b.ocv(2.0) == 830.0
    assert b.terminal_voltage(1000.0) == pytest.approx(745.0 + 20.0)
    assert b.terminal_voltage(-1000.0) == pytest.approx(745.0 - 20.0)


def test_derating_near_full_and_floor() -> None:
    spec = load_truck("mcs_7pack")
    assert Battery(spec, soc=0.5).max_charge_current_a() == 1000.0
    assert Battery(spec, soc=0.9).max_charge_current_a() == pytest.approx(550.0)
    assert Battery(spec, soc=1.0).max_charge_power_w() == 0.0
    assert Battery(spec, soc=0.3).max_discharge_power_w() == 0.0  # at the V2G floor
    assert Battery(spec, soc=0.31).max_discharge_power_w() == pytest.approx(375_000.0)
    assert Battery(spec, soc=0.6).max_discharge_power_w() == 750_000.0


def test_battery_energy_bookkeeping() -> None:
    spec = load_truck("mcs_7pack")
    b = Battery(spec, soc=0.5)
    e0 = b.energy_wh
    assert b.apply(720_000.0, 3600.0) == pytest.approx(720_000.0 * 0.97)
    b.apply(-97_000.0, 3600.0)
    assert b.energy_wh - e0 == pytest.approx(720_000.0 * 0.97 - 100_000.0)
    assert b.apply(1e6, 0.0) == 0.0 and b.apply(1e6, -1.0) == 0.0
    assert b.energy_to_soc_wh(b.soc + 0.1) == pytest.approx(72_800.0 / 0.97)
    assert b.energy_to_soc_wh(b.soc - 0.1) == pytest.approx(-72_800.0 * 0.97)
    assert b.discharge_headroom_w(1.0) == pytest.approx((b.energy_wh - 0.3 * 728_000) * 0.97 * 3600)


def test_battery_spec_checks() -> None:
    spec = load_truck("mcs_7pack")
    with pytest.raises(LimitsError, match="ascending"):
        Battery(replace(spec, ocv_curve=((0.5, 700.0), (0.1, 650.0))))
    with pytest.raises(LimitsError, match="v2g_min_soc"):
        Battery(replace(spec, v2g_min_soc=0.9, max_soc=0.8))
    with pytest.raises(LimitsError):
        Battery(spec, soc=1.5)


# -- meter ----------------------------------------------------------------------------------


def test_meter_counts_both_ways_and_never_backwards() -> None:
    m = Meter()
    m.add(360_000.0, 10.0)  # 1 kWh
    m.add(-180_000.0, 10.0)  # 0.5 kWh back
    m.add(1e9, -5.0)  # clock went backwards: ignored
    m.add(math.nan, 1.0)
    m.add(math.inf, 1.0)
    assert m.charged_wh == pytest.approx(1000.0) and m.discharged_wh == pytest.approx(500.0)
    assert m.readings() == (1000, 500) or m.readings() == (999, 500)
    assert m.net_wh == pytest.approx(500.0)


# -- stage ----------------------------------------------------------------------------------


def test_stage_ramps_up_and_is_forced_down() -> None:
    st = PowerStage(Ramp(current_a_per_s=100.0, power_w_per_s=INF))
    assert st.track_current(500.0, 1.0, 700.0, -1000.0, 1000.0) == 0.0  # contactors open
    st.contactors_closed = True
    assert st.track_current(500.0, 1.0, 700.0, -1000.0, 1000.0) == 100.0
    assert st.track_current(500.0, 1.0, 700.0, -1000.0, 1000.0) == 200.0
    # a limit falling below what flows cuts at once
    assert st.track_current(500.0, 1.0, 700.0, -1000.0, 50.0) == 50.0
    # the power ramp binds in current terms: 7 kW/s at 700 V = 10 A/s
    st2 = PowerStage(Ramp(current_a_per_s=100.0, power_w_per_s=7000.0))
    st2.contactors_closed = True
    assert st2.track_current(500.0, 1.0, 700.0, -1000.0, 1000.0) == pytest.approx(10.0)


def test_stage_voltage_slew() -> None:
    st = PowerStage(Ramp(voltage_v_per_s=400.0))
    assert st.track_voltage(1000.0, 1.0) == 400.0
    assert st.track_voltage(1000.0, 2.0) == 1000.0
    assert st.track_voltage(0.0, 0.5) == 800.0


# -- safety -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("negotiated", "threshold"),
    [(1250.0, 1375.0), (1000.1, 1375.0), (1000.0, 1100.0), (851.0, 1100.0), (850.0, 935.0),
     (751.0, 935.0), (750.0, 825.0), (501.0, 825.0), (500.0, 550.0), (200.0, 550.0)],
)  # fmt: skip
def test_emergency_over_voltage_thresholds(negotiated: float, threshold: float) -> None:
    assert emergency_over_voltage_threshold(negotiated) == threshold


@pytest.mark.parametrize(
    ("ev_max", "evse_max", "test_v"),
    [(400.0, 1000.0, 450.0), (480.0, 1000.0, 500.0), (480.0, 520.0, 500.0),
     (480.0, 490.0, 490.0), (870.0, 1250.0, 957.0), (1200.0, 1250.0, 1250.0)],
)  # fmt: skip
def test_cable_check_voltage_formula(ev_max: float, evse_max: float, test_v: float) -> None:
    assert cable_check_voltage(ev_max, evse_max) == pytest.approx(test_v)


def test_over_voltage_monitor_timing() -> None:
    m = OverVoltageMonitor(900.0)
    assert m.emergency_v == 1100.0
    assert m.check(0.0, 899.0) is OverVoltage.OK
    assert m.check(1.0, 901.0) is OverVoltage.TOLERATED
    assert m.check(1.25, 901.0) is OverVoltage.GREY
    assert m.check(1.41, 901.0) is OverVoltage.ERROR
    assert m.check(1.5, 800.0) is OverVoltage.OK
    assert m.check(1.6, 901.0) is OverVoltage.TOLERATED  # the clock restarted
    assert m.check(1.6, 1101.0) is OverVoltage.EMERGENCY


def test_safe_state_ramp_down() -> None:
    s = SafeState(0.5)
    assert s.current_cap(0.0) == INF
    s.trigger(10.0, SafeStateCause.COMMUNICATION_LOSS, -800.0)
    s.trigger(10.2, SafeStateCause.EMERGENCY, 0.0)  # the first trip's clock keeps running
    assert s.cause is SafeStateCause.COMMUNICATION_LOSS
    assert s.current_cap(10.25) == pytest.approx(400.0)
    assert s.current_cap(10.5) == 0.0
    assert not s.update(10.3, -100.0)
    assert s.update(10.5, 0.0) and s.opened_at == 10.5
    with pytest.raises(ValueError):
        SafeState(0.0)


# -- EMS ------------------------------------------------------------------------------------


def test_ems_steps_and_time_scale() -> None:
    sc = Scenario("s", (EmsStep(0.0, 1e5), EmsStep(60.0, -2e5), EmsStep(120.0, INF)),
                  time_scale=2.0)  # fmt: skip
    ems = Ems(sc, t0=100.0)
    assert ems.at(0.0).setpoint_w == 1e5  # before start: the first step
    assert ems.at(219.9).setpoint_w == 1e5
    assert ems.at(220.0).setpoint_w == -2e5
    assert ems.at(400.0).setpoint_w == INF
    assert ems.changes() == [100.0, 220.0, 340.0]
    assert sc.session_duration_s == 3600.0


def test_scenario_validation() -> None:
    with pytest.raises(LimitsError, match="at least one"):
        Scenario("s", ())
    with pytest.raises(LimitsError, match="time order"):
        Scenario("s", (EmsStep(0.0), EmsStep(5.0), EmsStep(1.0)))
    with pytest.raises(LimitsError, match="negative cap"):
        Scenario("s", (EmsStep(0.0, grid_export_w=-1.0),))
