"""Oracles: turn an observation into at most one verdict (the first thing that went wrong).

* crash -- an exception escaped the connection (``exception``), or the target reported a defect
  in itself, i.e. a handler bug it caught (``internal-error``);
* hang -- a complete frame got neither an answer nor a close within the SECC's performance time
  (in virtual time; over a socket the EVCC's message timeout, facts §5.1/5.2) (``no-answer``), an
  incomplete one left the connection open past every sequence timeout (``never-closed``), an EVCC
  neither sent its next request nor ended (``no-request``), an in-process target's code did not
  return within the wall-clock budget (``stuck``);
* violation -- invalid input answered ``OK*`` (``accepted-invalid``), a valid request answered by
  hanging up (``closed-without-answer``), anything answered after a
  FAILED response or the connection left open after it (``continued-after-failed``,
  ``open-after-failed``), an EVCC that carries on after an invalid response
  (``continued-after-invalid``), a response or frame that does not validate
  (``invalid-response``, ``invalid-frame``), a response on a payload type its message does not
  travel on (``wrong-payload-type``, facts §1.2), current beyond what either side allowed
  (``power-limit``).

Resource growth is judged across a campaign by :class:`ResourceMonitor`.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from mcscomm.codec import CodecError, XmlCodec
from mcscomm.codec.base import PAYLOAD_MESSAGES
from mcscomm.fuzz.model import ANY, CRASH, HANG, LAZY, REJECT, RESOURCE, VIOLATION, Case, Verdict
from mcscomm.fuzz.reference import SECC
from mcscomm.fuzz.targets import Observation, StepResult, split_frames
from mcscomm.messages.meta import TYPE_TAGS

_CODE = re.compile(rb"ResponseCode>([A-Za-z_]+)<")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
#: Relative tolerance of the power-limit oracle (rounding of RationalNumber conversions).
TOLERANCE = 1e-3


def response_code(doc: bytes) -> str:
    m = _CODE.search(doc)
    return m.group(1).decode() if m else ""


def _rational(root: etree._Element, local: str) -> float | None:
    for elem in root.iter():
        if isinstance(elem.tag, str) and elem.tag.endswith("}" + local):
            value = exponent = None
            for child in elem:
                name = etree.QName(child).localname
                if name == "Value":
                    value = child.text
                elif name == "Exponent":
                    exponent = child.text
            try:
                return int(value or "") * 10.0 ** int(exponent or "")
            except (ValueError, OverflowError):
                return None
    return None


@dataclass(slots=True)
class _Limits:
    """Maximum current (A) and power (W) per direction, as each side announced them."""

    evse_charge: float = float("inf")
    evse_discharge: float = float("inf")
    ev_charge: float = float("inf")
    ev_discharge: float = float("inf")
    evse_charge_w: float = float("inf")
    evse_discharge_w: float = float("inf")
    ev_charge_w: float = float("inf")
    ev_discharge_w: float = float("inf")

    def copy(self) -> _Limits:
        return dataclasses.replace(self)


@dataclass(slots=True)
class _Scan:
    """What judging carries from one step to the next: a FAILED answer (SECC) or an invalid
    response (EVCC) was seen, and the limits announced so far."""

    flag: bool = False
    limits: _Limits = field(default_factory=_Limits)


@dataclass(slots=True)
class Oracle:
    """Judges observations of one target role. ``validate`` re-decodes every frame the target
    wrote (needed for foreign targets; our own connections validate what they encode)."""

    role: str
    codec: XmlCodec | None = None
    validate: bool = False
    resolve: Callable[[Case, int, int], str] | None = None
    _parsed: dict[int, tuple[bytes, dict[str, float | None]]] = field(default_factory=dict)
    _cached: int = 0
    _prefix: dict[int, tuple[list[StepResult], Verdict | None, _Scan]] = field(default_factory=dict)

    def judge(self, case: Case, obs: Observation) -> Verdict | None:
        """The first verdict for ``case`` given ``obs`` (None: nothing wrong)."""
        scan = self._scan_secc if self.role == SECC else self._scan_evcc
        state = _Scan()
        if obs.prefix:
            # the prefix of a snapshot comes back identical every case: judge it once
            key = id(obs.prefix)
            hit = self._prefix.get(key)
            if hit is None or hit[0] is not obs.prefix:
                self._cached = len(obs.prefix)
                v = scan(case, obs.prefix, 0, state)
                hit = (obs.prefix, v, dataclasses.replace(state, limits=state.limits.copy()))
                self._prefix[key] = hit
            if hit[1] is not None:
                return hit[1]
            state = dataclasses.replace(hit[2], limits=hit[2].limits.copy())
        self._cached = 0
        return scan(case, obs.results, len(obs.prefix), state)

    # -- SECC target (we sent requests) --------------------------------------------------------

    def _scan_secc(
        self, case: Case, results: list[StepResult], k0: int, st: _Scan
    ) -> Verdict | None:
        limits = st.limits
        for n, res in enumerate(results):
            k = k0 + n
            step = case.steps[k]
            v = self._common(k, res)
            if v is not None:
                return v
            if st.flag and res.frames:
                return Verdict(
                    VIOLATION, "continued-after-failed", f"answered after FAILED: {_names(res)}", k
                )
            sent = self._requests(step.data)
            for j, (_, doc) in enumerate(res.frames):
                code = response_code(doc)
                exp = step.expect[j] if j < len(step.expect) else ANY
                if exp == LAZY and code.startswith("OK"):
                    exp = self.resolve(case, k, j) if self.resolve is not None else ANY
                if exp == REJECT and code.startswith("OK"):
                    what = step.label or case.mutator
                    detail = f"{_root(doc)} {code} to invalid input ({what})"
                    return Verdict(VIOLATION, "accepted-invalid", detail, k)
                if code.startswith("FAILED"):
                    st.flag = True
                if code.startswith("OK") and j < len(sent):
                    self._ev_limits(sent[j], limits, k)
                v = self._power(doc, limits, k)
                if v is not None:
                    return v
                if st.flag and j + 1 < len(res.frames):
                    return Verdict(VIOLATION, "continued-after-failed", "answer after FAILED", k)
            if st.flag and not res.closed:
                return Verdict(VIOLATION, "open-after-failed", "connection open after FAILED", k)
            slow = step.chunks > 1 and step.chunk_gap_s * (step.chunks - 1) > 0.25
            if not res.frames and res.closed and ANY in step.expect and not slow and not st.flag:
                # a valid request deserves an answer (OK or FAILED with a reason), not a hang-up
                detail = f"closed without answering {step.label or case.mutator}"
                return Verdict(VIOLATION, "closed-without-answer", detail, k)
            if not res.frames and not res.closed:
                if step.expect:
                    detail = f"no answer to {step.label or case.mutator} within the msg timeout"
                    return Verdict(HANG, "no-answer", detail, k)
                if not res.timed_out:
                    return Verdict(HANG, "never-closed", "no answer and never closed", k)
        return None

    def _requests(self, data: bytes) -> list[bytes]:
        return [doc for _, doc in split_frames(data)]

    def _values(self, doc: bytes, names: tuple[str, ...], k: int) -> dict[str, float | None]:
        hit = self._parsed.get(id(doc))
        if hit is not None and hit[0] is doc:
            return hit[1]
        try:
            root = etree.fromstring(doc, _PARSER)
            vals = {n: _rational(root, n) for n in names}
        except (etree.XMLSyntaxError, ValueError):
            vals = {}
        if k < self._cached:  # prefix documents come back every case: keep them
            if len(self._parsed) > 4096:
                self._parsed.clear()
            self._parsed[id(doc)] = (doc, vals)
        return vals

    def _ev_limits(self, req: bytes, limits: _Limits, k: int) -> None:
        if b"ChargeParameterDiscoveryReq" not in req[:120]:
            return
        vals = self._values(req, _EV_NAMES, k)
        _take(vals, "EVMaximumChargeCurrent", limits, "ev_charge")
        _take(vals, "EVMaximumDischargeCurrent", limits, "ev_discharge")
        _take(vals, "EVMaximumChargePower", limits, "ev_charge_w")
        _take(vals, "EVMaximumDischargePower", limits, "ev_discharge_w")

    def _power(self, doc: bytes, limits: _Limits, k: int) -> Verdict | None:
        head = doc[:120]
        if b"ChargeParameterDiscoveryRes" in head:
            vals = self._values(doc, _EVSE_NAMES, k)
            _take(vals, "EVSEMaximumChargeCurrent", limits, "evse_charge")
            _take(vals, "EVSEMaximumDischargeCurrent", limits, "evse_discharge")
            _take(vals, "EVSEMaximumChargePower", limits, "evse_charge_w")
            _take(vals, "EVSEMaximumDischargePower", limits, "evse_discharge_w")
            return None
        if b"DC_ChargeLoopRes" not in head:
            return None
        present = self._values(doc, ("EVSEPresentCurrent", "EVSEPresentVoltage"), k)
        current = present.get("EVSEPresentCurrent")
        if current is None:
            return None
        if current >= 0:
            cap, what = min(limits.evse_charge, limits.ev_charge), "charge"
            cap_w = min(limits.evse_charge_w, limits.ev_charge_w)
        else:
            cap, what = min(limits.evse_discharge, limits.ev_discharge), "discharge"
            cap_w = min(limits.evse_discharge_w, limits.ev_discharge_w)
        if abs(current) > cap * (1 + TOLERANCE) + 0.01:
            detail = f"EVSEPresentCurrent {current:g} A beyond the {what} limit {cap:g} A"
            return Verdict(VIOLATION, "power-limit", detail, k)
        voltage = present.get("EVSEPresentVoltage")
        if voltage is not None:
            power = abs(current * voltage)
            if power > cap_w * (1 + TOLERANCE) + 1.0:
                detail = f"{power:g} W ({voltage:g} V x {current:g} A) beyond the {what} limit"
                return Verdict(VIOLATION, "power-limit", f"{detail} {cap_w:g} W", k)
        return None

    # -- EVCC target (we sent responses) -------------------------------------------------------

    def _scan_evcc(
        self, case: Case, results: list[StepResult], k0: int, st: _Scan
    ) -> Verdict | None:
        for n, res in enumerate(results):
            k = k0 + n
            step = case.steps[k]
            v = self._common(k, res)
            if v is not None:
                return v
            if st.flag and res.frames:
                return Verdict(
                    VIOLATION, "continued-after-invalid", f"sent {_names(res)} afterwards", k
                )
            if REJECT in step.expect:
                st.flag = True
                if res.frames and len(step.expect) == 1:
                    detail = f"sent {_names(res)} after {step.label or case.mutator}"
                    return Verdict(VIOLATION, "continued-after-invalid", detail, k)
                if not res.closed:
                    detail = f"still open after {step.label or case.mutator}"
                    return Verdict(VIOLATION, "continued-after-invalid", detail, k)
            elif not res.frames and not res.closed:
                return Verdict(HANG, "no-request", "neither a next request nor the end", k)
        return None

    # -- both ----------------------------------------------------------------------------------

    def _common(self, k: int, res: StepResult) -> Verdict | None:
        if res.stuck:
            return Verdict(HANG, "stuck", "the target did not return (wall-clock limit)", k)
        if res.crash is not None:
            return Verdict(CRASH, "exception", res.crash, k)
        for kind, detail in res.defects:
            if kind == "internal_error":
                return Verdict(CRASH, "internal-error", detail, k)
            return Verdict(VIOLATION, "invalid-response", detail, k)
        if res.transport_error is not None:
            return Verdict(VIOLATION, "invalid-frame", res.transport_error, k)
        for pt, doc in res.frames:
            allowed = _PAYLOAD_TYPES.get(_root(doc))
            if allowed is not None and pt not in allowed:
                detail = f"{_root(doc)} sent on payload type {pt:#06x}, not {sorted(allowed)}"
                return Verdict(VIOLATION, "wrong-payload-type", detail, k)
        if self.validate and self.codec is not None:
            for pt, doc in res.frames:
                try:
                    self.codec.decode(pt, doc)
                except CodecError as exc:
                    return Verdict(VIOLATION, "invalid-response", f"{_root(doc)}: {exc}", k)
        return None


_EV_NAMES = (
    "EVMaximumChargeCurrent",
    "EVMaximumDischargeCurrent",
    "EVMaximumChargePower",
    "EVMaximumDischargePower",
)
_EVSE_NAMES = tuple(n.replace("EV", "EVSE", 1) for n in _EV_NAMES)


def _take(vals: dict[str, float | None], name: str, limits: _Limits, attr: str) -> None:
    v = vals.get(name)
    if v is not None:
        setattr(limits, attr, abs(v))


def _payload_types() -> dict[str, frozenset[int]]:
    """Root element local name -> the payload types it may travel on (facts §1.2)."""
    out: dict[str, set[int]] = {}
    for pt, classes in PAYLOAD_MESSAGES.items():
        for cls in classes:
            out.setdefault(TYPE_TAGS[cls][1], set()).add(int(pt))
    return {k: frozenset(v) for k, v in out.items()}


_PAYLOAD_TYPES = _payload_types()


def _root(doc: bytes) -> str:
    m = re.search(rb"<(?:[\w.-]+:)?([\w.-]+)", doc[:200])
    return m.group(1).decode() if m else "?"


def _names(res: StepResult) -> str:
    return ", ".join(_root(doc) for _, doc in res.frames)


# ------------------------------------------------------------------------------- resources


@dataclass(slots=True)
class ResourceSample:
    case: int
    rss_kib: int
    objects: int
    fds: int
    tasks: int


@dataclass(slots=True)
class ResourceMonitor:
    """Samples memory, live objects, file descriptors (sockets) and asyncio tasks during a
    campaign and flags steady growth (something leaking per case).

    Without ``pid`` it watches this process (the in-process target lives here); with ``pid`` it
    watches a local target process through ``/proc`` (RSS and open descriptors), and
    :meth:`alive` tells whether that process still exists (the crash oracle's "target exited").
    ``tasks`` is an optional probe counting the target's asyncio tasks.
    """

    every: int = 500
    samples: list[ResourceSample] = field(default_factory=list)
    pid: int | None = None
    tasks: Callable[[], int] | None = None

    def sample(self, case: int, *, force: bool = False) -> None:
        if not force and case % self.every:
            return
        proc = f"/proc/{self.pid}" if self.pid is not None else "/proc/self"
        objects = 0
        if self.pid is None:
            # count live objects only: cyclic garbage waiting for the collector (left by earlier
            # work in this process) would otherwise hide a steady leak behind its own decline
            gc.collect()
            objects = len(gc.get_objects())
        tasks = self.tasks() if self.tasks is not None else 0
        self.samples.append(ResourceSample(case, _rss_kib(proc), objects, _fds(proc), tasks))

    def alive(self) -> bool:
        return self.pid is None or os.path.exists(f"/proc/{self.pid}")

    def verdict(self) -> Verdict | None:
        """Growth between the second sample (after warm-up) and the last one."""
        if len(self.samples) < 4:
            return None
        first, last = self.samples[1], self.samples[-1]
        cases = max(1, last.case - first.case)
        grow_obj = (last.objects - first.objects) / cases
        grow_rss = (last.rss_kib - first.rss_kib) / cases
        mid = self.samples[len(self.samples) // 2]
        steady = first.objects < mid.objects < last.objects and self.pid is None
        if steady and grow_obj > 1.0:
            detail = f"{grow_obj:.1f} live objects more per case ({first.objects}->{last.objects})"
            return Verdict(RESOURCE, "objects", detail)
        if grow_rss > 4.0 and first.rss_kib < mid.rss_kib < last.rss_kib:
            return Verdict(RESOURCE, "memory", f"RSS +{grow_rss:.1f} KiB per case")
        if last.fds - first.fds > 16 and first.fds < mid.fds < last.fds:
            return Verdict(RESOURCE, "sockets", f"open fds {first.fds}->{last.fds}")
        if last.tasks - first.tasks > 16 and first.tasks < mid.tasks < last.tasks:
            return Verdict(RESOURCE, "tasks", f"asyncio tasks {first.tasks}->{last.tasks}")
        return None

    def to_json(self) -> list[dict[str, int]]:
        return [
            {
                "case": s.case,
                "rss_kib": s.rss_kib,
                "objects": s.objects,
                "fds": s.fds,
                "tasks": s.tasks,
            }
            for s in self.samples
        ]


def _rss_kib(proc: str) -> int:
    try:
        with open(f"{proc}/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError):
        return 0


def _fds(proc: str) -> int:
    try:
        return len(os.listdir(f"{proc}/fd"))
    except OSError:
        return 0
