"""Turn ``(seed, index)`` into a :class:`~mcscomm.fuzz.model.Case`.

A case picks a state (uniformly over the states of the reference session, then a position in
it), a mutator family and a mutator (weighted), and builds the steps after the valid prefix:

* ``value.*`` (schema-aware, :mod:`.values`) and ``doc.*`` (:mod:`.documents`) rewrite the
  document at that position;
* ``v2gtp.*`` (:mod:`.framing`) rewrite its frame;
* ``seq.*`` (here) change the sequence: skip, repeat, reorder, replay from another session,
  wrong or stale session id, a second SessionSetup, too late, messages after SessionStop.

The :class:`Classifier` decides what each frame *should* get: ``reject`` when the codec refuses
it, when its message is not allowed in the state (our transition table, ``transitions.py``),
when it carries another session's id, or (EVCC target) when it is a FAILED response.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from mcscomm.codec import CodecError, XmlCodec
from mcscomm.fuzz import documents, framing, values
from mcscomm.fuzz.model import ANY, LATE_S, LAZY, REJECT, Case, Step
from mcscomm.fuzz.reference import EVCC, Reference, RefMsg
from mcscomm.fuzz.targets import split_frames
from mcscomm.session.transitions import SECC_TABLE, SeccState
from mcscomm.v2gtp import build_frame

_SID = re.compile(rb"SessionID>([0-9A-Fa-f]*)<")
# the SECC assigns the session id in SessionSetupRes; before it there is none
_NO_SESSION = frozenset(
    {"SupportedAppProtocolReq", "SupportedAppProtocolRes", "SessionSetupReq", "SessionSetupRes"}
)
AFTER_STOP = "AFTER_SESSION_STOP"


def session_id(doc: bytes) -> bytes | None:
    m = _SID.search(doc)
    if m is None:
        return None
    try:
        return bytes.fromhex(m.group(1).decode())
    except ValueError:
        return None


@dataclass(slots=True)
class Classifier:
    """What a frame deserves from a correct target (``any`` or ``reject``)."""

    codec: XmlCodec
    target: str

    def allowed(self, name: str, state: str, base: RefMsg) -> bool:
        if self.target == EVCC:
            return name == base.name
        try:
            return name in SECC_TABLE[SeccState[state]]
        except KeyError:
            return True  # a state we do not know (trace corpus): do not judge

    def __call__(self, pt: int, doc: bytes, base: RefMsg, state: str) -> str:
        try:
            message = self.codec.decode(pt, doc)
        except CodecError:
            return REJECT
        name = type(message).__name__
        if not self.allowed(name, state, base):
            return REJECT
        header = getattr(message, "header", None)
        if (
            header is not None
            and name not in _NO_SESSION
            and header.session_id != session_id(base.document)
        ):
            return REJECT
        code = getattr(message, "response_code", None)
        if code is not None and str(getattr(code, "value", code)).startswith("FAILED"):
            return REJECT
        return ANY


@dataclass(slots=True)
class Generator:
    """Builds cases for one reference. ``families`` restricts the mutator prefixes used."""

    ref: Reference
    codec: XmlCodec
    families: tuple[str, ...] = ("value", "doc", "v2gtp", "seq")
    states: tuple[str, ...] | None = None
    skip: tuple[str, ...] = ()
    corpus: tuple[RefMsg, ...] = ()
    lazy: bool = False
    classify: Classifier = field(init=False)
    _prefix: list[Step] = field(init=False)
    _by_state: dict[str, list[int]] = field(init=False)
    _table: list[tuple[str, int]] = field(init=False)
    _seeds: dict[str, list[RefMsg]] = field(init=False)

    def __post_init__(self) -> None:
        self.classify = Classifier(self.codec, self.ref.target)
        self._prefix = [
            Step(build_frame(m.payload_type, m.document), at=m.at, label=m.name)
            for m in self.ref.messages
        ]
        self._by_state = {}
        for i, m in enumerate(self.ref.messages):
            self._by_state.setdefault(m.state, []).append(i)
        if self.states is not None:
            unknown = set(self.states) - set(self._by_state) - {AFTER_STOP}
            if unknown:
                raise ValueError(f"states not in the reference session: {sorted(unknown)}")
        table: list[tuple[str, int]] = []
        for name, (_, w) in values.VALUE_MUTATORS.items():
            table.append((name, w))
        for name, (_, w) in documents.DOC_MUTATORS.items():
            table.append((name, w))
        for name, (_, w) in framing.FRAME_MUTATORS.items():
            table.append((name, w))
        for name, (_, w) in SEQUENCE_MUTATORS.items():
            if self.ref.target == EVCC and name == "seq.after_stop":
                continue
            table.append((name, w))
        self._table = [
            (n, w) for n, w in table if n.split(".")[0] in self.families and n not in self.skip
        ]
        self._seeds = {}
        for m in self.corpus:
            self._seeds.setdefault(m.name, []).append(m)
        if not self._table:
            raise ValueError(f"no mutators in families {self.families}")

    @property
    def mutator_names(self) -> list[str]:
        return [n for n, _ in self._table]

    def prefix(self, n: int) -> list[Step]:
        return self._prefix[:n]

    def case(self, seed: int, index: int) -> Case:
        """The case ``(seed, index)``: the same pair always gives the same case."""
        rng = random.Random(f"{seed}:{index}")
        names = [n for n, _ in self._table]
        weights = [w for _, w in self._table]
        for _ in range(16):
            name = rng.choices(names, weights)[0]
            if name == "seq.after_stop":
                if self.states is not None and AFTER_STOP not in self.states:
                    continue
                state = AFTER_STOP
                i = len(self.ref.messages)
            else:
                choices = [s for s in self.states or list(self._by_state) if s != AFTER_STOP]
                if not choices:
                    continue
                state = rng.choice(choices)
                i = rng.choice(self._by_state[state])
            try:
                built = self._build(name, rng, i, state)
            except ValueError:  # lxml refused a value: draw again (still deterministic)
                built = None
            if built is None:
                continue
            prefix_len, steps = built
            return Case(
                seed,
                index,
                self.ref.target,
                name,
                state,
                prefix_len,
                tuple(self._prefix[:prefix_len]) + tuple(steps),
            )
        # every draw was inapplicable (tiny corpus): send the message unchanged
        m = self.ref.messages[0]
        step = Step(build_frame(m.payload_type, m.document), at=m.at)
        return Case(seed, index, self.ref.target, "none", m.state, 0, (step,))

    # -- building ----------------------------------------------------------------------------

    def _build(
        self, name: str, rng: random.Random, i: int, state: str
    ) -> tuple[int, list[Step]] | None:
        family = name.split(".")[0]
        if family == "seq":
            return SEQUENCE_MUTATORS[name][0](self, rng, i, state)
        base = self.ref.messages[i]
        source = self._seed_document(rng, base)
        if family == "value":
            root = etree.fromstring(source)
            label = values.VALUE_MUTATORS[name][0](rng, root, values.annotate(root))
            if label is None:
                return None
            doc = etree.tostring(root)
            expect = self._expect(base.payload_type, doc, base, state)
            if name == "value.signature_tamper" and label.startswith("flip"):
                expect = REJECT  # a tampered signature must never be accepted
            return i, [Step(build_frame(base.payload_type, doc), base.at, (expect,), label=label)]
        if family == "doc":
            doc, label = documents.DOC_MUTATORS[name][0](rng, source)
            expect = self._expect(base.payload_type, doc, base, state)
            return i, [Step(build_frame(base.payload_type, doc), base.at, (expect,), label=label)]
        writes, label = framing.FRAME_MUTATORS[name][0](rng, base.payload_type, base.document, ANY)
        steps = []
        for data, expects, chunks, gap in writes:
            resolved = tuple(self._resolve(e, i, state, data) for e in expects)
            steps.append(Step(data, base.at, resolved, chunks, gap, label))
        return i, steps

    def _seed_document(self, rng: random.Random, base: RefMsg) -> bytes:
        """The document to mutate: the reference one, or (half the time, when the corpus has
        that message) a corpus document carrying the reference session id."""
        seeds = self._seeds.get(base.name)
        if not seeds or rng.random() < 0.5:
            return base.document
        doc = rng.choice(seeds).document
        sid = session_id(base.document)
        return _with_session(doc, sid) if sid is not None else doc

    def _resolve(self, e: str, i: int, state: str, data: bytes) -> str:
        base = self.ref.messages[i]
        if e == "classify":
            pt = int.from_bytes(data[2:4], "big")
            return self._expect(pt, base.document, base, state)
        if e == "repeat":
            # the same request again, in the state the first one led to
            nxt = self.ref.messages[i + 1] if i + 1 < len(self.ref.messages) else None
            if nxt is None:
                return REJECT
            if self.ref.target == EVCC:
                return ANY if nxt.name == base.name else REJECT
            return ANY if self.classify.allowed(base.name, nxt.state, base) else REJECT
        return e

    def frame_step(self, m: RefMsg, at: float, i: int, state: str, label: str) -> Step:
        """A reference message sent at ``at`` in place of message ``i`` (classified there)."""
        base = self.ref.messages[min(i, len(self.ref.messages) - 1)]
        expect = self._expect(m.payload_type, m.document, base, state)
        return Step(build_frame(m.payload_type, m.document), at, (expect,), label=label)

    def _expect(self, pt: int, doc: bytes, base: RefMsg, state: str) -> str:
        # classifying costs a full decode and schema validation; a lazy generator leaves it to
        # the oracle, which only needs it when the target answered OK
        return LAZY if self.lazy else self.classify(pt, doc, base, state)

    def expectation(self, case: Case, k: int, j: int) -> str:
        """The classification of frame ``j`` of step ``k`` of ``case`` (resolves ``?``)."""
        step = case.steps[k]
        if j < len(step.expect) and step.expect[j] != LAZY:
            return step.expect[j]
        frames = split_frames(step.data)
        if j >= len(frames):
            return REJECT
        pt, doc = frames[j]
        base = self.ref.messages[min(case.prefix_len, len(self.ref.messages) - 1)]
        return self.classify(pt, doc, base, case.state)

    def resolve(self, case: Case) -> Case:
        """``case`` with every lazy expectation classified (what reproducer files store)."""
        steps = list(case.steps)
        for k, step in enumerate(steps):
            if LAZY in step.expect:
                expect = tuple(self.expectation(case, k, j) for j in range(len(step.expect)))
                steps[k] = dataclasses.replace(step, expect=expect)
        return case.with_steps(tuple(steps), case.prefix_len)


# ------------------------------------------------------------------------------- sequences

SeqMutator = Callable[[Generator, random.Random, int, str], "tuple[int, list[Step]] | None"]


def _msgs(g: Generator) -> tuple[RefMsg, ...]:
    return g.ref.messages


def seq_skip(g: Generator, rng: random.Random, i: int, state: str) -> tuple[int, list[Step]] | None:
    ms = _msgs(g)
    later = [j for j in range(i + 1, len(ms)) if ms[j].name != ms[i].name]
    if not later:
        return None
    j = rng.choice(later[:3])
    return i, [g.frame_step(ms[j], ms[i].at, i, state, f"skip to {ms[j].name}")]


def seq_repeat(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    ms = _msgs(g)
    if i == 0:
        return None
    j = rng.randrange(max(0, i - 3), i)
    return i, [g.frame_step(ms[j], ms[i].at, i, state, f"repeat {ms[j].name}")]


def seq_reorder(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    ms = _msgs(g)
    if i + 1 >= len(ms) or ms[i + 1].name == ms[i].name:
        return None
    first = g.frame_step(ms[i + 1], ms[i].at, i, state, f"{ms[i + 1].name} first")
    # whatever became of the first, the skipped request is now out of order (or the session
    # is over): it must not be answered OK
    data = build_frame(ms[i].payload_type, ms[i].document)
    second = Step(data, ms[i].at, (REJECT,), label=f"then {ms[i].name}")
    return i, [first, second]


def seq_foreign(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    other = g.ref.other
    same = [m for m in other if m.name == _msgs(g)[i].name] or list(other)
    if not same:
        return None
    m = rng.choice(same)
    return i, [g.frame_step(m, _msgs(g)[i].at, i, state, "replay from another session")]


def _with_session(doc: bytes, sid: bytes) -> bytes:
    return _SID.sub(b"SessionID>" + sid.hex().upper().encode() + b"<", doc, count=1)


def seq_wrong_session(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    m = _msgs(g)[i]
    if session_id(m.document) is None:
        return None
    choice = rng.choice(("random", "stale", "zero"))
    if choice == "random":
        sid = rng.randbytes(8)
    elif choice == "zero":
        sid = bytes(8)
    else:
        sid = next(
            (s for s in (session_id(o.document) for o in g.ref.other) if s and any(s)), bytes(8)
        )
    doc = _with_session(m.document, sid)
    fake = RefMsg(m.at, m.payload_type, doc, m.name, m.state)
    return i, [g.frame_step(fake, m.at, i, state, f"{choice} session id {sid.hex()}")]


def seq_setup_again(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    ms = _msgs(g)
    first = 1  # SessionSetupReq (or its response) follows the SAP handshake
    if i <= first + 1 or len(ms) <= first:
        return None
    return i, [g.frame_step(ms[first], ms[i].at, i, state, f"{ms[first].name} again")]


def seq_late(g: Generator, rng: random.Random, i: int, state: str) -> tuple[int, list[Step]] | None:
    m = _msgs(g)[i]
    step = Step(build_frame(m.payload_type, m.document), m.at + LATE_S, (REJECT,), label="late")
    return i, [step]


def seq_flood(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    ms = _msgs(g)
    m = ms[i]
    n = rng.choice((2, 5, 20))
    first = g._expect(m.payload_type, m.document, m, state)
    again = g._resolve("repeat", i, state, b"")
    data = build_frame(m.payload_type, m.document) * n
    return i, [Step(data, m.at, (first,) + (again,) * (n - 1), label=f"{n} at once")]


def seq_after_stop(
    g: Generator, rng: random.Random, i: int, state: str
) -> tuple[int, list[Step]] | None:
    ms = _msgs(g)
    loop = [m for m in ms if m.name == "DC_ChargeLoopReq"] or list(ms)
    m = rng.choice(loop)
    step = Step(
        build_frame(m.payload_type, m.document),
        ms[-1].at + rng.choice((0.0, 0.1)),
        (REJECT,),
        label=f"{m.name} after SessionStop",
    )
    return len(ms), [step]


SEQUENCE_MUTATORS: dict[str, tuple[SeqMutator, int]] = {
    "seq.skip": (seq_skip, 2),
    "seq.repeat": (seq_repeat, 2),
    "seq.reorder": (seq_reorder, 1),
    "seq.foreign_session": (seq_foreign, 1),
    "seq.wrong_session_id": (seq_wrong_session, 2),
    "seq.setup_again": (seq_setup_again, 1),
    "seq.late": (seq_late, 1),
    "seq.flood": (seq_flood, 1),
    "seq.after_stop": (seq_after_stop, 1),
}
