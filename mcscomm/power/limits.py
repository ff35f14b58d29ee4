"""Parties and their limits: plain frozen dataclasses of floats (SI units: V, A, W, s).

Every party that can restrict what flows (the MCS physical envelope, the cable/connector, the
charger, the truck as declared over the protocol, the depot's grid connection, the backend) is a
:class:`PartyLimits`. All limits are *magnitudes* (>= 0): charge and discharge are separate fields,
so the sign convention of the wire never leaks in here. ``inf`` means "this party does not
restrict that quantity"; ``0.0`` on a discharge maximum means "this party cannot discharge".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

INF = math.inf

# MCS physical envelope (facts §7: 1 250 V, 3 000 A, 3.75 MW = 3 000 A x 1 250 V;
# IEC 61851-23-3 / SAE J3271 as reported by the press pages cited there).
MCS_MAX_VOLTAGE_V = 1250.0
MCS_MAX_CURRENT_A = 3000.0
MCS_MAX_POWER_W = 3_750_000.0


class LimitsError(ValueError):
    """A party's limits are not physically meaningful (negative, NaN, min above max)."""


@dataclass(frozen=True, slots=True)
class PartyLimits:
    """What one party allows, as magnitudes. Minimums are operating floors (0 = none)."""

    name: str
    max_voltage_v: float = INF
    min_voltage_v: float = 0.0
    max_charge_current_a: float = INF
    min_charge_current_a: float = 0.0
    max_charge_power_w: float = INF
    min_charge_power_w: float = 0.0
    max_discharge_current_a: float = INF
    min_discharge_current_a: float = 0.0
    max_discharge_power_w: float = INF
    min_discharge_power_w: float = 0.0

    def __post_init__(self) -> None:
        for fname in _FLOAT_FIELDS:
            value = getattr(self, fname)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise LimitsError(f"{self.name}: {fname} must be a number >= 0, got {value!r}")
            if fname.startswith("min_") and math.isinf(value):
                raise LimitsError(f"{self.name}: {fname} must be finite")
        if self.min_voltage_v > self.max_voltage_v:
            raise LimitsError(f"{self.name}: min_voltage_v above max_voltage_v")
        for q in ("charge_current_a", "charge_power_w", "discharge_current_a", "discharge_power_w"):
            hi, lo = getattr(self, f"max_{q}"), getattr(self, f"min_{q}")
            # a direction this party cannot do at all (max 0) has no meaningful minimum
            if hi > 0.0 and lo > hi:
                raise LimitsError(f"{self.name}: min_{q} above max_{q}")

    @property
    def can_discharge(self) -> bool:
        """True when this party allows any discharge (V2G) at all."""
        return self.max_discharge_current_a > 0.0 and self.max_discharge_power_w > 0.0

    def without_discharge(self) -> PartyLimits:
        """The same party with discharge forbidden (a non-BPT service or a unidirectional unit)."""
        return replace(
            self, max_discharge_current_a=0.0, max_discharge_power_w=0.0,
            min_discharge_current_a=0.0, min_discharge_power_w=0.0,
        )  # fmt: skip


_FLOAT_FIELDS = tuple(f.name for f in fields(PartyLimits) if f.name != "name")

MCS_ENVELOPE = PartyLimits(
    name="MCS envelope",
    max_voltage_v=MCS_MAX_VOLTAGE_V,
    max_charge_current_a=MCS_MAX_CURRENT_A,
    max_charge_power_w=MCS_MAX_POWER_W,
    max_discharge_current_a=MCS_MAX_CURRENT_A,
    max_discharge_power_w=MCS_MAX_POWER_W,
)
"""The MCS physical envelope (facts §7), the same in both directions."""


@dataclass(frozen=True, slots=True)
class Ramp:
    """Rate limits of a power stage: how fast |current| and |power| may change (per second)."""

    current_a_per_s: float = INF
    power_w_per_s: float = INF
    voltage_v_per_s: float = INF  # pre-charge / cable-check voltage slew


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """A charger (EVSE): ratings, ramps, efficiency, safe-state timing, cable and grid link.

    ``limits`` is the EVSE rating (its discharge maxima are 0 for a unidirectional unit);
    ``cable`` the cable/connector rating; ``grid`` the depot connection as AC-side import
    (charge) and export (discharge) power, converted to the DC side with ``efficiency``.
    """

    name: str
    limits: PartyLimits
    cable: PartyLimits
    grid_import_w: float = INF
    grid_export_w: float = INF
    ramp: Ramp = field(default_factory=Ramp)
    efficiency: float = 0.96  # AC<->DC conversion, same both ways (simple model)
    safe_ramp_down_s: float = 0.5  # configured bound to reach zero current in safe state
    connector: str = "MCS"
    description: str = ""

    @property
    def bidirectional(self) -> bool:
        """True when the charger can discharge a truck into the grid."""
        return self.limits.can_discharge and self.grid_export_w > 0.0

    def grid_party(
        self, import_w: float | None = None, export_w: float | None = None
    ) -> PartyLimits:
        """The grid connection as a DC-side power limit (import x eff, export / eff)."""
        imp = self.grid_import_w if import_w is None else min(import_w, self.grid_import_w)
        exp = self.grid_export_w if export_w is None else min(export_w, self.grid_export_w)
        return PartyLimits(
            name="grid connection",
            max_charge_power_w=imp * self.efficiency,
            max_discharge_power_w=exp / self.efficiency if self.efficiency > 0 else 0.0,
        )


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """A truck battery: capacity, OCV(SoC), resistance, ratings with SoC derating, V2G window.

    SoC values are fractions 0..1. ``ocv_curve`` is ((soc, volts), ...) ascending in soc.
    Charge current/power taper linearly to ``taper_floor`` of their maximum between
    ``charge_taper_soc`` and ``max_soc``; discharge tapers to zero over ``discharge_taper_soc``
    above ``v2g_min_soc`` (so a discharge can never step below the floor).
    """

    name: str
    capacity_wh: float
    ocv_curve: tuple[tuple[float, float], ...]
    internal_resistance_ohm: float
    limits: PartyLimits  # what the truck declares in ChargeParameterDiscovery
    charge_efficiency: float = 0.97
    discharge_efficiency: float = 0.97
    charge_taper_soc: float = 0.8
    taper_floor: float = 0.1
    max_soc: float = 1.0
    v2g_min_soc: float = 0.3
    discharge_taper_soc: float = 0.02
    initial_soc: float = 0.3
    target_soc: float = 0.8
    departure_s: float = INF  # seconds after session start
    connector: str = "MCS"
    description: str = ""

    @property
    def bidirectional(self) -> bool:
        """True when the truck supports V2G at all."""
        return self.limits.can_discharge
