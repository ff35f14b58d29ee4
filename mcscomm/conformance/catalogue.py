"""The catalogue: every case of both directions, and selection by pattern and PICS.

Cases are defined in :mod:`.cases_secc` (tester EVCC vs SECC under test) and
:mod:`.cases_evcc` (tester SECC vs EVCC under test) with the :func:`case` decorator.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from mcscomm.conformance.model import Role, TestCase

_CASES: dict[str, TestCase] = {}


def case(
    id: str,
    *,
    purpose: str,
    requirement: str,
    pics: tuple[str, ...] = (),
    pre: str,
    stimulus: str,
    expected: str,
    fault: str | None,
    group: str = "",
) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register the decorated function as the case ``id`` (ids are unique)."""

    def deco(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        add(
            TestCase(
                id=id,
                sut=Role.SECC if id.startswith("TC_SECC_") else Role.EVCC,
                group=group or id.split("_")[4],
                purpose=purpose,
                requirement=requirement,
                pics=pics,
                preconditions=pre,
                stimulus=stimulus,
                expected=expected,
                run=fn,
                fault=fault,
            )
        )
        return fn

    return deco


def add(tc: TestCase) -> None:
    if tc.id in _CASES:
        raise ValueError(f"duplicate case id {tc.id}")
    _CASES[tc.id] = tc


def all_cases() -> list[TestCase]:
    """Every case, SECC cases first, in definition order."""
    from mcscomm.conformance import cases_evcc, cases_secc  # noqa: F401  (registration)

    return sorted(_CASES.values(), key=lambda c: (c.sut is Role.EVCC,))


def select(role: Role | str | None = None, pattern: str | None = None) -> list[TestCase]:
    """Cases for ``role`` whose id matches ``pattern`` (fnmatch globs, comma-separated; a
    pattern without wildcards matches as a substring)."""
    cases = all_cases()
    if role is not None:
        cases = [c for c in cases if c.sut == Role(role)]
    if pattern:
        pats = [p.strip() for p in pattern.split(",") if p.strip()]

        def hit(cid: str) -> bool:
            return any(
                fnmatch.fnmatchcase(cid, p) if any(ch in p for ch in "*?[") else p in cid
                for p in pats
            )

        cases = [c for c in cases if hit(c.id)]
    return cases


def get(case_id: str) -> TestCase:
    all_cases()
    return _CASES[case_id]
