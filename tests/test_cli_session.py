"""The ``mcscomm session``, ``secc`` and ``evcc`` commands themselves."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mcscomm import cli

ROOT = Path(__file__).resolve().parent.parent
_session = pytest.importorskip("mcscomm.session")
needs_sessions = pytest.mark.skipif(
    not hasattr(_session, "SeccConnection"), reason="mcscomm.session has no SeccConnection yet"
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mcscomm.endpoints.setup import SessionOptions, load_pki

    directory = tmp_path_factory.mktemp("pki")
    load_pki(SessionOptions(pki_dir=directory))
    return directory


def test_tls_off_is_refused_under_the_strict_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["session", "--tls", "off"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mcscomm session:") and "--profile lenient" in err and "\n" not in err


def test_unknown_truck_profile_is_one_line(certs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["session", "--certs", str(certs), "--truck", "no_such_truck"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mcscomm session:") and "no_such_truck" in err and "\n" not in err


@needs_sessions
def test_session_command_writes_log_trace_and_summary(
    certs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # cli.main's logging.basicConfig is a no-op under pytest; INFO is what a user gets by default.
    caplog.set_level(logging.INFO)
    trace = tmp_path / "s.jsonl"
    code = cli.main(["session", "--certs", str(certs), "--duration", "120", "--trace", str(trace)])
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    assert "DC_ChargeLoopReq" in out and "summary: charged" in out
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert {"message", "power", "event", "summary"} <= kinds
    assert records[-1]["kind"] == "summary" and records[-1]["result"] == "success"
    # EXI on the wire by default; the trace keeps the body (hex) and its XML rendering
    messages = [r for r in records if r["kind"] == "message"]
    assert all(r["exi"].startswith("80") and r["xml"].startswith("<") for r in messages)
    loop = next(r for r in messages if r["message"] == "DC_ChargeLoopReq")
    assert "EVPresentVoltage" in loop["xml"]
    assert "ev_V=" in out  # the human log reads its key values from the rendered XML


@needs_sessions
def test_session_command_with_encoding_xml(
    certs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "x.jsonl"
    argv = ["-q", "session", "--certs", str(certs), "--duration", "5", "--encoding", "xml"]
    assert cli.main([*argv, "--trace", str(trace), "--auth", "eim"]) == 0, capsys.readouterr()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    messages = [r for r in records if r["kind"] == "message"]
    assert messages and all("exi" not in r and r["xml"].startswith("<") for r in messages)


def test_the_truck_cannot_detect_an_encoding(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evcc", "--connect", "127.0.0.1:1", "--encoding", "auto"])
    assert exit_info.value.code == 2
    assert "--encoding" in capsys.readouterr().err


@needs_sessions
def test_session_command_lenient_plain_tcp_eim_scheduled(
    certs: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # what -q gives a user
    argv = ["-q", "session", "--certs", str(certs), "--profile", "lenient", "--tls", "off"]
    argv += ["--auth", "eim", "--control", "scheduled", "--service", "DC", "--duration", "30"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "summary: charged" in out and "DC_ChargeLoopReq" not in out  # -q: summary only


def _mcscomm(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcscomm.cli", *args]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


@needs_sessions
@pytest.mark.slow
def test_secc_and_evcc_as_separate_processes(certs: Path, tmp_path: Path) -> None:
    secc = subprocess.Popen(
        _mcscomm(
            "secc",
            "--listen",
            "127.0.0.1:0",
            "--certs",
            str(certs),
            "--sessions",
            "2",
            "--sdp",
            "127.0.0.1:0",
            "--trace",
            str(tmp_path / "secc.jsonl"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert secc.stdout is not None
        listening = secc.stdout.readline()
        assert "SECC listening on 127.0.0.1:" in listening, listening
        port = listening.split("127.0.0.1:", 1)[1].split()[0]
        sdp_line = secc.stdout.readline()
        assert "SDP answering on" in sdp_line, sdp_line
        sdp_port = sdp_line.rsplit(":", 1)[1].strip()
        direct = subprocess.run(
            _mcscomm(
                "-q",
                "evcc",
                "--connect",
                f"127.0.0.1:{port}",
                "--certs",
                str(certs),
                "--duration",
                "2",
            ),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert direct.returncode == 0, direct.stderr
        assert "summary: charged" in direct.stdout
        found = subprocess.run(
            _mcscomm(
                "-q",
                "evcc",
                "--discover",
                "--sdp-target",
                f"127.0.0.1:{sdp_port}",
                "--certs",
                str(certs),
                "--duration",
                "1",
                "--auth",
                "eim",
            ),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert found.returncode == 0, found.stderr
        assert secc.wait(30) == 0
    finally:
        if secc.poll() is None:
            secc.kill()
    records = [json.loads(line) for line in (tmp_path / "secc.jsonl").read_text().splitlines()]
    assert {r["session"] for r in records} == {"secc#1", "secc#2"}
    assert sum(1 for r in records if r["kind"] == "summary") == 2
    # the default SECC (auto) detected the default truck's EXI
    messages = [r for r in records if r["kind"] == "message"]
    assert messages and all("exi" in r and "xml" in r for r in messages)


@needs_sessions
def test_evcc_exits_non_zero_with_one_line_when_nobody_listens(certs: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        _mcscomm("-q", "evcc", "--connect", f"127.0.0.1:{port}", "--certs", str(certs)),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("mcscomm evcc: session failed: cannot connect")
