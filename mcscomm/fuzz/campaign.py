"""The campaign runner: cases ``(seed, 0..N-1)`` against one target, findings, the report.

``run_campaign`` generates each case from ``(seed, index)``, plays it, judges it, keeps the
first finding per (kind, oracle, mutator, state), minimises and saves it as a reproducer, and
counts cases and findings per mutator and per state. The report is plain JSON::

    {"cases": 5000, "execs_per_s": 4100.0, "elapsed_s": 1.2, "seed": 1, "target": "secc",
     "findings": [{"kind", "oracle", "detail", "mutator", "state", "seed", "index", "file",
                   "steps", "minimized_steps"}, ...],
     "per_mutator": {"value.facet_edge": {"cases": 400, "findings": 0}, ...},
     "per_state": {"CHARGE_LOOP": {"cases": 390, "findings": 0}, ...},
     "resources": [...samples...]}
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcscomm.codec import XmlCodec
from mcscomm.fuzz import planted, replay
from mcscomm.fuzz.model import Case, Finding, Verdict
from mcscomm.fuzz.mutators import Generator
from mcscomm.fuzz.network import NetworkEvccTarget, NetworkSeccTarget, ref_session_id
from mcscomm.fuzz.oracles import Oracle, ResourceMonitor
from mcscomm.fuzz.reference import EVCC, SECC, Reference, RefMsg, SessionSetup, build
from mcscomm.fuzz.targets import InProcessTarget, Observation
from mcscomm.session.connection import default_codec

Runner = Callable[[Case], Observation]
FAMILIES = ("value", "doc", "v2gtp", "seq")


@dataclass(slots=True)
class Report:
    """Outcome of a campaign (``to_json`` is the report file)."""

    target: str
    seed: int
    cases: int = 0
    elapsed_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    files: list[str | None] = field(default_factory=list)  # reproducer of findings[i]
    per_mutator: dict[str, dict[str, int]] = field(default_factory=dict)
    per_state: dict[str, dict[str, int]] = field(default_factory=dict)
    resources: ResourceMonitor = field(default_factory=ResourceMonitor)
    mode: str = "in-process"

    def add(self, finding: Finding, file: Path | None) -> None:
        self.findings.append(finding)
        self.files.append(str(file) if file is not None else None)

    @property
    def execs_per_s(self) -> float:
        return self.cases / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        findings = []
        for i, f in enumerate(self.findings):
            findings.append(
                {
                    "kind": f.verdict.kind,
                    "oracle": f.verdict.oracle,
                    "detail": f.verdict.detail,
                    "mutator": f.case.mutator,
                    "state": f.case.state,
                    "seed": f.case.seed,
                    "index": f.case.index,
                    "file": self.files[i] if i < len(self.files) else None,
                    "steps": len(f.case.steps),
                    "minimized_steps": len(f.minimized.steps) if f.minimized else None,
                }
            )
        return {
            "target": self.target,
            "mode": self.mode,
            "seed": self.seed,
            "cases": self.cases,
            "elapsed_s": round(self.elapsed_s, 3),
            "execs_per_s": round(self.execs_per_s, 1),
            "findings": findings,
            "per_mutator": dict(sorted(self.per_mutator.items())),
            "per_state": self.per_state,
            "resources": self.resources.to_json(),
        }


def _count(table: dict[str, dict[str, int]], key: str, found: bool) -> None:
    row = table.setdefault(key, {"cases": 0, "findings": 0})
    row["cases"] += 1
    row["findings"] += int(found)


@dataclass(slots=True)
class Campaign:
    """Everything a campaign needs: case generator, runner, oracle, and how to replay."""

    generator: Generator
    run: Runner
    oracle: Oracle
    replay_run: Runner
    options: dict[str, Any]
    mode: str = "in-process"
    close: Callable[[], None] = lambda: None

    def case(self, seed: int, index: int) -> Case:
        return self.generator.case(seed, index)


def in_process(
    role: str = SECC,
    setup: SessionSetup | None = None,
    *,
    planted_variant: str | None = None,
    codec: XmlCodec | None = None,
    reference: Reference | None = None,
    states: tuple[str, ...] | None = None,
    families: tuple[str, ...] | None = None,
    snapshots: bool = True,
    corpus: tuple[RefMsg, ...] = (),
) -> Campaign:
    """A campaign against our own SECC or EVCC (optionally a planted-bug SECC variant)."""
    setup = setup or SessionSetup()
    codec = codec or default_codec()
    ref = reference or build(setup, role)
    make = None
    if planted_variant is not None:
        if role != SECC:
            raise ValueError("planted variants are SECCs")
        factory = planted.VARIANTS[planted_variant]
        make = lambda: factory(setup.configs("ref")[0])  # noqa: E731
    target = InProcessTarget(role, setup, codec=codec, make=make, snapshots=snapshots)
    gen = Generator(
        ref,
        codec,
        families=families or FAMILIES,
        states=states,
        corpus=corpus,
        lazy=role == SECC,
    )
    options = {
        "role": role,
        "mode": "in-process",
        "setup": {k: v for k, v in dataclasses.asdict(setup).items() if not k.endswith("faults")},
        "planted": planted_variant,
    }
    oracle = Oracle(role, codec, resolve=gen.expectation)
    return Campaign(gen, target.run, oracle, replay.in_process_runner(target), options)


def setup_from(options: dict[str, Any]) -> SessionSetup:
    """The session setup recorded in a reproducer's ``options``."""
    return SessionSetup(**options.get("setup", {}))


def from_options(options: dict[str, Any]) -> Campaign:
    """Rebuild an in-process campaign from a reproducer's ``options``."""
    return in_process(
        options.get("role", SECC), setup_from(options), planted_variant=options.get("planted")
    )


def network(
    address: tuple[str, int],
    setup: SessionSetup | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    codec: XmlCodec | None = None,
    states: tuple[str, ...] | None = None,
    families: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    corpus: tuple[RefMsg, ...] = (),
) -> Campaign:
    """A campaign against the SECC at ``address`` over TCP (or TLS with ``ssl_context``)."""
    setup = setup or SessionSetup()
    codec = codec or default_codec()
    ref = build(setup, SECC)
    target = NetworkSeccTarget(
        address[0],
        address[1],
        ssl_context=ssl_context,
        setup=setup,
        ref_session_id=ref_session_id(ref.messages),
    )
    gen = Generator(
        ref,
        codec,
        families=families or FAMILIES,
        states=states,
        skip=skip,
        corpus=corpus,
        lazy=True,
    )
    options = {
        "role": SECC,
        "mode": "network",
        "address": f"{address[0]}:{address[1]}",
        "tls": ssl_context is not None,
        "setup": {k: v for k, v in dataclasses.asdict(setup).items() if not k.endswith("faults")},
        "planted": None,
    }
    oracle = Oracle(SECC, codec, validate=True, resolve=gen.expectation)
    camp = Campaign(gen, target.run, oracle, target.run, options, mode="network")
    camp.close = target.close
    return camp


@contextmanager
def _progress(total: int, enabled: bool, label: str) -> Iterator[Callable[[int, int], None]]:
    if not enabled:
        yield lambda done, found: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} cases/s  findings: {task.fields[found]}"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total, rate="-", found=0)
        start = time.perf_counter()

        def update(done: int, found: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:.0f}", found=found)

        yield update


def run_campaign(
    campaign: Campaign,
    seed: int,
    cases: int,
    *,
    start: int = 0,
    out_dir: Path | str | None = None,
    minimize: bool = True,
    progress: bool = False,
    max_findings: int = 50,
    time_limit_s: float | None = None,
    pid: int | None = None,
    tasks: Callable[[], int] | None = None,
) -> Report:
    """Run cases ``(seed, start..start+cases-1)``; see the module docstring for the report."""
    report = Report(campaign.generator.ref.target, seed, mode=campaign.mode)
    seen: set[tuple[str, str, str, str]] = set()
    monitor = report.resources
    monitor.pid = pid
    monitor.tasks = tasks
    monitor.every = max(250, cases // 10)  # gc.get_objects() is not free
    t0 = time.perf_counter()
    fuzz_time = 0.0
    with _progress(cases, progress, f"fuzz {report.target}") as update:
        for n, index in enumerate(range(start, start + cases)):
            c0 = time.perf_counter()
            case = campaign.case(seed, index)
            verdict = campaign.oracle.judge(case, campaign.run(case))
            fuzz_time += time.perf_counter() - c0
            report.cases += 1
            _count(report.per_mutator, case.mutator, verdict is not None)
            _count(report.per_state, case.state, verdict is not None)
            if verdict is not None:
                # one reproducer per defect class and mutator; the counts keep the rest
                key = (verdict.kind, verdict.oracle, case.mutator, "")
                if 0 <= verdict.step < case.prefix_len:
                    # the valid prefix alone shows it: one finding, whatever was mutated
                    key = (verdict.kind, verdict.oracle, "prefix", "prefix")
                if key not in seen and len(report.findings) < max_findings:
                    seen.add(key)
                    finding = _finding(campaign, case, verdict, minimize)
                    saved = replay.save(finding, out_dir) if out_dir is not None else None
                    report.add(finding, saved)
            monitor.sample(n)
            if not monitor.alive():
                gone = Verdict("crash", "process-exited", f"target process {pid} exited", -1)
                report.add(Finding(gone, case, options=campaign.options), None)
                break
            if n % 64 == 0:
                update(n + 1, len(report.findings))
                if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                    break
        update(report.cases, len(report.findings))
    monitor.sample(report.cases, force=True)
    growth = monitor.verdict()
    if growth is not None and cases >= 2000:
        dummy = Case(seed, -1, report.target, "campaign", "-", 0, ())
        report.add(Finding(growth, dummy, options=campaign.options), None)
    # execs/s counts generation + execution + judging, not minimisation of findings
    report.elapsed_s = fuzz_time
    return report


def _finding(campaign: Campaign, case: Case, verdict: Verdict, minimize: bool) -> Finding:
    case = campaign.generator.resolve(case)  # reproducers carry classified expectations
    finding = Finding(verdict, case, options=campaign.options)
    if minimize:
        again = replay.reproduce(case, campaign.replay_run, campaign.oracle)
        if again is not None and again.signature == verdict.signature:
            finding.minimized = replay.minimize(case, verdict, campaign.replay_run, campaign.oracle)
    return finding


def listen(
    address: tuple[str, int],
    setup: SessionSetup | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    codec: XmlCodec | None = None,
    states: tuple[str, ...] | None = None,
    families: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    corpus: tuple[RefMsg, ...] = (),
) -> Campaign:
    """A campaign against EVCCs that connect to us at ``address`` (we play the SECC); the
    listening socket is open when this returns (``campaign.options["address"]``)."""
    setup = setup or SessionSetup()
    codec = codec or default_codec()
    ref = build(setup, EVCC)
    target = NetworkEvccTarget(address[0], address[1], ssl_context=ssl_context)
    host, port = target.start()
    gen = Generator(
        ref, codec, families=families or FAMILIES, states=states, skip=skip, corpus=corpus
    )
    options = {
        "role": EVCC,
        "mode": "listen",
        "address": f"{host}:{port}",
        "tls": ssl_context is not None,
        "setup": {k: v for k, v in dataclasses.asdict(setup).items() if not k.endswith("faults")},
        "planted": None,
    }
    oracle = Oracle(EVCC, codec, validate=True)
    camp = Campaign(gen, target.run, oracle, target.run, options, mode="listen")
    camp.close = target.close
    return camp
