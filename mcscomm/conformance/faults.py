"""Deliberately broken variants of our own endpoints, to prove every case can fail.

A case that cannot fail is a defect of the catalogue. Each case names (``TestCase.fault``) the
defect that must turn its verdict into ``fail``; the self-tests run every case against its
fault. Most defects are switches of the session layer (``SeccFaults`` / ``EvccFaults``); the
others are built here around the sans-IO connection: byte rewriting on the way in or out
(``to_sut`` / ``from_sut``), a codec that does not validate, a *deaf* SUT that sees the valid
``fallback`` of every crafted message, or a TLS / SDP configuration defect.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from mcscomm.codec import XmlCodec
from mcscomm.messages.enums import AuthorizationType, ControlMode, ServiceId
from mcscomm.session.config import EvccFaults, SeccFaults
from mcscomm.v2gtp import FrameDecoder, build_frame

Tamper = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Fault:
    """One broken variant. Only the fields that matter for it are set."""

    name: str
    role: str
    description: str
    secc: SeccFaults | None = None
    evcc: EvccFaults | None = None
    timings: dict[str, float] = field(default_factory=dict)
    evcc_config: dict[str, Any] = field(default_factory=dict)
    secc_config: dict[str, Any] = field(default_factory=dict)
    fresh_store: bool = False
    no_resume: bool = False
    to_sut: Callable[[], Tamper] | None = None
    from_sut: Callable[[], Tamper] | None = None
    deaf: bool = False
    lax_codec: bool = False
    max_payload: int | None = None
    tls: str | None = None
    sdp: str | None = None


class _AlwaysValid:
    error_log: Any = None

    def validate(self, root: Any) -> bool:
        return True


class LaxCodec(XmlCodec):
    """An XmlCodec that skips schema validation: the SUT of a lenient implementation."""

    def __init__(self) -> None:
        super().__init__()
        self._lax = _AlwaysValid()

    def schema_for(self, namespace: str) -> etree.XMLSchema:
        super().schema_for(namespace)  # keep the namespace checks
        return self._lax  # type: ignore[return-value]

    def decode(self, payload_type: int, data: bytes) -> Any:
        self._schemas = {k: self._lax for k in self._schemas}  # type: ignore[misc]
        return super().decode(payload_type, data)


# -- byte rewriting ---------------------------------------------------------------------------
_SID = re.compile(rb"(<(?:\w+:)?SessionID>)([0-9A-Fa-f]{16})(</)")


def _fix_session_ids() -> tuple[Tamper, Tamper]:
    """An SECC that never checks SessionIDs: the IDs of incoming requests are rewritten to the
    one the SECC handed out (seen on its way out)."""
    state: dict[str, bytes] = {}

    def out(data: bytes) -> bytes:
        if b"SessionSetupRes" in data:
            m = _SID.search(data)
            if m:
                state["sid"] = m.group(2)
        return data

    def inp(data: bytes) -> bytes:
        sid = state.get("sid")
        if sid is None or b"SessionSetupReq" in data:
            return data
        return _SID.sub(lambda m: m.group(1) + sid + m.group(3), data)

    return inp, out


def _repair_header() -> Tamper:
    """A receiver that ignores V2GTP header errors: version, inverse and unknown payload types
    are repaired before it sees them (single-frame writes only, as the testers send)."""

    def fix(data: bytes) -> bytes:
        if len(data) < 8:
            return data
        pt = int.from_bytes(data[2:4], "big")
        if pt not in (0x8001, 0x8002, 0x8004, 0x8102, 0x9000):
            body = data[8:]
            pt = (
                0x8001
                if b"AppProtocol" in body
                else 0x8004
                if b":DC_" in body or b"dc:" in body
                else 0x8002
            )
        return bytes([0x01, 0xFE]) + pt.to_bytes(2, "big") + data[4:]

    return fix


def _map_bytes(old: bytes, new: bytes) -> Callable[[], Tamper]:
    def make() -> Tamper:
        return lambda data: data.replace(old, new)

    return make


def _reframe(rewrite: Callable[[bytes], bytes]) -> Callable[[], Tamper]:
    """A tamper that rewrites each payload and rebuilds its V2GTP header."""

    def make() -> Tamper:
        decoder = FrameDecoder(1 << 24)

        def run(data: bytes) -> bytes:
            out = bytearray()
            for frame in decoder.feed(data):
                out += build_frame(frame.payload_type, rewrite(frame.payload))
            return bytes(out)

        return run

    return make


_SERVICE = re.compile(rb"(<(?:\w+:)?ServiceID>)(\d+)(</)")
_PSET = re.compile(rb"(<(?:\w+:)?ParameterSetID>)(\d+)(</)")


def _accept_any_service(payload: bytes) -> bytes:
    """An SECC that does not check service ids: unknown ones become MCS_BPT / set 2."""
    if b"ServiceDetailReq" not in payload and b"ServiceSelectionReq" not in payload:
        return payload
    payload = _SERVICE.sub(lambda m: m.group(1) + b"9" + m.group(3), payload)
    return _PSET.sub(lambda m: m.group(1) + b"2" + m.group(3), payload)


_CHALLENGE = re.compile(rb"(<(?:\w+:)?GenChallenge>)([A-Za-z0-9+/=]+)(</)")


def _ignore_challenge() -> tuple[Tamper, Tamper]:
    """An SECC that does not compare the GenChallenge (it sees its own one echoed)."""
    state: dict[str, bytes] = {}
    inner = _reframe(
        lambda p: (
            _CHALLENGE.sub(lambda m: m.group(1) + state["c"] + m.group(3), p)
            if "c" in state and b"AuthorizationReq" in p
            else p
        )
    )()

    def out(data: bytes) -> bytes:
        m = _CHALLENGE.search(data)
        if m and b"AuthorizationSetupRes" in data:
            state["c"] = m.group(2)
        return data

    return inner, out


def _raise_exponent(element: bytes, only_in: bytes) -> Callable[[], Tamper]:
    """A side that reports ``element`` ten times too large (its Exponent + 1) in ``only_in``
    documents: a limit or schedule beyond what was negotiated."""
    pattern = re.compile(rb"(<(?:\w+:)?" + element + rb"><(?:\w+:)?Exponent>)(-?\d+)(</)")

    def rewrite(payload: bytes) -> bytes:
        if only_in not in payload:
            return payload
        return pattern.sub(
            lambda m: m.group(1) + str(int(m.group(2)) + 1).encode() + m.group(3), payload
        )

    return _reframe(rewrite)


_EV_VOLTAGE = re.compile(
    rb"(<(?:\w+:)?EV(?:Maximum|Minimum)Voltage><(?:\w+:)?Exponent>)(-?\d+)"
    rb"(</(?:\w+:)?Exponent><(?:\w+:)?Value>)(-?\d+)(<)"
)


def _plausible_voltage(m: re.Match[bytes]) -> bytes:
    exponent, value = int(m.group(2)), int(m.group(4))
    if value * 10.0**exponent < 100.0:  # implausibly low: seen as ten times more
        exponent += 1
    return m.group(1) + str(exponent).encode() + m.group(3) + m.group(4) + m.group(5)


def _lenient_cpd(payload: bytes) -> bytes:
    """What an SECC that does not validate charge parameters effectively sees: magnitudes
    instead of negative values, and implausibly low voltages as plausible ones."""
    if b"DC_ChargeParameterDiscoveryReq" not in payload:
        return payload
    payload = re.sub(rb"(<(?:\w+:)?Value>)-", rb"\1", payload)
    return _EV_VOLTAGE.sub(_plausible_voltage, payload)


_CHANNEL = re.compile(rb"<(?:\w+:)?BPT_ChannelSelection>Discharge</(?:\w+:)?BPT_ChannelSelection>")
_TUPLE = re.compile(rb"(<(?:\w+:)?SelectedScheduleTupleID>)(\d+)(</)")


FAULTS: dict[str, Fault] = {}


def _add(f: Fault) -> None:
    FAULTS[f.name] = f


# -- EVCC under test (standby) ----------------------------------------------------------------
_add(
    Fault(
        "evcc_standby_despite_warning",
        "evcc",
        "stops asking for power although PowerDelivery(Standby) was refused",
        evcc=EvccFaults(standby_despite_warning=True),
    )
)


_add(
    Fault(
        "evcc_ignore_errors",
        "evcc",
        "carries on after FAILED response codes as if they were OK",
        evcc=EvccFaults(ignore_errors=True),
    )
)
_add(
    Fault(
        "evcc_no_auth_retry",
        "evcc",
        "gives up on an authorization WARNING instead of retrying with EIM",
        evcc_config={"auth_fallback_to_eim": False},
    )
)


# -- SECC under test --------------------------------------------------------------------------
_add(
    Fault(
        "secc_out_of_order",
        "secc",
        "serves requests the state does not allow",
        secc=SeccFaults(accept_out_of_order=True),
    )
)
_add(
    Fault(
        "secc_standby_ignored",
        "secc",
        "refuses PowerDelivery(Standby) although standby is allowed",
        secc=SeccFaults(standby_ignored=True),
    )
)
_add(
    Fault(
        "secc_standby_allowed",
        "secc",
        "accepts PowerDelivery(Standby) although the charger does not allow standby",
        secc_config={"standby_allowed": True},
    )
)
_add(
    Fault(
        "secc_no_certificate_installation",
        "secc",
        "claims CertificateInstallation in its PICS but neither offers nor serves it",
        secc_config={"certificate_installation": False},
    )
)
_add(
    Fault(
        "secc_adopt_session_id",
        "secc",
        "keeps an unknown SessionID the EVCC proposes instead of a new one",
        secc=SeccFaults(adopt_session_id=True),
    )
)
_add(
    Fault(
        "secc_skip_parameter_checks",
        "secc",
        "serves a ChargeParameterDiscovery variant that does not fit the selected service",
        secc=SeccFaults(skip_parameter_checks=True),
    )
)
_add(
    Fault(
        "secc_check_in_wrong_status",
        "secc",
        "answers VehicleCheckOut with the wrong EVSECheckOutStatus",
        secc=SeccFaults(check_in_wrong_status=True),
    )
)
_add(
    Fault(
        "secc_late", "secc", "answers every request 2 s late", secc=SeccFaults(answer_delay_s=2.0)
    )
)
_add(
    Fault(
        "secc_late_loop",
        "secc",
        "answers 0.3 s late (beyond 0.25 s in the charge loop)",
        secc=SeccFaults(answer_delay_s=0.3),
    )
)
_add(
    Fault(
        "secc_exceed_limit",
        "secc",
        "reports 1.2 x the allowed current",
        secc=SeccFaults(exceed_limit=1.2),
    )
)
_add(
    Fault(
        "secc_accept_bad_signature",
        "secc",
        "treats failing signatures as valid",
        secc=SeccFaults(accept_bad_signature=True),
    )
)
_add(
    Fault(
        "secc_ignore_timeouts",
        "secc",
        "never ends the session on a silent EVCC",
        secc=SeccFaults(ignore_timeouts=True),
    )
)
_add(Fault("secc_ignore_session_id", "secc", "does not check SessionIDs"))
_add(
    Fault(
        "secc_ignore_v2gtp_header",
        "secc",
        "processes frames with broken V2GTP headers",
        to_sut=_repair_header,
    )
)
_add(Fault("secc_no_size_limit", "secc", "accepts V2GTP payloads of any size", max_payload=1 << 26))
_add(Fault("secc_lax_schema", "secc", "does not validate incoming documents", lax_codec=True))
_add(
    Fault(
        "secc_sap_any",
        "secc",
        "selects -20 DC whatever namespace is offered",
        to_sut=_map_bytes(b"urn:iso:std:iso:15118:-20:AC", b"urn:iso:std:iso:15118:-20:DC"),
    )
)
_add(
    Fault(
        "secc_hang_authorization",
        "secc",
        "never answers in the Authorization state",
        secc=SeccFaults(hang_in="WAIT_AUTHORIZATION"),
    )
)
_add(
    Fault(
        "secc_short_timeouts",
        "secc",
        "ends sessions after 0.2 s of silence",
        timings={
            "secc_sequence_timeout_s": 0.2,
            "secc_charge_loop_sequence_timeout_s": 0.3,
            "charge_loop_cycle_s": 0.1,
        },
    )
)
_add(
    Fault(
        "secc_ignore_challenge",
        "secc",
        "does not compare the PnC GenChallenge",
        secc=SeccFaults(accept_bad_signature=True),
    )
)
_add(
    Fault(
        "secc_accept_any_service",
        "secc",
        "serves unknown service ids / parameter sets",
        to_sut=_reframe(_accept_any_service),
    )
)
_add(
    Fault(
        "secc_negative_discharge",
        "secc",
        "sends negative discharge limits (Josev style)",
        secc_config={"negative_discharge": True},
    )
)
_add(
    Fault(
        "secc_no_service_renegotiation",
        "secc",
        "refuses service renegotiation",
        secc_config={"service_renegotiation": False},
    )
)
_add(
    Fault(
        "secc_no_metering",
        "secc",
        "never asks for a MeteringConfirmation",
        secc_config={"metering_interval_s": None},
    )
)
_add(Fault("secc_forget_paused", "secc", "forgets paused sessions", fresh_store=True))
_add(
    Fault(
        "secc_sap_ignore_priority",
        "secc",
        "reads SAP priorities upside down",
        to_sut=_map_bytes(b"<Priority>1</Priority>", b"<Priority>9</Priority>"),
    )
)
_add(
    Fault(
        "secc_sap_ignore_minor",
        "secc",
        "ignores minor version differences",
        to_sut=_map_bytes(b"<VersionNumberMinor>9<", b"<VersionNumberMinor>0<"),
    )
)
_add(
    Fault(
        "secc_missing_service",
        "secc",
        "offers only MCS although the PICS claims more",
        secc_config={"services": (ServiceId.MCS,)},
    )
)
_add(
    Fault(
        "secc_missing_control_mode",
        "secc",
        "offers only Dynamic control",
        secc_config={"control_modes": (ControlMode.DYNAMIC,)},
    )
)
_add(
    Fault(
        "secc_missing_auth",
        "secc",
        "offers only EIM",
        secc_config={"auth_services": (AuthorizationType.EIM,)},
    )
)
_add(
    Fault(
        "secc_exceed_mcs_voltage",
        "secc",
        "announces 10 x its maximum voltage",
        from_sut=_raise_exponent(b"EVSEMaximumVoltage", b"DC_ChargeParameterDiscoveryRes"),
    )
)
_add(
    Fault(
        "secc_schedule_over_limit",
        "secc",
        "offers schedules 10 x above its power",
        from_sut=_raise_exponent(b"Power", b"ScheduleExchangeRes"),
    )
)
_add(
    Fault(
        "secc_cable_check_timeout",
        "secc",
        "gives up the cable check at once",
        timings={"secc_cable_check_s": 0.0},
    )
)
_add(Fault("secc_tls12", "secc", "TLS server that also accepts TLS 1.2", tls="tls12"))
_add(
    Fault(
        "secc_tls_any_suite",
        "secc",
        "TLS server that accepts TLS_AES_128_GCM_SHA256 and any group",
        tls="any_suite",
    )
)
_add(
    Fault(
        "secc_tls_no_client_auth",
        "secc",
        "TLS server that does not verify the EVCC",
        tls="no_client_auth",
    )
)
_add(Fault("secc_sdp_no_tls", "secc", "SDP server that offers no TLS", sdp="no_tls"))
_add(
    Fault(
        "secc_sdp_answer_malformed",
        "secc",
        "SDP server that answers malformed requests",
        sdp="answer_malformed",
    )
)

# -- EVCC under test --------------------------------------------------------------------------
_add(
    Fault(
        "evcc_wrong_session_id",
        "evcc",
        "sends AuthorizationSetupReq with a random SessionID",
        evcc=EvccFaults(wrong_session_id_in="AuthorizationSetupReq"),
    )
)
_add(
    Fault(
        "evcc_skip_cable_check",
        "evcc",
        "skips DC_CableCheck",
        evcc=EvccFaults(skip=("DC_CableCheckReq",)),
    )
)
_add(
    Fault(
        "evcc_bad_signature",
        "evcc",
        "flips a byte of every SignatureValue",
        evcc=EvccFaults(bad_signature=True),
    )
)
_add(
    Fault(
        "evcc_wrong_challenge",
        "evcc",
        "signs another GenChallenge",
        evcc=EvccFaults(wrong_challenge=True),
    )
)
_add(
    Fault(
        "evcc_slow",
        "evcc",
        "waits 0.3 s more before every request",
        evcc=EvccFaults(request_delay_s=0.3),
    )
)
_add(
    Fault(
        "evcc_very_slow",
        "evcc",
        "waits 45 s before every request",
        evcc=EvccFaults(request_delay_s=45.0),
    )
)
_add(
    Fault(
        "evcc_wrong_charge_parameters",
        "evcc",
        "sends the CPD variant of the other service",
        evcc=EvccFaults(wrong_charge_parameters=True),
    )
)
_add(
    Fault(
        "evcc_bad_parameter_set",
        "evcc",
        "selects a parameter set that was not offered",
        evcc=EvccFaults(select_parameter_set=99),
    )
)
_add(
    Fault(
        "evcc_patient",
        "evcc",
        "waits 30 s for every response",
        timings={
            "evcc_msg_timeout_s": 30.0,
            "evcc_charge_loop_msg_timeout_s": 30.0,
            "evcc_msg_timeout_long_s": 30.0,
        },
    )
)
_add(
    Fault(
        "evcc_negative_discharge",
        "evcc",
        "sends negative discharge limits (Josev style)",
        evcc_config={"negative_discharge": True, "lenient": True},
    )
)
_add(Fault("evcc_deaf", "evcc", "does not react to errors or notifications", deaf=True))
_add(
    Fault(
        "evcc_exceed_limit",
        "evcc",
        "asks for 3 x its target current",
        evcc=EvccFaults(exceed_factor=3.0),
    )
)
_add(
    Fault(
        "evcc_ignore_v2gtp_header",
        "evcc",
        "processes frames with broken V2GTP headers",
        to_sut=_repair_header,
    )
)
_add(
    Fault(
        "evcc_offer_ac",
        "evcc",
        "offers only -20 AC in SupportedAppProtocol",
        from_sut=_map_bytes(b"urn:iso:std:iso:15118:-20:DC", b"urn:iso:std:iso:15118:-20:AC"),
    )
)
_add(
    Fault(
        "evcc_force_service",
        "evcc",
        "selects service 1 (AC) whatever is offered",
        evcc=EvccFaults(select_service=1),
    )
)
_add(Fault("evcc_forget_pause", "evcc", "starts a new session instead of resuming", no_resume=True))
_add(Fault("evcc_tls12", "evcc", "TLS client that also speaks TLS 1.2", tls="tls12"))
_add(
    Fault(
        "evcc_tls_any_suite",
        "evcc",
        "TLS client that also offers AES-128 and P-256/X25519",
        tls="any_suite",
    )
)
_add(
    Fault(
        "evcc_tls_trust_any",
        "evcc",
        "TLS client that accepts any SECC certificate",
        tls="trust_any",
    )
)
_add(
    Fault(
        "evcc_tls_no_client_cert", "evcc", "TLS client without a certificate", tls="no_client_cert"
    )
)
_add(Fault("evcc_sdp_no_tls", "evcc", "asks SDP for a connection without TLS", sdp="no_tls"))

_add(
    Fault(
        "secc_lenient_charge_parameters",
        "secc",
        "does not validate charge parameters (sees magnitudes, 10 x EV voltages)",
        to_sut=_reframe(_lenient_cpd),
    )
)

_add(
    Fault(
        "secc_ignore_channel",
        "secc",
        "ignores BPT_ChannelSelection and ScheduleTupleIDs it did not offer",
        to_sut=_reframe(
            lambda p: (
                _TUPLE.sub(
                    rb"\g<1>1\g<3>",
                    _CHANNEL.sub(b"", p) if b"PowerDeliveryReq" in p else p,
                )
                if b"PowerDeliveryReq" in p
                else p
            )
        ),
    )
)
_add(Fault("evcc_no_size_limit", "evcc", "accepts V2GTP payloads of any size", max_payload=1 << 26))


def pair_tampers(name: str) -> tuple[Tamper, Tamper] | None:
    """(to_sut, from_sut) of the faults whose two directions share state."""
    if name == "secc_ignore_session_id":
        return _fix_session_ids()
    if name == "secc_ignore_challenge":
        return _ignore_challenge()
    return None


def get(name: str | None) -> Fault | None:
    """The fault called ``name`` (None for None); KeyError for an unknown name."""
    if name is None:
        return None
    return FAULTS[name]
