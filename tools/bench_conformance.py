#!/usr/bin/env python3
"""Conformance benchmark: the whole catalogue in-process (virtual clock) vs one plain session.

Figures:
* ``conformance_cases`` / ``conformance_catalogue_s``: every case of both directions against
  our own endpoints, wall time;
* ``conformance_virtual_s``: the protocol time those cases cover on the virtual clock (timeouts
  of 60 s, 20 s, ... included) -- what a real-time run would need at least;
* ``conformance_speedup``: virtual / wall time;
* ``conformance_case_vs_session``: wall time per case / wall time of one complete in-process
  session (``session.loopback.run_pair``, 10 s of charge loop) measured in the same run.

    python tools/bench_conformance.py [--quick]
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _baseline(repeat: int) -> float:
    from mcscomm.session.loopback import default_configs, make_pair, run_pair

    best = float("inf")
    for _ in range(repeat):
        secc, evcc = default_configs(scenario=None)
        evcc = dataclasses.replace(evcc, duration_s=10.0)
        e, s = make_pair(secc, evcc)
        t0 = time.perf_counter()
        run_pair(e, s, max_time=600)
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool) -> dict[str, Any]:
    from mcscomm.conformance import catalogue
    from mcscomm.conformance.model import Role
    from mcscomm.conformance.pics import Pics
    from mcscomm.conformance.runner import run_case
    from mcscomm.conformance.sut import InProcessEvcc, InProcessSecc
    from mcscomm.conformance.tlsvariants import PkiSet
    from mcscomm.security import pki

    base = Path(tempfile.mkdtemp(prefix="bench-conformance-"))
    pkis = PkiSet(pki.init_pki(base / "good", "secp521r1"), base)
    pkis.other, pkis.expired  # noqa: B018  (made outside the timed part)
    baseline = _baseline(3 if quick else 10)
    cases = catalogue.all_cases()
    wall = 0.0
    virtual = 0.0
    passed = 0
    for tc in cases:
        pics = Pics().with_role(str(tc.sut))
        cls = InProcessSecc if tc.sut is Role.SECC else InProcessEvcc
        sut = cls(pics, pkis)
        t0 = time.perf_counter()
        result = run_case(tc, sut, pics, pkis)
        wall += time.perf_counter() - t0
        sut.close()
        virtual += sut.clock.now
        passed += str(result.verdict) == "pass"
    per_case = wall / len(cases)
    return {
        "conformance_cases": len(cases),
        "conformance_passed": passed,
        "conformance_catalogue_s": round(wall, 3),
        "conformance_virtual_s": round(virtual, 1),
        "conformance_speedup": round(virtual / wall, 1),
        "conformance_session_baseline_s": round(baseline, 4),
        "conformance_case_vs_session": round(per_case / baseline, 2),
    }


if __name__ == "__main__":
    figures = run("--quick" in sys.argv)
    for key, value in figures.items():
        print(f"{key:34} {value}")
