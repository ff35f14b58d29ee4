"""Reproduce and minimise findings; save and load standalone reproducer files.

A reproducer is the finding's JSON (:data:`~mcscomm.fuzz.model.FORMAT`): the exact bytes of
every step (prefix included), when they are written, what each frame deserves, the verdict, and
the options to rebuild the target (role, session setup, planted variant). Replaying needs
nothing else -- not the seed, not this version's mutators.

Minimisation keeps the verdict's (kind, oracle) and shrinks greedily: first whole steps (chunks
of the valid prefix that are not needed, extra frames), then the mutated documents element by
element. Every attempt replays from scratch (no snapshots), so the result is honest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from mcscomm.fuzz.model import Case, Finding, Step, Verdict
from mcscomm.fuzz.oracles import Oracle
from mcscomm.fuzz.targets import InProcessTarget, Observation
from mcscomm.v2gtp import FrameDecoder, V2gtpError, build_frame

Runner = Callable[[Case], Observation]
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def reproduce(case: Case, run: Runner, oracle: Oracle) -> Verdict | None:
    """Play ``case`` from scratch and judge it."""
    return oracle.judge(case, run(case))


def minimize(
    case: Case, verdict: Verdict, run: Runner, oracle: Oracle, *, budget: int = 300
) -> Case:
    """A smaller case that still gives a verdict with ``verdict.signature``."""
    want = verdict.signature
    tries = 0

    def still(c: Case) -> bool:
        nonlocal tries
        tries += 1
        v = oracle.judge(c, run(c))
        return v is not None and v.signature == want

    best = case
    # 1. whole steps, in shrinking chunks (ddmin without the complement pass)
    n = max(1, len(best.steps) // 2)
    while n >= 1 and tries < budget:
        i = 0
        changed = False
        while i < len(best.steps) and tries < budget:
            if len(best.steps) <= 1:
                break
            steps = best.steps[:i] + best.steps[i + n :]
            removed_prefix = max(0, min(best.prefix_len, i + n) - i)
            cand = best.with_steps(steps, best.prefix_len - removed_prefix)
            if steps and still(cand):
                best = cand
                changed = True
            else:
                i += n
        if not changed:
            n //= 2
    # 2. the documents after the prefix, element by element
    for k in range(best.prefix_len, len(best.steps)):
        best = _shrink_document(best, k, still, lambda: tries < budget)
    return best


def _shrink_document(
    case: Case, k: int, still: Callable[[Case], bool], more: Callable[[], bool]
) -> Case:
    step = case.steps[k]
    try:
        frames = FrameDecoder(max_payload=1 << 30).feed(step.data)
    except V2gtpError:
        return case
    if len(frames) != 1 or len(build_frame(*frames[0])) != len(step.data):
        return case  # lying lengths, glued frames: the bytes are the point
    pt, doc = frames[0]
    try:
        root = etree.fromstring(doc, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return case
    best = case
    progress = True
    while progress and more():
        progress = False
        for elem in list(root.iter()):
            if not more():
                break
            parent = elem.getparent()
            if parent is None or not isinstance(elem.tag, str):
                continue
            idx = parent.index(elem)
            parent.remove(elem)
            data = build_frame(pt, etree.tostring(root))
            cand = best.with_steps(
                (*best.steps[:k], _replace(step, data), *best.steps[k + 1 :]), best.prefix_len
            )
            if still(cand):
                best = cand
                progress = True
            else:
                parent.insert(idx, elem)
    return best


def _replace(step: Step, data: bytes) -> Step:
    return Step(data, step.at, step.expect, step.chunks, step.chunk_gap_s, step.label)


def save(finding: Finding, directory: Path | str) -> Path:
    """Write ``finding`` as ``<dir>/<kind>-<oracle>-<seed>-<index>.json``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    c = finding.case
    path = d / f"{finding.verdict.kind}-{finding.verdict.oracle}-{c.seed}-{c.index}.json"
    path.write_text(json.dumps(finding.to_json(), indent=1) + "\n", encoding="utf-8")
    return path


def load(path: Path | str) -> Finding:
    """Read a reproducer file. Raises ValueError for anything that is not one."""
    try:
        obj: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a finding")
    try:
        return Finding.from_json(obj)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed finding ({exc})") from None


def in_process_runner(target: InProcessTarget) -> Runner:
    """Run cases from scratch (no snapshots) on an in-process target."""
    return lambda case: target.run(case, snapshot=False)
