"""Mapping between the power layer and the ISO 15118-20 DC/DC_BPT field *names* (facts §4.4).

The session layer owns the messages; this module only knows field names (the XSD element names
in snake_case, as the messages dataclasses spell them) and plain floats, so ``power/`` never
imports ``messages/``. Missing/absent fields are ``None`` (or simply not in the mapping).

Sign convention (facts §4.4 "BPT sign convention — ambiguous"):
* :attr:`SignConvention.POSITIVE` (default, as EVerest and EDF): every limit is a positive
  magnitude; the direction of present/target current comes from BPT_ChannelSelection.
* :attr:`SignConvention.NEGATIVE_DISCHARGE` (for peers like Josev): discharge limits, and
  present/target current and power while discharging, are negative.
On input both conventions are accepted for limits (their magnitude is used): being strict about a
sign nobody agrees on would only break interop; a current's sign is taken from the convention.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum

from mcscomm.power.controller import EvRequest, Mode, SeccDecision
from mcscomm.power.ev import EvseLimits
from mcscomm.power.limits import INF, PartyLimits

Number = float | int | Decimal
Fields = dict[str, float | bool | None]

NAN = math.nan


class SignConvention(StrEnum):
    """How discharge values are signed on the wire."""

    POSITIVE = "positive"
    NEGATIVE_DISCHARGE = "negative-discharge"


class FieldError(ValueError):
    """A required field is missing or not a finite number."""


def _out(x: float) -> float | None:
    """inf/NaN are not representable as RationalNumber: send nothing."""
    return x if math.isfinite(x) else None


def _dis(x: float, conv: SignConvention) -> float | None:
    if not math.isfinite(x):
        return None
    return -x if conv is SignConvention.NEGATIVE_DISCHARGE and x != 0.0 else x


def _get(fields: Mapping[str, object], name: str, default: float | None = None) -> float:
    v = fields.get(name)
    if v is None:
        if default is None:
            raise FieldError(f"missing field {name}")
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
        try:
            v = float(v)  # type: ignore[arg-type]  # RationalNumber and friends
        except (TypeError, ValueError) as exc:
            raise FieldError(f"field {name} is not a number: {v!r}") from exc
    f = float(v)
    if math.isnan(f) or math.isinf(f):
        raise FieldError(f"field {name} is not finite: {v!r}")
    return f


# -- ChargeParameterDiscovery ------------------------------------------------------------


def ev_cpd_fields(
    limits: PartyLimits,
    *,
    bpt: bool,
    convention: SignConvention = SignConvention.POSITIVE,
    target_soc: float | None = None,
) -> Fields:
    """(BPT_)DC_CPDReqEnergyTransferMode fields from the truck's declared limits."""
    f: Fields = {
        "ev_maximum_charge_power": _out(limits.max_charge_power_w),
        "ev_minimum_charge_power": limits.min_charge_power_w,
        "ev_maximum_charge_current": _out(limits.max_charge_current_a),
        "ev_minimum_charge_current": limits.min_charge_current_a,
        "ev_maximum_voltage": _out(limits.max_voltage_v),
        "ev_minimum_voltage": limits.min_voltage_v,
        "target_soc": None if target_soc is None else round(target_soc * 100),
    }
    if bpt:
        f["ev_maximum_discharge_power"] = _dis(limits.max_discharge_power_w, convention)
        f["ev_minimum_discharge_power"] = _dis(limits.min_discharge_power_w, convention)
        f["ev_maximum_discharge_current"] = _dis(limits.max_discharge_current_a, convention)
        f["ev_minimum_discharge_current"] = _dis(limits.min_discharge_current_a, convention)
    return f


def _limits_from(fields: Mapping[str, object], who: str, name: str) -> PartyLimits:
    bpt = fields.get(f"{who}_maximum_discharge_power") is not None
    return PartyLimits(
        name=name,
        max_voltage_v=abs(_get(fields, f"{who}_maximum_voltage")),
        min_voltage_v=abs(_get(fields, f"{who}_minimum_voltage", 0.0)),
        max_charge_current_a=abs(_get(fields, f"{who}_maximum_charge_current")),
        min_charge_current_a=abs(_get(fields, f"{who}_minimum_charge_current", 0.0)),
        max_charge_power_w=abs(_get(fields, f"{who}_maximum_charge_power")),
        min_charge_power_w=abs(_get(fields, f"{who}_minimum_charge_power", 0.0)),
        max_discharge_current_a=abs(_get(fields, f"{who}_maximum_discharge_current", 0.0))
        if bpt
        else 0.0,
        min_discharge_current_a=abs(_get(fields, f"{who}_minimum_discharge_current", 0.0)),
        max_discharge_power_w=abs(_get(fields, f"{who}_maximum_discharge_power", 0.0)),
        min_discharge_power_w=abs(_get(fields, f"{who}_minimum_discharge_power", 0.0)),
    )


def ev_limits_from_cpd(fields: Mapping[str, object], *, name: str = "EV") -> PartyLimits:
    """The EV party from DC_CPDReq fields (either sign convention; no BPT fields -> no V2G).

    Raises :class:`FieldError` for a missing or non-finite mandatory field and ``LimitsError``
    for nonsense such as a minimum above the EV's own maximum (both: FAILED_WrongChargeParameter).
    """
    return _limits_from(fields, "ev", name)


def evse_cpd_fields(
    limits: PartyLimits,
    *,
    bpt: bool,
    convention: SignConvention = SignConvention.POSITIVE,
    power_ramp_limitation_w_per_s: float | None = None,
) -> Fields:
    """(BPT_)DC_CPDResEnergyTransferMode fields from the EVSE-side envelope.

    Pass ``SeccController.evse_envelope.as_limits()`` (or the charger's rating).
    """
    f: Fields = {
        "evse_maximum_charge_power": _out(limits.max_charge_power_w),
        "evse_minimum_charge_power": limits.min_charge_power_w,
        "evse_maximum_charge_current": _out(limits.max_charge_current_a),
        "evse_minimum_charge_current": limits.min_charge_current_a,
        "evse_maximum_voltage": _out(limits.max_voltage_v),
        "evse_minimum_voltage": limits.min_voltage_v,
        "evse_power_ramp_limitation": None
        if power_ramp_limitation_w_per_s is None
        else _out(power_ramp_limitation_w_per_s),
    }
    if bpt:
        f["evse_maximum_discharge_power"] = _dis(limits.max_discharge_power_w, convention)
        f["evse_minimum_discharge_power"] = _dis(limits.min_discharge_power_w, convention)
        f["evse_maximum_discharge_current"] = _dis(limits.max_discharge_current_a, convention)
        f["evse_minimum_discharge_current"] = _dis(limits.min_discharge_current_a, convention)
    return f


def evse_limits_from_cpd(fields: Mapping[str, object], *, name: str = "EVSE") -> PartyLimits:
    """The EVSE party from DC_CPDRes fields (the truck side uses it to bound its requests)."""
    return _limits_from(fields, "evse", name)


# -- ChargeLoop ----------------------------------------------------------------------------


def _signed(x: float, conv: SignConvention) -> float:
    """A signed internal current/power as the wire wants it (magnitude unless negative mode)."""
    if conv is SignConvention.NEGATIVE_DISCHARGE:
        return x
    return abs(x)


def evse_loop_fields(
    d: SeccDecision,
    *,
    bpt: bool,
    mode: Mode,
    convention: SignConvention = SignConvention.POSITIVE,
) -> Fields:
    """DC_ChargeLoopRes fields (base part + (BPT_)Scheduled/Dynamic_DC_CLResControlMode)."""
    f: Fields = {
        "evse_present_current": _signed(d.present_current_a, convention),
        "evse_present_voltage": d.present_voltage_v,
        "evse_power_limit_achieved": d.power_limit_achieved,
        "evse_current_limit_achieved": d.current_limit_achieved,
        "evse_voltage_limit_achieved": d.voltage_limit_achieved,
        "evse_maximum_charge_power": _out(d.evse_max_charge_power_w),
        "evse_minimum_charge_power": d.evse_min_charge_power_w,
        "evse_maximum_charge_current": _out(d.evse_max_charge_current_a),
        "evse_maximum_voltage": _out(d.evse_max_voltage_v),
    }
    if bpt:
        f["evse_maximum_discharge_power"] = _dis(d.evse_max_discharge_power_w, convention)
        f["evse_minimum_discharge_power"] = _dis(d.evse_min_discharge_power_w, convention)
        f["evse_maximum_discharge_current"] = _dis(d.evse_max_discharge_current_a, convention)
        f["evse_minimum_voltage"] = d.evse_min_voltage_v
    return f


def evse_limits_from_loop_fields(fields: Mapping[str, object]) -> EvseLimits:
    """EVSE-side limits in force from a DC_ChargeLoopRes (absent -> keep no restriction/0)."""
    return EvseLimits(
        abs(_get(fields, "evse_maximum_charge_power", INF)),
        abs(_get(fields, "evse_maximum_charge_current", INF)),
        abs(_get(fields, "evse_maximum_discharge_power", 0.0)),
        abs(_get(fields, "evse_maximum_discharge_current", 0.0)),
        abs(_get(fields, "evse_maximum_voltage", INF)),
        abs(_get(fields, "evse_minimum_voltage", 0.0)),
    )


def present_current_from_loop_fields(
    fields: Mapping[str, object], *, discharging: bool, convention: SignConvention
) -> float:
    """EVSEPresentCurrent as a signed internal current (> 0 charging)."""
    i = _get(fields, "evse_present_current")
    if convention is SignConvention.NEGATIVE_DISCHARGE:
        return i
    return -abs(i) if discharging else abs(i)


def ev_loop_fields(
    r: EvRequest,
    *,
    bpt: bool,
    mode: Mode,
    convention: SignConvention = SignConvention.POSITIVE,
) -> Fields:
    """DC_ChargeLoopReq fields (EVPresentVoltage + the control-mode element's fields)."""
    f: Fields = {"ev_present_voltage": r.present_voltage_v}
    if mode is Mode.SCHEDULED:
        t = r.target_current_a if math.isfinite(r.target_current_a) else 0.0
        f["ev_target_current"] = _signed(t, convention)
        f["ev_target_voltage"] = _out(r.target_voltage_v)
    else:
        f["departure_time"] = (
            int(r.departure_s) if math.isfinite(r.departure_s) and r.departure_s >= 0 else None
        )
        f["ev_target_energy_request"] = _out(r.target_energy_wh)
        f["ev_maximum_energy_request"] = _out(r.max_energy_wh)
        f["ev_minimum_energy_request"] = _out(r.min_energy_wh)
        if bpt:
            f["ev_maximum_v2x_energy_request"] = _out(r.max_v2x_energy_wh)
            f["ev_minimum_v2x_energy_request"] = _out(r.min_v2x_energy_wh)
    f["ev_maximum_charge_power"] = _out(r.max_charge_power_w)
    f["ev_minimum_charge_power"] = r.min_charge_power_w
    f["ev_maximum_charge_current"] = _out(r.max_charge_current_a)
    f["ev_maximum_voltage"] = _out(r.max_voltage_v)
    f["ev_minimum_voltage"] = r.min_voltage_v
    if bpt:
        f["ev_maximum_discharge_power"] = _dis(r.max_discharge_power_w, convention)
        f["ev_minimum_discharge_power"] = _dis(r.min_discharge_power_w, convention)
        f["ev_maximum_discharge_current"] = _dis(r.max_discharge_current_a, convention)
    return f


def ev_request_from_loop_fields(
    fields: Mapping[str, object],
    *,
    mode: Mode,
    discharging: bool = False,
    convention: SignConvention = SignConvention.POSITIVE,
) -> EvRequest:
    """An :class:`EvRequest` from DC_ChargeLoopReq fields.

    ``discharging`` is the BPT_ChannelSelection of the last PowerDeliveryReq; with
    POSITIVE it gives the target current its sign. Absent limits mean "no restriction" (the
    negotiated EV limits still bound everything); absent BPT fields in Dynamic mode mean no V2G.
    """
    v = _get(fields, "ev_present_voltage")
    g = fields.get
    bpt = g("ev_maximum_discharge_power") is not None or discharging

    def opt(name: str, default: float) -> float:
        return abs(_get(fields, name, default))

    def signed_opt(name: str) -> float:
        return _get(fields, name) if g(name) is not None else NAN

    if mode is Mode.SCHEDULED:
        t = _get(fields, "ev_target_current")
        if convention is SignConvention.POSITIVE:
            t = -abs(t) if discharging else abs(t)
        tv = _get(fields, "ev_target_voltage", NAN) if g("ev_target_voltage") is not None else NAN
    else:
        t = tv = NAN
    dep = g("departure_time")
    return EvRequest(
        present_voltage_v=abs(v),
        target_current_a=t,
        target_voltage_v=abs(tv),
        max_charge_power_w=opt("ev_maximum_charge_power", INF),
        min_charge_power_w=opt("ev_minimum_charge_power", 0.0),
        max_charge_current_a=opt("ev_maximum_charge_current", INF),
        max_voltage_v=opt("ev_maximum_voltage", INF),
        min_voltage_v=opt("ev_minimum_voltage", 0.0),
        max_discharge_power_w=opt("ev_maximum_discharge_power", INF) if bpt else 0.0,
        min_discharge_power_w=opt("ev_minimum_discharge_power", 0.0),
        max_discharge_current_a=opt("ev_maximum_discharge_current", INF) if bpt else 0.0,
        target_energy_wh=signed_opt("ev_target_energy_request"),
        max_energy_wh=signed_opt("ev_maximum_energy_request"),
        min_energy_wh=signed_opt("ev_minimum_energy_request"),
        max_v2x_energy_wh=signed_opt("ev_maximum_v2x_energy_request"),
        min_v2x_energy_wh=signed_opt("ev_minimum_v2x_energy_request"),
        departure_s=float(_get(fields, "departure_time")) if dep is not None else NAN,
    )


def meter_fields(charged_wh: float, discharged_wh: float, *, bpt: bool) -> Fields:
    """MeterInfo readings (whole Wh, floored: a reading never exceeds what was measured)."""
    f: Fields = {"charged_energy_reading_wh": float(int(charged_wh))}
    if bpt:
        f["bpt_discharged_energy_reading_wh"] = float(int(discharged_wh))
    return f
