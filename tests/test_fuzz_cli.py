"""``mcscomm fuzz`` and ``mcscomm fuzz replay`` end to end (in-process targets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcscomm import cli


def test_campaign_writes_report_and_reproducers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "out.json"
    findings = tmp_path / "findings"
    argv = [
        "fuzz",
        "--target",
        "secc",
        "--in-process",
        "--seed",
        "5",
        "--cases",
        "300",
        "--report",
        str(report),
        "--findings",
        str(findings),
        "--planted",
        "crash-on-field",
        "--mutators",
        "value",
        "--no-progress",
    ]
    assert cli.main(argv) == 1  # findings -> non-zero
    data = json.loads(report.read_text())
    assert data["cases"] == 300 and data["execs_per_s"] > 0
    assert {"per_mutator", "per_state"} <= set(data)
    crash = next(f for f in data["findings"] if f["kind"] == "crash")
    assert Path(crash["file"]).exists()
    capsys.readouterr()
    assert cli.main(["fuzz", "replay", crash["file"]]) == 0
    assert "reproduced" in capsys.readouterr().out


def test_clean_campaign_exits_zero(tmp_path: Path) -> None:
    argv = [
        "fuzz",
        "--target",
        "evcc",
        "--in-process",
        "--cases",
        "100",
        "--no-progress",
        "--findings",
        str(tmp_path),
        "--report",
        str(tmp_path / "r.json"),
    ]
    assert cli.main(argv) == 0
    assert json.loads((tmp_path / "r.json").read_text())["findings"] == []


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fuzz", "--mutators", "nope", "--cases", "1"]) == 2
    assert "unknown mutator" in capsys.readouterr().err
    assert cli.main(["fuzz", "--states", "NO_SUCH_STATE", "--cases", "1"]) == 2
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    assert cli.main(["fuzz", "replay", str(bogus)]) == 2
    assert cli.main(["fuzz", "--target", "evcc", "--connect", "127.0.0.1:1", "--cases", "1"]) == 2
