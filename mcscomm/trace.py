"""Session traces (JSON Lines), the human log and the end-of-session summary.

Trace format (one JSON object per line; tools depend on these keys, issue 5 §4):

* messages: ``{"t": s, "kind": "message", "dir": "evcc->secc" | "secc->evcc", "payload_type": int,
  "message": "DC_ChargeLoopReq", "xml": "<the full document>"}``; a message that went on the
  wire as EXI has ``"exi"`` (the body as hex, exactly as sent) *and* ``"xml"`` (the same
  document rendered as XML, when the recorder has a ``render`` function and the body decodes);
* power samples: ``{"t", "kind": "power", "voltage_v", "current_a", "power_w", "soc",
  "binding_limit"}`` with ``power_w`` > 0 charging and < 0 discharging, plus ``setpoint_w``,
  ``max_charge_power_w``, ``max_discharge_power_w`` when the session knows them;
* lifecycle and session events: ``{"t", "kind": "event", "event": "connected" | "tls" |
  "state_changed" | "timeout_occurred" | "communication_lost" | ..., ...details}``;
* the last line of a session: ``{"t", "kind": "summary", ...}``.

``t`` is seconds since the recorder's origin (the session start), in the endpoint clock's time
(virtual or real). A record may carry ``"session"`` (a label) when several sessions share a file,
and ``"side"`` (``evcc``/``secc``) for events. Records are written as they happen, so a crashed run
still leaves a readable trace.

The recorder takes session events (``mcscomm.session.events``) duck-typed by class name, so this
module depends on nothing above the standard library and lxml.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from lxml import etree

_log = logging.getLogger("mcscomm.trace")

EVCC_TO_SECC = "evcc->secc"
SECC_TO_EVCC = "secc->evcc"


class TraceError(Exception):
    """A trace file that is not a valid mcscomm trace (bad JSON, missing keys)."""


# ------------------------------------------------------------------------------------- writing


class TraceWriter:
    """Appends trace records to a JSON Lines file (or any text stream)."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, str | Path):
            self._stream: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.records = 0

    def write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, separators=(",", ":"), default=_json_default))
        self._stream.write("\n")
        self.records += 1

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_trace(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a trace file; raises :class:`TraceError` on a malformed line."""
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or "t" not in record or "kind" not in record:
                raise TraceError(f"{path}:{number}: a trace record needs 't' and 'kind'")
            yield record


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Path):
        return str(value)
    return repr(value)


# ------------------------------------------------------------------------------------- summary


@dataclasses.dataclass
class Summary:
    """End-of-session figures, from the power samples (or the session's own summary event)."""

    energy_charged_wh: float = 0.0
    energy_discharged_wh: float = 0.0
    peak_charge_power_w: float = 0.0
    peak_discharge_power_w: float = 0.0
    duration_s: float = 0.0
    charge_loop_cycles: int = 0
    final_soc: float | None = None
    result: str = "unknown"
    reason: str = ""

    def line(self) -> str:
        """The one-line human summary."""
        soc = "" if self.final_soc is None else f", final SoC {self.final_soc:.1f} %"
        reason = f" ({self.reason})" if self.reason and self.result != "success" else ""
        return (
            f"summary: charged {self.energy_charged_wh / 1000:.2f} kWh,"
            f" discharged {self.energy_discharged_wh / 1000:.2f} kWh,"
            f" peak +{self.peak_charge_power_w / 1000:.1f} kW"
            f" / -{self.peak_discharge_power_w / 1000:.1f} kW,"
            f" {self.charge_loop_cycles} charge-loop cycles,"
            f" duration {self.duration_s:.1f} s{soc}; result {self.result}{reason}"
        )


class _Integrator:
    """Energy from power samples: each sample's power holds until the next one (zero-order hold)."""

    def __init__(self) -> None:
        self.last_t: float | None = None
        self.last_p = 0.0
        self.charged_ws = 0.0
        self.discharged_ws = 0.0

    def add(self, t: float, power_w: float) -> None:
        if self.last_t is not None and t > self.last_t:
            energy = self.last_p * (t - self.last_t)
            if energy >= 0:
                self.charged_ws += energy
            else:
                self.discharged_ws -= energy
        self.last_t = t
        self.last_p = power_w


# ------------------------------------------------------------------------------------ recorder


class SessionRecorder:
    """Turns endpoint lifecycle and session events into trace records, log lines and a summary.

    ``primary_side``: whose MessageSent/MessageReceived and PowerSample events are recorded. In an
    in-process pair both ends see every message and both report power; recording one side avoids
    duplicates (the pair uses the SECC, the side that commands the power). ``None`` records every
    side. ``human``: a sink for the human log (one line per message, power sample and
    notable event); ``None`` disables it. ``origin``: clock time that becomes ``t = 0``.
    ``render(payload_type, document) -> str | None``: the XML text of a non-XML (EXI) document,
    for the trace's ``"xml"`` and the human log's key values (the endpoints pass
    ``endpoints.setup.message_renderer``; this module stays free of the EXI codec).
    """

    def __init__(
        self,
        *,
        writer: TraceWriter | None = None,
        human: Callable[[str], None] | None = None,
        origin: float = 0.0,
        primary_side: str | None = None,
        label: str | None = None,
        render: Callable[[int, bytes], str | None] | None = None,
    ) -> None:
        self.writer = writer
        self.render = render
        self.human = human
        self.origin = origin
        self.primary_side = primary_side
        self.label = label
        self.summary = Summary()
        self._energy = _Integrator()
        self._session_summary: Summary | None = None
        self._first_t: float | None = None
        self._last_t = 0.0

    # -- inputs ----------------------------------------------------------------------------------
    def lifecycle(self, now: float, name: str, side: str | None = None, **details: object) -> None:
        """An endpoint event (connected, tls, communication_lost, error, closed, ...)."""
        t = self._t(now)
        record: dict[str, Any] = {"t": t, "kind": "event", "event": name}
        if side is not None:
            record["side"] = side
        self._emit({**record, **details})
        if self.human is not None and name != "closed":
            self._say(f"{t:9.3f} s  {side or 'endpoint':<10}  {name}  {_kv(details)}".rstrip())

    def event(self, event: object, side: str) -> None:
        """A session event from ``next_event()`` (``mcscomm.session.events``)."""
        name = type(event).__name__
        t = self._t(float(getattr(event, "t", self._last_t + self.origin)))
        if name in ("MessageSent", "MessageReceived"):
            if self.primary_side is None or side == self.primary_side:
                self._message(t, event)
        elif name == "PowerSample":
            if self.primary_side is None or side == self.primary_side:
                self._power(t, event)
        elif name == "SessionSummary":
            self._session_summary = Summary(
                energy_charged_wh=float(getattr(event, "energy_charged_wh", 0.0)),
                energy_discharged_wh=float(getattr(event, "energy_discharged_wh", 0.0)),
                peak_charge_power_w=float(getattr(event, "peak_charge_power_w", 0.0)),
                peak_discharge_power_w=float(getattr(event, "peak_discharge_power_w", 0.0)),
                duration_s=float(getattr(event, "duration_s", 0.0)),
                charge_loop_cycles=int(getattr(event, "charge_loop_cycles", 0)),
                final_soc=getattr(event, "final_soc", None),
            )
            self._generic(t, name, event, side)
        else:
            if name == "SessionEnded" and self.summary.result in ("unknown", "success"):
                self.summary.result = str(getattr(event, "result", "unknown"))
                self.summary.reason = str(getattr(event, "reason", ""))
            self._generic(t, name, event, side)

    def finish(self, result: str | None = None, reason: str | None = None) -> Summary:
        """Close the books: write the summary record (and line) and return it."""
        summary = self.summary
        summary.energy_charged_wh = self._energy.charged_ws / 3600.0
        summary.energy_discharged_wh = self._energy.discharged_ws / 3600.0
        if self._first_t is not None:
            summary.duration_s = self._last_t - self._first_t
        own = self._session_summary
        if own is not None and summary.charge_loop_cycles == 0:
            # No power samples reached us: fall back to the session's own accounting.
            for field in dataclasses.fields(Summary):
                if field.name not in ("result", "reason", "duration_s"):
                    setattr(summary, field.name, getattr(own, field.name))
        if result is not None and (summary.result in ("unknown", "success") or result == "failed"):
            summary.result = result
            summary.reason = reason or summary.reason
        record = {"t": self._last_t, "kind": "summary", **dataclasses.asdict(summary)}
        self._emit(record)
        if self.human is not None:
            self._say(summary.line())
        if self.writer is not None:
            self.writer.flush()
        return summary

    # -- record builders -------------------------------------------------------------------------
    def _t(self, now: float) -> float:
        t = round(now - self.origin, 6)
        if self._first_t is None:
            self._first_t = t
        self._last_t = max(self._last_t, t)
        return t

    def _emit(self, record: dict[str, Any]) -> None:
        if self.label is not None:
            record["session"] = self.label
        if self.writer is not None:
            try:
                self.writer.write(record)
            except (OSError, ValueError) as exc:
                # A full disk or a closed file must not break the session being traced.
                _log.error("trace writing failed, trace disabled: %s", exc)
                self.writer = None

    def _say(self, line: str) -> None:
        if self.human is not None:
            try:
                self.human(line)
            except (OSError, ValueError) as exc:  # e.g. stdout piped into `head`
                _log.debug("human log disabled: %s", exc)
                self.human = None

    def _message(self, t: float, event: object) -> None:
        if self.writer is None and self.human is None:
            return  # nobody reads it: a busy SECC should not pay for it
        document = bytes(getattr(event, "document", b""))
        record: dict[str, Any] = {
            "t": t,
            "kind": "message",
            "dir": getattr(event, "direction", "?"),
            "payload_type": int(getattr(event, "payload_type", 0)),
            "message": str(getattr(event, "message", "?")),
        }
        xml: bytes | None = None
        if document.lstrip()[:1] == b"<":
            record["xml"] = document.decode("utf-8", errors="replace")
            xml = document
        else:
            record["exi"] = document.hex()
            text = self._render(record["payload_type"], document)
            if text is not None:
                record["xml"] = text
                xml = text.encode("utf-8")
        self._emit(record)
        if self.human is not None:
            keys = _key_values(xml) if xml is not None else ""
            self._say(f"{t:9.3f} s  {record['dir']}  {record['message']:<32} {keys}".rstrip())

    def _render(self, payload_type: int, document: bytes) -> str | None:
        if self.render is None or not document:
            return None
        try:
            return self.render(payload_type, document)
        except Exception as exc:  # a renderer defect must not break the session being traced
            _log.debug("rendering a %d-byte document failed: %r", len(document), exc)
            return None

    def _power(self, t: float, event: object) -> None:
        power = float(getattr(event, "power_w", 0.0))
        soc = getattr(event, "soc", None)
        record: dict[str, Any] = {
            "t": t,
            "kind": "power",
            "voltage_v": float(getattr(event, "voltage_v", 0.0)),
            "current_a": float(getattr(event, "current_a", 0.0)),
            "power_w": power,
            "soc": None if soc is None else float(soc),
            "binding_limit": str(getattr(event, "binding_limit", "") or ""),
        }
        for extra in ("setpoint_w", "max_charge_power_w", "max_discharge_power_w"):
            value = getattr(event, extra, None)
            if value is not None:
                record[extra] = float(value)
        self._emit(record)
        self._energy.add(t, power)
        summary = self.summary
        summary.charge_loop_cycles += 1
        summary.peak_charge_power_w = max(summary.peak_charge_power_w, power)
        summary.peak_discharge_power_w = max(summary.peak_discharge_power_w, -power)
        if soc is not None:
            summary.final_soc = float(soc)
        if self.human is not None:
            soc_text = "" if soc is None else f"  SoC {float(soc):5.1f} %"
            bind = record["binding_limit"] or "-"
            self._say(
                f"{t:9.3f} s  power       {record['voltage_v']:7.1f} V {record['current_a']:8.1f} A"
                f" {power / 1000:+9.1f} kW{soc_text}  limit: {bind}"
            )

    def _generic(self, t: float, name: str, event: object, side: str) -> None:
        if self.writer is None and self.human is None:
            return
        details: dict[str, Any] = {}
        if dataclasses.is_dataclass(event):
            for field in dataclasses.fields(event):
                if field.name != "t":
                    details[field.name] = getattr(event, field.name)
        record = {"t": t, "kind": "event", "event": _snake(name), "side": side, **details}
        self._emit(record)
        if self.human is not None and name not in _QUIET_EVENTS:
            self._say(f"{t:9.3f} s  {side:<10}  {_snake(name)}  {_kv(details)}".rstrip())


#: Session events that go to the trace but would only clutter the human log.
_QUIET_EVENTS = frozenset({"StateChanged", "SessionSummary"})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _kv(details: dict[str, Any]) -> str:
    parts = []
    for key, value in details.items():
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, enum.Enum):
            value = value.name
        parts.append(f"{key}={value}")
    return " ".join(parts)


# ----------------------------------------------------------------------------- key values of XML

#: Elements worth showing in the one-line human view of a message, with their display names.
_KEYS: dict[str, str] = {
    "ResponseCode": "rc",
    "EVSEProcessing": "processing",
    "EVProcessing": "ev_processing",
    "ChargeProgress": "progress",
    "ChargingSession": "session",
    "BPT_ChannelSelection": "channel",
    "EVSENotification": "notification",
    "SelectedAuthorizationService": "auth",
    "ServiceID": "service",
    "EVPresentVoltage": "ev_V",
    "EVTargetVoltage": "target_V",
    "EVTargetCurrent": "target_A",
    "EVSEPresentVoltage": "evse_V",
    "EVSEPresentCurrent": "evse_A",
    "EVTargetEnergyRequest": "energy_req_Wh",
    "EVSETargetActivePower": "target_W",
    "EVMaximumChargePower": "ev_max_W",
    "EVMaximumDischargePower": "ev_max_dis_W",
    "PresentSOC": "soc",
    "EVSEPowerLimitAchieved": "P_lim",
    "EVSECurrentLimitAchieved": "I_lim",
    "EVSEVoltageLimitAchieved": "U_lim",
}


def _key_values(document: bytes) -> str:
    """Key values of an XML -20 document for the human log (``name=value`` pairs)."""
    try:
        root = etree.fromstring(document, parser=_SAFE_PARSER)
    except etree.XMLSyntaxError:
        return ""
    shown: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str):
            continue
        local = tag.rpartition("}")[2]
        label = _KEYS.get(local)
        if label is None or label in shown:
            continue
        value = _rational(element)
        if value is None:
            text = (element.text or "").strip()
            if not text:
                continue
            shown[label] = text
        else:
            shown[label] = f"{value:g}"
    return " ".join(f"{k}={v}" for k, v in shown.items())


def _rational(element: etree._Element) -> float | None:
    """The value of a RationalNumber element (Exponent, Value children), else None."""
    exponent = value = None
    for child in element:
        if not isinstance(child.tag, str):
            continue
        local = child.tag.rpartition("}")[2]
        if local == "Exponent":
            exponent = child.text
        elif local == "Value":
            value = child.text
    if exponent is None or value is None:
        return None
    try:
        return int(value) * 10.0 ** int(exponent)
    except ValueError:
        return None


# The document already passed the codec; still, never resolve entities or the network here.
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


# ---------------------------------------------------------------------------------- TLS details


def tls_details(ssl_object: object) -> dict[str, object]:
    """What a trace should say about a connection's TLS (version, suite, peer certificate)."""
    if ssl_object is None:
        return {"tls": False}
    try:
        from mcscomm.security import tls as _tls

        describe = getattr(_tls, "describe", None)
        if callable(describe):
            described = describe(ssl_object)
            if isinstance(described, dict):
                return {"tls": True, **described}
    except Exception:  # the security layer is optional here; fall back to what ssl tells
        _log.debug("security.tls.describe unavailable", exc_info=True)
    details: dict[str, object] = {"tls": True}
    version = getattr(ssl_object, "version", None)
    cipher = getattr(ssl_object, "cipher", None)
    if callable(version):
        details["version"] = version()
    if callable(cipher):
        suite = cipher()
        if suite:
            details["cipher"] = suite[0]
            details["bits"] = suite[2]
    getpeercert = getattr(ssl_object, "getpeercert", None)
    if callable(getpeercert):
        cert = getpeercert()
        if isinstance(cert, dict):
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        details["peer_cn"] = value
    return details
