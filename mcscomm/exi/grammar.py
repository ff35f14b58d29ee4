"""Schema-informed EXI grammars built from XSDs (W3C EXI 1.0 §8.5).

Theory of operation
-------------------
EXI §8.5.4 builds, for every type, a grammar of non-terminals whose productions are labelled by
events (AT(qname), SE(qname), SE(*), EE, CH). It concatenates attribute-use grammars (sorted by
qname) with the particle grammar of the content model, expands ``minOccurs``/``maxOccurs`` into
copies of the term grammar, expands a substitution-group head into SE(member) productions (members
sorted by local name, then namespace), then *normalises*: it removes epsilon productions and merges
duplicate terminals. What remains is a deterministic automaton whose states each offer a set of
events; event codes are the position of an event in a fixed order (§8.5.4.4.2): AT(qname) sorted,
SE(qname) in schema order, SE(uri:*), SE(*), EE, CH.

We get the same automaton from the Glushkov (position) construction: every AT/SE/CH occurrence in
the expanded content model is a *position*; a state is "just after position p" (or the start);
its productions are ``follow(p)`` plus EE if p can end the content. Because XSD content models
obey Unique Particle Attribution, that automaton is deterministic. Mixed content adds a CH
self-loop in every content state (modelled as a ``CH*`` after each position, which yields the
same production sets).

The V2G profile (shared/exi-vectors/README §5) uses strict=false: every state also owns
second-level productions (xsi:type, undeclared SE/AT/CH, ...), so the first-level event code
needs ceil(log2(n + 1)) bits for n declared productions. The codec never emits second-level
events and refuses them on decode (no built-in grammars), so only the width is affected.

The document grammar offers SE(G) for every global element sorted by (local name, namespace)
plus SE(*) (§8.5.1, no second level without preserved comments/PIs). The fragment grammar offers
every element declaration (global and local, one per qname) plus SE(*) and ED (§8.5.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mcscomm.exi.datatypes import Datatype, datatype_for, untyped
from mcscomm.exi.errors import ExiSchemaError
from mcscomm.exi.xsd import (
    UNBOUNDED,
    ComplexType,
    ElementDecl,
    Particle,
    QName,
    SchemaSet,
    SimpleType,
)

# Event kinds, in event-code order (EXI §8.5.4.4.2).
AT, SE, SE_ANY, EE, CH = 0, 1, 2, 3, 4

#: maxOccurs above this is treated as unbounded when expanding copies, to keep grammars small.
#: No V2G schema comes close (largest: 2048); the difference would only show after that many
#: repetitions, where the bounded grammar forbids one more.
MAX_EXPANDED_OCCURS = 4096


def width_for(n: int) -> int:
    """Bits for an n-way choice: ceil(log2(n)), 0 for n <= 1 (EXI §7.1.9 n-bit unsigned)."""
    return (n - 1).bit_length() if n > 1 else 0


@dataclass(eq=False)
class Production:
    """One first-level production of a state: event, value type and the state it leads to."""

    kind: int
    qname: QName | None = None
    target: State | None = None
    decl: ElementDecl | None = None  # SE: the element whose grammar runs next
    datatype: Datatype | None = None  # AT / CH: how the value is encoded
    namespaces: tuple[str, ...] | None = None  # SE(uri:*) wildcards
    child: State | None = None  # SE: start state of the element's grammar (linked after build)
    tag: str = ""  # SE / AT: the qname in lxml's Clark notation
    # SE of a simple-typed element: (CH code width, CH code, datatype, EE width, EE code), so
    # the codec handles such children inline (they are most of a -20 message).
    simple: tuple[int, int, Datatype, int, int] | None = None

    def __post_init__(self) -> None:
        if self.qname is not None:
            uri, local = self.qname
            self.tag = f"{{{uri}}}{local}" if uri else local

    def label(self) -> str:
        if self.kind == EE:
            return "EE"
        if self.kind == SE_ANY:
            return "SE(*)" if self.namespaces is None else f"SE({'|'.join(self.namespaces)}:*)"
        if self.kind == CH:
            return f"CH[{self.datatype.name if self.datatype else 'untyped'}]"
        assert self.qname is not None
        uri, local = self.qname
        name = f"{{{uri}}}{local}" if uri else local
        if self.kind == AT:
            return f"AT({name})[{self.datatype.name if self.datatype else '?'}]"
        return f"SE({name})"


@dataclass(eq=False)
class State:
    """A grammar state: its productions in event-code order and lookup tables for the encoder."""

    productions: list[Production] = field(default_factory=list)
    width: int = 0
    se: dict[QName, int] = field(default_factory=dict)
    se_tag: dict[str, int] = field(default_factory=dict)  # the same, keyed by Clark tag
    at: dict[QName, int] = field(default_factory=dict)
    wildcard: int | None = None
    ee: int | None = None
    ch: int | None = None
    index: int = 0
    escape: bool = True  # code len(productions) announces a second-level event

    def finish(self, strict: bool) -> None:
        """Sort productions into event-code order and compute the code width."""
        n = len(self.productions)
        self.escape = not strict
        self.width = width_for(n if strict else n + 1)
        for code, prod in enumerate(self.productions):
            if prod.kind == AT:
                assert prod.qname is not None
                self.at.setdefault(prod.qname, code)
            elif prod.kind == SE:
                assert prod.qname is not None
                self.se.setdefault(prod.qname, code)
                self.se_tag.setdefault(prod.tag, code)
            elif prod.kind == SE_ANY:
                if self.wildcard is None:
                    self.wildcard = code
            elif prod.kind == EE:
                self.ee = code
            elif self.ch is None:
                self.ch = code


# -- Glushkov construction ----------------------------------------------------------------------
@dataclass(eq=False)
class _Pos:
    kind: int
    qname: QName | None = None
    decl: ElementDecl | None = None
    datatype: Datatype | None = None
    namespaces: tuple[str, ...] | None = None
    index: int = 0


class _Node:
    """Regular expression over positions: ('pos', p) | ('seq', [..]) | ('alt', [..]) | ..."""

    __slots__ = ("items", "lo", "op", "pos", "star")

    def __init__(self, op: str, items: list[_Node] | None = None, pos: _Pos | None = None) -> None:
        self.op = op
        self.items = items or []
        self.pos = pos
        self.lo = 0
        self.star = False


class _Builder:
    """Builds the automaton of one type; positions are numbered in schema (document) order."""

    def __init__(self, schema: SchemaSet) -> None:
        self.schema = schema
        self.positions: list[_Pos] = []
        self.follow: dict[int, set[int]] = {}

    def new_pos(self, pos: _Pos) -> _Node:
        pos.index = len(self.positions)
        self.positions.append(pos)
        self.follow[pos.index] = set()
        return _Node("pos", pos=pos)

    # particle -> regex, expanding occurrences into fresh copies
    def particle(self, p: Particle, mixed: bool) -> _Node:
        lo, hi = p.min_occurs, p.max_occurs
        if hi != UNBOUNDED and hi > MAX_EXPANDED_OCCURS:
            hi = UNBOUNDED
        if hi == 0:
            return _Node("seq")
        if lo == 1 and hi == 1:
            return self.term(p, mixed)
        # EXI §8.5.4.1.6: minOccurs copies, then (maxOccurs - minOccurs) optional copies or one
        # looping copy for "unbounded". Copies get fresh positions (their states differ).
        star = hi == UNBOUNDED
        count = lo + 1 if star else hi
        node = _Node("rep", [self.term(p, mixed) for _ in range(count)])
        node.lo, node.star = lo, star
        return node

    def term(self, p: Particle, mixed: bool) -> _Node:
        if p.kind == "element":
            assert p.element is not None
            # EXI §8.5.4.1.6: one SE per non-abstract member of the substitution group.
            members = [d for d in self.schema.substitutes(p.element) if not d.abstract]
            members.sort(key=lambda d: (d.name[1], d.name[0]))
            alts = [self.with_ch(self.new_pos(_Pos(SE, d.name, decl=d)), mixed) for d in members]
            return alts[0] if len(alts) == 1 else _Node("alt", alts)
        if p.kind == "any":
            return self.with_ch(self.new_pos(_Pos(SE_ANY, namespaces=p.namespaces)), mixed)
        kids = [self.particle(c, mixed) for c in p.children]
        if p.kind == "choice":
            return _Node("alt", kids)
        if p.kind == "all":
            # xs:all is not in the V2G schemas; EXI §8.5.4.1.5 gives it a special grammar.
            raise ExiSchemaError("xs:all content models are not supported")
        return _Node("seq", kids)

    def with_ch(self, node: _Node, mixed: bool) -> _Node:
        if not mixed:
            return node
        return _Node("seq", [node, _Node("star", [self.new_pos(_Pos(CH, datatype=untyped()))])])

    # Glushkov sets: returns (nullable, first, last) and fills self.follow
    def analyse(self, node: _Node) -> tuple[bool, set[int], set[int]]:
        op = node.op
        if op == "pos":
            assert node.pos is not None
            i = node.pos.index
            return False, {i}, {i}
        if op == "seq":
            nullable = True
            first: set[int] = set()
            last: set[int] = set()
            for item in node.items:
                n2, f2, l2 = self.analyse(item)
                for i in last:
                    self.follow[i] |= f2
                if nullable:
                    first |= f2
                last = (last | l2) if n2 else set(l2)
                nullable = nullable and n2
            return nullable, first, last
        if op == "alt":
            if not node.items:
                # An empty choice (abstract head without members) matches nothing.
                return False, set(), set()
            nullable = False
            first, last = set(), set()
            for item in node.items:
                n2, f2, l2 = self.analyse(item)
                nullable = nullable or n2
                first |= f2
                last |= l2
            return nullable, first, last
        if op == "rep":
            # Copies c_0..c_k-1 of one term; c_i may be followed by c_i+1 (and, while copies can
            # be empty, by the ones after it); the last copy loops when unbounded.
            res = [self.analyse(item) for item in node.items]
            k = len(res)
            reach: list[set[int]] = [set() for _ in range(k + 1)]
            for i in range(k - 1, -1, -1):
                reach[i] = res[i][1] | (reach[i + 1] if res[i][0] else set())
            for i in range(k - 1):
                for p in res[i][2]:
                    self.follow[p] |= reach[i + 1]
            if node.star:
                for p in res[-1][2]:
                    self.follow[p] |= res[-1][1]
            lo = node.lo
            nullable = all(r[0] for r in res[:lo])
            ends: set[int] = set()
            for i, r in enumerate(res):
                if i >= lo - 1 or all(res[j][0] for j in range(i + 1, lo)):
                    ends |= r[2]
            return nullable, reach[0], ends
        _nullable, f, lst = self.analyse(node.items[0])
        if op == "star":
            for i in lst:
                self.follow[i] |= f
        return True, f, lst


def _make_production(pos: _Pos) -> Production:
    return Production(pos.kind, pos.qname, None, pos.decl, pos.datatype, pos.namespaces)


_KIND_RANK = {AT: 0, SE: 1, SE_ANY: 2, CH: 4}


def _order(prods: list[tuple[_Pos, Production]]) -> list[Production]:
    def key(item: tuple[_Pos, Production]) -> tuple[int, str, str, int]:
        pos, prod = item
        if prod.kind == AT:
            assert prod.qname is not None
            return (0, prod.qname[1], prod.qname[0], 0)
        return (_KIND_RANK[prod.kind], "", "", pos.index)

    return [prod for _pos, prod in sorted(prods, key=key)]


@dataclass
class TypeGrammar:
    """The states of one type's grammar; ``start`` is where an element of this type begins."""

    start: State
    states: list[State]


class Grammars:
    """All grammars of one schema set: document, fragment and per-type element grammars."""

    def __init__(self, schema: SchemaSet, strict: bool = False) -> None:
        self.schema = schema
        self.strict = strict
        self._types: dict[int, TypeGrammar] = {}
        self._pending: list[Production] = []
        globals_ = sorted(schema.elements.values(), key=lambda d: (d.name[1], d.name[0]))
        self.document = State(index=-1)
        for decl in globals_:
            self.document.productions.append(Production(SE, decl.name, None, decl))
        self.document.productions.append(Production(SE_ANY))
        # Document content has no second-level productions without preserved CM/PI/DT.
        self.document.finish(strict=True)
        # One production per qname. Declarations sharing a qname but not a type would need
        # EXI's relaxed fragment grammar; the first declaration wins (never the case for the
        # signable -20 elements).
        seen: dict[QName, ElementDecl] = {}
        for decl in schema.all_elements:
            seen.setdefault(decl.name, decl)
        self.fragment = State(index=-2)
        for name in sorted(seen, key=lambda q: (q[1], q[0])):
            self.fragment.productions.append(Production(SE, name, None, seen[name]))
        self.fragment.productions.append(Production(SE_ANY))
        self.fragment.productions.append(Production(EE))  # ED of the fragment
        self.fragment.finish(strict=True)
        self._link(self.document.productions)
        self._link(self.fragment.productions)
        self._drain()

    def _link(self, prods: list[Production]) -> None:
        for prod in prods:
            if prod.kind == SE:
                self._pending.append(prod)

    def _drain(self) -> None:
        # Iterative, so recursive content models (Signature inside Header inside ...) terminate.
        while self._pending:
            prod = self._pending.pop()
            if prod.child is None and prod.decl is not None:
                prod.child = start = self._type_grammar(prod.decl.type).start
                if isinstance(prod.decl.type, SimpleType):
                    ch = start.productions[0]
                    after = ch.target
                    assert ch.datatype is not None and after is not None and after.ee is not None
                    prod.simple = (start.width, 0, ch.datatype, after.width, after.ee)

    def type_grammar(self, t: ComplexType | SimpleType) -> TypeGrammar:
        """The (cached) grammar of a type; SE productions are linked to their child grammars."""
        grammar = self._type_grammar(t)
        self._drain()
        return grammar

    def _type_grammar(self, t: ComplexType | SimpleType) -> TypeGrammar:
        cached = self._types.get(id(t))
        if cached is not None:
            return cached
        b = _Builder(self.schema)
        parts: list[_Node] = []
        if isinstance(t, SimpleType):
            parts.append(b.new_pos(_Pos(CH, datatype=datatype_for(t))))
        else:
            for use in t.attributes:
                node = b.new_pos(_Pos(AT, use.name, datatype=datatype_for(use.type)))
                parts.append(node if use.required else _Node("opt", [node]))
            if t.simple_content is not None:
                parts.append(b.new_pos(_Pos(CH, datatype=datatype_for(t.simple_content))))
            else:
                content: list[_Node] = []
                if t.mixed:
                    content.append(_Node("star", [b.new_pos(_Pos(CH, datatype=untyped()))]))
                if t.content is not None:
                    content.append(b.particle(t.content, t.mixed))
                parts.append(_Node("seq", content))
        nullable, first, last = b.analyse(_Node("seq", parts))
        states = [State(index=i + 1) for i in range(len(b.positions))]
        start = State(index=0)
        prods_of: dict[int, Production] = {}
        for pos in b.positions:
            prod = _make_production(pos)
            prod.target = states[pos.index]
            prods_of[pos.index] = prod

        def fill(state: State, follow: set[int], can_end: bool) -> None:
            items = [(b.positions[i], prods_of[i]) for i in follow]
            state.productions = _order(items)
            if can_end:
                ee = Production(EE)
                # EE sorts before CH (EXI §8.5.4.4.2).
                idx = next(
                    (k for k, p in enumerate(state.productions) if p.kind == CH),
                    len(state.productions),
                )
                state.productions.insert(idx, ee)
            state.finish(self.strict)

        fill(start, first, nullable)
        for pos in b.positions:
            fill(states[pos.index], b.follow[pos.index], pos.index in last)
        grammar = TypeGrammar(start, [start, *states])
        self._types[id(t)] = grammar
        for state in grammar.states:
            self._link(state.productions)
        return grammar

    def element_grammar(self, name: str) -> tuple[ElementDecl, TypeGrammar]:
        """Grammar of the element ``name`` (global first, else the first local declaration).

        ``name`` is a local name or ``{uri}local``. Raises KeyError if no element has it.
        """
        for decl in self._decls_named(name):
            return decl, self.type_grammar(decl.type)
        raise KeyError(name)

    def _decls_named(self, name: str) -> Iterator[ElementDecl]:
        uri = None
        if name.startswith("{"):
            uri, _, name = name[1:].partition("}")
        for decl in list(self.schema.elements.values()) + self.schema.all_elements:
            if decl.name[1] == name and (uri is None or decl.name[0] == uri):
                yield decl

    def describe(self, name: str) -> str:
        """A readable dump of an element's grammar (for ``mcscomm exi grammar NAME``)."""
        decl, grammar = self.element_grammar(name)
        lines = [f"element {{{decl.name[0]}}}{decl.name[1]}  type {_type_name(decl.type)}"]
        seen: set[int] = set()
        order: list[State] = []

        def walk(state: State) -> None:
            if id(state) in seen:
                return
            seen.add(id(state))
            order.append(state)
            for prod in state.productions:
                if prod.target is not None and prod.kind != EE:
                    walk(prod.target)

        walk(grammar.start)
        names = {id(s): f"S{i}" for i, s in enumerate(order)}
        for state in order:
            lines.append(f"  {names[id(state)]}  ({state.width} bit{'s'[: state.width != 1]})")
            for code, prod in enumerate(state.productions):
                dest = (
                    "end"
                    if prod.kind == EE
                    else names.get(id(prod.target), "?")
                    if prod.target
                    else "end"
                )
                extra = ""
                if prod.kind == SE and prod.decl is not None:
                    extra = f"  type {_type_name(prod.decl.type)}"
                lines.append(f"    {code:>3}  {prod.label():<60} -> {dest}{extra}")
            if state.escape:
                lines.append(
                    f"    {len(state.productions):>3}  (escape to second-level events: refused)"
                )
        return "\n".join(lines)

    @cached_property
    def global_names(self) -> list[QName]:
        return [p.qname for p in self.document.productions if p.qname is not None]


def _type_name(t: ComplexType | SimpleType) -> str:
    if t.name is None:
        return "(anonymous)"
    uri, local = t.name
    return f"{{{uri}}}{local}"


def load(path: Path, strict: bool = False) -> Grammars:
    """Read the schema at ``path`` (and its imports) and build its grammars."""
    return Grammars(SchemaSet(path), strict=strict)
