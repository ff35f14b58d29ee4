"""From command-line choices to configured sans-IO connections (shared by session/secc/evcc).

Everything that can be wrong in the user's choices (unknown profile, TLS off under the strict
profile, a PKI of the wrong family) becomes a :class:`SetupError` with a one-line reason before
any socket is opened.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mcscomm.endpoints.driver import SansIoConnection
from mcscomm.endpoints.limits import DEFAULT_MAX_PAYLOAD

SERVICES = ("DC", "DC_BPT", "MCS", "MCS_BPT")
CONTROLS = ("scheduled", "dynamic")
AUTHS = ("eim", "pnc")
#: What the SECC offers (``--secc-control`` / ``--secc-auth``): one choice, ``both``, or a
#: comma-separated list in the order the SECC lists them (e.g. ``dynamic,scheduled``).
SECC_CONTROLS = ("scheduled", "dynamic", "both")
SECC_AUTHS = ("eim", "pnc", "both")
#: ``both`` in the order the SECC lists them by default (``SeccConfig``'s defaults).
_BOTH = {"control": ("scheduled", "dynamic"), "auth": ("pnc", "eim")}


def offer_list(text: str, kind: str) -> tuple[str, ...]:
    """``both`` or ``a[,b]`` as the ordered names; SetupError for anything else.

    ``kind`` is ``control`` (scheduled, dynamic) or ``auth`` (eim, pnc).
    """
    names = _BOTH[kind]
    if text == "both":
        return names
    items = tuple(part.strip() for part in text.split(","))
    if not items or any(i not in names for i in items) or len(set(items)) != len(items):
        what = "control offer" if kind == "control" else "authorization offer"
        raise SetupError(
            f"unknown SECC {what} {text!r} (one of {', '.join(names)}, both, or a list like "
            f"{','.join(reversed(names))})"
        )
    return items


PROFILES = ("strict", "lenient")
#: ``--encoding``: what goes on the wire. ``auto`` (SECC only) takes the peer's first message's
#: encoding (see :mod:`mcscomm.codec.auto`); the EVCC speaks first, so it needs ``exi`` or ``xml``.
ENCODINGS = ("exi", "xml", "auto")
EVCC_ENCODINGS = ("exi", "xml")


class SetupError(Exception):
    """The requested setup cannot run; the message is one line for the user."""


@dataclass(frozen=True)
class SessionOptions:
    """The user's choices for one side or both (defaults: the issue's default depot session)."""

    service: str = "MCS_BPT"
    control: str = "dynamic"
    auth: str = "pnc"
    truck: str = "mcs_7pack"
    charger: str = "mcs_1mw_bpt"
    scenario: str | None = "depot_peak_shaving"
    duration: float | None = None
    profile: str = "strict"
    tls: bool = True
    pki_dir: Path | None = None
    algorithm: str = "secp521r1"
    stop: str = "terminate"
    #: The SECC's offer: ``scheduled``, ``dynamic`` or ``both`` control modes
    #: (ServiceDetailRes parameter sets) and ``eim``, ``pnc`` or ``both`` authorization services
    #: (AuthorizationSetupRes); a comma-separated list sets the order (see :func:`offer_list`).
    secc_control: str = "both"
    secc_auth: str = "both"
    #: Wire encoding of each side (``exi``, ``xml``; the SECC also ``auto``), ISO 15118-20: EXI.
    secc_encoding: str = "auto"
    evcc_encoding: str = "exi"

    def check(self) -> None:
        if self.service not in SERVICES:
            raise SetupError(
                f"unknown service {self.service!r} (choose from {', '.join(SERVICES)})"
            )
        if self.control not in CONTROLS:
            raise SetupError(f"unknown control mode {self.control!r}")
        if self.auth not in AUTHS:
            raise SetupError(f"unknown authorization {self.auth!r}")
        offer_list(self.secc_control, "control")
        offer_list(self.secc_auth, "auth")
        if self.secc_encoding not in ENCODINGS:
            raise SetupError(f"unknown SECC encoding {self.secc_encoding!r} (exi, xml or auto)")
        if self.evcc_encoding not in EVCC_ENCODINGS:
            raise SetupError(
                f"unknown EVCC encoding {self.evcc_encoding!r} (exi or xml: the truck speaks "
                "first, it cannot detect)"
            )
        if self.profile not in PROFILES:
            raise SetupError(f"unknown profile {self.profile!r}")
        if not self.tls and self.profile != "lenient":
            # V2G20-1237/2356: -20 runs only over TLS 1.3; plain TCP is a known peer quirk
            # (Josev's default), so it is allowed only under the lenient profile.
            raise SetupError(
                "--tls off is allowed only with --profile lenient (ISO 15118-20 requires TLS 1.3)"
            )
        if self.duration is not None and self.duration <= 0:
            raise SetupError("--duration must be positive")


def load_pki(options: SessionOptions) -> Any:
    """The PKI manifest (created on first use) for TLS and PnC signatures."""
    from mcscomm.security import pki

    try:
        return pki.ensure_pki(options.pki_dir, options.algorithm)  # type: ignore[arg-type]
    except Exception as exc:  # PkiError, OSError: one line for the user
        raise SetupError(f"PKI: {exc}") from None


def tls_contexts(manifest: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(SECC server context, EVCC client context) with the -20 TLS profile."""
    from mcscomm.security import tls

    try:
        return tls.secc_context(manifest), tls.evcc_context(manifest)
    except Exception as exc:
        raise SetupError(f"TLS: {exc}") from None


def _profiles(options: SessionOptions, *, truck: bool, charger: bool) -> dict[str, Any]:
    from mcscomm.power import profiles

    out: dict[str, Any] = {}
    try:
        if truck:
            out["truck"] = profiles.load_truck(options.truck)
        if charger:
            out["charger"] = profiles.load_charger(options.charger)
            out["scenario"] = profiles.load_scenario(options.scenario) if options.scenario else None
    except (profiles.ProfileError, OSError) as exc:
        raise SetupError(str(exc)) from None
    return out


def secc_offer(options: SessionOptions) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(control modes, authorization services) the SECC offers, in the order it lists them."""
    from mcscomm.messages.enums import AuthorizationType, ControlMode

    controls = tuple(ControlMode[m.upper()] for m in offer_list(options.secc_control, "control"))
    auths = tuple(
        AuthorizationType.PNC if a == "pnc" else AuthorizationType.EIM
        for a in offer_list(options.secc_auth, "auth")
    )
    return controls, auths


def secc_config(options: SessionOptions, manifest: Any) -> Any:
    """The SeccConfig for these options: every energy service; the control modes and
    authorization services of ``secc_control`` / ``secc_auth``."""
    from mcscomm.session.config import Profile, SeccConfig

    loaded = _profiles(options, truck=False, charger=True)
    controls, auths = secc_offer(options)
    return SeccConfig(
        control_modes=controls,
        auth_services=auths,
        profile=Profile(options.profile),
        charger=loaded["charger"],
        scenario=loaded["scenario"],
        pki=manifest,
    )


def session_duration(options: SessionOptions) -> float | None:
    """How long the truck stays in the charge loop: ``--duration``, else the scenario's length.

    The in-process pair knows the backend scenario, so by default it plays exactly the scenario
    (the depot peak-shaving plan lasts 30 minutes) instead of waiting for the truck to be full.
    """
    if options.duration is not None or not options.scenario:
        return options.duration
    scenario = _profiles(options, truck=False, charger=True)["scenario"]
    length = float(scenario.session_duration_s)
    return length if math.isfinite(length) else None


def scenario_truck(options: SessionOptions) -> dict[str, float]:
    """The scenario's truck overrides (initial/target SoC, departure in session seconds).

    Only an in-process pair knows the SECC's backend scenario; a separate ``mcscomm evcc`` uses
    its truck profile as it is.
    """
    if not options.scenario:
        return {}
    scenario = _profiles(options, truck=False, charger=True)["scenario"]
    out: dict[str, float] = {}
    if scenario.initial_soc is not None:
        out["initial_soc"] = float(scenario.initial_soc)
    if scenario.target_soc is not None:
        out["target_soc"] = float(scenario.target_soc)
    if scenario.departure_s is not None and math.isfinite(scenario.departure_s):
        out["departure_s"] = float(scenario.departure_s) * float(scenario.time_scale)
    return out


def evcc_config(options: SessionOptions, manifest: Any, **overrides: Any) -> Any:
    """The EvccConfig for these options (``overrides``: more EvccConfig fields)."""
    from mcscomm.messages.enums import AuthorizationType, ControlMode, ServiceId
    from mcscomm.session.config import EvccConfig, Profile

    loaded = _profiles(options, truck=True, charger=False)
    return EvccConfig(
        service=ServiceId[options.service],
        control_mode=ControlMode[options.control.upper()],
        auth=AuthorizationType.PNC if options.auth == "pnc" else AuthorizationType.EIM,
        profile=Profile(options.profile),
        duration_s=options.duration,
        stop=options.stop,
        truck=loaded["truck"],
        pki=manifest,
        **overrides,
    )


class SeccFactory(Protocol):
    """``factory(now, peer_cert_der=None)``: one SECC connection for an accepted socket.

    It is also a plain ``Callable[[float], SansIoConnection]``; the server passes the TLS client
    certificate (DER) only to factories that take the keyword (see ``driver.accepts_peer_cert``).
    """

    def __call__(self, now: float, *, peer_cert_der: bytes | None = None) -> SansIoConnection: ...


def prepare_codecs(*encodings: str) -> None:
    """Build what the encodings need before the first socket (EXI grammars, about 0.3 s), so
    the first session does not pay for it inside its timing budget."""
    if any(e in ("exi", "auto") for e in encodings):
        from mcscomm.exi import preload

        try:
            preload()
        except Exception as exc:  # ExiSchemaError: a schema folder without usable XSDs
            raise SetupError(f"EXI grammars: {exc}") from None


def message_renderer(payload_type: int, document: bytes) -> str | None:
    """The XML text of an EXI document for traces and the human log (None if it does not
    decode, e.g. a hostile peer's bytes). The recorder calls it only for non-XML documents."""
    from mcscomm.codec import CodecError
    from mcscomm.codec.auto import render_exi

    try:
        return render_exi(payload_type, document)
    except (CodecError, ValueError):
        return None


class _FollowingSignatures:
    """The SignaturePort of one connection whose codec may still change (``AutoCodec``):
    delegates to the process-wide adapter of the codec in use, so keys load once per process
    (``signatures_for`` caches per codec) instead of once per connection."""

    def __init__(self, pki: Any, codec: Any) -> None:
        self._pki = pki
        self._codec = codec

    def _port(self) -> Any:
        from mcscomm.session.connection import signatures_for

        return signatures_for(self._pki, self._codec.active)

    def sign(self, fragment: object, role: str) -> Any:
        return self._port().sign(fragment, role)

    def verify(
        self, signature: Any, fragment: object, chain: list[bytes], trust: str, now: float
    ) -> None:
        self._port().verify(signature, fragment, chain, trust, now)

    def chain(self, role: str) -> list[bytes]:
        return list(self._port().chain(role))


def _codec_and_signatures(encoding: str, pki: Any) -> tuple[Any, Any]:
    """(codec, signatures) for one connection: ``auto`` gets its own AutoCodec and a port that
    follows it; ``exi``/``xml`` share the process codec (and the session's cached port)."""
    from mcscomm.codec.auto import codec_for

    codec = codec_for(encoding)
    if encoding != "auto":
        return codec, None  # the connection looks up the cached adapter itself
    from mcscomm.security.pki import Manifest

    return codec, (_FollowingSignatures(pki, codec) if isinstance(pki, Manifest) else None)


def secc_factory(
    config: Any,
    *,
    tls: bool,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    encoding: str = "auto",
) -> SeccFactory:
    """Makes one SeccConnection per accepted socket, all sharing ``config`` (and its store).

    ``max_payload`` bounds each connection's receive buffer (one V2GTP frame, see Limits).
    ``peer_cert_der`` is the TLS client certificate: a paused session is resumed only from the
    same certificate (the session checks it against the one that paused). ``encoding``: ``exi``,
    ``xml`` or ``auto`` (each connection detects its peer's encoding, see codec.auto).
    """
    from mcscomm.session.connection import SeccConnection

    if encoding not in ENCODINGS:
        raise SetupError(f"unknown encoding {encoding!r}")

    def make(now: float, *, peer_cert_der: bytes | None = None) -> SansIoConnection:
        codec, signatures = _codec_and_signatures(encoding, config.pki)
        connection: SansIoConnection = SeccConnection(
            config,
            now=now,
            tls=tls,
            max_payload=max_payload,
            peer_cert_der=peer_cert_der,
            codec=codec,
            signatures=signatures,
        )
        return connection

    return make


def evcc_connection(
    config: Any,
    *,
    now: float = 0.0,
    tls: bool = True,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    encoding: str = "exi",
) -> SansIoConnection:
    """One EvccConnection (its session starts when the endpoint calls ``start(now)``) speaking
    ``encoding`` (``exi`` or ``xml``)."""
    from mcscomm.codec.auto import shared_codec
    from mcscomm.session.connection import EvccConnection

    if encoding not in EVCC_ENCODINGS:
        raise SetupError(f"unknown EVCC encoding {encoding!r} (exi or xml)")
    connection: SansIoConnection = EvccConnection(
        config,
        now=now,
        tls=tls,
        max_payload=max_payload,
        codec=shared_codec(encoding),  # type: ignore[arg-type]
    )
    return connection
