"""The conformance catalogue judged against our own endpoints: every case passes against the
conforming configuration and fails against the deliberately broken variant it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pki_fixtures import get_pki

from mcscomm.conformance import catalogue, faults
from mcscomm.conformance.model import Role, Verdict
from mcscomm.conformance.pics import Pics
from mcscomm.conformance.runner import run_case
from mcscomm.conformance.sut import InProcessEvcc, InProcessSecc
from mcscomm.conformance.tlsvariants import PkiSet

CASES = catalogue.all_cases()
ID = re.compile(r"^TC_(SECC|EVCC)_(CMN|DC)_(VTB|ITB)_[A-Za-z0-9_]+_\d{3}$")


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> PkiSet:
    base = tmp_path_factory.getbasetemp() / "pki"
    return PkiSet(get_pki(base, "secp521r1", "good"), base / "conformance")


def _sut(role: Role, pics: Pics, pkis: PkiSet, fault: str | None = None) -> object:
    cls = InProcessSecc if role is Role.SECC else InProcessEvcc
    return cls(pics.with_role(str(role)), pkis, fault)


#: cases whose PICS differ from our endpoints' defaults (e.g. a charger without standby): the
#: in-process SUT is built from these PICS, so they pass and fail like every other case
CASE_PICS = {
    "TC_SECC_CMN_VTB_PowerDelivery_011": Pics(standby=False),
    "TC_SECC_CMN_VTB_CertificateInstallation_001": Pics(certificate_installation=True),
}


def _run(case_id: str, pkis: PkiSet, fault: str | None = None, pics: Pics | None = None) -> object:
    tc = catalogue.get(case_id)
    p = (pics or CASE_PICS.get(case_id) or Pics()).with_role(str(tc.sut))
    sut = _sut(tc.sut, p, pkis, fault)
    try:
        return run_case(tc, sut, p, pkis)
    finally:
        sut.close()  # type: ignore[attr-defined]


# -- the catalogue itself ------------------------------------------------------------------
def test_catalogue_is_large_and_covers_both_directions() -> None:
    assert len(CASES) >= 60
    roles = {c.sut for c in CASES}
    assert roles == {Role.SECC, Role.EVCC}
    assert sum(c.sut is Role.EVCC for c in CASES) >= 30


def test_ids_are_unique_and_well_formed() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    for c in CASES:
        assert ID.match(c.id), c.id
        assert c.id.startswith(f"TC_{c.sut.upper()}_")


def test_every_case_is_described_and_names_a_fault_of_its_role() -> None:
    for c in CASES:
        for text in (c.purpose, c.requirement, c.preconditions, c.stimulus, c.expected):
            assert text.strip(), c.id
        assert c.fault is not None, f"{c.id} has no fault that makes it fail"
        assert faults.FAULTS[c.fault].role == str(c.sut), c.id
        Pics().missing(c.pics)  # every PICS expression parses


def test_coverage_of_the_issue_areas() -> None:
    groups = {c.group for c in CASES}
    for g in (
        "SDP",
        "V2GTP",
        "SAP",
        "TLS",
        "SessionSetup",
        "Authorization",
        "ServiceSelection",
        "ChargeParameterDiscovery",
        "ScheduleExchange",
        "Session",
        "Power",
        "Timing",
        "PauseResume",
        "ScheduleRenegotiation",
        "ServiceRenegotiation",
        "MeteringConfirmation",
        "Schema",
        "UnknownSession",
    ):
        assert g in groups, g
    sessions = {c.id for c in CASES if c.group == "Session"}
    for svc in ("DC", "DC_BPT", "MCS", "MCS_BPT"):
        for ctl in ("Scheduled", "Dynamic"):
            assert any(f"_{svc}_{ctl}_" in i for i in sessions), (svc, ctl)


def test_every_fault_is_used() -> None:
    used = {c.fault for c in CASES}
    assert set(faults.FAULTS) - used == set()


# -- verdicts against our own endpoints ------------------------------------------------------
@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_case_passes_against_conforming_endpoint(case_id: str, pkis: PkiSet) -> None:
    result = _run(case_id, pkis)
    assert result.verdict is Verdict.PASS, result.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_case_fails_against_its_broken_variant(case_id: str, pkis: PkiSet) -> None:
    tc = catalogue.get(case_id)
    result = _run(case_id, pkis, tc.fault)
    assert result.verdict is Verdict.FAIL, (  # type: ignore[attr-defined]
        f"{case_id} does not detect {tc.fault}: {result.verdict} {result.reason}"  # type: ignore[attr-defined]
    )
    assert result.reason  # type: ignore[attr-defined]
    assert result.exchanges or tc.group in ("SDP",)  # type: ignore[attr-defined]


def test_pics_exclusion_gives_not_applicable_never_pass(pkis: PkiSet) -> None:
    pics = Pics(services=("DC", "MCS"), control_modes=("Dynamic",), auth=("EIM",))
    for case_id in (
        "TC_SECC_DC_VTB_Session_MCS_BPT_Dynamic_EIM_001",
        "TC_SECC_CMN_VTB_Authorization_002",
        "TC_SECC_CMN_VTB_ScheduleExchange_001",
        "TC_EVCC_DC_VTB_Power_002",
    ):
        result = _run(case_id, pkis, pics=pics)
        assert result.verdict is Verdict.NOT_APPLICABLE, case_id  # type: ignore[attr-defined]
        assert "PICS" in result.reason  # type: ignore[attr-defined]
    # the remaining cases still run against the reduced SECC and pass
    ok = _run("TC_SECC_DC_VTB_Session_MCS_Dynamic_EIM_001", pkis, pics=pics)
    assert ok.verdict is Verdict.PASS, ok.reason  # type: ignore[attr-defined]


def test_a_sut_that_does_not_offer_the_service_is_inconclusive(pkis: PkiSet) -> None:
    # PICS claims MCS_BPT but the in-process SECC is built from another PICS: the tester
    # cannot reach the point where MCS_BPT behaviour decides
    tc = catalogue.get("TC_SECC_DC_VTB_Session_MCS_BPT_Dynamic_EIM_001")
    claimed = Pics()
    actual = Pics(services=("DC", "MCS"))
    sut = InProcessSecc(actual, pkis)
    result = run_case(tc, sut, claimed, pkis)
    assert result.verdict is Verdict.INCONC
    assert "MCS_BPT" in result.reason


def test_a_broken_case_is_an_error_not_a_verdict_on_the_sut(pkis: PkiSet) -> None:
    from mcscomm.conformance.model import TestCase

    def boom(ctx: object) -> None:
        raise ZeroDivisionError("defect in the test system")

    tc = TestCase("TC_SECC_CMN_VTB_Boom_001", Role.SECC, "Boom", "p", "r", (), "", "", "", boom)
    result = run_case(tc, InProcessSecc(Pics(), pkis), Pics(), pkis)
    assert result.verdict is Verdict.ERROR
    assert "ZeroDivisionError" in result.reason


def test_virtual_clock_makes_long_timers_cheap(pkis: PkiSet) -> None:
    # the 60 s sequence timeout is checked exactly, in virtual time
    result = _run("TC_SECC_CMN_ITB_Timing_004", pkis)
    assert result.verdict is Verdict.PASS  # type: ignore[attr-defined]
    closes = [e for e in result.exchanges if "closed" in e.what]  # type: ignore[attr-defined]
    assert closes and closes[-1].t == pytest.approx(60.0, abs=1e-6)


def test_example_pics_files_load() -> None:
    from mcscomm.conformance.pics import example_pics_dir, load_pics

    files = sorted(Path(example_pics_dir()).glob("*.toml"))
    assert len(files) >= 3
    for f in files:
        pics = load_pics(f)
        assert pics.role in ("secc", "evcc")


def test_optional_features_not_claimed_are_not_applicable(pkis: PkiSet) -> None:
    # standby, VehicleCheckIn/Out and CertificateInstallation run only for SUTs that claim them
    # (and WARNING_StandbyNotAllowed only for chargers that do not allow standby)
    without = Pics(standby=False, vehicle_check_in_out=False)
    for case_id in (
        "TC_SECC_CMN_VTB_PowerDelivery_010",
        "TC_SECC_CMN_VTB_VehicleCheckIn_001",
        "TC_SECC_CMN_VTB_VehicleCheckOut_001",
        "TC_EVCC_CMN_ITB_PowerDelivery_010",
    ):
        result = _run(case_id, pkis, pics=without)
        assert result.verdict is Verdict.NOT_APPLICABLE, case_id  # type: ignore[attr-defined]
    for case_id in (
        "TC_SECC_CMN_VTB_PowerDelivery_011",
        "TC_SECC_CMN_VTB_CertificateInstallation_001",
    ):
        result = _run(case_id, pkis, pics=Pics())
        assert result.verdict is Verdict.NOT_APPLICABLE, case_id  # type: ignore[attr-defined]
    eim_only = Pics(auth=("EIM",))
    result = _run("TC_EVCC_CMN_VTB_Authorization_010", pkis, pics=eim_only)
    assert result.verdict is Verdict.NOT_APPLICABLE  # type: ignore[attr-defined]
