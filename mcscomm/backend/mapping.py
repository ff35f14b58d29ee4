"""OCPP <-> power layer: composite targets become backend plans; sessions become OCPP payloads.

The power layer's backend interface is a piecewise-constant plan of :class:`EmsStep` (setpoint,
> 0 charge / < 0 discharge / inf = as fast as allowed, and DC power caps each way). Mapping of a
composite :class:`~mcscomm.backend.profiles.Target` by operation mode (OCPP 2.1 V2X):

=====================  ===================  =============  ================
operationMode          setpoint             charge cap     discharge cap
=====================  ===================  =============  ================
Idle                   0                    0              0
ChargingOnly           setpoint or max      limit          0
Central/ExtSetpoint    setpoint             limit          -dischargeLimit
ExternalLimits, LLB    max (within limits)  limit          -dischargeLimit
=====================  ===================  =============  ================

Payload builders return dicts with snake_case keys as the ``ocpp`` library expects for nested
types (it camel-cases them on the way out).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from mcscomm.backend.port import SessionSnapshot
from mcscomm.backend.profiles import OperationMode, Segment, Target, format_time
from mcscomm.power.ems import EmsStep, Scenario
from mcscomm.power.limits import INF, PartyLimits

#: -20 energy services -> OCPP EnergyTransferModeEnumType. OCPP 2.1 has no MCS values: MCS is a
#: DC transfer (facts §7: MCS reuses the DC message set), so MCS maps to DC and MCS_BPT to DC_BPT.
TRANSFER_MODE = {"DC": "DC", "MCS": "DC", "DC_BPT": "DC_BPT", "MCS_BPT": "DC_BPT"}
CONTROL_MODE = {"Scheduled": "ScheduledControl", "Dynamic": "DynamicControl"}


def step_for(target: Target | None, at_s: float, label: str = "") -> EmsStep:
    """One plan step for a composite target (see the module table)."""
    if target is None:
        return EmsStep(at_s, label=label or "no profile")
    cap_c = INF if target.limit_w is None else target.limit_w
    cap_d = INF if target.discharge_limit_w is None else target.discharge_limit_w
    m = target.mode
    if m is OperationMode.IDLE:
        return EmsStep(at_s, 0.0, 0.0, 0.0, label=label or "Idle")
    if m is OperationMode.CHARGING_ONLY:
        sp = target.setpoint_w if target.setpoint_w is not None and target.setpoint_w >= 0 else INF
        return EmsStep(at_s, sp, cap_c, 0.0, label=label or str(m))
    if target.setpoint_w is not None and m in (
        OperationMode.CENTRAL_SETPOINT,
        OperationMode.EXTERNAL_SETPOINT,
    ):
        return EmsStep(at_s, target.setpoint_w, cap_c, cap_d, label=label or str(m))
    return EmsStep(at_s, INF, cap_c, cap_d, label=label or str(m))


def plan_from_segments(segments: list[Segment], epoch_now: float, name: str = "ocpp") -> Scenario:
    """A power-layer plan whose step times are seconds after ``epoch_now``."""
    steps: list[EmsStep] = []
    for seg in segments:
        at = max(0.0, seg.start - epoch_now)
        step = step_for(seg.target, at)
        if steps and at <= steps[-1].at_s:
            steps[-1] = replace(step, at_s=steps[-1].at_s)  # a segment that began in the past
        else:
            steps.append(step)
    if not steps or steps[0].at_s != 0.0:
        steps.insert(0, step_for(None, 0.0))
    return Scenario(name=name, steps=tuple(steps), duration_s=INF)


def fallback_plan(limit_w: float) -> Scenario:
    """The offline fallback: charge only, at most ``limit_w`` (inf: the charger's rating)."""
    return Scenario(
        name="offline fallback",
        steps=(EmsStep(0.0, INF, limit_w, 0.0, label="offline fallback"),),
        duration_s=INF,
    )


def _fin(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def charging_needs(s: SessionSnapshot, departure_epoch: float | None) -> dict[str, Any]:
    """ChargingNeedsType (OCPP 2.1) from the truck's -20 parameters.

    DC part: EVMaximumChargeCurrent/Voltage/Power, SoC, energy; V2X part (BPT services): the
    BPT charge and discharge limits (as positive magnitudes, like -20's POSITIVE convention),
    the Dynamic energy requests and the target SoC.
    """
    ev = s.ev_limits
    svc = s.service or "DC"
    mode = TRANSFER_MODE.get(svc, "DC")
    bpt = mode == "DC_BPT"
    needs: dict[str, Any] = {
        "requested_energy_transfer": mode,
        "available_energy_transfer": ["DC", "DC_BPT"] if bpt else ["DC"],
        "control_mode": CONTROL_MODE.get(s.control_mode or ""),
        "mobility_needs_mode": "EVCC",
    }
    if departure_epoch is not None:
        needs["departure_time"] = format_time(departure_epoch)
    if ev is not None:
        needs["dc_charging_parameters"] = _clean(
            {
                "ev_max_current": _fin(ev.max_charge_current_a) or 0.0,
                "ev_max_voltage": _fin(ev.max_voltage_v) or 0.0,
                "ev_max_power": _fin(ev.max_charge_power_w),
                "energy_amount": _fin(s.target_energy_wh),
                "state_of_charge": None if s.soc is None else round(s.soc),
                "full_soc": None if s.target_soc is None else round(s.target_soc),
            }
        )
        if bpt:
            needs["v2x_charging_parameters"] = _clean(
                {
                    "min_charge_power": ev.min_charge_power_w,
                    "max_charge_power": _fin(ev.max_charge_power_w),
                    "min_discharge_power": ev.min_discharge_power_w,
                    "max_discharge_power": _fin(ev.max_discharge_power_w),
                    "min_charge_current": ev.min_charge_current_a,
                    "max_charge_current": _fin(ev.max_charge_current_a),
                    "min_discharge_current": ev.min_discharge_current_a,
                    "max_discharge_current": _fin(ev.max_discharge_current_a),
                    "min_voltage": ev.min_voltage_v,
                    "max_voltage": _fin(ev.max_voltage_v),
                    "ev_target_energy_request": _fin(s.target_energy_wh),
                    "ev_min_energy_request": _fin(s.min_energy_wh),
                    "ev_max_energy_request": _fin(s.max_energy_wh),
                    "ev_min_v2x_energy_request": _fin(s.min_v2x_energy_wh),
                    "ev_max_v2x_energy_request": _fin(s.max_v2x_energy_wh),
                    "target_soc": None if s.target_soc is None else round(s.target_soc),
                }
            )
    return _clean(needs)


def ev_schedule(profile: tuple[tuple[float, float], ...], schedule_id: int = 1) -> dict[str, Any]:
    """ChargingScheduleType for NotifyEVChargingSchedule from an EVPowerProfile.

    Charging entries become ``limit``; discharging ones ``dischargeLimit`` with the same
    ``setpoint`` (what the truck plans to give back), so the CSMS sees the signed plan.
    """
    periods: list[dict[str, Any]] = []
    start = 0.0
    for duration, power in profile[:1024]:
        if power >= 0:
            periods.append({"start_period": int(start), "limit": float(power)})
        else:
            periods.append(
                {
                    "start_period": int(start),
                    "limit": 0.0,
                    "discharge_limit": float(power),
                    "setpoint": float(power),
                    "operation_mode": "ExternalSetpoint",
                }
            )
        start += duration
    return {
        "id": schedule_id,
        "charging_rate_unit": "W",
        "duration": int(start) if start >= 1 else None,
        "charging_schedule_period": periods,
    }


def sampled_values(s: SessionSnapshot, context: str) -> list[dict[str, Any]]:
    """SampledValueType list: energy registers both ways, power both ways, voltage, SoC."""

    def sample(
        value: float, measurand: str, unit: str, location: str | None = None
    ) -> dict[str, Any]:
        where = {} if location is None else {"location": location}
        return {
            "value": value,
            "measurand": measurand,
            "context": context,
            **where,
            "unit_of_measure": {"unit": unit},
        }

    p = s.power_w
    out: list[dict[str, Any]] = [
        sample(round(s.charged_wh, 1), "Energy.Active.Import.Register", "Wh"),
        sample(round(s.discharged_wh, 1), "Energy.Active.Export.Register", "Wh"),
        sample(round(max(p, 0.0), 1) + 0.0, "Power.Active.Import", "W"),  # + 0.0: no -0.0
        sample(round(max(-p, 0.0), 1) + 0.0, "Power.Active.Export", "W"),
        sample(round(s.voltage_v, 1), "Voltage", "V"),
    ]
    if s.setpoint_w is not None and math.isfinite(s.setpoint_w):
        out.append(sample(round(s.setpoint_w, 1), "Power.Active.Setpoint", "W"))
    if s.soc is not None:
        out.append(sample(round(s.soc, 1), "SoC", "Percent", location="EV"))
    return out


def rated_caps(limits: PartyLimits | None) -> tuple[float, float]:
    """(max charge W, max discharge W) of a party, inf when unknown."""
    if limits is None:
        return INF, INF
    return limits.max_charge_power_w, limits.max_discharge_power_w
