"""``mcscomm plot``: a trace becomes a PNG with power, current, voltage and SoC."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcscomm import cli
from mcscomm.plot import _spans, load_series
from mcscomm.session import events as ev
from mcscomm.trace import SessionRecorder, TraceWriter

pytest.importorskip("matplotlib")


def _trace(path: Path) -> None:
    with TraceWriter(path) as writer:
        recorder = SessionRecorder(writer=writer)
        for i in range(600):
            t = i * 0.25
            power = 900_000.0 if i < 300 else -400_000.0
            recorder.event(
                ev.PowerSample(
                    t,
                    800.0 + i * 0.1,
                    power / 800.0,
                    power,
                    40.0 + i / 60,
                    "charger_power" if i < 300 else "grid_export",
                    setpoint_w=power,
                    max_charge_power_w=1_000_000.0,
                    max_discharge_power_w=600_000.0,
                ),
                "secc",
            )
        recorder.finish("success", "terminated")


def test_load_series_and_direction_spans(tmp_path: Path) -> None:
    from mcscomm.trace import read_trace

    path = tmp_path / "s.jsonl"
    _trace(path)
    series = load_series(read_trace(path))
    assert len(series.t) == 600 and series.power_kw[0] == 900.0 and series.power_kw[-1] == -400.0
    assert series.max_discharge_kw[0] == -600.0 and len(series.setpoint_kw) == 600
    assert "charged" in series.title and "success" in series.title
    spans = _spans(series.t, series.power_kw)
    assert [(sign) for _s, _e, sign in spans] == [1, -1]
    assert spans[0][1] == pytest.approx(75.0)


def test_plot_command_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    _trace(path)
    out = tmp_path / "s.png"
    assert cli.main(["plot", str(path), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_plot_of_a_trace_without_power_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text('{"t": 0, "kind": "event", "event": "connected"}\n')
    assert cli.main(["plot", str(path), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mcscomm plot:") and "no power samples" in err and "\n" not in err
