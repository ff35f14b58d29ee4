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
"""

from __future__ import annotations

from mcscomm.fuzz.model import Case, Finding, Step

__all__ = ["Case", "Finding", "Step"]
