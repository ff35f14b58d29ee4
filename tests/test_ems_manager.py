"""The depot energy manager (pure): grid limits, departure SoC, V2G only with slack."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcscomm.ems.manager import (
    DepotLimits,
    DepotManager,
    Truck,
    in_window,
    parse_hhmm,
    parse_window,
)

PEAK = 18 * 3600.0
NIGHT = 23 * 3600.0
DAY = 12 * 3600.0


def mgr(imp: float = 2e6, exp: float = 1e6, interval: float = 60.0) -> DepotManager:
    return DepotManager(DepotLimits(imp, exp), control_interval_s=interval)


def truck(key: str = "t", **kw: object) -> Truck:
    base: dict[str, object] = dict(
        soc=0.5,
        capacity_wh=700e3,
        max_charge_w=750e3,
        max_discharge_w=750e3,
        time_left_s=12 * 3600.0,
        bidirectional=True,
    )
    base.update(kw)
    return Truck(key=key, **base)  # type: ignore[arg-type]


def test_windows() -> None:
    assert parse_hhmm("17:30") == 17.5 * 3600
    assert parse_window("22:00-06:00") == (22 * 3600, 6 * 3600)
    assert in_window(23 * 3600, (22 * 3600, 6 * 3600)) and in_window(
        1 * 3600, (22 * 3600, 6 * 3600)
    )
    assert not in_window(12 * 3600, (22 * 3600, 6 * 3600))
    with pytest.raises(ValueError):
        parse_window("17:00")
    with pytest.raises(ValueError):
        parse_hhmm("25:00")


def test_discharges_into_the_peak_and_charges_overnight() -> None:
    m = mgr()
    t = truck()
    peak = m.decide([t], PEAK)
    assert peak.period == "peak" and peak.setpoints["t"] < 0
    night = m.decide([t], NIGHT)
    assert night.period == "night" and night.setpoints["t"] == 750e3
    day = m.decide([t], DAY)
    assert 0 < day.setpoints["t"] < 750e3  # only what departure needs


def test_no_v2g_without_slack_or_below_the_floor_or_unidirectional() -> None:
    m = mgr()
    late = truck(soc=0.4, time_left_s=1800.0)  # 280 kWh in 30 min: needs everything
    assert m.decide([late], PEAK).setpoints["t"] > 0
    floor = truck(soc=0.3, v2g_min_soc=0.3)
    assert m.decide([floor], PEAK).setpoints["t"] >= 0
    uni = truck(bidirectional=False, max_discharge_w=0.0)
    assert m.decide([uni], PEAK).setpoints["t"] >= 0


def test_grid_import_is_a_hard_limit_shared_alike() -> None:
    m = mgr(imp=500e3)
    fleet = [truck(f"t{k}", soc=0.2, time_left_s=3600.0) for k in range(3)]
    d = m.decide(fleet, DAY)
    assert d.total_charge_w <= 500e3 * 0.96 + 1e-6
    assert len({round(p) for p in d.setpoints.values()}) == 1  # scaled alike
    assert d.notes and "grid import binds" in d.notes[0]


def test_no_overshoot_within_one_interval() -> None:
    m = mgr(interval=600.0)
    near = truck(soc=0.79, target_soc=0.8)
    p = m.decide([near], NIGHT).setpoints["t"]
    assert p * 600 / 3600 <= 0.01 * 700e3 + 1e-6  # at most the 1 % left


trucks_st = st.lists(
    st.builds(
        Truck,
        key=st.text("abcdef", min_size=1, max_size=4),
        soc=st.floats(0.0, 1.0),
        capacity_wh=st.floats(50e3, 1e6),
        max_charge_w=st.floats(0.0, 1.5e6),
        max_discharge_w=st.floats(0.0, 1.5e6),
        target_soc=st.floats(0.3, 1.0),
        v2g_min_soc=st.floats(0.0, 0.5),
        time_left_s=st.one_of(st.just(math.inf), st.floats(60.0, 86_400.0)),
        bidirectional=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda t: t.key,
)


@settings(max_examples=300, deadline=None)
@given(
    fleet=trucks_st,
    tod=st.floats(0, 86_399),
    imp=st.floats(0, 5e6),
    exp=st.floats(0, 5e6),
    interval=st.floats(1.0, 3600.0),
)
def test_decisions_respect_every_limit(
    fleet: list[Truck], tod: float, imp: float, exp: float, interval: float
) -> None:
    m = mgr(imp, exp, interval)
    d = m.decide(fleet, tod)
    assert d.total_charge_w <= imp * 0.96 * (1 + 1e-9) + 1e-6
    assert d.total_discharge_w <= exp / 0.96 * (1 + 1e-9) + 1e-6
    for t in fleet:
        p = d.setpoints[t.key]
        assert -t.max_discharge_w - 1e-6 <= p <= t.max_charge_w + 1e-6
        if p < 0:
            assert t.bidirectional and t.soc > t.v2g_min_soc
            # never below the V2G floor within the interval
            assert t.soc - (-p) * interval / 3600 / t.capacity_wh >= t.v2g_min_soc - 1e-9
        if p > 0:
            # never beyond the departure SoC within the interval
            assert t.soc + p * interval / 3600 / t.capacity_wh <= max(t.target_soc, t.soc) + 1e-9
