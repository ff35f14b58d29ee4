"""``mcscomm ems``: the depot CSMS/EMS command, with in-process demo trucks."""

from __future__ import annotations

import pytest

from mcscomm.cli import main


def test_ems_demo_runs_a_peak_with_v2g(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "-q",
            "ems",
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "2",
            "--duration",
            "3",
            "--interval",
            "0.5",
            "--time-scale",
            "600",
            "--start",
            "17:30",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "CSMS/EMS listening on ws://127.0.0.1:" in out
    lines = [line for line in out.splitlines() if line.startswith("depot 1")]
    assert any("peak" in line and "DEMO1/1" in line and "DEMO2/1" in line for line in lines)
    assert any(" -" in line.split("->", 1)[1] for line in lines if "->" in line)  # discharging
    assert "EMS done: 2 stations, 2 transactions" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--peak", "17"],
        ["--start", "25:00"],
        ["--time-scale", "0"],
        ["--truck", "nope", "--demo", "1"],
    ],
)
def test_ems_rejects_bad_options_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["-q", "ems", "--listen", "127.0.0.1:0", "--duration", "0.1", *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mcscomm ems:")
