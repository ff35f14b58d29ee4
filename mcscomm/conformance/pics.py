"""PICS (what the SUT claims to support) and PIXIT (how to reach and drive it), from TOML.

A case lists PICS expressions; it runs only when all of them hold, otherwise it is reported
*not applicable*. Expressions: ``service:MCS_BPT``, ``control:Dynamic``, ``auth:PnC``,
``algorithm:ed448``, a boolean item name (``tls``, ``pause_resume``, ...) and its negation
``!name``. Example files live in ``mcscomm/data/pics/``; the format is documented in
docs/conformance.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mcscomm.messages.enums import AuthorizationType, ControlMode, ServiceId

SERVICES = ("DC", "DC_BPT", "MCS", "MCS_BPT")
CONTROLS = ("Scheduled", "Dynamic")
AUTHS = ("EIM", "PnC")
ALGORITHMS = ("secp521r1", "ed448")
_BOOLEANS = (
    "tls",
    "sdp",
    "certificate_installation",
    "service_renegotiation",
    "schedule_renegotiation",
    "pause_resume",
    "metering_confirmation",
    "negative_discharge",
    "standby",
    "vehicle_check_in_out",
)


class PicsError(ValueError):
    """A PICS/PIXIT file that cannot be used (unknown keys, wrong values); one line message."""


@dataclass(frozen=True, slots=True)
class Pixit:
    """How to reach and drive the SUT. Times in seconds; ``tolerance_s`` is the slack allowed
    on every timing check over real sockets (0 in-process: the virtual clock is exact)."""

    address: str | None = None
    pki_dir: str | None = None
    sdp_address: str | None = None
    sut_command: str | None = None
    tolerance_s: float = 0.05
    max_payload: int = 64 * 1024
    connect_timeout_s: float = 5.0
    #: wire encoding towards a real SUT: "exi" (ISO 15118-20) or "xml" (mcscomm's readable
    #: mode); in-process runs always use XML
    encoding: str = "exi"
    #: the tester EV's limits (V, A, W) and battery voltage
    ev_max_voltage: float = 1000.0
    ev_min_voltage: float = 200.0
    ev_max_current: float = 1000.0
    ev_max_power: float = 750_000.0
    ev_max_discharge_current: float = 800.0
    ev_max_discharge_power: float = 600_000.0
    ev_battery_voltage: float = 740.0
    #: the tester EVSE's limits (V, A, W)
    evse_max_voltage: float = 1250.0
    evse_min_voltage: float = 150.0
    evse_max_current: float = 1500.0
    evse_max_power: float = 1_000_000.0
    charge_loop_cycles: int = 8


@dataclass(frozen=True, slots=True)
class Pics:
    """What the SUT claims. Defaults describe our own endpoints (everything supported)."""

    role: str = "secc"
    name: str = "mcscomm"
    version: str = ""
    vendor: str = ""
    services: tuple[str, ...] = SERVICES
    control_modes: tuple[str, ...] = CONTROLS
    auth: tuple[str, ...] = AUTHS
    tls_algorithm: str = "secp521r1"
    tls: bool = True
    sdp: bool = True
    certificate_installation: bool = False
    service_renegotiation: bool = True
    schedule_renegotiation: bool = True
    pause_resume: bool = True
    metering_confirmation: bool = True
    negative_discharge: bool = False
    #: PowerDelivery(ChargeProgress=Standby) is accepted (facts §4.2 WARNING_StandbyNotAllowed)
    standby: bool = True
    #: the optional VehicleCheckIn and VehicleCheckOut exchanges are served (facts §4.3)
    vehicle_check_in_out: bool = True
    pixit: Pixit = field(default_factory=Pixit)

    def holds(self, expr: str) -> bool:
        """Whether the PICS expression ``expr`` holds for this SUT."""
        expr = expr.strip()
        if expr.startswith("!"):
            return not self.holds(expr[1:])
        if ":" in expr:
            kind, value = expr.split(":", 1)
            if kind == "service":
                return value in self.services
            if kind == "control":
                return value in self.control_modes
            if kind == "auth":
                return value in self.auth
            if kind == "algorithm":
                return value == self.tls_algorithm
            if kind == "role":
                return value == self.role
            raise PicsError(f"unknown PICS expression {expr!r}")
        if expr in _BOOLEANS:
            return bool(getattr(self, expr))
        raise PicsError(f"unknown PICS expression {expr!r}")

    def missing(self, exprs: tuple[str, ...]) -> list[str]:
        """The expressions of ``exprs`` that do not hold."""
        return [e for e in exprs if not self.holds(e)]

    # typed views used by the SUT launchers
    def service_ids(self) -> tuple[ServiceId, ...]:
        return tuple(ServiceId[s] for s in self.services)

    def control_mode_values(self) -> tuple[ControlMode, ...]:
        return tuple(ControlMode[c.upper()] for c in self.control_modes)

    def auth_types(self) -> tuple[AuthorizationType, ...]:
        return tuple(
            AuthorizationType.PNC if a == "PnC" else AuthorizationType.EIM for a in self.auth
        )

    def with_role(self, role: str) -> Pics:
        return replace(self, role=role)


def _tuple(value: Any, allowed: tuple[str, ...], key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PicsError(f"pics.{key} must be a list of strings")
    bad = [v for v in value if v not in allowed]
    if bad:
        raise PicsError(f"pics.{key}: unknown {bad}; allowed {list(allowed)}")
    return tuple(value)


def parse_pics(data: dict[str, Any], *, base: Path | None = None) -> Pics:
    """A :class:`Pics` from the parsed TOML tables ``[sut]``, ``[pics]`` and ``[pixit]``."""
    unknown = set(data) - {"sut", "pics", "pixit"}
    if unknown:
        raise PicsError(f"unknown tables {sorted(unknown)}; expected [sut], [pics], [pixit]")
    kw: dict[str, Any] = {}
    sut = data.get("sut", {})
    for key in ("role", "name", "version", "vendor"):
        if key in sut:
            kw[key] = str(sut[key])
    if kw.get("role", "secc") not in ("secc", "evcc"):
        raise PicsError("sut.role must be 'secc' or 'evcc'")
    pics = dict(data.get("pics", {}))
    lists = {"services": SERVICES, "control_modes": CONTROLS, "auth": AUTHS}
    for key, allowed in lists.items():
        if key in pics:
            kw[key] = _tuple(pics.pop(key), allowed, key)
    if "tls_algorithm" in pics:
        alg = pics.pop("tls_algorithm")
        if alg not in ALGORITHMS:
            raise PicsError(f"pics.tls_algorithm must be one of {list(ALGORITHMS)}")
        kw["tls_algorithm"] = alg
    for key in list(pics):
        if key not in _BOOLEANS:
            raise PicsError(f"unknown PICS item pics.{key}")
        if not isinstance(pics[key], bool):
            raise PicsError(f"pics.{key} must be true or false")
        kw[key] = pics.pop(key)
    pixit_kw: dict[str, Any] = {}
    names = {f.name: f for f in fields(Pixit)}
    for key, value in data.get("pixit", {}).items():
        if key not in names:
            raise PicsError(f"unknown PIXIT item pixit.{key}")
        default = getattr(Pixit(), key)
        try:
            if isinstance(default, float):
                value = float(value)
            elif isinstance(default, int):
                value = int(value)
            elif not isinstance(value, str):
                raise TypeError
        except (TypeError, ValueError):
            raise PicsError(f"pixit.{key}: {value!r} is not a valid value") from None
        if key == "encoding" and value not in ("exi", "xml"):
            raise PicsError('pixit.encoding must be "exi" or "xml"')
        if key == "pki_dir" and base is not None and value:
            value = (
                str((base / str(value)).resolve()) if not Path(str(value)).is_absolute() else value
            )
        pixit_kw[key] = value
    kw["pixit"] = Pixit(**pixit_kw)
    return Pics(**kw)


def load_pics(path: Path | str) -> Pics:
    """Read a PICS/PIXIT TOML file; PicsError (one line) when it cannot be used."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PicsError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PicsError(f"{path}: {exc}") from None
    return parse_pics(data, base=path.parent)


def example_pics_dir() -> Path:
    """The folder of the example PICS files shipped with the package."""
    return Path(__file__).resolve().parent.parent / "data" / "pics"
