"""Reference sessions: the valid traffic a campaign starts from and mutates.

A reference is recorded by running our own EVCC and SECC against each other in memory with a
virtual clock and *deterministic* randomness, so that a fresh target built the same way answers
the recorded prefix exactly as it did during recording (same session id, same timings). A second
session with other randomness supplies "foreign" messages (replay from another session, stale
session ids). A corpus can also be seeded from session traces (JSON Lines with ``xml`` per
message, :mod:`mcscomm.trace`).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from mcscomm.codec.base import MESSAGE_CLASSES
from mcscomm.session.config import EvccConfig, ImmediateAccept, SeccConfig, SessionStore
from mcscomm.session.connection import EvccConnection, SeccConnection
from mcscomm.session.loopback import default_configs, run_pair
from mcscomm.v2gtp import FrameDecoder

SECC = "secc"
EVCC = "evcc"
TARGETS = (SECC, EVCC)


@dataclass(frozen=True, slots=True)
class RefMsg:
    """One message the fuzzer may send: at virtual time ``at``, to a target in ``state``."""

    at: float
    payload_type: int
    document: bytes
    name: str
    state: str


@dataclass(frozen=True, slots=True)
class Reference:
    """Valid messages *to* the target in order (requests for an SECC target, responses for an
    EVCC target), plus the same from another session (``other``)."""

    target: str
    messages: tuple[RefMsg, ...]
    other: tuple[RefMsg, ...]

    def states(self) -> list[str]:
        """Distinct states in order of first appearance."""
        seen: dict[str, None] = {}
        for m in self.messages:
            seen.setdefault(m.state, None)
        return list(seen)


def seeded_random(label: str) -> Callable[[int], bytes]:
    """A deterministic ``random_bytes`` replacement (fresh for every call of this function)."""
    rng = random.Random(label)
    return rng.randbytes


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """How to build the reference pair and every fresh in-process target."""

    charger: str = "mcs_1mw_bpt"
    truck: str = "mcs_7pack"
    scenario: str | None = "depot_peak_shaving"
    duration_s: float = 2.0
    pki_dir: str | None = None  # with a PKI: PnC, signed messages (else EIM, unsigned)
    secc_faults: Any = None
    evcc_faults: Any = None

    def configs(self, label: str = "ref") -> tuple[SeccConfig, EvccConfig]:
        """Fresh configs (own randomness, session store and authorizer) for one connection."""
        secc, evcc = _profiles(self.charger, self.truck, self.scenario, self.pki_dir)
        secc = dataclasses.replace(
            secc,
            random_bytes=seeded_random(f"secc:{label}"),
            store=SessionStore(),
            authorizer=ImmediateAccept(),
        )
        if self.secc_faults is not None:
            secc = dataclasses.replace(secc, faults=self.secc_faults)
        evcc = dataclasses.replace(
            evcc, random_bytes=seeded_random(f"evcc:{label}"), duration_s=self.duration_s
        )
        if self.evcc_faults is not None:
            evcc = dataclasses.replace(evcc, faults=self.evcc_faults)
        return secc, evcc


@functools.cache
def _profiles(
    charger: str, truck: str, scenario: str | None, pki_dir: str | None
) -> tuple[SeccConfig, EvccConfig]:
    # profiles are frozen dataclasses read from TOML, the manifest holds keys: load them once
    # per process (one manifest object also keeps the signature helpers cached)
    manifest = None
    if pki_dir is not None:
        from mcscomm.security.pki import load_manifest

        manifest = load_manifest(pki_dir)
    return default_configs(charger=charger, truck=truck, scenario=scenario, pki=manifest)


def _split(data: bytes) -> list[tuple[int, bytes]]:
    return [(f.payload_type, f.payload) for f in FrameDecoder(max_payload=1 << 30).feed(data)]


def message_name(document: bytes) -> str:
    """Class name of the document's root message (``SupportedAppProtocolReq``, ...), else the
    root's local name, else ``?`` for something that does not parse."""
    try:
        tag = etree.fromstring(document, _PARSER).tag
    except (etree.XMLSyntaxError, ValueError):
        return "?"
    if not isinstance(tag, str):
        return "?"
    cls = MESSAGE_CLASSES.get(tag)
    return cls.__name__ if cls is not None else tag.rsplit("}", 1)[-1]


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def record(setup: SessionSetup, target: str, label: str = "ref") -> tuple[RefMsg, ...]:
    """Run one valid session in memory and return the messages sent *to* ``target``."""
    secc_cfg, evcc_cfg = setup.configs(label)
    secc = SeccConnection(secc_cfg, now=0.0, tls=True)
    evcc = EvccConnection(evcc_cfg, now=0.0, tls=True, codec=secc.codec)
    out: list[RefMsg] = []
    to_secc = secc.receive_data
    to_evcc = evcc.receive_data

    def secc_in(data: bytes, now: float) -> None:
        if target == SECC:
            state = secc.session.state.name
            out.extend(RefMsg(now, pt, doc, message_name(doc), state) for pt, doc in _split(data))
        to_secc(data, now)

    def evcc_in(data: bytes, now: float) -> None:
        if target == EVCC:
            state = evcc.session.state.name
            out.extend(RefMsg(now, pt, doc, message_name(doc), state) for pt, doc in _split(data))
        to_evcc(data, now)

    secc.receive_data = secc_in  # type: ignore[method-assign]
    evcc.receive_data = evcc_in  # type: ignore[method-assign]
    run_pair(evcc, secc, max_time=3600.0)
    return tuple(out)


def build(setup: SessionSetup, target: str) -> Reference:
    """The reference for ``target`` (``secc``: we play the EVCC; ``evcc``: we play the SECC)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    return Reference(target, record(setup, target, "ref"), record(setup, target, "other"))


def from_trace(lines: Iterable[dict[str, Any]], target: str) -> tuple[RefMsg, ...]:
    """Messages *to* ``target`` from trace records (``kind: message`` with ``xml``).

    Trace files carry no target state; the message name stands in for it.
    """
    direction = "evcc->secc" if target == SECC else "secc->evcc"
    out: list[RefMsg] = []
    for rec in lines:
        if rec.get("kind") != "message" or rec.get("dir") != direction or "xml" not in rec:
            continue
        doc = str(rec["xml"]).encode("utf-8")
        name = str(rec.get("message") or message_name(doc))
        out.append(RefMsg(float(rec.get("t", 0.0)), int(rec["payload_type"]), doc, name, name))
    return tuple(out)


def load_trace(path: str | Path, target: str) -> tuple[RefMsg, ...]:
    """:func:`from_trace` on a JSON Lines trace file."""
    from mcscomm.trace import read_trace

    return from_trace(read_trace(path), target)
