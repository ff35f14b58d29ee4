"""The catalogue over real loopback TLS sockets in real time: ``--connect`` to our SECC server
process and ``--listen`` for our EVCC process (started per case by the PIXIT sut_command).

Timing-critical cases are left to the virtual-clock tests: a loaded CI machine must not decide a
verdict here."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki_fixtures import get_pki

MCSCOMM = [sys.executable, "-m", "mcscomm.cli"]


def _free_port() -> int:
    """A free TCP/UDP port in 49152-65535 (the SECC must announce one there, facts §2.1)."""
    import random

    for _ in range(200):
        port = random.randint(49152, 65535)
        try:
            with socket.socket() as s, socket.socket(type=socket.SOCK_DGRAM) as u:
                s.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port in 49152-65535")


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(get_pki(tmp_path_factory.getbasetemp() / "pki", "secp521r1").directory)


@pytest.fixture
def secc_server(pki_dir: str) -> Iterator[tuple[int, int]]:
    port, sdp_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            *MCSCOMM,
            "secc",
            "--listen",
            f"127.0.0.1:{port}",
            "--certs",
            pki_dir,
            "--scenario",
            "none",
            "--sdp",
            f"127.0.0.1:{sdp_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, sdp_port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pics(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "pics.toml"
    f.write_text(text)
    return f


@pytest.mark.slow
def test_connect_to_a_real_secc_over_tls(
    tmp_path: Path, pki_dir: str, secc_server: tuple[int, int]
) -> None:
    port, sdp_port = secc_server
    pics = _pics(
        tmp_path,
        f'[sut]\nrole = "secc"\nname = "loopback"\n[pics]\nmetering_confirmation = false\n'
        f'[pixit]\npki_dir = "{pki_dir}"\nsdp_address = "127.0.0.1:{sdp_port}"\n'
        "tolerance_s = 0.5\n",
    )
    out = tmp_path / "r.json"
    r = subprocess.run(
        [
            *MCSCOMM,
            "conformance",
            "--sut",
            "secc",
            "--connect",
            f"127.0.0.1:{port}",
            "--pics",
            str(pics),
            "--quiet",
            "--report",
            str(out),
            "--cases",
            "SDP_001,SAP_001,VTB_SessionSetup_001,ITB_UnknownSession_001,Session_MCS_BPT_Dynamic,"
            "TLS_001,TLS_002,TLS_005,TLS_007",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    assert data["summary"]["pass"] == 10  # two MCS_BPT Dynamic sessions (EIM, PnC)
    assert data["sut"]["sut.mode"].startswith("connect")


@pytest.mark.slow
def test_listen_for_a_real_evcc_over_tls(tmp_path: Path, pki_dir: str) -> None:
    cmd = (
        f"{sys.executable} -m mcscomm.cli evcc --connect {{host}}:{{port}} --certs {pki_dir} "
        "--service MCS_BPT --control dynamic --auth eim --duration 2"
    )
    pics = _pics(
        tmp_path,
        '[sut]\nrole = "evcc"\n[pics]\nservices = ["MCS_BPT"]\ncontrol_modes = ["Dynamic"]\n'
        f'auth = ["EIM"]\nsdp = false\n[pixit]\npki_dir = "{pki_dir}"\ntolerance_s = 0.5\n'
        f"connect_timeout_s = 30.0\nsut_command = {json.dumps(cmd)}\n",
    )
    out = tmp_path / "r.json"
    r = subprocess.run(
        [
            *MCSCOMM,
            "conformance",
            "--sut",
            "evcc",
            "--listen",
            f"127.0.0.1:{_free_port()}",
            "--pics",
            str(pics),
            "--quiet",
            "--report",
            str(out),
            "--cases",
            "SAP_001,Session_MCS_BPT_Dynamic,ITB_SessionSetup_002,TLS_001,TLS_003,"
            "Session_DC_Dynamic",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    verdicts = {x["id"]: x["verdict"] for x in data["results"]}
    for key in [k for k in verdicts if "_DC_Dynamic_" in k or "_PnC_" in k]:
        assert verdicts.pop(key) == "n/a", key  # not claimed by this truck's PICS
    assert set(verdicts.values()) == {"pass"}, verdicts
