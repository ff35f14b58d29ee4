"""The conformance case model: verdicts, case descriptions and results (ISO 15118-21/-23 style).

A :class:`TestCase` is a table row of the -21/-23 kind (id, purpose, requirement, PICS,
preconditions, stimulus, expected behaviour) plus the function that plays it. The function gets a
:class:`CaseContext` (the tester, the PICS, the SUT launcher) and either returns (verdict
``pass``) or raises :class:`CaseFailed` (``fail``), :class:`Inconclusive` (``inconc``) or
:class:`NotApplicable` (a run-time discovery that the case does not apply). Anything else it
raises is a defect of the test system or the environment: verdict ``error``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.StrEnum):
    """ITU-T X.290 verdicts plus ``n/a`` for cases the PICS excludes (never counted as passed)."""

    PASS = "pass"
    FAIL = "fail"
    INCONC = "inconc"
    ERROR = "error"
    NOT_APPLICABLE = "n/a"


class Role(enum.StrEnum):
    """Which implementation is under test (the tester plays the other one)."""

    SECC = "secc"
    EVCC = "evcc"


class CaseFailed(Exception):
    """The SUT did something the expected behaviour forbids (verdict ``fail``)."""


class Inconclusive(Exception):
    """The case could not reach the point where the SUT's behaviour decides (verdict ``inconc``),
    e.g. the SUT picked another service than the one the case exercises."""


class NotApplicable(Exception):
    """Discovered at run time that the case does not apply to this SUT (verdict ``n/a``)."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One message (or transport event) seen on the wire, for the failure report.

    ``direction`` is ``tester->sut``, ``sut->tester`` or ``note``; ``t`` is the tester's clock
    (virtual in-process, monotonic seconds since the case started over sockets).
    """

    t: float
    direction: str
    what: str
    detail: str = ""

    def line(self) -> str:
        arrow = {"tester->sut": "-->", "sut->tester": "<--"}.get(self.direction, "   ")
        tail = f"  {self.detail}" if self.detail else ""
        return f"{self.t:9.3f} {arrow} {self.what}{tail}"


CaseFunction = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class TestCase:
    """One catalogue entry. ``pics`` are PICS expressions that must all hold (see pics.py)."""

    id: str
    sut: Role
    group: str
    purpose: str
    requirement: str
    pics: tuple[str, ...]
    preconditions: str
    stimulus: str
    expected: str
    run: CaseFunction = field(repr=False, compare=False)
    #: which deliberate defect of our own endpoints makes this case fail (self-test mapping)
    fault: str | None = None

    __test__ = False  # not a pytest class

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sut": str(self.sut),
            "group": self.group,
            "purpose": self.purpose,
            "requirement": self.requirement,
            "pics": list(self.pics),
            "preconditions": self.preconditions,
            "stimulus": self.stimulus,
            "expected": self.expected,
            "fault": self.fault,
        }


@dataclass(slots=True)
class CaseResult:
    """What running one case produced."""

    case: TestCase
    verdict: Verdict
    reason: str = ""
    duration_s: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.case.describe(),
            "verdict": str(self.verdict),
            "reason": self.reason,
            "duration_s": round(self.duration_s, 6),
            "exchanges": [
                {"t": round(e.t, 6), "direction": e.direction, "what": e.what, "detail": e.detail}
                for e in self.exchanges
            ],
        }
