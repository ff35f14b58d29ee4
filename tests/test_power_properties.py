"""Property tests for the power layer: try hard to make it let through more than anyone allows.

Oracles are deliberately independent of the controller's own bookkeeping: every party's limits
are re-checked one by one, the backend step and the safe-state ramp are recomputed here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mcscomm.power import (
    Battery,
    BatterySpec,
    ChargerSpec,
    Ems,
    EmsStep,
    EnvelopeInverted,
    EvRequest,
    EvseLimits,
    LimitsError,
    Mode,
    Parties,
    PartyLimits,
    Ramp,
    SafeStateCause,
    Scenario,
    SeccController,
    TruckController,
    build_schedules,
    negotiate,
    simulate,
)
from mcscomm.power.sim import pair

INF = math.inf
REL = 1e-9

EXAMPLES = int(os.environ.get("POWER_EXAMPLES", "300"))  # POWER_EXAMPLES=5000: long campaign
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

pos = st.floats(min_value=1.0, max_value=4000.0, allow_nan=False)
maybe_inf = st.one_of(st.just(INF), pos)


@st.composite
def party(
    draw: st.DrawFn,
    name: str,
    *,
    mins: bool = True,
    bounded: bool = False,
    vlo: float = 200.0,
    v2g: bool = False,
) -> PartyLimits:
    vmax = draw(
        st.floats(vlo, 1500.0) if bounded else st.one_of(st.just(INF), st.floats(vlo, 1500.0))
    )
    vmin = min(draw(st.floats(0.0, 300.0)), vmax)
    can_dis = v2g or draw(st.sampled_from([True, True, True, False]))

    def mx(lo: float, hi: float) -> float:
        return draw(st.floats(lo, hi) if bounded else st.one_of(st.just(INF), st.floats(lo, hi)))

    def mn(hi: float, top: float) -> float:
        # a party's own minimum never exceeds its own maximum (PartyLimits refuses that);
        # inversions come from *different* parties, which is what negotiation must catch
        hi = min(hi, top) if top > 0 else hi
        return draw(st.floats(0.0, hi)) if mins and draw(st.integers(0, 3)) == 3 else 0.0

    ci, cp = mx(1.0, 3500.0), mx(1_000.0, 4e6)
    di = mx(1.0, 3500.0) if can_dis else 0.0
    dp = mx(1_000.0, 4e6) if can_dis else 0.0
    return PartyLimits(
        name=name,
        max_voltage_v=vmax,
        min_voltage_v=vmin,
        max_charge_current_a=ci,
        min_charge_current_a=mn(50.0, ci),
        max_charge_power_w=cp,
        min_charge_power_w=mn(50_000.0, cp),
        max_discharge_current_a=di,
        min_discharge_current_a=mn(50.0, di),
        max_discharge_power_w=dp,
        min_discharge_power_w=mn(50_000.0, dp),
    )


@st.composite
def charger(draw: st.DrawFn, v2g: bool = False) -> ChargerSpec:
    limits = draw(party("charger", bounded=True, vlo=900.0, v2g=v2g))
    cable_i = draw(st.floats(10.0, 3500.0))
    return ChargerSpec(
        name="c",
        limits=limits,
        cable=PartyLimits(
            "cable",
            max_voltage_v=draw(st.floats(900.0, 1500.0)),
            max_charge_current_a=cable_i,
            max_discharge_current_a=cable_i,
        ),
        grid_import_w=draw(maybe_inf),
        grid_export_w=draw(
            st.one_of(st.just(INF), st.floats(1e3, 4e6))
            if v2g
            else st.one_of(st.just(INF), st.just(0.0), st.floats(0.0, 4e6))
        ),
        ramp=Ramp(
            current_a_per_s=draw(st.floats(10.0, 10_000.0)),
            power_w_per_s=draw(st.floats(10_000.0, 1e7)),
            voltage_v_per_s=draw(st.floats(10.0, 2000.0)),
        ),
        efficiency=draw(st.floats(0.8, 1.0)),
        safe_ramp_down_s=draw(st.floats(0.05, 3.0)),
    )


def ems_step(v2g: bool = False) -> st.SearchStrategy[EmsStep]:
    return st.builds(
        EmsStep,
        at_s=st.just(0.0),
        setpoint_w=st.floats(-4e6, -1e3) if v2g else st.one_of(st.just(INF), st.floats(-4e6, 4e6)),
        max_charge_power_w=maybe_inf,
        max_discharge_power_w=maybe_inf,
        grid_import_w=st.one_of(st.just(INF), st.floats(0.0, 4e6)),
        grid_export_w=st.one_of(st.just(INF), st.floats(0.0, 4e6)),
    )


@st.composite
def scenario(draw: st.DrawFn, v2g: bool = False) -> Scenario:
    steps = draw(st.lists(ems_step(v2g), min_size=1, max_size=6))
    gaps = draw(st.lists(st.floats(0.1, 20.0), min_size=len(steps), max_size=len(steps)))
    t, out = 0.0, []
    for s, g in zip(steps, gaps, strict=True):
        out.append(EmsStep(t, s.setpoint_w, s.max_charge_power_w, s.max_discharge_power_w,
                           s.grid_import_w, s.grid_export_w))  # fmt: skip
        t += g
    return Scenario("random", tuple(out), duration_s=t, time_scale=draw(st.floats(0.5, 3.0)))


def mostly(value: float, other: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    """``value`` three times in four, else ``other`` (keep most cycles able to flow)."""
    return st.one_of(st.just(value), st.just(value), st.just(value), other)


request = st.builds(
    EvRequest,
    # a fraction of the envelope's voltage window (mapped in the test; < 0 or > 1 is outside),
    # or garbage
    present_voltage_v=st.one_of(
        st.floats(0.0, 1.0),
        st.floats(0.0, 1.0),
        st.floats(-0.2, 1.2),
        st.just(math.nan),
        st.just(INF),
    ),
    target_current_a=st.one_of(
        st.floats(-5000.0, 5000.0), st.floats(-5000.0, 5000.0), st.just(math.nan), st.just(INF)
    ),
    target_voltage_v=st.one_of(st.floats(0.0, 1600.0), st.just(math.nan)),
    max_charge_power_w=mostly(INF, st.one_of(pos.map(lambda x: x * 1000), st.just(math.nan))),
    min_charge_power_w=mostly(0.0, st.one_of(st.floats(0.0, 100_000.0), st.just(math.nan))),
    max_charge_current_a=mostly(INF, pos),
    max_voltage_v=mostly(INF, st.floats(100.0, 1600.0)),
    min_voltage_v=mostly(0.0, st.floats(0.0, 400.0)),
    max_discharge_power_w=mostly(INF, pos.map(lambda x: x * 1000)),
    min_discharge_power_w=mostly(0.0, st.floats(0.0, 100_000.0)),
    max_discharge_current_a=mostly(INF, st.one_of(pos, st.just(math.nan))),
    max_energy_wh=mostly(math.nan, st.floats(-1e6, 1e6)),
    min_v2x_energy_wh=mostly(math.nan, st.floats(-1e6, 1e6)),
    stop=st.sampled_from([False] * 9 + [True]),
)


def le(x: float, limit: float) -> bool:
    """x within limit (a NaN limit in a request means "not sent": no restriction)."""
    return limit != limit or x <= limit * (1.0 + REL) + 1e-9


@dataclass
class Trip:
    t0: float
    i0: float
    ramp_s: float
    cut: bool  # emergency: zero at once


def check_run(
    ch: ChargerSpec,
    ev: PartyLimits,
    grid_extra: PartyLimits | None,
    sc: Scenario | None,
    mode: Mode,
    steps: list[tuple[float, EvRequest]],
    trip_at: int | None,
    cause: SafeStateCause,
    scheduled: int | None,
    precharge_to: float,
) -> None:
    """Drive one controller through ``steps`` and check every invariant at every step."""
    parties = Parties(
        evse=ch.limits, ev=ev, cable=ch.cable, grid=ch.grid_party(),
        extra=(grid_extra,) if grid_extra else (),
    )  # fmt: skip
    try:
        env = negotiate(parties)
    except EnvelopeInverted as exc:
        # a clear, typed error, and only when it is true
        assert exc.min_value > exc.max_value
        event("envelope inverted (typed error)")
        return
    # the envelope never inverts
    assert env.min_voltage_v <= env.max_voltage_v
    for dirn in (env.charge, env.discharge):
        assert dirn.min_current_a <= dirn.max_current_a and dirn.min_power_w <= dirn.max_power_w
    ems = Ems(sc) if sc is not None else None
    ctl = SeccController(parties, ch, mode=mode, ems=ems)
    if scheduled is not None and mode is Mode.SCHEDULED:
        offers = build_schedules(env, start=0.0, duration_s=100.0, ems=ems,
                                 efficiency=ch.efficiency)  # fmt: skip
        ctl.select_schedule(offers[min(scheduled, len(offers) - 1)])
    # cable check and pre-charge never exceed the voltage limits, whatever the EV asks
    for k in range(40):
        v_cc, _done = ctl.cable_check(k * 0.1)
        assert v_cc <= ctl.evse_envelope.max_voltage_v * (1 + REL)
        assert v_cc <= 1.1 * ev.max_voltage_v + 1e-6 or ev.max_voltage_v <= 500.0
    for k in range(40):
        tv = ctl.precharge(4.0 + k * 0.1, precharge_to)
        assert tv <= env.max_voltage_v * (1 + REL)
    assert ctl.start_power_delivery(0.0)
    t = 0.0
    prev_i, prev_t = 0.0, 0.0
    prev_c = prev_d = 0.0
    trip: Trip | None = None
    flowed_c = flowed_d = False
    all_parties = parties.all()
    lo_v, hi_v = env.min_voltage_v, min(env.max_voltage_v, 1500.0)
    for k, (gap, raw) in enumerate(steps):
        t += gap
        f = raw.present_voltage_v
        v_in = lo_v + f * (hi_v - lo_v) if math.isfinite(f) else f
        req = replace(raw, present_voltage_v=v_in)
        if trip_at == k:
            i_now = ctl.stage.current_a
            ctl.trigger_safe_state(t, cause)
            cut = cause in (SafeStateCause.EMERGENCY, SafeStateCause.OVER_VOLTAGE)
            trip = Trip(t, abs(i_now), ch.safe_ramp_down_s, cut)
        d = ctl.step(t, req)
        if d.safe_state and trip is None:  # tripped by over-voltage inside the step
            trip = Trip(t, abs(prev_i), ch.safe_ramp_down_s, True)
        i, v = d.present_current_a, d.present_voltage_v
        p = abs(i) * v
        assert math.isfinite(i) and math.isfinite(v)
        for pty in all_parties:  # every party, one by one
            if i > 0:
                assert le(i, pty.max_charge_current_a), pty.name
                assert le(p, pty.max_charge_power_w), pty.name
                assert v < pty.max_voltage_v, pty.name
            elif i < 0:
                assert le(-i, pty.max_discharge_current_a), pty.name
                assert le(p, pty.max_discharge_power_w), pty.name
                assert v > pty.min_voltage_v, pty.name
        if i > 0:  # the request's own limits
            assert le(i, req.max_charge_current_a) and le(p, req.max_charge_power_w)
            assert v < req.max_voltage_v
        elif i < 0:
            assert le(-i, req.max_discharge_current_a) and le(p, req.max_discharge_power_w)
            assert v > req.min_voltage_v
        if req.stop:
            assert abs(i) <= abs(prev_i)  # a stop never increases the current
        if ems is not None and i != 0:  # backend caps and the grid link, at the efficiency
            s = ems.at(t)
            if i > 0:
                assert le(p, s.max_charge_power_w) and le(p, s.grid_import_w * ch.efficiency)
            else:
                assert le(p, s.max_discharge_power_w)
                assert le(p, s.grid_export_w / ch.efficiency)
        if ctl.schedule is not None and i != 0:
            allowed = (
                ctl.schedule.charge_power_at(t) if i > 0 else ctl.schedule.discharge_power_at(t)
            )
            assert le(p, allowed)
        # ramp: any move away from zero (or across it) is within the ramp
        dt = max(0.0, t - prev_t)
        if abs(i) > abs(prev_i) or (i * prev_i < 0):
            step_lim = ch.ramp.current_a_per_s * dt
            if v > 1.0:
                step_lim = min(step_lim, ch.ramp.power_w_per_s * dt / v)
            assert abs(i - prev_i) <= step_lim * (1 + REL) + 1e-9
        # safe state: linear ramp-down bound, zero and contactors open by t0 + T
        if trip is not None:
            if trip.cut:
                assert i == 0.0
            else:
                left = max(0.0, 1.0 - (t - trip.t0) / trip.ramp_s)
                assert abs(i) <= trip.i0 * left * (1 + REL) + 1e-9
            if t >= trip.t0 + trip.ramp_s:
                assert i == 0.0 and d.contactors_open
        # flags are exact
        cmd = d.commanded_current_a
        if d.current_limit_achieved:
            lim = d.evse_max_charge_current_a if cmd > 0 else d.evse_max_discharge_current_a
            assert cmd != 0 and abs(cmd) == lim
        if d.power_limit_achieved:
            lim = d.evse_max_charge_power_w if cmd > 0 else d.evse_max_discharge_power_w
            assert cmd != 0 and math.isclose(abs(cmd) * v, lim, rel_tol=1e-9, abs_tol=1e-9)
        if cmd > 0:
            assert d.current_limit_achieved == (cmd == d.evse_max_charge_current_a)
        # meters never go backwards
        assert d.charged_wh >= prev_c and d.discharged_wh >= prev_d
        prev_c, prev_d = d.charged_wh, d.discharged_wh
        prev_i, prev_t = i, max(prev_t, t)  # the controller's clock never goes backwards
        flowed_c = flowed_c or i > 0
        flowed_d = flowed_d or i < 0
    event(f"charge flowed: {flowed_c}")
    event(f"discharge flowed: {flowed_d}")
    event(f"safe state: {trip is not None}")


gaps = st.one_of(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.just(0.0), st.floats(-0.5, 0.0))

run_args = dict(
    grid_extra=st.one_of(st.none(), party("site", mins=False)),
    mode=st.sampled_from(Mode),
    # gaps: mostly forward, sometimes zero, sometimes a clock that jumps backwards
    steps=st.lists(st.tuples(gaps, request), min_size=1, max_size=60),
    trip_at=st.one_of(st.none(), st.integers(0, 60)),
    cause=st.sampled_from(SafeStateCause),
    scheduled=st.one_of(st.none(), st.integers(0, 2)),
    precharge_to=st.floats(-100.0, 3000.0),
)


@SETTINGS
@given(ch=charger(), ev=party("ev"), sc=st.one_of(st.none(), scenario()), **run_args)
def test_no_step_exceeds_any_limit(**kw: object) -> None:
    """Random parties, backend plans, requests, safe-state trips: nothing above any limit."""
    check_run(**kw)  # type: ignore[arg-type]


v2g_request = request.map(
    lambda r: replace(
        r,
        target_current_a=-abs(r.target_current_a)
        if r.target_current_a == r.target_current_a
        else r.target_current_a,
        min_v2x_energy_wh=-abs(r.min_v2x_energy_wh),
        stop=False,
    )
)


@SETTINGS
@given(
    ch=charger(v2g=True),
    ev=party("ev", v2g=True, mins=False),
    sc=scenario(v2g=True),
    **{
        **run_args,
        "steps": st.lists(st.tuples(gaps, v2g_request), min_size=1, max_size=60),
    },
)
def test_no_v2g_step_exceeds_any_limit(**kw: object) -> None:
    """The same, steered towards discharge (V2G) so the discharge side is hammered too."""
    check_run(**kw)  # type: ignore[arg-type]


@SETTINGS
@given(
    ch=charger(),
    ev=party("ev", bounded=True),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=30),
    late=st.floats(0.0, 5.0),
)
def test_comm_loss_reaches_safe_state_in_time(
    ch: ChargerSpec, ev: PartyLimits, gaps: list[float], late: float
) -> None:
    parties = Parties(evse=ch.limits, ev=ev, cable=ch.cable)
    try:
        ctl = SeccController(parties, ch, mode=Mode.DYNAMIC, comm_timeout_s=0.5)
    except LimitsError:
        return
    ctl.start_power_delivery(0.0)
    t = 0.0
    v = max(ctl.envelope.min_voltage_v + 1.0, min(700.0, ctl.envelope.max_voltage_v - 1.0))
    for g in gaps:
        t += g
        ctl.step(t, EvRequest(v))
    last_req = t
    # no more requests: timer ticks only
    deadline = last_req + 0.5 + ch.safe_ramp_down_s
    tick = last_req
    while tick < deadline + late:
        tick += 0.05
        d = ctl.tick(tick)
        if tick - last_req > 0.5 + 1e-9:
            assert d.safe_state
        if tick >= deadline:
            assert d.present_current_a == 0.0 and d.contactors_open


@st.composite
def truck(draw: st.DrawFn, v2g_only: bool = False) -> BatterySpec:
    cap = draw(st.floats(5_000.0, 1_000_000.0))
    floor = draw(st.floats(0.0, 0.6))
    v0 = draw(st.floats(300.0, 700.0))
    pts = ((0.0, v0), (0.5, v0 + draw(st.floats(1.0, 80.0))), (1.0, v0 + 150.0))
    i_max, p_max = draw(st.floats(1.0, 3500.0)), draw(st.floats(1000.0, 4e6))
    v2g = v2g_only or draw(st.integers(0, 3)) > 0
    limits = PartyLimits(
        "truck", max_voltage_v=v0 + 150.0 + draw(st.floats(1.0, 200.0)),
        min_voltage_v=max(0.0, v0 - draw(st.floats(1.0, 100.0))),
        max_charge_current_a=i_max, max_charge_power_w=p_max,
        max_discharge_current_a=draw(st.floats(1.0, 3500.0)) if v2g else 0.0,
        max_discharge_power_w=draw(st.floats(1000.0, 4e6)) if v2g else 0.0,
    )  # fmt: skip
    max_soc = draw(st.floats(max(floor, 0.5), 1.0))
    return BatterySpec(
        name="t",
        capacity_wh=cap,
        ocv_curve=pts,
        internal_resistance_ohm=draw(st.floats(0.0, 0.1)),
        limits=limits,
        charge_efficiency=draw(st.floats(0.8, 1.0)),
        discharge_efficiency=draw(st.floats(0.8, 1.0)),
        max_soc=max_soc,
        v2g_min_soc=floor,
        discharge_taper_soc=draw(st.floats(0.001, 0.1)),
        initial_soc=draw(st.floats(floor, max_soc)),
        target_soc=draw(st.floats(0.0, 1.0)),
        departure_s=draw(mostly(INF, st.floats(10.0, 1000.0))),
    )


@settings(
    max_examples=max(80, EXAMPLES // 4), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    tr=truck(),
    ch=charger(),
    sc=scenario(),
    mode=st.sampled_from(Mode),
    dt=st.floats(0.05, 1.0),
)
def test_truck_and_charger_energy_balance_and_soc_window(
    tr: BatterySpec, ch: ChargerSpec, sc: Scenario, mode: Mode, dt: float
) -> None:
    try:
        res = simulate(tr, ch, sc, mode=mode, duration_s=min(sc.session_duration_s, 60.0), dt_s=dt)
    except LimitsError:  # an empty envelope is refused up front, with a typed error
        event("refused: empty envelope or battery outside it")
        return
    event(f"charged: {res.secc.meter.charged_wh > 0}")
    event(f"discharged: {res.secc.meter.discharged_wh > 0}")
    b, m = res.battery, res.secc.meter
    floor, top = tr.v2g_min_soc, tr.max_soc
    for s in res.samples:
        # SoC never leaves the V2G window (nor goes above max_soc)
        assert s.soc >= floor - 1e-9
        assert s.soc <= max(top, tr.initial_soc) + 1e-9
    # energy balance: battery energy change = metered energy x efficiency
    expected = m.charged_wh * tr.charge_efficiency - m.discharged_wh / tr.discharge_efficiency
    assert math.isclose(b.energy_wh - res.start_energy_wh, expected, rel_tol=1e-9, abs_tol=1e-6)
    # defence in depth never had to fire: the charger kept to the battery's limits
    assert res.truck.fault is None


def test_truck_refuses_an_over_delivering_charger() -> None:
    """A charger that delivers more than the battery's limits makes the truck stop."""
    from mcscomm.power import load_charger, load_truck

    secc, tc = pair(load_truck("mcs_7pack"), load_charger("mcs_1mw_bpt"))
    req = tc.request(0.0)
    assert not req.stop
    tc.observe(0.0, 1400.0, req.present_voltage_v)  # 1 400 A into a 1 000 A battery
    assert tc.fault is not None
    req = tc.request(0.25)
    assert req.stop and req.max_charge_current_a == 0.0 and req.max_discharge_current_a == 0.0
    secc.start_power_delivery(0.25)
    assert secc.step(0.25, req).present_current_a == 0.0


def test_battery_never_crosses_floor_even_with_a_greedy_backend() -> None:
    """Long full-power discharge from just above the floor: stops at, not below, the floor."""
    from mcscomm.power import load_charger, load_truck

    tr = load_truck("mcs_7pack")
    sc = Scenario("drain", (EmsStep(0.0, -5e6),), duration_s=600.0)
    from dataclasses import replace

    tr = replace(tr, initial_soc=tr.v2g_min_soc + 0.01)
    res = simulate(tr, load_charger("mcs_1mw_bpt"), sc, dt_s=0.25)
    socs = [s.soc for s in res.samples]
    assert min(socs) >= tr.v2g_min_soc
    assert socs[-1] < tr.v2g_min_soc + 0.002  # it did discharge down towards the floor
    assert Battery(tr).discharge_derate() > 0


@settings(
    max_examples=max(80, EXAMPLES // 4), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    tr=truck(v2g_only=True), ch=charger(v2g=True), sc=scenario(v2g=True), dt=st.floats(0.05, 1.0)
)
def test_v2g_energy_balance_and_floor(
    tr: BatterySpec, ch: ChargerSpec, sc: Scenario, dt: float
) -> None:
    """Discharge-heavy plans: the floor holds, the books balance, the truck never faults."""
    tr = replace(tr, departure_s=INF, discharge_taper_soc=min(tr.discharge_taper_soc, 0.01))
    test_truck_and_charger_energy_balance_and_soc_window.hypothesis.inner_test(  # type: ignore[attr-defined]
        tr, ch, sc, Mode.DYNAMIC, dt
    )


offer = st.builds(
    EvseLimits,
    st.floats(0.0, 5e6),
    st.floats(0.0, 5000.0),
    st.floats(0.0, 5e6),
    st.floats(0.0, 5000.0),
    st.floats(100.0, 1500.0),
    st.floats(0.0, 500.0),
)


@SETTINGS
@given(
    tr=truck(),
    soc=st.floats(0.0, 1.0),
    offers=st.lists(offer, min_size=1, max_size=5),
    mode=st.sampled_from(Mode),
    now=st.floats(0.0, 5000.0),
)
def test_truck_never_asks_beyond_battery_or_charger(
    tr: BatterySpec, soc: float, offers: list[EvseLimits], mode: Mode, now: float
) -> None:
    b = Battery(tr, soc=max(soc, tr.v2g_min_soc) if soc < tr.v2g_min_soc else soc)
    tc = TruckController(b, mode=mode)
    for o in offers:
        tc.accept_evse_limits(o)
        r = tc.request(now)
        assert r.max_charge_current_a <= min(b.max_charge_current_a(), o.evse_max_charge_current_a)
        assert r.max_charge_power_w <= min(b.max_charge_power_w(), o.evse_max_charge_power_w)
        assert r.max_discharge_current_a <= min(
            b.max_discharge_current_a(), o.evse_max_discharge_current_a
        )
        assert r.max_discharge_power_w <= min(
            b.max_discharge_power_w(), o.evse_max_discharge_power_w
        )
        if b.soc <= tr.v2g_min_soc:
            assert r.max_discharge_power_w == 0.0
        if mode is Mode.SCHEDULED and r.target_current_a > 0:
            assert r.target_current_a <= r.max_charge_current_a
            assert (
                r.target_current_a * r.present_voltage_v <= r.max_charge_power_w * (1 + REL) + 1e-9
            )
        if mode is Mode.SCHEDULED and r.target_current_a < 0:
            assert -r.target_current_a <= r.max_discharge_current_a
            assert (
                -r.target_current_a * r.present_voltage_v
                <= r.max_discharge_power_w * (1 + REL) + 1e-9
            )
        over = o.evse_max_charge_current_a > tr.limits.max_charge_current_a
        assert over == any(x.startswith("EVSE charge current") for x in tc.refused)


@SETTINGS
@given(
    ch=charger(),
    ev=party("ev", mins=False),
    sc=scenario(),
    start=st.floats(0.0, 100.0),
    duration=st.floats(1.0, 200.0),
    max_entries=st.integers(12, 1024),
    probes=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20),
)
def test_schedules_respect_envelope_and_backend(
    ch: ChargerSpec,
    ev: PartyLimits,
    sc: Scenario,
    start: float,
    duration: float,
    max_entries: int,
    probes: list[float],
) -> None:
    try:
        env = negotiate(
            Parties(evse=ch.limits, ev=ev, cable=ch.cable, grid=ch.grid_party()), strict=False
        )
    except EnvelopeInverted:  # an empty voltage window: no session, no schedule
        return
    ems = Ems(sc, t0=start)
    offers = build_schedules(env, start=start, duration_s=duration, ems=ems,
                             max_entries=max_entries, efficiency=ch.efficiency)  # fmt: skip
    assert 1 <= len(offers) <= 3
    c_max = env.charge.max_power_w if env.charge.available else 0.0
    d_max = env.discharge.max_power_w if env.discharge.available else 0.0
    for o in offers:
        for sched in (o.charging, o.discharging):
            if sched is not None:
                assert len(sched.entries) <= max_entries
                assert math.isclose(sum(d for d, _ in sched.entries), duration, rel_tol=1e-9)
        for f in probes:
            t = start + f * duration * 0.999
            assert o.charge_power_at(t) <= c_max and o.discharge_power_at(t) <= d_max
            if o.schedule_tuple_id in (1, 2):  # the backend-plan tuples follow the plan
                s = ems.at(t)
                assert le(o.charge_power_at(t), s.max_charge_power_w)
                assert le(o.charge_power_at(t), s.grid_import_w * ch.efficiency)
                assert le(o.discharge_power_at(t), s.max_discharge_power_w)
                assert le(o.discharge_power_at(t), s.grid_export_w / ch.efficiency)
                if s.setpoint_w >= 0:
                    assert o.discharge_power_at(t) == 0.0
                    assert o.charge_power_at(t) <= s.setpoint_w
                else:
                    assert o.charge_power_at(t) == 0.0
