"""Power negotiation: every party's limits -> what may flow, why, and the flags to report.

Pure: no protocol types, no I/O (except the TOML profile loader), time passed in as float
seconds. Sign convention inside: current/power > 0 charges the truck, < 0 discharges it (V2G);
limits are magnitudes (>= 0). See ``docs/power.md``.

Typical use by a session (SECC side)::

    charger = load_charger("mcs_1mw_bpt")
    ev = bpt.ev_limits_from_cpd(cpd_req_fields)              # EV's declared limits
    parties = build_parties(charger, ev, bidirectional=service_is_bpt)
    ctl = SeccController(parties, charger, mode=Mode.DYNAMIC, ems=Ems(load_scenario(...)))
    res_fields = bpt.evse_cpd_fields(ctl.evse_envelope.as_limits(), bpt=True)
    ctl.cable_check(now) / ctl.precharge(now, target_v) / ctl.start_power_delivery(now)
    d = ctl.step(now, bpt.ev_request_from_loop_fields(loop_req_fields, mode=Mode.DYNAMIC))
    loop_res_fields = bpt.evse_loop_fields(d, bpt=True, mode=Mode.DYNAMIC)
    ctl.tick(now)  # from the timer: trips safe state on a missing request

Truck (EVCC) side::

    truck = TruckController(Battery(load_truck("mcs_7pack")), mode=Mode.DYNAMIC)
    cpd_fields = bpt.ev_cpd_fields(truck.cpd_limits(), bpt=True)
    truck.accept_evse_limits(EvseLimits.from_party(bpt.evse_limits_from_cpd(cpd_res_fields)))
    req = truck.request(now)          # -> bpt.ev_loop_fields(req, ...)
    truck.accept_evse_limits(bpt.evse_limits_from_loop_fields(loop_res_fields))
    truck.observe(now, present_current_a, present_voltage_v)   # fault latched -> req.stop
"""

from __future__ import annotations

from mcscomm.power import bpt
from mcscomm.power.battery import Battery
from mcscomm.power.bpt import FieldError, SignConvention
from mcscomm.power.controller import EvRequest, Mode, SeccController, SeccDecision
from mcscomm.power.ems import Ems, EmsStep, Scenario, constant
from mcscomm.power.envelope import (
    DirectionEnvelope,
    Envelope,
    EnvelopeInverted,
    Parties,
    build_parties,
    negotiate,
)
from mcscomm.power.ev import EvseLimits, EvseLimitsLike, TruckController
from mcscomm.power.limits import (
    MCS_ENVELOPE,
    MCS_MAX_CURRENT_A,
    MCS_MAX_POWER_W,
    MCS_MAX_VOLTAGE_V,
    BatterySpec,
    ChargerSpec,
    LimitsError,
    PartyLimits,
    Ramp,
)
from mcscomm.power.meter import Meter
from mcscomm.power.profiles import (
    ProfileError,
    list_profiles,
    load_charger,
    load_scenario,
    load_truck,
)
from mcscomm.power.safety import (
    OverVoltage,
    OverVoltageMonitor,
    SafeState,
    SafeStateCause,
    cable_check_voltage,
    emergency_over_voltage_threshold,
)
from mcscomm.power.schedule import (
    MAX_SCHEDULE_ENTRIES,
    MAX_SCHEDULE_TUPLES,
    PowerSchedule,
    ProfileCheck,
    ProfileVerdict,
    ScheduleError,
    ScheduleTuple,
    build_schedules,
    validate_ev_power_profile,
)
from mcscomm.power.sim import SimResult, pair, simulate
from mcscomm.power.stage import PowerStage

__all__ = [
    "MAX_SCHEDULE_ENTRIES",
    "MAX_SCHEDULE_TUPLES",
    "MCS_ENVELOPE",
    "MCS_MAX_CURRENT_A",
    "MCS_MAX_POWER_W",
    "MCS_MAX_VOLTAGE_V",
    "Battery",
    "BatterySpec",
    "ChargerSpec",
    "DirectionEnvelope",
    "Ems",
    "EmsStep",
    "Envelope",
    "EnvelopeInverted",
    "EvRequest",
    "EvseLimits",
    "EvseLimitsLike",
    "FieldError",
    "LimitsError",
    "Meter",
    "Mode",
    "OverVoltage",
    "OverVoltageMonitor",
    "Parties",
    "PartyLimits",
    "PowerSchedule",
    "PowerStage",
    "ProfileCheck",
    "ProfileError",
    "ProfileVerdict",
    "Ramp",
    "SafeState",
    "SafeStateCause",
    "Scenario",
    "ScheduleError",
    "ScheduleTuple",
    "SeccController",
    "SeccDecision",
    "SignConvention",
    "SimResult",
    "TruckController",
    "bpt",
    "build_parties",
    "build_schedules",
    "cable_check_voltage",
    "constant",
    "emergency_over_voltage_threshold",
    "list_profiles",
    "load_charger",
    "load_scenario",
    "load_truck",
    "negotiate",
    "pair",
    "simulate",
    "validate_ev_power_profile",
]
