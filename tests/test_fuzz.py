"""The fuzzer: determinism, mutators, oracles, snapshots, smoke campaigns, planted bugs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mcscomm.fuzz import campaign as cp
from mcscomm.fuzz import replay, values
from mcscomm.fuzz.model import ANY, REJECT, Case, Finding, Step, Verdict
from mcscomm.fuzz.mutators import Generator
from mcscomm.fuzz.oracles import Oracle, ResourceMonitor, ResourceSample
from mcscomm.fuzz.reference import EVCC, SECC, Reference, SessionSetup, build
from mcscomm.fuzz.targets import InProcessTarget, Observation, StepResult
from mcscomm.messages.meta import BYTE, SHORT, Simple
from mcscomm.session.connection import default_codec
from mcscomm.v2gtp import build_frame

#: Open defects of our SECC the fuzzer found, as (oracle, mutator); each gets a strict xfail
#: test_known_bug_* until fixed. None open: the two earlier findings (wrong payload type of a
#: FAILED answer, a valid frame before a broken header dropped) are fixed and kept below as
#: test_regression_* tests.
KNOWN: set[tuple[str, str]] = set()


def known(finding: Finding) -> bool:
    return (finding.verdict.oracle, finding.case.mutator) in KNOWN


@pytest.fixture(scope="module")
def secc_ref() -> Reference:
    return build(SessionSetup(), SECC)


@pytest.fixture(scope="module")
def evcc_ref() -> Reference:
    return build(SessionSetup(), EVCC)


@pytest.fixture(scope="module")
def gen(secc_ref: Reference) -> Generator:
    return Generator(secc_ref, default_codec())


# -- reference and cases ------------------------------------------------------------------------


def test_reference_reaches_the_charge_loop(secc_ref: Reference, evcc_ref: Reference) -> None:
    names = [m.name for m in secc_ref.messages]
    assert names[0] == "SupportedAppProtocolReq" and names[-1] == "SessionStopReq"
    assert "DC_ChargeLoopReq" in names
    assert "CHARGE_LOOP" in secc_ref.states()
    assert evcc_ref.messages[-1].name == "SessionStopRes"
    # another session: another session id
    assert secc_ref.messages[3].document != secc_ref.other[3].document


def test_case_is_a_function_of_seed_and_index(gen: Generator) -> None:
    a = [gen.case(7, i).to_json() for i in range(60)]
    b = [gen.case(7, i).to_json() for i in range(60)]
    assert a == b
    assert a != [gen.case(8, i).to_json() for i in range(60)]
    assert len({c["mutator"] for c in a}) > 15  # the families are all drawn


def test_case_json_round_trip(gen: Generator) -> None:
    for i in range(30):
        case = gen.case(3, i)
        assert Case.from_json(json.loads(json.dumps(case.to_json()))) == case


def test_prefix_is_the_valid_reference(gen: Generator, secc_ref: Reference) -> None:
    case = next(c for c in (gen.case(1, i) for i in range(200)) if c.prefix_len > 5)
    for step, ref in zip(case.steps[: case.prefix_len], secc_ref.messages, strict=False):
        assert step.data == build_frame(ref.payload_type, ref.document)
        assert step.expect == (ANY,)


# -- mutators -----------------------------------------------------------------------------------


def test_edge_values_cover_facets() -> None:
    short = values.edge_values(SHORT)
    for v in ("-32768", "32767", "-32769", "32768"):
        assert v in short
    assert {"-128", "127", "-129", "128"} <= set(values.edge_values(BYTE))
    s = values.edge_values(Simple("xs:string", "str", max_length=5))
    assert "A" * 5 in s and "A" * 6 in s and "" in s


def test_every_reference_document_is_annotated(secc_ref: Reference, evcc_ref: Reference) -> None:
    for m in secc_ref.messages + evcc_ref.messages:
        slots = values.annotate(etree.fromstring(m.document))
        assert slots, m.name
        assert all(s.xf is not None for s in slots), m.name  # every element known to the meta


def test_value_mutators_change_a_charge_loop_request(secc_ref: Reference) -> None:
    import random

    doc = next(m.document for m in secc_ref.messages if m.name == "DC_ChargeLoopReq")
    rng = random.Random(1)
    for name, (mutate, _) in values.VALUE_MUTATORS.items():
        changed = False
        for _ in range(5):
            root = etree.fromstring(doc)
            if mutate(rng, root, values.annotate(root)) and etree.tostring(root) != doc:
                changed = True
                break
        assert changed, name


def test_classifier(gen: Generator, secc_ref: Reference) -> None:
    classify = gen.classify
    i = next(i for i, m in enumerate(secc_ref.messages) if m.name == "DC_ChargeLoopReq")
    m = secc_ref.messages[i]
    assert classify(m.payload_type, m.document, m, m.state) == ANY
    broken = m.document.replace(b"<ct:TimeStamp>", b"<ct:TimeStampX>", 1)
    assert classify(m.payload_type, broken, m, m.state) == REJECT
    setup = secc_ref.messages[1]  # SessionSetupReq is not allowed in the charge loop
    assert classify(setup.payload_type, setup.document, m, m.state) == REJECT
    foreign = next(o for o in secc_ref.other if o.name == m.name)
    assert classify(foreign.payload_type, foreign.document, m, m.state) == REJECT


# -- targets and oracles ------------------------------------------------------------------------


def test_snapshot_runs_match_fresh_runs(gen: Generator) -> None:
    target = InProcessTarget(SECC)
    oracle = Oracle(SECC)
    for i in range(40):
        case = gen.case(11, i)
        snap = target.run(case, snapshot=True)
        fresh = target.run(case, snapshot=False)
        got = [(r.frames, r.closed) for r in snap.all()]
        want = [(r.frames, r.closed) for r in fresh.all()]
        if case.prefix_len and got != want:
            # the prefix part of a snapshot comes from the first run of that prefix; the
            # mutated part must be identical
            assert got[case.prefix_len :] == want[case.prefix_len :], case.mutator
        assert oracle.judge(case, snap) == oracle.judge(case, fresh), (i, case.mutator)


def test_oracle_flags_ok_answer_to_invalid_input() -> None:
    ok = b"<ns:X><ct:ResponseCode>OK</ct:ResponseCode></ns:X>"
    failed = b"<ns:X><ct:ResponseCode>FAILED_SequenceError</ct:ResponseCode></ns:X>"
    frame = build_frame(0x8002, b"<ns:SessionSetupReq/>")
    case = Case(1, 0, SECC, "m", "S", 0, (Step(frame, 0.0, (REJECT,)),))
    oracle = Oracle(SECC)

    def obs(*results: StepResult) -> Observation:
        return Observation(list(results), 0)

    v = oracle.judge(case, obs(StepResult(frames=[(0x8002, ok)], closed=False)))
    assert v is not None and v.oracle == "accepted-invalid"
    v = oracle.judge(case, obs(StepResult(frames=[(0x8002, failed)], closed=False)))
    assert v is not None and v.oracle == "open-after-failed"
    assert oracle.judge(case, obs(StepResult(frames=[(0x8002, failed)], closed=True))) is None
    v = oracle.judge(case, obs(StepResult(crash="ValueError: boom")))
    assert v is not None and v.kind == "crash"


def test_resource_monitor_flags_steady_growth() -> None:
    mon = ResourceMonitor()
    mon.samples = [ResourceSample(i * 100, 1000, 5000 + i * 500, 10, 0) for i in range(6)]
    v = mon.verdict()
    assert v is not None and v.kind == "resource" and v.oracle == "objects"
    mon.samples = [ResourceSample(i * 100, 1000, 5000 + (i % 2), 10, 0) for i in range(6)]
    assert mon.verdict() is None


# -- campaigns ----------------------------------------------------------------------------------


def test_smoke_campaign_secc_in_process(tmp_path: Path) -> None:
    report = cp.run_campaign(cp.in_process(SECC), 1, 1500, out_dir=tmp_path, minimize=False)
    assert report.cases == 1500
    unexpected = [f.verdict for f in report.findings if not known(f)]
    assert unexpected == []
    data = report.to_json()
    assert set(data) >= {"cases", "execs_per_s", "findings", "per_mutator", "per_state"}
    assert sum(row["cases"] for row in data["per_state"].values()) == 1500
    assert "CHARGE_LOOP" in data["per_state"]
    assert sum(row["cases"] for row in data["per_mutator"].values()) == 1500


def test_smoke_campaign_evcc_in_process(tmp_path: Path) -> None:
    report = cp.run_campaign(cp.in_process(EVCC), 2, 1000, out_dir=tmp_path, minimize=False)
    assert [f.verdict for f in report.findings] == []


def test_regression_payload_type() -> None:
    # was a finding (`mcscomm fuzz --target secc --in-process --seed 42 --start 14 --cases 1`):
    # SessionSetupReq on 0x8101 was answered FAILED on 0x8101 instead of 0x8002
    camp = cp.in_process(SECC, families=("v2gtp",))
    report = cp.run_campaign(camp, 1, 300, minimize=False)
    assert [f.verdict.oracle for f in report.findings] == []


PLANTED = {
    # variant: (campaign restrictions, expected (kind, oracle))
    "crash-on-field": ({"families": ("value",)}, ("crash", "exception")),
    "hang-in-state": (
        {"families": ("seq",), "states": ("WAIT_CHARGE_PARAMETER_DISCOVERY",)},
        ("hang", "no-answer"),
    ),
    "sequence-error": ({"families": ("seq",)}, ("violation", "accepted-invalid")),
    "exceed-limit": ({"states": ("CHARGE_LOOP",)}, ("violation", "power-limit")),
}


@pytest.mark.parametrize("variant", sorted(PLANTED))
def test_planted_bug_is_found_minimised_and_replayed(variant: str, tmp_path: Path) -> None:
    limits, want = PLANTED[variant]
    camp = cp.in_process(SECC, planted_variant=variant, **limits)  # type: ignore[arg-type]
    report = cp.run_campaign(camp, 5, 400, out_dir=tmp_path)
    found = [f for f in report.findings if f.verdict.signature == want]
    assert found, [f.verdict for f in report.findings]
    finding = found[0]
    assert finding.minimized is not None
    assert len(finding.minimized.steps) <= len(finding.case.steps)
    # the reproducer file alone rebuilds the target and reproduces the verdict
    path = next(Path(p) for p in report.files if p is not None and want[1] in p)
    loaded = replay.load(path)
    again = cp.from_options(loaded.options)
    assert loaded.minimized is not None
    verdict = replay.reproduce(loaded.minimized, again.replay_run, again.oracle)
    assert verdict is not None and verdict.signature == want
    # ... and the healthy SECC does not show it
    healthy = cp.in_process(SECC)
    clean = replay.reproduce(loaded.minimized, healthy.replay_run, healthy.oracle)
    assert clean is None or clean.signature != want


def test_crash_minimises_to_the_field(tmp_path: Path) -> None:
    camp = cp.in_process(SECC, planted_variant="crash-on-field", families=("value",))
    report = cp.run_campaign(camp, 5, 400, out_dir=tmp_path)
    finding = next(f for f in report.findings if f.verdict.kind == "crash")
    mini = finding.minimized
    assert mini is not None
    # the crash needs no session: one frame whose document still carries the exponent
    assert mini.prefix_len == 0 and len(mini.steps) == 1
    assert len(mini.steps[0].data) < len(finding.case.steps[-1].data)


def test_finding_json_round_trip(gen: Generator) -> None:
    case = gen.case(1, 3)
    f = Finding(Verdict("crash", "exception", "x", 2), case, case, {"role": "secc"})
    assert Finding.from_json(json.loads(json.dumps(f.to_json()))).to_json() == f.to_json()
    with pytest.raises(ValueError):
        Finding.from_json({"format": "nope"})


def test_trace_corpus_seeds_the_mutators(secc_ref: Reference) -> None:
    from mcscomm.fuzz.reference import from_trace

    setup_req = secc_ref.messages[1]
    marked = setup_req.document.replace(b"0A1B2C3D4E5F", b"C0FFEE000001")
    assert marked != setup_req.document
    records = [
        {"kind": "message", "dir": "secc->evcc", "payload_type": 0x8002, "xml": "<x/>"},
        {
            "kind": "message",
            "dir": "evcc->secc",
            "payload_type": setup_req.payload_type,
            "message": "SessionSetupReq",
            "xml": marked.decode(),
        },
    ]
    corpus = from_trace(records, SECC)
    assert [m.name for m in corpus] == ["SessionSetupReq"]
    g = Generator(
        secc_ref,
        default_codec(),
        families=("value",),
        corpus=corpus,
        states=("WAIT_SESSION_SETUP",),
    )
    cases = [g.case(1, i) for i in range(60)]
    assert any(b"C0FFEE000001" in c.steps[-1].data for c in cases)
    assert any(b"0A1B2C3D4E5F" in c.steps[-1].data for c in cases)


def test_pnc_signature_tampering_is_rejected(tmp_path: Path) -> None:
    from mcscomm.security import pki

    pki.init_pki(tmp_path / "pki", "secp521r1", days=2)
    setup = SessionSetup(pki_dir=str(tmp_path / "pki"))
    camp = cp.in_process(SECC, setup, families=("value",))
    assert any(b"SignatureValue" in m.document for m in camp.generator.ref.messages)
    cases = [camp.case(4, i) for i in range(1500)]
    tampered = [
        c
        for c in cases
        if c.mutator == "value.signature_tamper" and c.steps[-1].label.startswith("flip")
    ]
    assert tampered
    for case in tampered[:10]:
        assert camp.generator.expectation(case, len(case.steps) - 1, 0) == REJECT
        assert camp.oracle.judge(case, camp.run(case)) is None  # answered FAILED, not OK


def test_regression_renegotiation_before_the_charge_loop(secc_ref: Reference) -> None:
    # found by `mcscomm fuzz --seed 42 --start 12863 --cases 1` (PowerDeliveryReq with
    # ChargeProgress=ScheduleRenegotiation in WAIT_PRE_CHARGE was an internal error); fixed
    ms = secc_ref.messages
    i = next(k for k, m in enumerate(ms) if m.name == "DC_PreChargeReq")
    pd = next(m for m in ms if m.name == "PowerDeliveryReq")
    doc = pd.document.replace(b">Start<", b">ScheduleRenegotiation<")
    assert doc != pd.document
    g = Generator(secc_ref, default_codec())
    steps = (*g.prefix(i), Step(build_frame(pd.payload_type, doc), pd.at, (ANY,)))
    case = Case(0, 0, SECC, "manual", ms[i].state, i, steps)
    verdict = Oracle(SECC).judge(case, InProcessTarget(SECC).run(case, snapshot=False))
    assert verdict is None, verdict


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(-(2**63), 2**63), index=st.integers(0, 2**40))
def test_any_case_runs_and_is_judged_without_raising(gen: Generator, seed: int, index: int) -> None:
    # the harness must survive every case it can generate: errors are verdicts, never raises
    case = gen.case(seed, index)
    assert case == gen.case(seed, index)
    assert Case.from_json(json.loads(json.dumps(case.to_json()))) == case
    obs = _TARGET.run(case)
    verdict = Oracle(SECC).judge(case, obs)
    # (the known SECC defects aside, see the strict xfails)
    assert verdict is None or known(Finding(verdict, case))


_TARGET = InProcessTarget(SECC)


def _rn(tag: str, value: int, exponent: int) -> str:
    return f"<dc:{tag}><ct:Exponent>{exponent}</ct:Exponent><ct:Value>{value}</ct:Value></dc:{tag}>"


def _res(root: str, body: str) -> bytes:
    ns = 'xmlns:dc="urn:iso:std:iso:15118:-20:DC" xmlns:ct="urn:iso:std:iso:15118:-20:CommonTypes"'
    return f"<dc:{root} {ns}><ct:ResponseCode>OK</ct:ResponseCode>{body}</dc:{root}>".encode()


@pytest.mark.parametrize(
    ("current", "voltage", "oracle"),
    [(20, 40, None), (20, 100, "power-limit"), (60, 10, "power-limit"), (-20, 100, None)],
)
def test_power_oracle_checks_current_and_power(
    current: int, voltage: int, oracle: str | None
) -> None:
    # EVSE announces 50 A and 1 kW for charging (nothing for discharging)
    cpd = _res(
        "DC_ChargeParameterDiscoveryRes",
        _rn("EVSEMaximumChargeCurrent", 50, 0) + _rn("EVSEMaximumChargePower", 1, 3),
    )
    loop = _res(
        "DC_ChargeLoopRes",
        _rn("EVSEPresentCurrent", current, 0) + _rn("EVSEPresentVoltage", voltage, 0),
    )
    step = Step(build_frame(0x8004, b"<x/>"), 0.0, (ANY,))
    case = Case(1, 0, SECC, "m", "CHARGE_LOOP", 0, (step, step))
    obs = Observation([StepResult(frames=[(0x8004, cpd)]), StepResult(frames=[(0x8004, loop)])], 0)
    verdict = Oracle(SECC).judge(case, obs)
    assert (verdict.oracle if verdict else None) == oracle


def test_a_target_stuck_in_a_loop_is_a_hang(gen: Generator) -> None:
    from mcscomm.session.connection import SeccConnection

    class Stuck(SeccConnection):
        def receive_data(self, data: bytes, now: float) -> None:
            while True:  # the planted endless loop
                pass

    setup = SessionSetup()
    target = InProcessTarget(SECC, make=lambda: Stuck(setup.configs("ref")[0]), case_budget_s=0.2)
    case = gen.case(1, 0)
    verdict = Oracle(SECC).judge(case, target.run(case, snapshot=False))
    assert verdict is not None and (verdict.kind, verdict.oracle) == ("hang", "stuck")


def test_regression_valid_frame_before_garbage(secc_ref: Reference) -> None:
    # was a finding (`mcscomm fuzz --seed 91 --start 5 --cases 1`): a valid request followed by a
    # broken V2GTP header in the same read was dropped; now it is answered, then the SECC closes
    sap = secc_ref.messages[0]
    data = build_frame(sap.payload_type, sap.document) + b"\x99" * 8
    case = Case(0, 0, SECC, "manual", sap.state, 0, (Step(data, 0.0, (ANY,)),))
    obs = InProcessTarget(SECC).run(case, snapshot=False)
    verdict = Oracle(SECC).judge(case, obs)
    assert verdict is None, verdict
    res = obs.results[0]
    assert [pt for pt, _ in res.frames] == [sap.payload_type] and res.closed


def test_resource_growth_is_found_across_a_campaign() -> None:
    from mcscomm.fuzz import planted

    camp = cp.in_process(SECC, planted_variant="leak-memory", families=("doc",))
    try:
        report = cp.run_campaign(camp, 1, 2500, minimize=False)
    finally:
        planted.LEAKED.clear()
    growth = [f.verdict for f in report.findings if f.verdict.kind == "resource"]
    assert growth and growth[0].oracle == "objects", report.resources.to_json()
    # and the healthy SECC, same cases: no growth
    clean = cp.run_campaign(cp.in_process(SECC, families=("doc",)), 1, 2500, minimize=False)
    assert [f.verdict for f in clean.findings if f.verdict.kind == "resource"] == []
