"""PICS/PIXIT parsing, the three report formats, the CLI and the pytest plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mcscomm.conformance import reports
from mcscomm.conformance.model import CaseResult, Exchange, Role, TestCase, Verdict
from mcscomm.conformance.pics import Pics, PicsError, load_pics, parse_pics
from mcscomm.conformance.runner import RunReport


# -- PICS ---------------------------------------------------------------------------------
def test_pics_expressions() -> None:
    p = Pics(services=("MCS",), control_modes=("Dynamic",), auth=("EIM",), pause_resume=False)
    assert p.holds("service:MCS") and not p.holds("service:MCS_BPT")
    assert p.holds("control:Dynamic") and not p.holds("control:Scheduled")
    assert p.holds("!pause_resume") and not p.holds("pause_resume")
    assert p.holds("algorithm:secp521r1")
    assert p.missing(("service:MCS", "auth:PnC")) == ["auth:PnC"]
    with pytest.raises(PicsError):
        p.holds("colour:blue")


def test_pics_file_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        textwrap.dedent(
            """
            [sut]
            role = "evcc"
            name = "Truck"
            [pics]
            services = ["MCS_BPT"]
            negative_discharge = true
            [pixit]
            pki_dir = "pki"
            tolerance_s = 0.2
            max_payload = 8192
            """
        )
    )
    p = load_pics(f)
    assert p.role == "evcc" and p.services == ("MCS_BPT",) and p.negative_discharge
    assert p.pixit.tolerance_s == 0.2 and p.pixit.max_payload == 8192
    assert p.pixit.pki_dir == str((tmp_path / "pki").resolve())


@pytest.mark.parametrize(
    "data, message",
    [
        ({"pics": {"services": ["AC"]}}, "unknown"),
        ({"pics": {"colour": True}}, "unknown PICS item"),
        ({"pics": {"tls": "yes"}}, "true or false"),
        ({"pixit": {"speed": 1}}, "unknown PIXIT item"),
        ({"pixit": {"tolerance_s": "fast"}}, "not a valid value"),
        ({"pixit": {"address": 5}}, "not a valid value"),
        ({"pixit": {"encoding": "cbor"}}, "exi"),
        ({"sut": {"role": "ems"}}, "sut.role"),
        ({"other": {}}, "unknown tables"),
    ],
)
def test_bad_pics_are_one_line_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(PicsError, match=message) as info:
        parse_pics(data)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_unreadable_pics(tmp_path: Path) -> None:
    with pytest.raises(PicsError):
        load_pics(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[pics\n")
    with pytest.raises(PicsError):
        load_pics(bad)


# -- reports -------------------------------------------------------------------------------
def _report() -> RunReport:
    def noop(ctx: object) -> None:
        return None

    def tc(n: int) -> TestCase:
        return TestCase(
            f"TC_SECC_CMN_VTB_Demo_{n:03d}",
            Role.SECC,
            "Demo",
            "purpose <x>",
            "V2G20-1",
            (),
            "pre",
            "stim",
            "exp",
            noop,
        )

    log = [Exchange(0.0, "tester->sut", "SessionSetupReq"), Exchange(0.1, "sut->tester", "X")]
    rep = RunReport(role=Role.SECC, pics=Pics(name="SUT & co"), mode="in-process", started="t0")
    rep.results = [
        CaseResult(tc(1), Verdict.PASS, "", 0.01),
        CaseResult(tc(2), Verdict.FAIL, "answered OK, expected FAILED_SequenceError", 0.02, log),
        CaseResult(tc(3), Verdict.ERROR, "ValueError: x", 0.0, log),
        CaseResult(tc(4), Verdict.INCONC, "SUT does not offer MCS_BPT", 0.0),
        CaseResult(tc(5), Verdict.NOT_APPLICABLE, "PICS: auth:PnC not claimed", 0.0),
    ]
    return rep


def test_junit_mapping() -> None:
    root = ET.fromstring(reports.junit_xml(_report()))
    assert root.get("tests") == "5" and root.get("failures") == "1" and root.get("errors") == "1"
    assert root.get("skipped") == "2"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(list(cases["TC_SECC_CMN_VTB_Demo_001"])) == 0  # passed
    failure = cases["TC_SECC_CMN_VTB_Demo_002"].find("failure")
    assert failure is not None and "FAILED_SequenceError" in failure.get("message", "")
    assert "SessionSetupReq" in (failure.text or "")
    assert cases["TC_SECC_CMN_VTB_Demo_003"].find("error") is not None
    skipped = cases["TC_SECC_CMN_VTB_Demo_004"].find("skipped")
    assert skipped is not None and "inconclusive: SUT does not offer" in skipped.get("message", "")
    na = cases["TC_SECC_CMN_VTB_Demo_005"].find("skipped")
    assert na is not None and na.get("message", "").startswith("not applicable")


def test_json_report() -> None:
    data = json.loads(reports.json_text(_report()))
    assert data["summary"] == {"pass": 1, "fail": 1, "inconc": 1, "error": 1, "n/a": 1}
    assert data["sut"]["sut.name"] == "SUT & co"
    assert data["results"][1]["exchanges"][0]["what"] == "SessionSetupReq"
    assert data["results"][1]["verdict"] == "fail"


def test_html_report_sections_and_escaping() -> None:
    text = reports.html_report(_report())
    for section in (
        "Identification of the system under test",
        "Test environment",
        "Summary",
        "Test cases",
        "Failed, erroneous and inconclusive cases",
    ):
        assert section in text
    assert "SUT &amp; co" in text and "purpose &lt;x&gt;" in text
    assert "<x>" not in text


# -- CLI ------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcscomm.cli", "conformance", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from pki_fixtures import get_pki

    return str(get_pki(tmp_path_factory.getbasetemp() / "pki", "secp521r1").directory)


def test_cli_in_process_run_writes_reports(tmp_path: Path, pki_dir: str) -> None:
    junit, js, page = tmp_path / "o.xml", tmp_path / "o.json", tmp_path / "o.html"
    r = _cli(
        "--sut",
        "secc",
        "--in-process",
        "--cases",
        "SessionSetup,Timing_003",
        "--pki",
        pki_dir,
        "--junit",
        str(junit),
        "--report",
        str(js),
        "--html",
        str(page),
    )
    assert r.returncode == 0, r.stderr
    assert ET.parse(junit).getroot().get("tests") == "4"
    assert json.loads(js.read_text())["summary"]["pass"] == 4
    assert "Conformance test report" in page.read_text()
    assert "total" in r.stdout


def test_cli_broken_variant_fails_with_reason(tmp_path: Path, pki_dir: str) -> None:
    r = _cli(
        "--sut",
        "secc",
        "--cases",
        "ITB_SessionSetup_003",
        "--fault",
        "secc_out_of_order",
        "--pki",
        pki_dir,
        "--junit",
        str(tmp_path / "o.xml"),
        "--quiet",
    )
    assert r.returncode == 1
    assert "FAIL TC_SECC_CMN_ITB_SessionSetup_003" in r.stdout
    assert "OK_NewSessionEstablished" in r.stdout  # the one-line reason
    assert "-->" in r.stdout  # exchanged messages


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[pics]\ncolour = true\n")
    r = _cli("--sut", "secc", "--pics", str(bad), "--junit", str(tmp_path / "o.xml"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = _cli("--sut", "evcc", "--connect", "127.0.0.1:1", "--junit", str(tmp_path / "o.xml"))
    assert r.returncode == 2 and "--listen" in r.stderr
    r = _cli("--sut", "secc", "--cases", "NoSuchCase", "--junit", str(tmp_path / "o.xml"))
    assert r.returncode == 2


def test_cli_lists_cases_and_faults() -> None:
    r = _cli("--sut", "evcc", "--list")
    assert r.returncode == 0 and "TC_EVCC_CMN_VTB_SAP_001" in r.stdout
    r = _cli("--sut", "secc", "--list-faults")
    assert r.returncode == 0 and "secc_out_of_order" in r.stdout


# -- pytest plugin ------------------------------------------------------------------------
def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys; import mcscomm.conformance.pytest_plugin; "
        "heavy = [m for m in ('lxml', 'mcscomm.session', 'mcscomm.codec') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugin_fixtures(tmp_path: Path, pki_dir: str) -> None:
    script = tmp_path / "test_user_script.py"
    script.write_text(
        textwrap.dedent(
            """
            from mcscomm.conformance.wire import header
            from mcscomm.messages.common_messages import SessionSetupReq

            def test_sequence_error(tester_evcc):
                tester_evcc.run_to(tester_evcc.default_plan(), "session_setup")
                tester_evcc.expect_code(
                    SessionSetupReq(header=header(tester_evcc.session_id), evccid="X"),
                    "FAILED_SequenceError",
                )

            def test_evcc_session(tester_secc):
                tester_secc.serve()
                assert tester_secc.names()[-1] == "SessionStopReq"

            def test_catalogue(conformance_run):
                assert {str(r.verdict) for r in conformance_run("SAP_00", "evcc")} == {"pass"}

            def test_broken(conformance_run):
                r = conformance_run("ITB_SessionSetup_003", "secc", fault="secc_out_of_order")
                assert str(r[0].verdict) == "fail"
            """
        )
    )
    from importlib.metadata import entry_points

    installed = any(
        ep.value == "mcscomm.conformance.pytest_plugin" for ep in entry_points(group="pytest11")
    )
    load = [] if installed else ["-p", "mcscomm.conformance.pytest_plugin"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            *load,
            "-p",
            "no:cacheprovider",
            "--mcscomm-pki",
            pki_dir,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert "4 passed" in out.stdout, out.stdout + out.stderr
