"""Plot a session trace: power, current, voltage and SoC over time (needs the ``plot`` extra).

matplotlib is imported only inside :func:`plot_trace`, so ``import mcscomm.plot`` costs nothing
and a missing extra becomes one clear :class:`PlotUnavailable` error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcscomm.trace import read_trace


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed (install ``mcscomm[plot]``)."""


@dataclass
class Series:
    """The columns of a trace that the plot needs (times in seconds)."""

    t: list[float] = field(default_factory=list)
    power_kw: list[float] = field(default_factory=list)
    current_a: list[float] = field(default_factory=list)
    voltage_v: list[float] = field(default_factory=list)
    soc_t: list[float] = field(default_factory=list)
    soc: list[float] = field(default_factory=list)
    limit_t: list[float] = field(default_factory=list)
    max_charge_kw: list[float] = field(default_factory=list)
    max_discharge_kw: list[float] = field(default_factory=list)
    setpoint_t: list[float] = field(default_factory=list)
    setpoint_kw: list[float] = field(default_factory=list)
    binding: list[str] = field(default_factory=list)
    title: str = ""


def load_series(records: Iterable[dict[str, Any]]) -> Series:
    """Collect the plotted columns from trace records (power samples, setpoints, summary)."""
    s = Series()
    for r in records:
        kind = r.get("kind")
        if kind == "power":
            t = float(r["t"])
            s.t.append(t)
            s.power_kw.append(float(r.get("power_w") or 0.0) / 1000.0)
            s.current_a.append(float(r.get("current_a") or 0.0))
            s.voltage_v.append(float(r.get("voltage_v") or 0.0))
            s.binding.append(str(r.get("binding_limit") or ""))
            if r.get("soc") is not None:
                s.soc_t.append(t)
                s.soc.append(float(r["soc"]))
            if r.get("max_charge_power_w") is not None:
                s.limit_t.append(t)
                s.max_charge_kw.append(float(r["max_charge_power_w"]) / 1000.0)
                s.max_discharge_kw.append(-float(r.get("max_discharge_power_w") or 0.0) / 1000.0)
            if r.get("setpoint_w") is not None:
                s.setpoint_t.append(t)
                s.setpoint_kw.append(float(r["setpoint_w"]) / 1000.0)
        elif kind == "event" and r.get("event") == "backend_setpoint_changed":
            if r.get("setpoint_w") is not None:
                s.setpoint_t.append(float(r["t"]))
                s.setpoint_kw.append(float(r["setpoint_w"]) / 1000.0)
        elif kind == "summary":
            s.title = (
                f"charged {float(r.get('energy_charged_wh', 0)) / 1000:.1f} kWh, "
                f"discharged {float(r.get('energy_discharged_wh', 0)) / 1000:.1f} kWh, "
                f"peak +{float(r.get('peak_charge_power_w', 0)) / 1000:.0f}"
                f"/-{float(r.get('peak_discharge_power_w', 0)) / 1000:.0f} kW, "
                f"{float(r.get('duration_s', 0)) / 60:.1f} min, {r.get('result', '?')}"
            )
    if s.setpoint_t:
        order = sorted(range(len(s.setpoint_t)), key=s.setpoint_t.__getitem__)
        s.setpoint_t = [s.setpoint_t[i] for i in order]
        s.setpoint_kw = [s.setpoint_kw[i] for i in order]
    return s


def _spans(t: list[float], power: list[float]) -> list[tuple[float, float, int]]:
    """Maximal intervals of constant power direction: (start, end, +1 charge / -1 discharge)."""
    spans: list[tuple[float, float, int]] = []
    start: float | None = None
    sign = 0
    for i, p in enumerate(power):
        s = 1 if p > 1e-3 else (-1 if p < -1e-3 else 0)
        if s != sign:
            if sign != 0 and start is not None:
                spans.append((start, t[i], sign))
            start, sign = t[i], s
    if sign != 0 and start is not None and t:
        spans.append((start, t[-1], sign))
    return spans


def plot_trace(trace: str | Path, output: str | Path, *, title: str | None = None) -> Path:
    """Render ``trace`` (JSON Lines) to ``output`` (PNG, SVG or PDF by extension)."""
    out = Path(output)
    # matplotlib would append ".png" to a name without an extension (even a directory's) and
    # the caller would report a file that was never written
    if out.is_dir() or not out.suffix:
        raise ValueError(f"{out}: give an image file name ending .png, .svg or .pdf")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("plotting needs matplotlib: pip install 'mcscomm[plot]'") from exc

    s = load_series(read_trace(trace))
    if not s.t:
        raise ValueError(f"{trace}: no power samples to plot (did the session reach the loop?)")
    minutes = (s.t[-1] - s.t[0]) > 300
    scale = 60.0 if minutes else 1.0
    unit = "min" if minutes else "s"

    def x(values: list[float]) -> list[float]:
        return [v / scale for v in values]

    charge_colour, discharge_colour = "#2e7d32", "#c62828"
    fig, axes = plt.subplots(4, 1, sharex=True, figsize=(11, 9), height_ratios=[2.2, 1, 1, 1])
    ax_p, ax_i, ax_u, ax_soc = axes
    for start, end, sign in _spans(s.t, s.power_kw):
        for ax in axes:
            ax.axvspan(
                start / scale,
                end / scale,
                color=charge_colour if sign > 0 else discharge_colour,
                alpha=0.07,
                linewidth=0,
            )
    xt = x(s.t)
    ax_p.plot(xt, s.power_kw, color="black", linewidth=1.2, label="power")
    ax_p.fill_between(
        xt,
        s.power_kw,
        0,
        where=[p > 0 for p in s.power_kw],
        color=charge_colour,
        alpha=0.35,
        step="post",
        label="charging",
    )
    ax_p.fill_between(
        xt,
        s.power_kw,
        0,
        where=[p < 0 for p in s.power_kw],
        color=discharge_colour,
        alpha=0.35,
        step="post",
        label="discharging",
    )
    if s.setpoint_t:
        ax_p.step(
            x(s.setpoint_t),
            s.setpoint_kw,
            where="post",
            color="#1565c0",
            linestyle="--",
            linewidth=1.3,
            label="backend setpoint",
        )
    if s.limit_t:
        ax_p.plot(
            x(s.limit_t), s.max_charge_kw, color="#6d4c41", linestyle=":", label="charge limit"
        )
        ax_p.plot(
            x(s.limit_t),
            s.max_discharge_kw,
            color="#8e24aa",
            linestyle=":",
            label="discharge limit",
        )
    ax_p.axhline(0, color="grey", linewidth=0.6)
    ax_p.set_ylabel("power [kW]\n(+ charge / − discharge)")
    # Above the axes, so it never hides the limit lines at the top and bottom of the range.
    ax_p.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncol=6, frameon=False)

    ax_i.plot(xt, s.current_a, color="#ef6c00", linewidth=1.0)
    ax_i.axhline(0, color="grey", linewidth=0.6)
    ax_i.set_ylabel("current [A]")
    ax_u.plot(xt, s.voltage_v, color="#00838f", linewidth=1.0)
    ax_u.set_ylabel("voltage [V]")
    if s.soc:
        ax_soc.plot(x(s.soc_t), s.soc, color="#283593", linewidth=1.2)
    ax_soc.set_ylabel("SoC [%]")
    ax_soc.set_xlabel(f"time [{unit}]")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    heading = title or f"mcscomm session — {Path(trace).name}"
    fig.suptitle(heading + (f"\n{s.title}" if s.title else ""), fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
