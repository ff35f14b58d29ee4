"""``mcscomm session --csms`` and ``mcscomm secc --csms`` against ``mcscomm ems`` (subprocesses)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcscomm import cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ems(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "ems.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcscomm.cli",
            "ems",
            "--listen",
            f"127.0.0.1:{port}",
            "--time-scale",
            "60",
            "--start",
            "17:05",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:  # pragma: no cover - diagnostic
        proc.kill()
        pytest.fail(f"mcscomm ems did not start: {(tmp_path / 'ems.log').read_text()}")
    try:
        yield f"ws://127.0.0.1:{port}/CS1"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_session_follows_the_csms_into_discharge(
    ems: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    code = cli.main(
        [
            "-q",
            "session",
            "--csms",
            ems,
            "--duration",
            "8",
            "--trace",
            str(trace),
            "--certs",
            str(tmp_path / "pki"),
        ]
    )
    assert code == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "s wall clock for" in out and "virtual" not in out  # --csms implies real time
    samples = [r for r in map(json.loads, trace.read_text().splitlines()) if r["kind"] == "power"]
    assert samples, "no power samples"
    # The depot clock starts inside the evening peak: the EMS asks this truck to feed power back.
    assert min(s["power_w"] for s in samples) < -100_000


def test_bad_csms_url_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-q", "session", "--csms", "http://nope", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--csms wants" in err[0]
