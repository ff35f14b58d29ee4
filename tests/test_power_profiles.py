"""Profile loading: every shipped profile loads; every error names the file and the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mcscomm.power import (
    ProfileError,
    list_profiles,
    load_charger,
    load_scenario,
    load_truck,
    negotiate,
)
from mcscomm.power.envelope import build_parties


def test_shipped_profiles() -> None:
    names = list_profiles()
    assert names["trucks"] == ["ccs_3pack", "mcs_7pack"]
    assert names["chargers"] == ["dc_400kw", "mcs_1mw_bpt", "mcs_3750kw"]
    assert names["scenarios"] == ["depot_peak_shaving", "grid_export_cap", "grid_frequency_event"]
    t = load_truck("mcs_7pack")
    assert t.capacity_wh == 728_000.0 and t.limits.max_charge_power_w == 750_000.0
    assert t.limits.max_charge_current_a == 1000.0 and t.limits.max_discharge_power_w == 750_000.0
    assert load_truck("ccs_3pack").limits.max_charge_power_w == 375_000.0
    big = load_charger("mcs_3750kw")
    assert big.limits.max_charge_power_w == 3_750_000.0 and not big.bidirectional
    assert load_charger("mcs_1mw_bpt").bidirectional
    assert not load_charger("dc_400kw").bidirectional
    for c in names["chargers"]:
        for tr in names["trucks"]:
            negotiate(build_parties(load_charger(c), load_truck(tr).limits))
    sc = load_scenario("depot_peak_shaving")
    assert sc.steps[0].setpoint_w == math.inf and sc.steps[1].setpoint_w == -450_000.0
    assert load_scenario("depot_peak_shaving", time_scale=24).session_duration_s == 1800 * 24


def test_load_by_path(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "mcscomm/data/profiles/trucks/mcs_7pack.toml"
    p = tmp_path / "mine.toml"
    p.write_text(src.read_text().replace("capacity_kwh = 728", "capacity_kwh = 624"))
    assert load_truck(p).capacity_wh == 624_000.0
    assert load_truck(str(p)).capacity_wh == 624_000.0


TRUCK = """
[truck]
name = "t"
[battery]
capacity_kwh = 100
ocv_curve = [[0.0, 600.0], [1.0, 800.0]]
[voltage]
max_v = 850
min_v = 500
[charge]
max_current_a = 300
max_power_kw = 200
"""


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (("capacity_kwh = 100", "capacity_kwh = -1"), "battery.capacity_kwh", "must be > 0"),
        (("capacity_kwh = 100", "capacity_kwh = 'big'"), "battery.capacity_kwh", "number"),
        (("capacity_kwh = 100\n", ""), "battery.capacity_kwh", "missing"),
        (("max_power_kw = 200", "max_power_kw = 200\nmax_powr_kw = 3"), "charge.max_powr_kw",
         "unknown key"),
        (("min_v = 500", "min_v = 900"), "voltage.min_v", "above max_v"),
        (("[[0.0, 600.0], [1.0, 800.0]]", "[[0.0, 600.0]]"), "battery.ocv_curve", "two"),
        (("[[0.0, 600.0], [1.0, 800.0]]", "[[0.0, 600.0], [1.0]]"), "battery.ocv_curve[1]",
         "[soc, volts]"),
        (("[[0.0, 600.0], [1.0, 800.0]]", "[[1.0, 600.0], [0.0, 800.0]]"), "battery",
         "ascending"),
        (("[truck]", "[trucks]"), "trucks", "unknown table"),
        (("max_current_a = 300", "max_current_a = 300\nmin_current_a = 400"),
         "charge.min_current_a", "above max_current"),
    ],
)  # fmt: skip
def test_truck_errors_name_file_and_key(
    tmp_path: Path, edit: tuple[str, str], key: str, message: str
) -> None:
    p = tmp_path / "bad_truck.toml"
    p.write_text(TRUCK.replace(*edit))
    with pytest.raises(ProfileError) as info:
        load_truck(p)
    err = info.value
    assert err.file == "bad_truck.toml" and err.key == key
    assert str(err).startswith(f"bad_truck.toml: {key}: ") and message in str(err)


def test_charger_and_scenario_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[charger]\nconnector = "CHAdeMO"\n[voltage]\nmax_v = 500\n'
                 "[charge]\nmax_current_a = 10\nmax_power_kw = 5\n")  # fmt: skip
    with pytest.raises(ProfileError, match=r"^c.toml: charger.connector: must be MCS or CCS"):
        load_charger(p)
    p.write_text("[charger]\n[voltage]\nmax_v = 500\n[charge]\nmax_current_a = 10\n"
                 "max_power_kw = 5\n[ramp]\npower_kw_per_s = 0\n")  # fmt: skip
    with pytest.raises(ProfileError, match=r"ramp.power_kw_per_s: must be > 0"):
        load_charger(p)
    s = tmp_path / "s.toml"
    s.write_text("[scenario]\n[[step]]\nat_s = 5\n")
    with pytest.raises(ProfileError, match=r"^s.toml: step\[0\].at_s: the first step"):
        load_scenario(s)
    s.write_text("[scenario]\n[[step]]\nat_s = 0\n[[step]]\nat_s = 0\n")
    with pytest.raises(ProfileError, match=r"step\[1\].at_s: .*increasing"):
        load_scenario(s)
    s.write_text('[scenario]\n[[step]]\nat_s = 0\nsetpoint_kw = "lots"\n')
    with pytest.raises(ProfileError, match=r"step\[0\].setpoint_kw"):
        load_scenario(s)
    s.write_text("[scenario]\n")
    with pytest.raises(ProfileError, match=r"^s.toml: step: needs at least one"):
        load_scenario(s)
    s.write_text("[scenario\n")
    with pytest.raises(ProfileError, match=r"^s.toml: not valid TOML"):
        load_scenario(s)
    with pytest.raises(ProfileError, match=r"no shipped truck profile 'nope'.*mcs_7pack"):
        load_truck("nope")
    with pytest.raises(ProfileError, match=r"missing.toml: cannot read"):
        load_truck(tmp_path / "missing.toml")
