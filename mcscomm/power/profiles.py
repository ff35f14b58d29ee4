"""Truck, charger and backend-scenario profiles (TOML), validated on load.

Shipped profiles live in ``mcscomm/data/profiles/{trucks,chargers,scenarios}/<name>.toml``;
``load_truck("mcs_7pack")`` finds a shipped one, ``load_truck("my/truck.toml")`` a file. Every
problem is a :class:`ProfileError` naming the file and the dotted key ("mcs_7pack.toml:
battery.capacity_kwh: must be > 0"), unknown keys included (a typo must not silently fall back to
a default). Powers are written in kW and energies in kWh in the files (readable); the loaded
objects use W and Wh.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from mcscomm.power.battery import Battery
from mcscomm.power.ems import EmsStep, Scenario
from mcscomm.power.limits import (
    INF,
    BatterySpec,
    ChargerSpec,
    LimitsError,
    PartyLimits,
    Ramp,
)

KINDS = ("trucks", "chargers", "scenarios")
_REQUIRED = object()


class ProfileError(ValueError):
    """A profile that cannot be read or is invalid; the message names file and key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


def _root() -> Traversable:
    return files("mcscomm").joinpath("data", "profiles")


def list_profiles() -> dict[str, list[str]]:
    """Names of the shipped profiles by kind: {"trucks": [...], "chargers": [...], ...}."""
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        d = _root().joinpath(kind)
        names = [p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml")] if d.is_dir() else []
        out[kind] = sorted(names)
    return out


def _read(kind: str, name_or_path: str | Path) -> tuple[str, dict[str, Any]]:
    s = str(name_or_path)
    if s.endswith(".toml") or "/" in s or "\\" in s:
        path = Path(s)
        label = path.name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(label, "", f"cannot read: {exc.strerror or exc}") from exc
    else:
        res = _root().joinpath(kind, f"{s}.toml")
        label = f"{s}.toml"
        if not res.is_file():
            known = ", ".join(list_profiles().get(kind, [])) or "none"
            raise ProfileError(label, "", f"no shipped {kind[:-1]} profile {s!r} (known: {known})")
        text = res.read_text(encoding="utf-8")
    try:
        return label, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(label, "", f"not valid TOML: {exc}") from exc


class _Table:
    """Typed, checked access to one TOML table; remembers which keys were used."""

    def __init__(self, file: str, path: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ProfileError(file, path, "must be a table")
        self.file, self.path, self.data = file, path, data
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def err(self, k: str, msg: str) -> ProfileError:
        return ProfileError(self.file, self.key(k), msg)

    def num(
        self,
        k: str,
        default: Any = _REQUIRED,
        *,
        lo: float = 0.0,
        hi: float = INF,
        lo_open: bool = False,
    ) -> float:
        self.used.add(k)
        if k not in self.data:
            if default is _REQUIRED:
                raise self.err(k, "missing")
            return float(default)
        v = self.data[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.err(k, f"must be a number, got {v!r}")
        f = float(v)
        if math.isnan(f) or f < lo or f > hi or (lo_open and f == lo):
            rng = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi < INF else "")
            raise self.err(k, f"must be {rng}, got {v!r}")
        return f

    def text(self, k: str, default: str | None = None) -> str:
        self.used.add(k)
        v = self.data.get(k, default)
        if not isinstance(v, str):
            raise self.err(k, "missing" if v is None else f"must be a string, got {v!r}")
        return v

    def sub(self, k: str, required: bool = True) -> _Table | None:
        self.used.add(k)
        if k not in self.data:
            if required:
                raise self.err(k, "missing table")
            return None
        return _Table(self.file, self.key(k), self.data[k])

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise self.err(extra[0], "unknown key")


def _tables(file: str, data: dict[str, Any], allowed: tuple[str, ...]) -> _Table:
    top = _Table(file, "", data)
    for k in data:
        if k not in allowed:
            raise top.err(k, "unknown table")
    return top


def _kw(t: _Table, k: str, default: Any = _REQUIRED) -> float:
    return t.num(k, default) * 1000.0


def _direction(t: _Table | None, prefix: str) -> dict[str, float]:
    if t is None:  # no table: this direction is impossible (unidirectional)
        return {f"max_{prefix}_current_a": 0.0, f"max_{prefix}_power_w": 0.0}
    out = {
        f"max_{prefix}_current_a": t.num("max_current_a", lo_open=True),
        f"max_{prefix}_power_w": _kw(t, "max_power_kw"),
        f"min_{prefix}_current_a": t.num("min_current_a", 0.0),
        f"min_{prefix}_power_w": _kw(t, "min_power_kw", 0.0),
    }
    if out[f"max_{prefix}_power_w"] <= 0:
        raise t.err("max_power_kw", "must be > 0")
    for q, unit in (("current", "_a"), ("power", "_w")):
        if out[f"min_{prefix}_{q}{unit}"] > out[f"max_{prefix}_{q}{unit}"]:
            key = "min_current_a" if q == "current" else "min_power_kw"
            raise t.err(key, f"above max_{q}")
    t.done()
    return out


def load_truck(name_or_path: str | Path) -> BatterySpec:
    """A truck (battery) profile: shipped name (see :func:`list_profiles`) or a TOML path."""
    file, data = _read("trucks", name_or_path)
    top = _tables(file, data, ("truck", "battery", "charge", "discharge", "voltage", "derating"))
    truck = top.sub("truck")
    bat = top.sub("battery")
    volt = top.sub("voltage")
    der = top.sub("derating", required=False)
    assert truck and bat and volt
    name = truck.text("name", Path(file).stem)
    desc = truck.text("description", "")
    connector = truck.text("connector", "MCS")
    truck.done()
    vmax = volt.num("max_v", lo_open=True)
    vmin = volt.num("min_v", 0.0)
    if vmin > vmax:
        raise volt.err("min_v", "above max_v")
    volt.done()
    charge = _direction(top.sub("charge"), "charge")
    discharge = _direction(top.sub("discharge", required=False), "discharge")
    limits = PartyLimits(name=f"truck {name}", max_voltage_v=vmax, min_voltage_v=vmin,
                         **charge, **discharge)  # fmt: skip
    curve_raw = bat.data.get("ocv_curve")
    bat.used.add("ocv_curve")
    if not isinstance(curve_raw, list) or len(curve_raw) < 2:
        raise bat.err("ocv_curve", "must be a list of at least two [soc, volts] pairs")
    curve: list[tuple[float, float]] = []
    for k, pt in enumerate(curve_raw):
        ok = isinstance(pt, list) and len(pt) == 2
        ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pt)
        if not ok:
            raise bat.err(f"ocv_curve[{k}]", f"must be [soc, volts], got {pt!r}")
        curve.append((float(pt[0]), float(pt[1])))
    d = der or _Table(file, "derating", {})
    kwargs: dict[str, Any] = dict(
        name=name,
        capacity_wh=bat.num("capacity_kwh", lo_open=True) * 1000.0,
        ocv_curve=tuple(curve),
        internal_resistance_ohm=bat.num("internal_resistance_ohm", 0.0),
        limits=limits,
        charge_efficiency=bat.num("charge_efficiency", 0.97, hi=1.0, lo_open=True),
        discharge_efficiency=bat.num("discharge_efficiency", 0.97, hi=1.0, lo_open=True),
        initial_soc=bat.num("initial_soc", 0.3, hi=1.0),
        target_soc=bat.num("target_soc", 0.8, hi=1.0),
        departure_s=bat.num("departure_s", INF, lo_open=True),
        charge_taper_soc=d.num("charge_taper_soc", 0.8, hi=1.0),
        taper_floor=d.num("taper_floor", 0.1, hi=1.0),
        max_soc=d.num("max_soc", 1.0, hi=1.0),
        v2g_min_soc=d.num("v2g_min_soc", 0.3, hi=1.0),
        discharge_taper_soc=d.num("discharge_taper_soc", 0.02, hi=1.0, lo_open=True),
        connector=connector,
        description=desc,
    )
    bat.done()
    d.done()
    spec = BatterySpec(**kwargs)
    try:
        Battery(spec)  # the model's own consistency checks (curve order, window, ...)
    except LimitsError as exc:
        raise ProfileError(file, "battery", str(exc)) from exc
    return spec


def load_charger(name_or_path: str | Path) -> ChargerSpec:
    """A charger profile: shipped name or TOML path. No ``[discharge]`` = unidirectional."""
    file, data = _read("chargers", name_or_path)
    top = _tables(
        file, data, ("charger", "voltage", "charge", "discharge", "ramp", "cable", "grid")
    )
    ch = top.sub("charger")
    volt = top.sub("voltage")
    assert ch and volt
    name = ch.text("name", Path(file).stem)
    desc = ch.text("description", "")
    connector = ch.text("connector", "MCS")
    if connector not in ("MCS", "CCS"):
        raise ch.err("connector", f"must be MCS or CCS, got {connector!r}")
    eff = ch.num("efficiency", 0.96, hi=1.0, lo_open=True)
    safe_s = ch.num("safe_ramp_down_s", 0.5, hi=60.0, lo_open=True)
    ch.done()
    vmax = volt.num("max_v", lo_open=True)
    vmin = volt.num("min_v", 0.0)
    if vmin > vmax:
        raise volt.err("min_v", "above max_v")
    volt.done()
    charge = _direction(top.sub("charge"), "charge")
    discharge = _direction(top.sub("discharge", required=False), "discharge")
    limits = PartyLimits(name=f"charger {name}", max_voltage_v=vmax, min_voltage_v=vmin,
                         **charge, **discharge)  # fmt: skip
    rt = top.sub("ramp", required=False) or _Table(file, "ramp", {})
    ramp = Ramp(
        current_a_per_s=rt.num("current_a_per_s", INF, lo_open=True),
        power_w_per_s=_kw(rt, "power_kw_per_s", INF),
        voltage_v_per_s=rt.num("voltage_v_per_s", 500.0, lo_open=True),
    )
    rt.done()
    if ramp.power_w_per_s <= 0:
        raise rt.err("power_kw_per_s", "must be > 0")
    ct = top.sub("cable", required=False) or _Table(file, "cable", {})
    c_i = ct.num("max_current_a", INF, lo_open=True)
    c_v = ct.num("max_voltage_v", INF, lo_open=True)
    ct.done()
    cable = PartyLimits(
        name=f"cable {name}", max_voltage_v=c_v, max_charge_current_a=c_i,
        max_discharge_current_a=c_i,
    )  # fmt: skip
    gt = top.sub("grid", required=False) or _Table(file, "grid", {})
    imp = _kw(gt, "import_kw", INF)
    exp = _kw(gt, "export_kw", INF if discharge["max_discharge_power_w"] > 0 else 0.0)
    gt.done()
    return ChargerSpec(
        name=name, limits=limits, cable=cable, grid_import_w=imp, grid_export_w=exp, ramp=ramp,
        efficiency=eff, safe_ramp_down_s=safe_s, connector=connector, description=desc,
    )  # fmt: skip


def _setpoint(t: _Table) -> float:
    t.used.add("setpoint_kw")
    v = t.data.get("setpoint_kw", "max")
    if v == "max":
        return INF
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise t.err("setpoint_kw", f'must be a number (kW, < 0 = discharge) or "max", got {v!r}')
    return float(v) * 1000.0


def _steps(file: str, raw: Any) -> Iterator[EmsStep]:
    if not isinstance(raw, list) or not raw:
        raise ProfileError(file, "step", "needs at least one [[step]]")
    last = -1.0
    for k, item in enumerate(raw):
        t = _Table(file, f"step[{k}]", item)
        at = t.num("at_s")
        if k == 0 and at != 0.0:
            raise t.err("at_s", "the first step must start at 0")
        if at <= last:
            raise t.err("at_s", "steps must be in increasing time order")
        last = at
        yield EmsStep(
            at_s=at,
            setpoint_w=_setpoint(t),
            max_charge_power_w=_kw(t, "max_charge_kw", INF),
            max_discharge_power_w=_kw(t, "max_discharge_kw", INF),
            grid_import_w=_kw(t, "grid_import_kw", INF),
            grid_export_w=_kw(t, "grid_export_kw", INF),
            label=t.text("label", ""),
        )
        t.done()


def load_scenario(name_or_path: str | Path, *, time_scale: float | None = None) -> Scenario:
    """A backend scenario: shipped name or TOML path; ``time_scale`` overrides the file's."""
    file, data = _read("scenarios", name_or_path)
    top = _tables(file, data, ("scenario", "truck", "step"))
    sc = top.sub("scenario")
    assert sc
    tr = top.sub("truck", required=False) or _Table(file, "truck", {})
    top.used.add("step")
    steps = tuple(_steps(file, data.get("step")))
    name = sc.text("name", Path(file).stem)
    desc = sc.text("description", "")
    duration = sc.num("duration_s", 1800.0, lo_open=True)
    scale = sc.num("time_scale", 1.0, lo_open=True)
    if time_scale is not None:
        scale = time_scale
    sc.done()

    def opt(k: str, hi: float = 1.0) -> float | None:
        return tr.num(k, hi=hi) if k in tr.data else None

    initial, target = opt("initial_soc"), opt("target_soc")
    departure = opt("departure_s", INF)
    tr.done()
    try:
        return Scenario(
            name=name, steps=steps, duration_s=duration, time_scale=scale, description=desc,
            initial_soc=initial, target_soc=target, departure_s=departure,
        )  # fmt: skip
    except LimitsError as exc:
        raise ProfileError(file, "scenario", str(exc)) from exc
