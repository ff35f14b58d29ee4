"""Negotiation: combine every party's limits into one charge and one discharge envelope.

Theory of operation: for each quantity the envelope maximum is the smallest maximum of all
parties and the envelope minimum the largest minimum; the party that supplied the value is
recorded (the *binding* limit) so logs can say why a truck got 412 kW and not 750. A direction
whose maximum is zero is simply *unavailable* (e.g. discharge with a unidirectional charger);
a direction where some party's minimum exceeds another's maximum is *inverted*: with
``strict=True`` that raises :class:`EnvelopeInverted` (the session answers
FAILED_WrongChargeParameter), otherwise the direction is made unavailable with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from mcscomm.power.limits import (
    INF,
    MCS_ENVELOPE,
    ChargerSpec,
    LimitsError,
    PartyLimits,
)


class EnvelopeInverted(LimitsError):
    """Some party's minimum lies above another party's maximum: nothing can flow that suits all."""

    def __init__(
        self, quantity: str, min_party: str, min_value: float, max_party: str, max_value: float
    ) -> None:
        self.quantity = quantity
        self.min_party = min_party
        self.min_value = min_value
        self.max_party = max_party
        self.max_value = max_value
        super().__init__(
            f"{quantity}: minimum {min_value:g} of {min_party!r} exceeds "
            f"maximum {max_value:g} of {max_party!r}"
        )


@dataclass(frozen=True, slots=True)
class DirectionEnvelope:
    """What may flow in one direction (charge or discharge), as magnitudes, and why."""

    max_current_a: float
    min_current_a: float
    max_power_w: float
    min_power_w: float
    current_binding: str  # name of the party whose maximum current binds
    power_binding: str  # name of the party whose maximum power binds
    reason: str = ""  # non-empty when the direction is unavailable

    @property
    def available(self) -> bool:
        """True when something can flow in this direction."""
        return self.max_current_a > 0.0 and self.max_power_w > 0.0


@dataclass(frozen=True, slots=True)
class Envelope:
    """The negotiated envelope: voltage window plus a charge and a discharge direction."""

    max_voltage_v: float
    min_voltage_v: float
    voltage_binding: str
    charge: DirectionEnvelope
    discharge: DirectionEnvelope

    def as_limits(self, name: str = "envelope") -> PartyLimits:
        """The envelope as one :class:`PartyLimits` (e.g. to report as the EVSE's limits)."""
        c, d = self.charge, self.discharge
        return PartyLimits(
            name=name,
            max_voltage_v=self.max_voltage_v,
            min_voltage_v=self.min_voltage_v,
            max_charge_current_a=c.max_current_a,
            min_charge_current_a=c.min_current_a if c.available else 0.0,
            max_charge_power_w=c.max_power_w,
            min_charge_power_w=c.min_power_w if c.available else 0.0,
            max_discharge_current_a=d.max_current_a,
            min_discharge_current_a=d.min_current_a if d.available else 0.0,
            max_discharge_power_w=d.max_power_w,
            min_discharge_power_w=d.min_power_w if d.available else 0.0,
        )

    def describe(self) -> str:
        """One human line: the figures and the binding parties."""
        c, d = self.charge, self.discharge
        parts = [
            f"V {self.min_voltage_v:g}..{self.max_voltage_v:g} (max by {self.voltage_binding})",
            f"charge <= {c.max_current_a:g} A ({c.current_binding}), "
            f"{c.max_power_w / 1000:g} kW ({c.power_binding})",
        ]
        if d.available:
            parts.append(
                f"discharge <= {d.max_current_a:g} A ({d.current_binding}), "
                f"{d.max_power_w / 1000:g} kW ({d.power_binding})"
            )
        else:
            parts.append(f"discharge unavailable ({d.reason})")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Parties:
    """Everybody whose limits apply to one session. ``extra`` holds anything else (backend caps)."""

    evse: PartyLimits
    ev: PartyLimits
    cable: PartyLimits | None = None
    grid: PartyLimits | None = None
    mcs: PartyLimits | None = MCS_ENVELOPE
    extra: tuple[PartyLimits, ...] = ()

    def all(self) -> tuple[PartyLimits, ...]:
        """All parties in a fixed order (ties in 'binding' go to the earlier one)."""
        out = [p for p in (self.mcs, self.cable, self.evse, self.ev, self.grid) if p is not None]
        return (*out, *self.extra)


def build_parties(
    charger: ChargerSpec,
    ev: PartyLimits,
    *,
    bidirectional: bool = True,
    mcs: bool | None = None,
    grid_import_w: float | None = None,
    grid_export_w: float | None = None,
    extra: Iterable[PartyLimits] = (),
) -> Parties:
    """Parties for a session from a charger profile and the EV's declared (negotiated) limits.

    ``bidirectional=False`` models a non-BPT service (DC or MCS, service id 2/8): discharge
    is forbidden whatever the parties could do. ``mcs`` adds the MCS envelope (default: when
    the charger's connector is MCS).
    """
    if mcs is None:
        mcs = charger.connector == "MCS"
    evse = charger.limits if bidirectional else charger.limits.without_discharge()
    return Parties(
        evse=evse,
        ev=ev if bidirectional else ev.without_discharge(),
        cable=charger.cable,
        grid=charger.grid_party(grid_import_w, grid_export_w),
        mcs=MCS_ENVELOPE if mcs else None,
        extra=tuple(extra),
    )


def _direction(
    parties: tuple[PartyLimits, ...], prefix: str, strict: bool, label: str
) -> DirectionEnvelope:
    max_i, max_i_by = INF, "none"
    max_p, max_p_by = INF, "none"
    min_i, min_i_by = 0.0, "none"
    min_p, min_p_by = 0.0, "none"
    for p in parties:
        v = getattr(p, f"max_{prefix}_current_a")
        if v < max_i:
            max_i, max_i_by = v, p.name
        v = getattr(p, f"max_{prefix}_power_w")
        if v < max_p:
            max_p, max_p_by = v, p.name
        v = getattr(p, f"min_{prefix}_current_a")
        if v > min_i:
            min_i, min_i_by = v, p.name
        v = getattr(p, f"min_{prefix}_power_w")
        if v > min_p:
            min_p, min_p_by = v, p.name
    if max_i <= 0.0 or max_p <= 0.0:
        by = max_i_by if max_i <= 0.0 else max_p_by
        return DirectionEnvelope(0.0, 0.0, 0.0, 0.0, max_i_by, max_p_by, f"{by} allows no {label}")
    for qty, lo, lo_by, hi, hi_by in (
        (f"{label} current", min_i, min_i_by, max_i, max_i_by),
        (f"{label} power", min_p, min_p_by, max_p, max_p_by),
    ):
        if lo > hi:
            err = EnvelopeInverted(qty, lo_by, lo, hi_by, hi)
            if strict:
                raise err
            return DirectionEnvelope(0.0, 0.0, 0.0, 0.0, max_i_by, max_p_by, str(err))
    return DirectionEnvelope(max_i, min_i, max_p, min_p, max_i_by, max_p_by)


def negotiate(parties: Parties | Iterable[PartyLimits], *, strict: bool = True) -> Envelope:
    """Combine all parties into the charge/discharge envelope with the binding limits.

    Raises :class:`EnvelopeInverted` when the voltage window is empty, or (``strict``) when a
    direction's minimum exceeds its maximum. The charge maximum must be finite: some party
    (the MCS envelope at least) has to bound it, otherwise :class:`LimitsError`.
    """
    plist = parties.all() if isinstance(parties, Parties) else tuple(parties)
    if not plist:
        raise LimitsError("no parties to negotiate between")
    max_v, max_v_by = INF, "none"
    min_v, min_v_by = 0.0, "none"
    for p in plist:
        if p.max_voltage_v < max_v:
            max_v, max_v_by = p.max_voltage_v, p.name
        if p.min_voltage_v > min_v:
            min_v, min_v_by = p.min_voltage_v, p.name
    if math.isinf(max_v):
        raise LimitsError("no party bounds the voltage")
    if min_v > max_v:
        raise EnvelopeInverted("voltage", min_v_by, min_v, max_v_by, max_v)
    charge = _direction(plist, "charge", strict, "charge")
    discharge = _direction(plist, "discharge", strict, "discharge")
    for d, label in ((charge, "charge"), (discharge, "discharge")):
        if d.available and (math.isinf(d.max_current_a) or math.isinf(d.max_power_w)):
            raise LimitsError(f"no party bounds the {label} current and power")
    return Envelope(max_v, min_v, max_v_by, charge, discharge)
