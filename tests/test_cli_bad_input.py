"""Bad input a user could plausibly give a command ends in one line on stderr, never a traceback.

One table of cases per command (certs, codec, exi, fuzz, sdp, ems, plot), each run in-process
through :func:`mcscomm.cli.main`. An argv entry may name a fixture file (``{empty}``, ``{binary}``,
``{bad_json}``, ...) or ``{busy}``, a loopback port held by a socket of the test.
"""

from __future__ import annotations

import io
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcscomm import cli
from mcscomm.security import pki


@pytest.fixture
def files(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Paths of awkward inputs, plus ``busy``: a port on 127.0.0.1 bound (TCP and UDP) by us."""
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "bad_json").write_text('{"x":\n', encoding="utf-8")
    (tmp_path / "list_json").write_text("[1, 2]\n", encoding="utf-8")
    (tmp_path / "obj_json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "no_power").write_text('{"t": 0, "kind": "note"}\n', encoding="utf-8")
    (tmp_path / "bad_xml").write_text("<a>", encoding="utf-8")
    (tmp_path / "dir").mkdir()
    finding = {
        "format": "mcscomm-fuzz-finding/1",
        "kind": "crash",
        "oracle": "exception",
        "detail": "x",
        "step": 0,
        "options": {"role": "secc", "mode": "in-process", "setup": "not a mapping"},
        "case": {"seed": 1, "index": 0, "target": "secc", "mutator": "m", "state": "S",
                 "prefix_len": 0, "steps": []},
        "minimized": None,
    }  # fmt: skip
    (tmp_path / "bad_setup").write_text(json.dumps(finding), encoding="utf-8")
    finding["options"] = {"mode": "in-process", "setup": {"charger": ["x"]}}
    (tmp_path / "bad_profile").write_text(json.dumps(finding), encoding="utf-8")
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "manifest.json").write_text("{}", encoding="utf-8")  # "holds a PKI"
    broken = tmp_path / "broken_pki"  # a manifest whose files all exist but hold no PEM
    broken.mkdir()
    manifest: dict[str, dict[str, str]] = {}
    for role in (*pki.LEAF_ROLES, *pki.ROOT_ROLES):
        manifest[role] = {"cert": f"{role}.pem"}
        if role in pki.LEAF_ROLES:
            manifest[role] |= {"key": f"{role}.key", "chain": f"{role}.chain.pem"}
        for name in manifest[role].values():
            (broken / name).write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n")
    (broken / pki.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    names = {p.name: str(p) for p in tmp_path.iterdir()}
    names["missing"] = str(tmp_path / "missing")
    names["missing_dir_file"] = str(tmp_path / "missing" / "out.json")
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        port = tcp.getsockname()[1]
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:  # pragma: no cover - the UDP twin is taken; a TCP-only port will do
            pass
        names["busy"] = str(port)
        yield names


def _run(
    argv: list[str],
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: bytes = b"",
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    try:
        code = cli.main([arg.format(**files) for arg in argv])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    return code, err


def _check(code: int, err: str, want: int | None, needle: str) -> None:
    assert "Traceback" not in err
    assert code != 0 if want is None else code == want, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no reason on stderr"
    assert needle.lower() in lines[-1].lower(), err


# argv, expected exit (None: any non-zero), text of the last stderr line
CERTS = [
    (["certs", "init", "{pki}"], 1, "--force"),
    (["certs", "init", "{dir}/x", "--days", "0"], 1, "--days"),
    (["certs", "init", "{dir}/x", "--days", "99999999"], 1, "--days"),
    (["certs", "init", "{binary}/sub/pki"], 1, "cannot create"),
    (["certs", "init", "{dir}/x", "--algorithm", "banana"], 2, "invalid choice"),
    (["certs", "show", "{missing}"], 1, "no PKI"),
    (["certs", "show", "{binary}"], 1, "unreadable"),
    (["certs", "show", "{broken_pki}"], 1, "not a usable PEM"),
    (["certs", "init", "{binary}"], 1, "not a directory"),
]


CODEC = [
    (["codec", "validate", "{missing}"], 2, "cannot read"),
    (["codec", "validate", "{dir}"], 2, "cannot read"),
    (["codec", "validate", "{empty}"], 1, "invalid"),
    (["codec", "validate", "{binary}"], 1, "invalid"),
    (["codec", "validate", "{bad_xml}"], 1, "MalformedDocument"),
    (["codec", "validate", "--payload-type", "banana", "{bad_xml}"], 2, "--payload-type"),
    (["codec", "--schema-dir", "{missing}", "list"], 2, "not a directory"),
    (["codec", "--schema-dir", "{dir}", "validate", "{bad_xml}"], None, ""),
    (["codec", "--schema-dir", "{dir}", "example", "SessionSetupReq"], 2, "not found"),
    (["codec", "example", "NoSuchMessage"], 2, "unknown message"),
]


# argv, stdin, expected exit, text
EXI = [
    (["exi", "decode", "-t", "0x8004"], b"", 2, "no input"),
    (["exi", "decode", "-t", "0x8004"], b"zz\n", 1, "inputs failed"),
    (["exi", "decode", "-t", "0x8004"], b"ffffffffffffffff\n", 1, "inputs failed"),
    (["exi", "decode"], b"8098\n", 1, "inputs failed"),  # bare body, no payload type
    (["exi", "decode", "-t", "0x8004"], b"\xff\xfe\x00", 2, "not UTF-8"),
    (["exi", "decode", "-t", "0x1234"], b"00\n", 2, "payload types"),
    (["exi", "decode", "-t", "banana"], b"00\n", 2, "not a payload type"),
    (["exi", "encode"], b"<a/>\n", 2, "--payload-type is required"),
    (["exi", "encode", "-t", "0x8004"], b"not xml\n", 1, "inputs failed"),
    (["exi", "encode", "-t", "0x8004"], b"<a/>\n", 1, "inputs failed"),
    (["exi", "encode", "-t", "0x8004"], b"\xff\xfe<a/>", 2, "not UTF-8"),
    (["exi", "grammar", "NoSuchElement"], b"", 1, "no element"),
]


_FUZZ = ["fuzz", "--cases", "1", "--no-progress", "--findings", "{dir}/findings"]
FUZZ = [
    (["fuzz", "--connect", "banana"], 2, "HOST:PORT"),
    (["fuzz", "--connect", "127.0.0.1:99999"], 2, "HOST:PORT"),
    (["fuzz", "--cases", "-1"], 2, "--cases"),
    (["fuzz", "--start", "-1"], 2, "--start"),
    (["fuzz", "--duration", "0"], 2, "--duration"),
    (["fuzz", "--mutators", "banana"], 2, "mutator families"),
    ([*_FUZZ, "--states", "BANANA"], 2, "states"),
    ([*_FUZZ, "--charger", "banana"], 2, "charger profile"),
    ([*_FUZZ, "--corpus", "{missing}"], 2, "No such file"),
    ([*_FUZZ, "--corpus", "{bad_json}"], 2, "not JSON"),
    ([*_FUZZ, "--corpus", "{dir}"], 2, "directory"),
    ([*_FUZZ, "--pki", "{missing}"], 2, "no PKI"),
    ([*_FUZZ, "--report", "{missing_dir_file}"], 2, "cannot write"),
    ([*_FUZZ, "--pki", "{broken_pki}"], 2, "not a usable PEM"),
    ([*_FUZZ, "--connect", "127.0.0.1:{busy}", "--tls", "--pki", "{broken_pki}"], 2, "PEM"),
    (
        [*_FUZZ, "--target", "evcc", "--listen", "127.0.0.1:1", "--tls", "--pki", "{broken_pki}"],
        2,
        "PEM",
    ),
    ([*_FUZZ, "--target", "evcc", "--listen", "127.0.0.1:{busy}"], 2, "in use"),
    ([*_FUZZ, "--connect", "127.0.0.1:{busy}", "--tls", "--pki", "{missing}"], 2, "no PKI"),
    (["fuzz", "replay", "{missing}"], 2, "cannot read"),
    (["fuzz", "replay", "{empty}"], 2, "cannot read"),
    (["fuzz", "replay", "{binary}"], 2, ""),
    (["fuzz", "replay", "{bad_json}"], 2, "cannot read"),
    (["fuzz", "replay", "{list_json}"], 2, "not a finding"),
    (["fuzz", "replay", "{obj_json}"], 2, "not an mcscomm fuzz finding"),
    (["fuzz", "replay", "{bad_setup}"], 2, "cannot rebuild the target"),
    (["fuzz", "replay", "{bad_profile}"], 2, "cannot rebuild the target"),
]


_ANNOUNCE = ["--announce", "127.0.0.1:15118"]
SDP = [
    (["sdp", "serve", "--announce", "banana"], 2, "HOST:PORT"),
    (["sdp", "serve", "--announce", "nosuch.invalid:1", "--listen", "127.0.0.1:0"], 2, "address"),
    (["sdp", "serve", *_ANNOUNCE, "--listen", "127.0.0.1:{busy}"], 1, "in use"),
    (["sdp", "serve", *_ANNOUNCE, "--duration", "-1"], 2, "--duration"),
    (["sdp", "discover"], 2, "--target"),
    (["sdp", "discover", "--target", "127.0.0.1:1", "--requests", "0"], 2, "--requests"),
    (["sdp", "discover", "--target", "127.0.0.1:1", "--wait", "-1"], 2, "--wait"),
    (["sdp", "discover", "--interface", "x", "--multicast-port", "99999"], 2, "multicast-port"),
]


_EMS = ["ems", "--listen", "127.0.0.1:0", "--duration", "0.1"]
EMS = [
    (["ems", "--listen", "127.0.0.1:{busy}", "--duration", "0.1"], 2, "cannot listen"),
    (["ems", "--listen", "banana"], 2, "HOST:PORT"),
    ([*_EMS, "--peak", "banana"], 2, "window"),
    ([*_EMS, "--start", "25:00"], 2, "time of day"),
    ([*_EMS, "--efficiency", "2"], 2, "--efficiency"),
    ([*_EMS, "--target-soc", "5"], 2, "--target-soc"),
    ([*_EMS, "--heartbeat", "0"], 2, "--heartbeat"),
    (["ems", "--listen", "127.0.0.1:0", "--duration", "-1"], 2, "--duration"),
    ([*_EMS, "--demo", "1", "--truck", "banana"], 2, "truck profile"),
]


_OUT = ["-o", "{dir}/out.png"]
PLOT = [
    (["plot", "{missing}", *_OUT], 1, "No such file"),
    (["plot", "{dir}", *_OUT], 1, "directory"),
    (["plot", "{empty}", *_OUT], 1, "no power samples"),
    (["plot", "{binary}", *_OUT], 1, "not a JSON Lines"),
    (["plot", "{bad_json}", *_OUT], 1, "not JSON"),
    (["plot", "{list_json}", *_OUT], 1, "trace record"),
    (["plot", "{no_power}", *_OUT], 1, "no power samples"),
    (["plot", "{no_power}", "-o", "{dir}"], 1, "image file name"),
    (["plot", "{no_power}", "-o", "{dir}/no_extension"], 1, "image file name"),
]


def _cases() -> list[object]:
    """Every table above as pytest params, ids ``<command>-<n>`` (select one: ``-k ems``)."""
    rows = [(argv, b"", want, needle) for t in (CERTS, CODEC) for argv, want, needle in t]
    rows += EXI
    rows += [(argv, b"", want, needle) for t in (FUZZ, SDP, EMS, PLOT) for argv, want, needle in t]
    return [pytest.param(*row, id=f"{row[0][0]}-{n}") for n, row in enumerate(rows)]


@pytest.mark.parametrize(("argv", "stdin", "want", "needle"), _cases())
def test_bad_input(
    argv: list[str],
    stdin: bytes,
    want: int | None,
    needle: str,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _check(*_run(argv, files, capsys, monkeypatch, stdin), want, needle)
