"""The SECC (charger) side of an ISO 15118-20 session, sans-IO.

``SeccSession`` takes decoded requests with ``now`` and produces responses (with the payload type
they travel on), events and one deadline. The transitions are the data in ``transitions.py``; each
request type has one handler in ``secc_handlers.py``. Bytes, framing and the codec are the job of
``SeccConnection`` (``connection.py``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from mcscomm.messages.enums import EvseNotification, ResponseCode
from mcscomm.session import secc_handlers as handlers
from mcscomm.session.config import SeccConfig
from mcscomm.session.context import SeccContext
from mcscomm.session.errors import SequenceError, SessionError, UnknownSession, WrongPayloadType
from mcscomm.session.events import (
    RESULT_FAILED,
    RESULT_PAUSED,
    RESULT_SUCCESS,
    BackendSetpointChanged,
    Notification,
    ProtocolError,
    SafeStateReached,
    SessionEnded,
    SessionEvent,
    SessionSummary,
    StateChanged,
    TimeoutOccurred,
)
from mcscomm.session.power_adapter import SeccPower
from mcscomm.session.responses import failed_response
from mcscomm.session.signing import SignaturePort
from mcscomm.session.streams import carries, response_payload_type
from mcscomm.session.transitions import SECC_TABLE, SeccState, response_name

# States in which power may flow: a timeout there must bring the power stage to its safe state.
_POWER_STATES = frozenset(
    {
        SeccState.WAIT_PRE_CHARGE,
        SeccState.CHARGE_LOOP,
        SeccState.WAIT_RENEGOTIATED_SCHEDULE,
        SeccState.WAIT_POWER_DELIVERY_START,
        SeccState.STOPPING,
    }
)
# Requests that carry no session id of ours yet.
_NO_SESSION_CHECK = frozenset({"SupportedAppProtocolReq", "SessionSetupReq"})


class InjectedCrash(RuntimeError):
    """Raised on purpose by ``SeccFaults.crash_on`` (a planted bug for fuzz self-tests)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send on ``payload_type``, not before ``release_at``."""

    payload_type: int
    message: Any
    release_at: float


class SeccSession:
    """SECC state machine. Feed requests with :meth:`receive`; drain :meth:`outgoing` and
    :meth:`next_event`; call :meth:`handle_timer` when :meth:`get_timer` expires."""

    def __init__(
        self,
        config: SeccConfig,
        *,
        now: float = 0.0,
        tls: bool = True,
        power: SeccPower | None = None,
        signatures: SignaturePort | None = None,
        peer_cert_der: bytes | None = None,
    ) -> None:
        self.config = config
        if power is None:
            if config.charger is None:
                raise ValueError("SeccConfig.charger is required (a power-layer ChargerSpec)")
            power = SeccPower(config.charger, config.scenario, start=now)
        self.power = power
        self.ctx = SeccContext(config=config, power=power, tls=tls, signatures=signatures, now=now)
        if peer_cert_der is not None:
            self.ctx.peer_cert_hash = hashlib.sha256(peer_cert_der).digest()
        self.state = SeccState.WAIT_SAP
        self.started_at = now
        self._out: deque[Outgoing] = deque()
        self._events: deque[SessionEvent] = deque()
        self._ended = False
        self.close_reason: str | None = None
        t = config.timings
        # V2G_SECC_CommunicationSetup_Performance_Time (facts §5.3): SessionSetup must be done
        # within 18 s of the connection.
        self._deadline: float | None = now + t.secc_communication_setup_s
        self._deadline_name = "V2G_SECC_CommunicationSetup_Performance_Time"

    # -- public API ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the session ended and every response has been handed out."""
        return self._ended and not self._out

    @property
    def ended(self) -> bool:
        """True once the session ended (responses may still be pending)."""
        return self._ended

    def outgoing(self, now: float) -> list[Outgoing]:
        """Pop the messages due at ``now`` (a delayed answer stays queued until its time)."""
        due: list[Outgoing] = []
        while self._out and self._out[0].release_at <= now:
            due.append(self._out.popleft())
        return due

    def next_event(self) -> SessionEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline: a delayed answer, a notification, or a timeout."""
        times = [self._out[0].release_at] if self._out else []
        if not self._ended:
            if self._deadline is not None:
                times.append(self._deadline)
            notify_at = self._next_scripted_notification()
            if notify_at is not None:
                times.append(notify_at)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Fire every deadline that has passed."""
        self.ctx.now = now
        if self._ended:
            return
        self._poll_notifications(now)
        if self._deadline is not None and now >= self._deadline:
            if self.config.faults.ignore_timeouts:
                self._deadline = None
                return
            name = self._deadline_name
            self._emit(TimeoutOccurred(t=now, timer=name, state=self.state.name))
            self._end(now, RESULT_FAILED, f"timeout: {name} in {self.state.name}")

    def receive(self, message: Any, payload_type: int, now: float) -> None:
        """Handle one decoded request."""
        self.ctx.now = now
        if self._ended:
            return
        self._poll_notifications(now)
        name = type(message).__name__
        faults = self.config.faults
        if faults.hang_in is not None and faults.hang_in == self.state.name:
            return  # planted bug: never answer in this state
        if faults.crash_on is not None and faults.crash_on == name:
            raise InjectedCrash(f"injected crash on {name}")
        if not carries(payload_type, type(message)):
            # the codec only decodes a root on a payload type that carries it; this guards
            # callers that hand decoded messages in directly (streams.py has the policy)
            detail = f"{name} on payload type 0x{payload_type:04X}"
            self._fail(name, payload_type, WrongPayloadType(detail), now)
            return
        try:
            response, outcome, next_state = self._dispatch(message, name, now)
        except SessionError as exc:
            self._fail(name, payload_type, exc, now)
            return
        except Exception as exc:  # a bug in a handler: answer FAILED, never let it escape
            self._fail(name, payload_type, _Internal(f"{type(exc).__name__}: {exc}"), now)
            return
        self._flush_handler_events()
        self._send(response, payload_type, now)
        self._transition(next_state, now)
        code = getattr(response, "response_code", None)
        if isinstance(code, ResponseCode) and code.is_failed:
            self._end(now, RESULT_FAILED, f"{name} answered {code.value}")
            return
        if next_state is SeccState.CLOSED and outcome == "failed":
            self._end(now, RESULT_FAILED, f"{name}: no common protocol")
            return
        if next_state is SeccState.CLOSED:
            stop = self.ctx.stop_kind
            result = RESULT_PAUSED if stop == "pause" else RESULT_SUCCESS
            reason = f"SessionStop({(stop or 'terminate').capitalize()})"
            if self.ctx.authorization_warnings and not self.ctx.authorized:
                # the EV gave up after authorization warnings: a clean end, but no charging
                result, reason = RESULT_FAILED, f"{reason} after a refused authorization"
            self._end(now, result, reason)
            return
        self._arm_sequence_timer(name, outcome, now)

    def fail(
        self, message_name: str | None, payload_type: int, error: SessionError, now: float
    ) -> None:
        """Answer an undecodable/invalid request (from the connection) and end the session.

        ``message_name`` is the request type when it could be determined (then the matching
        response carries ``error.response_code``, on the response's own payload type when
        ``payload_type`` does not carry it), else None (the session just ends).
        """
        self.ctx.now = now
        if self._ended:
            return
        self._fail(message_name, payload_type, error, now)

    def abort(self, reason: str, now: float) -> None:
        """The transport is gone (communication loss): safe state, end without answering."""
        self.ctx.now = now
        if not self._ended:
            self._end(now, RESULT_FAILED, reason)

    def set_backend(self, setpoint_w: float, now: float, **caps: float) -> None:
        """Backend setpoint (W, > 0 charge, < 0 discharge) and optional caps from ``now`` on
        (keywords of :meth:`SeccPower.set_backend`)."""
        self.power.set_backend(setpoint_w, now, **caps)
        self._emit(BackendSetpointChanged(t=now, setpoint_w=setpoint_w))

    def notify(self, notification: EvseNotification) -> None:
        """Queue an EVSENotification for the next DC_ChargeLoopRes (Pause, Terminate, ...)."""
        self.ctx.pending_notification = notification

    # -- internals -------------------------------------------------------------------------------
    def _dispatch(self, message: Any, name: str, now: float) -> tuple[Any, str, SeccState]:
        row = SECC_TABLE[self.state]
        outcomes = row.get(name)
        if outcomes is None:
            if not self.config.faults.accept_out_of_order or name not in handlers.HANDLERS:
                raise SequenceError(f"{name} not allowed in {self.state.name}")
            # planted bug: serve it anyway, in the first state that accepts it
            outcomes = next(r[name] for r in SECC_TABLE.values() if name in r)
        if name not in _NO_SESSION_CHECK:
            sid = message.header.session_id
            if sid != self.ctx.session_id:
                raise UnknownSession(f"SessionID {sid.hex()} is not {self.ctx.session_id.hex()}")
        handler = handlers.HANDLERS[name]
        response, outcome = handler(message, self.ctx)
        if outcome not in outcomes:
            # e.g. PowerDeliveryReq(Standby) while waiting for PowerDelivery(Start)
            raise SequenceError(f"{name} ({outcome}) not allowed in {self.state.name}")
        return response, outcome, outcomes[outcome]

    def _fail(self, name: str | None, payload_type: int, exc: SessionError, now: float) -> None:
        self._flush_handler_events()
        code = exc.response_code
        self._emit(ProtocolError(t=now, kind=exc.kind, detail=exc.detail, response_code=code))
        if name is not None and name.endswith("Req") and code is not None:
            res_name = response_name(name)
            session_id = self.ctx.session_id
            response = failed_response(res_name, ResponseCode(code), session_id, now)
            if response is not None:
                self._send(response, payload_type, now)
        self._end(now, RESULT_FAILED, f"{exc.kind}: {exc.detail}")

    def _send(self, response: Any, request_payload_type: int, now: float) -> None:
        # on the request's stream when it carries the response, else on the response's own
        # payload type: a request on the wrong stream must not make us answer there (facts §1.2)
        payload_type = response_payload_type(response, request_payload_type)
        delay = self.config.faults.answer_delay_s
        self._out.append(Outgoing(payload_type, response, now + delay))

    def _transition(self, new: SeccState, now: float) -> None:
        if new is not self.state:
            self._emit(StateChanged(t=now, old=self.state.name, new=new.name))
            self.state = new

    def _arm_sequence_timer(self, request_name: str, outcome: str, now: float) -> None:
        if request_name == "SupportedAppProtocolReq":
            return  # the communication-setup deadline runs on until SessionSetup
        t = self.config.timings
        res = response_name(request_name)
        self._deadline = now + t.secc_sequence_timeout(res)
        self._deadline_name = (
            "V2G_SECC_Sequence_Timeout(DC_ChargeLoop)"
            if res == "DC_ChargeLoopRes"
            else "V2G_SECC_Sequence_Timeout"
        )

    def _end(self, now: float, result: str, reason: str) -> None:
        if self._ended:
            return
        ctx = self.ctx
        powered = self.state in _POWER_STATES or ctx.charge_loop_started is not None
        if powered and result == RESULT_FAILED:
            # issue 4 §3: ramp to zero within the charger's bounded time, then open contactors
            t_zero, current = ctx.power.safe_state(now, reason)
            self._emit(SafeStateReached(t=t_zero, reason=reason, current_a=current))
        c = ctx.counters
        self._emit(
            SessionSummary(
                t=now,
                energy_charged_wh=c.energy_charged_wh,
                energy_discharged_wh=c.energy_discharged_wh,
                peak_charge_power_w=c.peak_charge_power_w,
                peak_discharge_power_w=c.peak_discharge_power_w,
                duration_s=now - self.started_at,
                charge_loop_cycles=c.charge_loop_cycles,
                final_soc=c.soc,
            )
        )
        self._transition(SeccState.CLOSED, now)
        self._emit(SessionEnded(t=now, result=result, reason=reason))
        self._ended = True
        self._deadline = None
        self.close_reason = reason

    def _emit(self, event: SessionEvent) -> None:
        self._events.append(event)

    def _flush_handler_events(self) -> None:
        self._events.extend(self.ctx.events)
        self.ctx.events.clear()

    def _next_scripted_notification(self) -> float | None:
        ctx = self.ctx
        script = self.config.notifications
        if ctx.charge_loop_started is None or ctx.notifications_done >= len(script):
            return None
        return ctx.charge_loop_started + script[ctx.notifications_done][0]

    def _poll_notifications(self, now: float) -> None:
        at = self._next_scripted_notification()
        while at is not None and now >= at:
            kind = self.config.notifications[self.ctx.notifications_done][1]
            self.ctx.notifications_done += 1
            self.notify(kind)
            self._emit(Notification(t=now, notification=kind.value))
            at = self._next_scripted_notification()


class _Internal(SessionError):
    """A defect in our own handler: answered FAILED and reported, never raised to the caller."""

    response_code = "FAILED"
    kind = "internal_error"
