"""Steps, cases and findings, and their JSON form (the reproducer file format).

A :class:`Step` is one write to the target. ``expect`` has one entry per V2GTP frame the write
completes: ``any`` (a valid message: any answer is fine) or ``reject`` (invalid input: the target
must not answer with an ``OK*`` response code, nor carry on with the session). Steps carry the
virtual time they are written at (in-process targets); network targets honour only the gaps.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any

ANY = "any"
REJECT = "reject"
#: Later than every ISO 15118-20 sequence timeout (60 s, facts §5.1).
LATE_S = 61.0
#: not classified yet (a lazy generator: see ``Generator.expectation``)
LAZY = "?"

#: Finding kinds (issue 7 §4).
CRASH = "crash"
HANG = "hang"
VIOLATION = "violation"
RESOURCE = "resource"

FORMAT = "mcscomm-fuzz-finding/1"


@dataclass(frozen=True, slots=True)
class Step:
    """One write: ``data`` in ``chunks`` writes ``chunk_gap_s`` apart, starting at ``at``."""

    data: bytes
    at: float = 0.0
    expect: tuple[str, ...] = (ANY,)
    chunks: int = 1
    chunk_gap_s: float = 0.0
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at,
            "expect": list(self.expect),
            "data_b64": base64.b64encode(self.data).decode("ascii"),
            "preview": _preview(self.data),
        }
        if self.chunks != 1:
            out["chunks"] = self.chunks
            out["chunk_gap_s"] = self.chunk_gap_s
        if self.label:
            out["label"] = self.label
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Step:
        return cls(
            data=base64.b64decode(obj["data_b64"]),
            at=float(obj.get("at", 0.0)),
            expect=tuple(obj.get("expect", (ANY,))),
            chunks=int(obj.get("chunks", 1)),
            chunk_gap_s=float(obj.get("chunk_gap_s", 0.0)),
            label=str(obj.get("label", "")),
        )


def _preview(data: bytes, limit: int = 240) -> str:
    """Readable start of a write: the V2GTP header in hex, then the document as text."""
    head, body = data[:8], data[8:]
    text = body[:limit].decode("utf-8", "replace")
    return f"{head.hex()} {text}" + ("..." if len(body) > limit else "")


@dataclass(frozen=True, slots=True)
class Case:
    """A generated test case: identified by ``(seed, index)``; ``steps[:prefix_len]`` is the
    valid prefix that drives the target into ``state``."""

    seed: int
    index: int
    target: str
    mutator: str
    state: str
    prefix_len: int
    steps: tuple[Step, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "index": self.index,
            "target": self.target,
            "mutator": self.mutator,
            "state": self.state,
            "prefix_len": self.prefix_len,
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Case:
        return cls(
            seed=int(obj["seed"]),
            index=int(obj["index"]),
            target=str(obj["target"]),
            mutator=str(obj["mutator"]),
            state=str(obj["state"]),
            prefix_len=int(obj["prefix_len"]),
            steps=tuple(Step.from_json(s) for s in obj["steps"]),
        )

    def with_steps(self, steps: tuple[Step, ...], prefix_len: int) -> Case:
        return dataclasses.replace(self, steps=steps, prefix_len=prefix_len)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an oracle concluded: ``kind`` (crash/hang/violation/resource), ``oracle`` (which
    check), ``detail`` (human line) and the step it fired on."""

    kind: str
    oracle: str
    detail: str
    step: int = -1

    @property
    def signature(self) -> tuple[str, str]:
        """What must stay the same while minimising (kind and oracle, not the detail text)."""
        return (self.kind, self.oracle)


@dataclass(slots=True)
class Finding:
    """A verdict with the case that produced it and, once minimised, the smaller case."""

    verdict: Verdict
    case: Case
    minimized: Case | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": self.verdict.kind,
            "oracle": self.verdict.oracle,
            "detail": self.verdict.detail,
            "step": self.verdict.step,
            "options": self.options,
            "case": self.case.to_json(),
            "minimized": self.minimized.to_json() if self.minimized is not None else None,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Finding:
        if obj.get("format") != FORMAT:
            raise ValueError(f"not an mcscomm fuzz finding (format {obj.get('format')!r})")
        mini = obj.get("minimized")
        return cls(
            verdict=Verdict(obj["kind"], obj["oracle"], obj["detail"], int(obj.get("step", -1))),
            case=Case.from_json(obj["case"]),
            minimized=Case.from_json(mini) if mini else None,
            options=dict(obj.get("options", {})),
        )
