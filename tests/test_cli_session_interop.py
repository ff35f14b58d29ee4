"""CLI side of the Josev interop requests: the EVCC's handshake reason, the SECC's offer options."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcscomm import cli
from mcscomm.endpoints.cli_options import options
from mcscomm.endpoints.setup import load_pki, secc_config
from mcscomm.messages.enums import AuthorizationType, ControlMode


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mcscomm.endpoints.setup import SessionOptions

    directory = tmp_path_factory.mktemp("pki")
    load_pki(SessionOptions(pki_dir=directory))
    return directory


def _parser(command: str) -> argparse.ArgumentParser:
    """The parser ``mcscomm COMMAND`` builds (cli.main asks the command module to fill it in)."""
    parser = argparse.ArgumentParser(prog=f"mcscomm {command}")
    importlib.import_module(f"mcscomm.commands.{command}").configure(parser)
    return parser


@pytest.fixture
def plain_tcp_peer() -> Iterator[int]:
    """A plain-TCP peer (like Josev's default SECC) that drops whatever a client says first."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)  # the TLS ClientHello; no TLS here, so hang up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        server.close()
        thread.join(5)


def test_evcc_gives_a_one_line_reason_for_a_failed_tls_handshake(
    certs: Path, plain_tcp_peer: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-q", "evcc", "--connect", f"127.0.0.1:{plain_tcp_peer}", "--certs", str(certs)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        f"mcscomm evcc: session failed: TLS handshake with 127.0.0.1:{plain_tcp_peer} failed: "
    ), err
    assert "peer closed the connection during the TLS handshake" in err, err


@pytest.mark.parametrize("command", ["secc", "session"])
def test_secc_offer_options_reach_the_secc_config(command: str, certs: Path) -> None:
    parser = _parser(command)
    args = parser.parse_args(
        ["--certs", str(certs), "--secc-control", "dynamic", "--secc-auth", "pnc"]
    )
    opts = options(args, certs)
    cfg = secc_config(opts, load_pki(opts))
    assert cfg.control_modes == (ControlMode.DYNAMIC,)
    assert cfg.auth_services == (AuthorizationType.PNC,)
    default = options(parser.parse_args(["--certs", str(certs)]), certs)
    assert (default.secc_control, default.secc_auth) == ("both", "both")


def test_secc_offer_options_take_an_ordered_list_and_refuse_nonsense(certs: Path) -> None:
    parser = _parser("secc")
    args = parser.parse_args(["--secc-control", "dynamic,scheduled", "--secc-auth", "eim,pnc"])
    cfg = secc_config(options(args, certs), load_pki(options(args, certs)))
    assert cfg.control_modes == (ControlMode.DYNAMIC, ControlMode.SCHEDULED)
    assert cfg.auth_services == (AuthorizationType.EIM, AuthorizationType.PNC)
    with pytest.raises(SystemExit):
        parser.parse_args(["--secc-control", "sometimes"])


def test_evcc_has_no_secc_offer_options(certs: Path) -> None:
    with pytest.raises(SystemExit):
        _parser("evcc").parse_args(["--connect", "127.0.0.1:1", "--secc-auth", "eim"])


def test_session_with_a_scheduled_eim_only_secc(
    certs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    argv = ["-q", "session", "--certs", str(certs), "--duration", "10", "--trace", str(trace)]
    argv += ["--secc-control", "scheduled", "--secc-auth", "eim"]
    argv += ["--control", "scheduled", "--auth", "eim", "--scenario", "none"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    documents: dict[str, str] = {}
    for line in trace.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "message":
            documents.setdefault(record["message"], record["xml"])
    auth = documents["AuthorizationSetupRes"]
    assert "<ns:AuthorizationServices>EIM<" in auth and "PnC" not in auth
    modes = re.findall(r'Name="ControlMode"><ns:intValue>(\d)<', documents["ServiceDetailRes"])
    assert modes and set(modes) == {"1"}  # Scheduled only


def test_session_fails_when_the_secc_does_not_offer_the_trucks_control_mode(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-q", "session", "--certs", str(certs), "--duration", "10", "--auth", "eim"]
    argv += ["--secc-control", "dynamic", "--control", "scheduled"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mcscomm session: session failed:") and "\n" not in err
    assert "ControlMode=SCHEDULED" in err, err


def test_realtime_session_stamps_messages_with_unix_time(certs: Path, tmp_path: Path) -> None:
    trace = tmp_path / "rt.jsonl"
    before = time.time()
    argv = ["-q", "session", "--certs", str(certs), "--realtime", "--duration", "0.5"]
    argv += ["--auth", "eim", "--scenario", "none", "--trace", str(trace)]
    assert cli.main(argv) == 0
    after = time.time()
    stamps = [
        int(ts)
        for line in trace.read_text().splitlines()
        for ts in re.findall(r"TimeStamp>(\d+)<", json.loads(line).get("xml", ""))
    ]
    assert stamps and all(int(before) <= ts <= after + 1 for ts in stamps)
