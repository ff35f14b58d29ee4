"""Run selected cases against one SUT and collect verdicts.

Each case gets a fresh :class:`CaseContext`; in-process SUTs are also created fresh per case
(a clean session store and virtual clock), a real SUT is reused. Verdicts: a case function that
returns passes; ``CaseFailed`` fails; ``Inconclusive`` is inconclusive; PICS that do not hold,
or ``NotApplicable``, give *n/a*; anything else is an ``error`` of the test system.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcscomm.conformance.channel import BrokenFrame, ChannelClosed
from mcscomm.conformance.context import CaseContext
from mcscomm.conformance.model import (
    CaseFailed,
    CaseResult,
    Inconclusive,
    NotApplicable,
    Role,
    TestCase,
    Verdict,
)
from mcscomm.conformance.pics import Pics
from mcscomm.conformance.tlsvariants import PkiSet

SutFactory = Callable[[], Any]


@dataclass(slots=True)
class RunReport:
    """Everything a report needs: who was tested, where, and the per-case results."""

    role: Role
    pics: Pics
    mode: str
    started: str
    finished: str = ""
    duration_s: float = 0.0
    results: list[CaseResult] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {str(v): 0 for v in Verdict}
        for r in self.results:
            out[str(r.verdict)] += 1
        return out

    @property
    def ok(self) -> bool:
        """True when nothing failed or errored (inconclusive and n/a do not fail a run)."""
        c = self.counts()
        return c["fail"] == 0 and c["error"] == 0


def environment() -> dict[str, str]:
    import ssl

    from mcscomm import __version__ as version

    return {
        "test_system": f"mcscomm {version}",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "openssl": ssl.OPENSSL_VERSION,
        "host": platform.node(),
    }


def run_case(tc: TestCase, sut: Any, pics: Pics, pkis: PkiSet | None) -> CaseResult:
    """Play one case and return its verdict (never raises for a SUT's behaviour)."""
    missing = pics.missing(tc.pics)
    if missing:
        return CaseResult(tc, Verdict.NOT_APPLICABLE, f"PICS: {', '.join(missing)} not claimed")
    ctx = CaseContext(pics, sut, pkis)
    t0 = time.perf_counter()
    verdict, reason = Verdict.PASS, ""
    try:
        tc.run(ctx)
    except CaseFailed as exc:
        verdict, reason = Verdict.FAIL, str(exc)
    except Inconclusive as exc:
        verdict, reason = Verdict.INCONC, str(exc)
    except NotApplicable as exc:
        verdict, reason = Verdict.NOT_APPLICABLE, str(exc)
    except ChannelClosed as exc:
        verdict, reason = Verdict.FAIL, f"the SUT closed the connection unexpectedly ({exc})"
    except BrokenFrame as exc:
        verdict, reason = Verdict.FAIL, f"the SUT sent a broken V2GTP frame: {exc}"
    except Exception as exc:  # a defect of the test system or the environment
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
        verdict, reason = Verdict.ERROR, f"{type(exc).__name__}: {exc} ({where})"
    finally:
        ctx.close()
    return CaseResult(tc, verdict, reason, time.perf_counter() - t0, list(ctx.log.entries))


def run(
    cases: list[TestCase],
    make_sut: SutFactory,
    pics: Pics,
    pkis: PkiSet | None,
    *,
    mode: str = "in-process",
    progress: Callable[[CaseResult], None] | None = None,
) -> RunReport:
    """Run ``cases`` in order; ``make_sut()`` is called per case (return the same object for a
    real SUT). ``progress`` is called after each case."""
    report = RunReport(
        role=Role(pics.role),
        pics=pics,
        mode=mode,
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        environment=environment(),
    )
    t0 = time.perf_counter()
    for tc in cases:
        sut = make_sut()
        try:
            result = run_case(tc, sut, pics, pkis)
        finally:
            if getattr(sut, "virtual", False):
                sut.close()
        report.results.append(result)
        if progress is not None:
            progress(result)
    report.duration_s = time.perf_counter() - t0
    report.finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return report
