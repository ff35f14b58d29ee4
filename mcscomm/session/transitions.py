"""States and transition tables of the ISO 15118-20 sessions (SECC and EVCC).

Theory of operation
-------------------
Both sides are sans-IO state machines (h11/aioquic style). They never read a socket or a clock:
every call carries ``now`` and they expose the next deadline.

SECC. A state names the requests the SECC accepts next. For an accepted request the session calls
the one handler for that message (``secc_handlers.handle_<message>``); the handler builds the
response and returns an *outcome* label (``ok``, ``ongoing``, ``new``, ``resumed``, ``stop`` ...).
``SECC_TABLE[state][request][outcome]`` is the next state. A request not in the table for the
current state is answered ``FAILED_SequenceError``; any FAILED response ends the session after it is
sent (facts §4.3, libiso15118 ``send_sequence_error``). Leaving the table is therefore impossible.

EVCC. A state names the request the EVCC sends and whose response it awaits. When the response
arrives, the matching handler (``evcc.py``) reads it and returns an outcome;
``EVCC_TABLE[state][outcome]`` gives the next state and *when* its request goes out: at once, after
the poll interval (Ongoing loops, pre-charge, welding detection) or at the charge-loop cycle
(V2G_EVCC_Sequence_Performance_Time = 0.25 s, facts §5.2). Any response other than the awaited one,
or a FAILED response code, ends the session.

Sequence (facts §4.3): SAP → SessionSetup → AuthorizationSetup → [CertificateInstallation] →
Authorization (Ongoing loop) → ServiceDiscovery → ServiceDetail* → ServiceSelection →
DC_ChargeParameterDiscovery → ScheduleExchange (Ongoing loop) → DC_CableCheck (Ongoing loop) →
DC_PreCharge* → PowerDelivery(Start) → DC_ChargeLoop* (+ MeteringConfirmation on the 0x8102 side
stream) → PowerDelivery(Stop) → DC_WeldingDetection* → SessionStop. A resumed session
(OK_OldSessionJoined) jumps from SessionSetup to DC_ChargeParameterDiscovery. PowerDelivery
(ScheduleRenegotiation) goes back to ScheduleExchange and then straight to PowerDelivery(Start);
SessionStop(ServiceRenegotiation) goes back to ServiceDiscovery.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class SeccState(enum.Enum):
    """What the SECC waits for."""

    WAIT_SAP = enum.auto()
    WAIT_SESSION_SETUP = enum.auto()
    WAIT_AUTHORIZATION_SETUP = enum.auto()
    WAIT_AUTHORIZATION = enum.auto()
    WAIT_SERVICE_DISCOVERY = enum.auto()
    WAIT_SERVICE_SELECTION = enum.auto()
    WAIT_CHARGE_PARAMETER_DISCOVERY = enum.auto()
    WAIT_SCHEDULE_EXCHANGE = enum.auto()
    WAIT_CABLE_CHECK = enum.auto()
    WAIT_PRE_CHARGE = enum.auto()
    CHARGE_LOOP = enum.auto()
    WAIT_RENEGOTIATED_SCHEDULE = enum.auto()
    WAIT_POWER_DELIVERY_START = enum.auto()
    STOPPING = enum.auto()
    CLOSED = enum.auto()


class EvccState(enum.Enum):
    """Which request the EVCC sends / whose response it awaits."""

    IDLE = enum.auto()
    SAP = enum.auto()
    SESSION_SETUP = enum.auto()
    AUTHORIZATION_SETUP = enum.auto()
    CERTIFICATE_INSTALLATION = enum.auto()
    AUTHORIZATION = enum.auto()
    SERVICE_DISCOVERY = enum.auto()
    SERVICE_DETAIL = enum.auto()
    SERVICE_SELECTION = enum.auto()
    CHARGE_PARAMETER_DISCOVERY = enum.auto()
    SCHEDULE_EXCHANGE = enum.auto()
    CABLE_CHECK = enum.auto()
    PRE_CHARGE = enum.auto()
    POWER_DELIVERY_START = enum.auto()
    CHARGE_LOOP = enum.auto()
    POWER_DELIVERY_STANDBY = enum.auto()
    POWER_DELIVERY_RENEGOTIATE = enum.auto()
    RENEGOTIATED_SCHEDULE = enum.auto()
    POWER_DELIVERY_STOP = enum.auto()
    WELDING_DETECTION = enum.auto()
    SESSION_STOP = enum.auto()
    VEHICLE_CHECK_IN = enum.auto()
    VEHICLE_CHECK_OUT = enum.auto()
    CLOSED = enum.auto()


class Delay(enum.Enum):
    """When the EVCC sends the request of the state it enters."""

    NOW = enum.auto()
    POLL = enum.auto()  # Timings.evcc_poll_interval_s
    CYCLE = enum.auto()  # Timings.charge_loop_cycle_s
    NEVER = enum.auto()  # terminal


S = SeccState
_STOP_OUTCOMES = {
    "terminate": S.CLOSED,
    "pause": S.CLOSED,
    "service_renegotiation": S.WAIT_SERVICE_DISCOVERY,
}

# SECC_TABLE[state][request name][outcome] -> next state.
_SECC: dict[SeccState, dict[str, dict[str, SeccState]]] = {
    S.WAIT_SAP: {"SupportedAppProtocolReq": {"ok": S.WAIT_SESSION_SETUP, "failed": S.CLOSED}},
    S.WAIT_SESSION_SETUP: {
        "SessionSetupReq": {
            "new": S.WAIT_AUTHORIZATION_SETUP,
            "resumed": S.WAIT_CHARGE_PARAMETER_DISCOVERY,
        }
    },
    S.WAIT_AUTHORIZATION_SETUP: {
        "AuthorizationSetupReq": {"ok": S.WAIT_AUTHORIZATION},
        "VehicleCheckInReq": {"ok": S.WAIT_AUTHORIZATION_SETUP},  # optional, after SessionSetup
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.WAIT_AUTHORIZATION: {
        "AuthorizationReq": {
            "ongoing": S.WAIT_AUTHORIZATION,
            "warning": S.WAIT_AUTHORIZATION,  # not authorized; the EV may try again or stop
            "ok": S.WAIT_SERVICE_DISCOVERY,
        },
        "CertificateInstallationReq": {"ok": S.WAIT_AUTHORIZATION},
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.WAIT_SERVICE_DISCOVERY: {
        "ServiceDiscoveryReq": {"ok": S.WAIT_SERVICE_SELECTION},
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.WAIT_SERVICE_SELECTION: {
        "ServiceDetailReq": {"ok": S.WAIT_SERVICE_SELECTION},
        "ServiceSelectionReq": {"ok": S.WAIT_CHARGE_PARAMETER_DISCOVERY},
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.WAIT_CHARGE_PARAMETER_DISCOVERY: {
        "DC_ChargeParameterDiscoveryReq": {"ok": S.WAIT_SCHEDULE_EXCHANGE},
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.WAIT_SCHEDULE_EXCHANGE: {
        "ScheduleExchangeReq": {"ongoing": S.WAIT_SCHEDULE_EXCHANGE, "ok": S.WAIT_CABLE_CHECK},
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.WAIT_CABLE_CHECK: {
        "DC_CableCheckReq": {"ongoing": S.WAIT_CABLE_CHECK, "ok": S.WAIT_PRE_CHARGE}
    },
    S.WAIT_PRE_CHARGE: {
        "DC_PreChargeReq": {"ok": S.WAIT_PRE_CHARGE},
        "PowerDeliveryReq": {"start": S.CHARGE_LOOP, "stop": S.STOPPING},
    },
    S.CHARGE_LOOP: {
        "DC_ChargeLoopReq": {"ok": S.CHARGE_LOOP},
        "MeteringConfirmationReq": {"ok": S.CHARGE_LOOP},
        "PowerDeliveryReq": {
            "stop": S.STOPPING,
            "renegotiate": S.WAIT_RENEGOTIATED_SCHEDULE,
            "start": S.CHARGE_LOOP,  # channel switch Charge <-> Discharge (BPT), end of standby
            "standby": S.CHARGE_LOOP,  # ChargeProgress=Standby: the loop goes on without power
        },
    },
    S.WAIT_RENEGOTIATED_SCHEDULE: {
        "ScheduleExchangeReq": {
            "ongoing": S.WAIT_RENEGOTIATED_SCHEDULE,
            "ok": S.WAIT_POWER_DELIVERY_START,
        },
        "MeteringConfirmationReq": {"ok": S.WAIT_RENEGOTIATED_SCHEDULE},
    },
    S.WAIT_POWER_DELIVERY_START: {
        "PowerDeliveryReq": {"start": S.CHARGE_LOOP, "stop": S.STOPPING},
        "MeteringConfirmationReq": {"ok": S.WAIT_POWER_DELIVERY_START},
    },
    S.STOPPING: {
        "DC_WeldingDetectionReq": {"ok": S.STOPPING},
        "MeteringConfirmationReq": {"ok": S.STOPPING},
        "VehicleCheckOutReq": {"ok": S.STOPPING},  # optional, power delivery is over
        "SessionStopReq": _STOP_OUTCOMES,
    },
    S.CLOSED: {},
}

SECC_TABLE: Mapping[SeccState, Mapping[str, Mapping[str, SeccState]]] = MappingProxyType(
    {
        state: MappingProxyType({k: MappingProxyType(v) for k, v in row.items()})
        for state, row in _SECC.items()
    }
)

E = EvccState
D = Delay
# EVCC_TABLE[state][outcome] -> (next state, when its request is sent).
_EVCC: dict[EvccState, dict[str, tuple[EvccState, Delay]]] = {
    E.SAP: {"ok": (E.SESSION_SETUP, D.NOW)},
    E.SESSION_SETUP: {
        "new": (E.AUTHORIZATION_SETUP, D.NOW),
        "check_in": (E.VEHICLE_CHECK_IN, D.NOW),
        "resumed": (E.CHARGE_PARAMETER_DISCOVERY, D.NOW),
    },
    E.VEHICLE_CHECK_IN: {"ok": (E.AUTHORIZATION_SETUP, D.NOW)},
    E.AUTHORIZATION_SETUP: {
        "ok": (E.AUTHORIZATION, D.NOW),
        "install": (E.CERTIFICATE_INSTALLATION, D.NOW),
    },
    E.CERTIFICATE_INSTALLATION: {
        "ok": (E.AUTHORIZATION, D.NOW),
        "ongoing": (E.CERTIFICATE_INSTALLATION, D.POLL),
    },
    E.AUTHORIZATION: {
        "ok": (E.SERVICE_DISCOVERY, D.NOW),
        "ongoing": (E.AUTHORIZATION, D.POLL),
        "retry": (E.AUTHORIZATION, D.NOW),  # after a WARNING: EIM instead of PnC
        "give_up": (E.SESSION_STOP, D.NOW),  # after a WARNING: not authorized, stop cleanly
    },
    E.SERVICE_DISCOVERY: {"ok": (E.SERVICE_DETAIL, D.NOW)},
    E.SERVICE_DETAIL: {"ok": (E.SERVICE_SELECTION, D.NOW), "more": (E.SERVICE_DETAIL, D.NOW)},
    E.SERVICE_SELECTION: {"ok": (E.CHARGE_PARAMETER_DISCOVERY, D.NOW)},
    E.CHARGE_PARAMETER_DISCOVERY: {
        "ok": (E.SCHEDULE_EXCHANGE, D.NOW),
        "give_up": (E.SESSION_STOP, D.NOW),  # EVSE voltage window cannot serve the truck
    },
    E.SCHEDULE_EXCHANGE: {"ok": (E.CABLE_CHECK, D.NOW), "ongoing": (E.SCHEDULE_EXCHANGE, D.POLL)},
    E.CABLE_CHECK: {"ok": (E.PRE_CHARGE, D.NOW), "ongoing": (E.CABLE_CHECK, D.POLL)},
    E.PRE_CHARGE: {"ok": (E.POWER_DELIVERY_START, D.NOW), "ongoing": (E.PRE_CHARGE, D.POLL)},
    E.POWER_DELIVERY_START: {"ok": (E.CHARGE_LOOP, D.NOW)},
    E.CHARGE_LOOP: {
        "ok": (E.CHARGE_LOOP, D.CYCLE),
        "switch": (E.POWER_DELIVERY_START, D.NOW),
        "stop": (E.POWER_DELIVERY_STOP, D.NOW),
        "renegotiate": (E.POWER_DELIVERY_RENEGOTIATE, D.NOW),
        "standby": (E.POWER_DELIVERY_STANDBY, D.NOW),
    },
    E.POWER_DELIVERY_STANDBY: {"ok": (E.CHARGE_LOOP, D.CYCLE)},
    E.POWER_DELIVERY_RENEGOTIATE: {"ok": (E.RENEGOTIATED_SCHEDULE, D.NOW)},
    E.RENEGOTIATED_SCHEDULE: {
        "ok": (E.POWER_DELIVERY_START, D.NOW),
        "ongoing": (E.RENEGOTIATED_SCHEDULE, D.POLL),
    },
    E.POWER_DELIVERY_STOP: {
        "ok": (E.WELDING_DETECTION, D.NOW),
        "skip_welding": (E.SESSION_STOP, D.NOW),
        "check_out": (E.VEHICLE_CHECK_OUT, D.NOW),
    },
    E.WELDING_DETECTION: {
        "ok": (E.SESSION_STOP, D.NOW),
        "ongoing": (E.WELDING_DETECTION, D.POLL),
        "check_out": (E.VEHICLE_CHECK_OUT, D.NOW),
    },
    E.VEHICLE_CHECK_OUT: {"ok": (E.SESSION_STOP, D.NOW)},
    E.SESSION_STOP: {
        "ok": (E.CLOSED, D.NEVER),
        "service_renegotiation": (E.SERVICE_DISCOVERY, D.NOW),
    },
    E.IDLE: {},
    E.CLOSED: {},
}

EVCC_TABLE: Mapping[EvccState, Mapping[str, tuple[EvccState, Delay]]] = MappingProxyType(
    {state: MappingProxyType(row) for state, row in _EVCC.items()}
)

# The request each EVCC state sends and the response it expects.
EVCC_REQUEST: Mapping[EvccState, str] = MappingProxyType(
    {
        E.SAP: "SupportedAppProtocolReq",
        E.SESSION_SETUP: "SessionSetupReq",
        E.AUTHORIZATION_SETUP: "AuthorizationSetupReq",
        E.CERTIFICATE_INSTALLATION: "CertificateInstallationReq",
        E.AUTHORIZATION: "AuthorizationReq",
        E.SERVICE_DISCOVERY: "ServiceDiscoveryReq",
        E.SERVICE_DETAIL: "ServiceDetailReq",
        E.SERVICE_SELECTION: "ServiceSelectionReq",
        E.CHARGE_PARAMETER_DISCOVERY: "DC_ChargeParameterDiscoveryReq",
        E.SCHEDULE_EXCHANGE: "ScheduleExchangeReq",
        E.CABLE_CHECK: "DC_CableCheckReq",
        E.PRE_CHARGE: "DC_PreChargeReq",
        E.POWER_DELIVERY_START: "PowerDeliveryReq",
        E.CHARGE_LOOP: "DC_ChargeLoopReq",
        E.POWER_DELIVERY_STANDBY: "PowerDeliveryReq",
        E.POWER_DELIVERY_RENEGOTIATE: "PowerDeliveryReq",
        E.RENEGOTIATED_SCHEDULE: "ScheduleExchangeReq",
        E.POWER_DELIVERY_STOP: "PowerDeliveryReq",
        E.WELDING_DETECTION: "DC_WeldingDetectionReq",
        E.SESSION_STOP: "SessionStopReq",
        E.VEHICLE_CHECK_IN: "VehicleCheckInReq",
        E.VEHICLE_CHECK_OUT: "VehicleCheckOutReq",
    }
)


def response_name(request_name: str) -> str:
    """``XxxReq`` -> ``XxxRes`` (the -20 naming rule)."""
    if not request_name.endswith("Req"):
        raise ValueError(f"not a request name: {request_name}")
    return request_name[:-3] + "Res"
