"""Events the sans-IO sessions hand to the application (aioquic style: one ``events.py`` per layer).

Every event is a frozen dataclass carrying ``t`` (the session's ``now`` when it happened, seconds)
and validates itself on construction. The endpoint layer turns them into trace lines (JSON Lines,
keys documented in docs/session.md) and the human log; conformance and fuzz oracles read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EVCC_TO_SECC = "evcc->secc"
SECC_TO_EVCC = "secc->evcc"
_DIRECTIONS = (EVCC_TO_SECC, SECC_TO_EVCC)


def _check_t(t: float) -> None:
    if not math.isfinite(t):
        raise ValueError(f"event time must be finite, got {t!r}")


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Base class of everything ``next_event()`` returns."""

    t: float

    def __post_init__(self) -> None:
        _check_t(self.t)


@dataclass(frozen=True, slots=True)
class _MessageEvent(SessionEvent):
    direction: str
    payload_type: int
    message: str
    document: bytes

    def __post_init__(self) -> None:
        _check_t(self.t)
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {self.direction!r}")
        if not 0 <= self.payload_type <= 0xFFFF:
            raise ValueError(f"payload_type out of range: {self.payload_type}")


@dataclass(frozen=True, slots=True)
class MessageSent(_MessageEvent):
    """A message this side encoded and queued (``document`` is the encoded payload)."""


@dataclass(frozen=True, slots=True)
class MessageReceived(_MessageEvent):
    """A message this side received and decoded (``document`` is the payload as received)."""


@dataclass(frozen=True, slots=True)
class StateChanged(SessionEvent):
    """The state machine moved from ``old`` to ``new`` (state enum names)."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class SessionEstablished(SessionEvent):
    """SessionSetup succeeded; ``resumed`` when an old (paused) session was joined."""

    session_id: str  # hex
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class SessionPaused(SessionEvent):
    """SessionStop(Pause) completed; the session id may be used to resume later."""

    session_id: str


@dataclass(frozen=True, slots=True)
class SessionResumed(SessionEvent):
    """A paused session was joined again (OK_OldSessionJoined)."""

    session_id: str


@dataclass(frozen=True, slots=True)
class ServiceSelected(SessionEvent):
    """ServiceSelection agreed on an energy service and parameter set."""

    service: str
    parameter_set_id: int
    control_mode: str


@dataclass(frozen=True, slots=True)
class PowerSample(SessionEvent):
    """What flowed in one charge-loop cycle (SECC view). ``power_w`` > 0 charging, < 0 discharging.

    ``binding_limit`` names the limit that bound this step (power layer's wording) or is empty.
    The optional fields let plots draw the envelope and the backend setpoint.
    """

    voltage_v: float
    current_a: float
    power_w: float
    soc: float | None
    binding_limit: str
    setpoint_w: float | None = None
    max_charge_power_w: float | None = None
    max_discharge_power_w: float | None = None

    def __post_init__(self) -> None:
        _check_t(self.t)
        for name in ("voltage_v", "current_a", "power_w"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"PowerSample.{name} must be finite")
        if self.soc is not None and not 0.0 <= self.soc <= 100.0:
            raise ValueError(f"PowerSample.soc must be within 0..100, got {self.soc}")


@dataclass(frozen=True, slots=True)
class BackendSetpointChanged(SessionEvent):
    """The SECC's backend setpoint changed (W, > 0 charge, < 0 discharge)."""

    setpoint_w: float


@dataclass(frozen=True, slots=True)
class Notification(SessionEvent):
    """An EVSENotification was sent (SECC) or received (EVCC): Pause, Terminate, ..."""

    notification: str


@dataclass(frozen=True, slots=True)
class MeteringConfirmed(SessionEvent):
    """A signed MeteringConfirmation round completed on the 0x8102 side stream."""

    charged_wh: int
    discharged_wh: int | None


@dataclass(frozen=True, slots=True)
class TimeoutOccurred(SessionEvent):
    """A deadline passed: ``timer`` names it (e.g. ``V2G_SECC_Sequence_Timeout``)."""

    timer: str
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolError(SessionEvent):
    """The peer sent something wrong (``kind``) and was answered with ``response_code`` (or not)."""

    kind: str
    detail: str
    response_code: str | None = None


@dataclass(frozen=True, slots=True)
class SafeStateReached(SessionEvent):
    """Current ramped to zero and contactors open after ``reason`` (loss, timeout, emergency)."""

    reason: str
    current_a: float = 0.0


@dataclass(frozen=True, slots=True)
class SessionSummary(SessionEvent):
    """Counters for the end-of-session summary line."""

    energy_charged_wh: float
    energy_discharged_wh: float
    peak_charge_power_w: float
    peak_discharge_power_w: float
    duration_s: float
    charge_loop_cycles: int
    final_soc: float | None = None


RESULT_SUCCESS = "success"
RESULT_PAUSED = "paused"
RESULT_FAILED = "failed"
_RESULTS = (RESULT_SUCCESS, RESULT_PAUSED, RESULT_FAILED)


@dataclass(frozen=True, slots=True)
class SessionEnded(SessionEvent):
    """The last event of a connection: ``result`` is success, paused or failed, with a reason."""

    result: str
    reason: str

    def __post_init__(self) -> None:
        _check_t(self.t)
        if self.result not in _RESULTS:
            raise ValueError(f"result must be one of {_RESULTS}, got {self.result!r}")
