"""Stateful, schema-aware protocol fuzzer for ISO 15118-20 peers (issue 7).

Theory of operation. A *reference* session (valid traffic, recorded from our own deterministic
endpoints or from a trace) gives, for every message position, the document and the state the
target is in. A *case* is derived from ``(seed, index)`` alone: pick a position (the state to
drive the target to), pick a mutator, and build the *steps* -- the writes we make after the
valid prefix. A *target* plays the steps (in-process through the sans-IO core with a virtual
clock, or over TCP/TLS) and returns an observation; *oracles* turn observations into
*findings*; a finding is minimised, saved as a standalone reproducer and can be replayed.

Modules: :mod:`.model` (steps, cases, findings, JSON), :mod:`.reference` (valid sessions),
:mod:`.mutators` / :mod:`.values` / :mod:`.documents` / :mod:`.framing` / :mod:`.sequences`,
:mod:`.targets` (in-process SECC and EVCC), :mod:`.network` (TCP/TLS), :mod:`.oracles`,
:mod:`.campaign`, :mod:`.replay` (replay and minimisation), :mod:`.planted` (broken SECCs
used to prove the oracles see real defects).

Python API in brief::

    from mcscomm.fuzz import in_process, run_campaign, replay
    report = run_campaign(in_process("secc"), seed=1, cases=5000, out_dir="findings")
    report.to_json()  # {"cases", "execs_per_s", "findings", "per_mutator", "per_state", ...}
    finding = replay.load("findings/crash-exception-1-62.json")
    camp = from_options(finding.options)
    replay.reproduce(finding.minimized or finding.case, camp.replay_run, camp.oracle)
"""

from __future__ import annotations

from mcscomm.fuzz import replay
from mcscomm.fuzz.campaign import (
    Campaign,
    Report,
    from_options,
    in_process,
    listen,
    network,
    run_campaign,
)
from mcscomm.fuzz.model import Case, Finding, Step, Verdict

__all__ = [
    "Campaign",
    "Case",
    "Finding",
    "Report",
    "Step",
    "Verdict",
    "from_options",
    "in_process",
    "listen",
    "network",
    "replay",
    "run_campaign",
]
