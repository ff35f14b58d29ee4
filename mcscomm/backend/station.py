"""The SECC as an OCPP 2.1 charging station: the CSMS link, transactions and backend steering.

Theory of operation. :class:`ChargingStation` keeps one WebSocket to the CSMS (subprotocol
``ocpp2.1``, or ``ocpp2.0.1`` when that is all the CSMS speaks), reconnecting with exponential
backoff. Each live -20 session occupies one EVSE (:class:`EvseHandle`): its adapter feeds
:class:`~mcscomm.backend.port.SessionSnapshot` updates in, and the station turns them into OCPP
(StatusNotification, TransactionEvent Started/Updated/Ended with meter values,
NotifyEVChargingNeeds, NotifyEVChargingSchedule). The CSMS steers through charging profiles; after
every change the station computes the composite schedule for the EVSE and plays it as a backend
plan in the power layer (:meth:`SessionControl.apply_plan`), which keeps every other limit (charger,
cable, grid, MCS envelope, truck) in force; with Scheduled control it also asks the truck for a
schedule renegotiation.

Transaction events go through :class:`~mcscomm.backend.queue.TxEventQueue`: one sender sends the
head and pops it only once acknowledged, so an outage loses and reorders nothing.

CSMS outage policy (``StationConfig.offline_policy``):
* ``hold`` (default): keep the last profiles -- the last limits the CSMS gave, which are safe by
  construction -- for ``offline_hold_s`` (a profile's own ``maxOfflineDuration`` with
  ``invalidAfterOfflineDuration`` drops it earlier); after that, the fallback below;
* ``fallback``: at once, charge only (no V2G without a backend watching the grid) at no more than
  ``fallback_limit_w``.
Reconnecting restores the profiles' plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from ocpp.exceptions import OCPPError
from ocpp.v21 import ChargePoint as _OcppChargePoint
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from mcscomm import __version__
from mcscomm.backend import mapping
from mcscomm.backend._ocpp import on, validate_inline, wire_logger
from mcscomm.backend.errors import CsmsUnavailable, ProfileMalformed, ProfileRejected
from mcscomm.backend.port import SessionControl, SessionSnapshot
from mcscomm.backend.profiles import (
    ChargingProfile,
    EvseCaps,
    Kind,
    ProfileStore,
    Purpose,
    apply_dynamic_update,
    check_honourable,
    format_time,
    key,
    parse_profile,
)
from mcscomm.backend.queue import QueuedEvent, TxEventQueue
from mcscomm.power.ems import Scenario
from mcscomm.power.limits import INF, PartyLimits

_log = logging.getLogger("mcscomm.backend")

_OCPP_ERRORS: dict[str, type[OCPPError]] = {
    cls.code: cls for cls in OCPPError.__subclasses__() if hasattr(cls, "code")
}


class OfflinePolicy(StrEnum):
    """What the station does with backend steering while the CSMS is unreachable."""

    HOLD = "hold"
    FALLBACK = "fallback"


@dataclass(slots=True)
class StationConfig:
    """Configuration of one charging station (see the module docstring for the policies).

    ``url`` is ``ws://HOST:PORT/PATH/STATION_ID``; the last path segment is the station id
    (OCPP-J §3.1). ``charger_limits`` are the EVSE-side ratings used to reject setpoints nobody
    could deliver; ``heartbeat_s`` overrides the CSMS's interval (tests).
    """

    url: str
    vendor: str = "mcscomm"
    model: str = "MCS-SECC"
    serial_number: str | None = None
    evse_count: int = 1
    charger_limits: PartyLimits | None = None
    heartbeat_s: float | None = None
    meter_interval_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    response_timeout_s: float = 10.0
    offline_policy: OfflinePolicy = OfflinePolicy.HOLD
    offline_hold_s: float = 600.0
    fallback_limit_w: float = INF
    offline_authorize: bool = True
    eim_id_token: str = "MCSCOMM-EIM"
    horizon_s: float = 86_400.0
    protocols: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1")
    clock: Callable[[], float] = time.time

    @property
    def station_id(self) -> str:
        path = urlparse(self.url).path.rstrip("/")
        sid = path.rsplit("/", 1)[-1]
        if not sid:
            raise ValueError(f"no station id in CSMS URL {self.url!r} (ws://HOST:PORT/ID)")
        return sid


@dataclass(slots=True)
class Transaction:
    """An OCPP transaction on one EVSE."""

    id: str
    started_at: float
    remote_start_id: int | None = None
    id_token: dict[str, Any] | None = None
    charging_state: str = "EVConnected"
    stop_reason: str | None = None
    last_meter_at: float = 0.0
    operation_mode: str | None = None
    authorized_sent: bool = False


@dataclass(slots=True)
class _RemoteStart:
    id_token: dict[str, Any]
    remote_start_id: int
    profile: dict[str, Any] | None


@dataclass(slots=True)
class EvseHandle:
    """One EVSE and the session on it; the session adapter calls :meth:`update` / :meth:`close`."""

    station: ChargingStation
    id: int
    control: SessionControl | None = None
    snapshot: SessionSnapshot | None = None
    tx: Transaction | None = None
    status: str = "Available"
    needs_sent: bool = False
    needs_complete: bool = False
    schedule_sent: tuple[tuple[float, float], ...] | None = None
    remote: _RemoteStart | None = None
    plan: Scenario | None = None
    scheduled_key: tuple[Any, ...] | None = None

    @property
    def busy(self) -> bool:
        return self.control is not None

    def update(self, snapshot: SessionSnapshot) -> None:
        """A fresh view of the session (call after anything changed; cheap, never blocks)."""
        self.station._on_snapshot(self, snapshot)

    def close(self, reason: str, *, by_ev: bool = True) -> None:
        """The session ended (``by_ev``: the truck stopped, else a fault or a lost link)."""
        self.station._on_session_end(self, reason, by_ev)

    def decide(self, auth: str, emaid: str | None, now: float) -> bool | None:
        """The -20 Authorizer hook for this EVSE (see :meth:`ChargingStation.authorize`)."""
        return self.station.authorize(auth, emaid, evse=self)


class ChargingStation:
    """An OCPP 2.1 charging station client (see the module docstring)."""

    def __init__(self, config: StationConfig) -> None:
        validate_inline()
        self.config = config
        self.id = config.station_id
        self.profiles = ProfileStore()
        self.queue = TxEventQueue()
        self.evses = [EvseHandle(self, k + 1) for k in range(config.evse_count)]
        self.online = False
        self.boot_accepted = False
        self.protocol: str | None = None
        self.connects = 0
        self.offline_since: float | None = config.clock()
        self.heartbeat_s = config.heartbeat_s or 60.0
        self._client: _Client | None = None
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._online_event = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._auth: dict[str, bool | None] = {}
        self._fallback_active = False
        self._closing = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start connecting (returns at once; the link comes up in the background)."""
        self._task = asyncio.create_task(self._run(), name=f"ocpp-{self.id}")
        self._ticker = asyncio.create_task(self._tick_loop(), name=f"ocpp-tick-{self.id}")

    async def wait_online(self, within: float | None = None) -> bool:
        """Wait until booted at the CSMS; False when ``within`` seconds passed first."""
        try:
            await asyncio.wait_for(self._online_event.wait(), within)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop: cancel the link and the timers (queued events are kept in memory)."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            # a proper close frame (1000), not the 1011 a cancelled reader would leave
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        for t in [self._task, self._ticker, *self._tasks]:
            if t is not None:
                t.cancel()
        for t in [self._task, self._ticker, *self._tasks]:
            if t is not None:
                with contextlib.suppress(BaseException):
                    await t

    async def drain(self, within: float = 5.0) -> bool:
        """Wait until every queued transaction event was acknowledged (True) or ``within`` s."""
        if not len(self.queue):
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), within)
        return not len(self.queue)

    # -- sessions ------------------------------------------------------------------------------
    def open_session(self, control: SessionControl, evse_id: int | None = None) -> EvseHandle:
        """A -20 session started: occupy an EVSE (the given one, else the first free one)."""
        free = [e for e in self.evses if not e.busy and (evse_id is None or e.id == evse_id)]
        if not free:
            raise CsmsUnavailable(f"station {self.id}: no free EVSE for a new session")
        evse = free[0]
        evse.control = control
        evse.snapshot = None
        evse.needs_sent = False
        evse.needs_complete = False
        evse.schedule_sent = None
        evse.plan = None
        evse.scheduled_key = None
        self._set_status(evse, "Occupied")
        return evse

    def authorize(
        self, auth: str, emaid: str | None, *, evse: EvseHandle | None = None
    ) -> bool | None:
        """Authorization of a -20 session: True/False, or None while the CSMS is being asked.

        A pending RequestStartTransaction authorizes the next session at once; PnC asks the CSMS
        with the contract's EMAID (idToken type eMAID), EIM with ``eim_id_token`` (type Local).
        Offline: ``offline_authorize`` (OCPP LocalAuthorizeOffline).
        """
        if evse is not None:
            if evse.remote is not None or (
                evse.tx is not None and evse.tx.remote_start_id is not None
            ):
                return True
        elif any(e.remote is not None for e in self.evses):
            return True
        token = self._id_token(auth, emaid)
        k = f"{0 if evse is None else evse.id}:{token['type']}:{token['id_token']}"
        if k in self._auth:
            result = self._auth[k]
            if result is not None:
                del self._auth[k]  # ask again for the next session
            return result
        if not self.online:
            return self.config.offline_authorize
        self._auth[k] = None
        self._spawn(self._authorize(k, token, evse))
        return None

    def _id_token(self, auth: str, emaid: str | None) -> dict[str, Any]:
        if auth.lower() == "pnc" and emaid:
            return {"id_token": emaid[:255], "type": "eMAID"}
        return {"id_token": self.config.eim_id_token, "type": "Local"}

    async def _authorize(self, k: str, token: dict[str, Any], evse: EvseHandle | None) -> None:
        res = await self._call(call.Authorize(id_token=token))
        if res is None:
            self._auth[k] = self.config.offline_authorize
            return
        status = key(res.id_token_info or {}, "status")
        self._auth[k] = status == "Accepted"
        if evse is not None and evse.tx is not None and evse.tx.id_token is None and self._auth[k]:
            evse.tx.id_token = token

    # -- snapshots -> OCPP -------------------------------------------------------------------------
    def _on_snapshot(self, evse: EvseHandle, s: SessionSnapshot) -> None:
        now = self.config.clock()
        first = evse.snapshot is None
        evse.snapshot = s
        if first:
            self._start_transaction(evse, now)
        tx = evse.tx
        if tx is None:
            return
        if s.authorized and not tx.authorized_sent:
            tx.authorized_sent = True
            if tx.id_token is None:
                tx.id_token = self._id_token(s.auth or "EIM", s.id_token)
            self._tx_event(evse, "Updated", "Authorized", now, id_token=tx.id_token)
        if not evse.needs_sent and s.ev_limits is not None and s.service is not None:
            evse.needs_sent = True
            evse.needs_complete = s.target_energy_wh is not None and s.soc is not None
            self._spawn(self._notify_needs(evse))
            self._replan(evse)
        elif evse.needs_sent and not evse.needs_complete and s.target_energy_wh is not None:
            # The -20 energy requests and SoC arrive after ChargeParameterDiscovery (with
            # ScheduleExchange / the first charge loop): tell the CSMS once they are known.
            evse.needs_complete = True
            self._spawn(self._notify_needs(evse))
        if s.ev_power_profile and s.ev_power_profile != evse.schedule_sent:
            evse.schedule_sent = s.ev_power_profile
            self._spawn(self._notify_schedule(evse, s.ev_power_profile))
        state = self._charging_state(s)
        if state != tx.charging_state:
            tx.charging_state = state
            self._tx_event(evse, "Updated", "ChargingStateChanged", now, meter="Sample.Periodic")
        if s.in_charge_loop and now - tx.last_meter_at >= self.config.meter_interval_s:
            self._tx_event(evse, "Updated", "MeterValuePeriodic", now, meter="Sample.Periodic")

    @staticmethod
    def _charging_state(s: SessionSnapshot) -> str:
        if not s.in_charge_loop:
            return "EVConnected"
        if abs(s.power_w) >= 1000.0:
            return "Charging"
        return "SuspendedEVSE" if s.setpoint_w == 0.0 else "SuspendedEV"

    def _start_transaction(self, evse: EvseHandle, now: float) -> None:
        tx = Transaction(str(uuid.uuid4()), now, last_meter_at=now)
        trigger = "CablePluggedIn"
        if evse.remote is not None:
            tx.remote_start_id = evse.remote.remote_start_id
            tx.id_token = evse.remote.id_token
            trigger = "RemoteStart"
        evse.tx = tx
        self._tx_event(
            evse, "Started", trigger, now, meter="Transaction.Begin", id_token=tx.id_token
        )
        if evse.remote is not None:
            if tx.id_token is not None:
                tx.authorized_sent = True
            if evse.remote.profile is not None:
                with contextlib.suppress(ProfileMalformed, ProfileRejected):
                    self._install(evse.id, evse.remote.profile, tx_id=tx.id)
            evse.remote = None
        self._replan(evse)

    def _on_session_end(self, evse: EvseHandle, reason: str, by_ev: bool) -> None:
        now = self.config.clock()
        tx = evse.tx
        s = evse.snapshot
        if tx is not None:
            if tx.stop_reason is None:
                if (
                    s is not None
                    and s.soc is not None
                    and s.target_soc is not None
                    and (s.soc >= s.target_soc - 0.5)
                ):
                    tx.stop_reason = "SOCLimitReached"
                elif by_ev:
                    tx.stop_reason = "StoppedByEV"
                else:
                    tx.stop_reason = "EVDisconnected"
            trigger = {
                "Remote": "RemoteStop",
                "SOCLimitReached": "SoCLimitReached",
                "StoppedByEV": "EVDeparted",
                "EVDisconnected": "EVCommunicationLost",
            }.get(tx.stop_reason, "AbnormalCondition")
            tx.charging_state = "EVConnected" if s is None or not s.in_charge_loop else "Idle"
            self._tx_event(evse, "Ended", trigger, now, meter="Transaction.End")
            self.profiles.end_transaction(tx.id, evse.id)
            _log.info(
                "%s EVSE %d: transaction %s ended (%s; %s)",
                self.id,
                evse.id,
                tx.id,
                tx.stop_reason,
                reason,
            )
        evse.tx = None
        evse.control = None
        self._set_status(evse, "Available")

    def _tx_event(
        self,
        evse: EvseHandle,
        event_type: str,
        trigger: str,
        now: float,
        *,
        meter: str | None = None,
        id_token: dict[str, Any] | None = None,
    ) -> QueuedEvent | None:
        tx = evse.tx
        if tx is None:
            return None
        info: dict[str, Any] = {"transaction_id": tx.id, "charging_state": tx.charging_state}
        if tx.remote_start_id is not None and event_type == "Started":
            info["remote_start_id"] = tx.remote_start_id
        if event_type == "Ended" and tx.stop_reason:
            info["stopped_reason"] = tx.stop_reason
        if tx.operation_mode is not None and self.protocol != "ocpp2.0.1":
            info["operation_mode"] = tx.operation_mode
        payload: dict[str, Any] = {
            "event_type": event_type,
            "timestamp": format_time(now),
            "trigger_reason": trigger,
            "transaction_info": info,
            "evse": {"id": evse.id, "connector_id": 1},
            "offline": not self.online or None,
        }
        if id_token is not None:
            payload["id_token"] = id_token
        s = evse.snapshot
        if meter is not None and s is not None:
            payload["meter_value"] = [
                {"timestamp": format_time(now), "sampled_value": mapping.sampled_values(s, meter)}
            ]
            tx.last_meter_at = now
        ev = self.queue.push(tx.id, event_type, payload, now)
        self._drained.clear()
        self._wake.set()
        return ev

    async def _notify_needs(self, evse: EvseHandle) -> None:
        s = evse.snapshot
        if s is None:
            return
        dep = None if s.departure_s is None else self.config.clock() + s.departure_s
        needs = mapping.charging_needs(s, dep)
        v201 = self.protocol == "ocpp2.0.1"
        if v201:
            needs.pop("v2x_charging_parameters", None)
            needs.pop("control_mode", None)
            needs.pop("mobility_needs_mode", None)
            needs.pop("available_energy_transfer", None)
            if needs.get("requested_energy_transfer") == "DC_BPT":
                needs["requested_energy_transfer"] = "DC"
            dc = needs.get("dc_charging_parameters", {})
            for k, v in dc.items():  # 2.0.1 has integers where 2.1 has numbers
                dc[k] = round(v)
        res = await self._call(
            call.NotifyEVChargingNeeds(
                charging_needs=needs,
                evse_id=evse.id,
                max_schedule_tuples=s.max_schedule_tuples,
                timestamp=None if v201 else format_time(self.config.clock()),
            )
        )
        if res is None and not self.online:
            evse.needs_sent = False  # resent when the link is back (a CALLERROR is not retried)

    async def _notify_schedule(
        self, evse: EvseHandle, prof: tuple[tuple[float, float], ...]
    ) -> None:
        if self.protocol == "ocpp2.0.1":
            return
        await self._call(
            call.NotifyEVChargingSchedule(
                time_base=format_time(self.config.clock()),
                charging_schedule=mapping.ev_schedule(prof),
                evse_id=evse.id,
            )
        )

    def _set_status(self, evse: EvseHandle, status: str) -> None:
        evse.status = status
        self._spawn(self._send_status(evse))

    async def _send_status(self, evse: EvseHandle) -> None:
        await self._call(
            call.StatusNotification(
                timestamp=format_time(self.config.clock()),
                connector_status=evse.status,
                evse_id=evse.id,
                connector_id=1,
            )
        )

    # -- profiles -> power layer ---------------------------------------------------------------
    def caps(self, evse_id: int) -> EvseCaps:
        """What EVSE ``evse_id`` (0: the station) can honour right now."""
        if evse_id == 0:
            cmax, dmax = mapping.rated_caps(self.config.charger_limits)
            can_dis = self.config.charger_limits is None or self.config.charger_limits.can_discharge
            return EvseCaps(True, can_dis, cmax, dmax)
        evse = next((e for e in self.evses if e.id == evse_id), None)
        if evse is None:
            return EvseCaps(evse_exists=False)
        lim = self.config.charger_limits
        can_dis = lim is None or lim.can_discharge
        cmax, dmax = mapping.rated_caps(lim)
        cmin = dmin = 0.0
        s = evse.snapshot
        if s is not None and s.service is not None:
            can_dis = can_dis and s.bidirectional
            # (not s.evse_limits: those already include the backend caps in force, and a
            # profile asking more than another profile allows is capped, not unsatisfiable)
            if s.ev_limits is not None:
                cmax = min(cmax, s.ev_limits.max_charge_power_w)
                dmax = min(dmax, s.ev_limits.max_discharge_power_w)
                cmin, dmin = s.ev_limits.min_charge_power_w, s.ev_limits.min_discharge_power_w
        return EvseCaps(True, can_dis, cmax, dmax, cmin, dmin, evse.tx.id if evse.tx else None)

    def _install(
        self, evse_id: int, raw: dict[str, Any], *, tx_id: str | None = None
    ) -> ChargingProfile:
        prof = parse_profile(raw, evse_id=evse_id, received_at=self.config.clock())
        if tx_id is not None and prof.purpose is Purpose.TX and prof.transaction_id is None:
            prof = replace(prof, transaction_id=tx_id)
        targets = self.evses if evse_id == 0 else [e for e in self.evses if e.id == evse_id]
        check_honourable(prof, self.caps(evse_id))
        if evse_id == 0:
            for e in targets:  # a station-wide profile must suit every running session too
                if e.busy:
                    check_honourable(_on_evse(prof, e.id), self.caps(e.id))
        self.profiles.install(prof)
        for e in targets:
            self._replan(e)
        return prof

    def _replan(self, evse: EvseHandle) -> None:
        ctl = evse.control
        if ctl is None:
            return
        now = self.config.clock()
        if self._fallback_active:
            plan: Scenario | None = mapping.fallback_plan(self.config.fallback_limit_w)
        else:
            tx = evse.tx
            segs = self.profiles.segments(
                now,
                self.config.horizon_s,
                evse.id,
                tx.id if tx else None,
                tx.started_at if tx else None,
            )
            if all(seg.target is None for seg in segs):
                plan = None
            else:
                plan = mapping.plan_from_segments(segs, now)
            if tx is not None and segs and segs[0].target is not None:
                mode = segs[0].target.mode.value
                if mode != tx.operation_mode:
                    tx.operation_mode = mode
                    self._tx_event(evse, "Updated", "OperationModeChanged", now)
        evse.plan = plan
        try:
            ctl.apply_plan(plan, now)
        except Exception:
            _log.exception("%s EVSE %d: applying the backend plan failed", self.id, evse.id)
            return
        s = evse.snapshot
        if s is not None and s.control_mode == "Scheduled" and s.in_charge_loop:
            k = None
            if plan is not None:
                k = tuple(
                    (st.at_s, st.setpoint_w, st.max_charge_power_w, st.max_discharge_power_w)
                    for st in plan.steps
                )
            if k != evse.scheduled_key:
                evse.scheduled_key = k
                ctl.renegotiate()

    # -- CSMS -> station handlers --------------------------------------------------------------
    def on_set_charging_profile(self, evse_id: int, raw: dict[str, Any]) -> tuple[str, str | None]:
        """SetChargingProfile: ("Accepted", None) or ("Rejected", reason); malformed raises."""
        try:
            prof = self._install(evse_id, raw)
        except ProfileRejected as exc:
            _log.warning("%s: SetChargingProfile rejected: %s", self.id, exc)
            return "Rejected", exc.reason
        _log.info(
            "%s: profile %d (%s, %s) installed on EVSE %d",
            self.id,
            prof.id,
            prof.purpose,
            prof.kind,
            evse_id,
        )
        return "Accepted", None

    def on_clear_charging_profile(
        self, profile_id: int | None, criteria: dict[str, Any] | None
    ) -> str:
        c = criteria or {}
        purpose = key(c, "chargingProfilePurpose")
        gone = self.profiles.clear(
            profile_id,
            evse_id=key(c, "evseId"),
            purpose=Purpose(purpose) if purpose else None,
            stack_level=key(c, "stackLevel"),
        )
        for e in self.evses:
            self._replan(e)
        return "Accepted" if gone else "Unknown"

    def on_update_dynamic_schedule(
        self, profile_id: int, update: dict[str, Any]
    ) -> tuple[str, str | None]:
        prof = self.profiles.get(profile_id)
        if prof is None:
            return "Rejected", "UnknownProfile"
        try:
            new = apply_dynamic_update(prof, update)
            evse_ids = [e.id for e in self.evses] if new.evse_id == 0 else [new.evse_id]
            for eid in evse_ids:
                check_honourable(_on_evse(new, eid) if new.evse_id == 0 else new, self.caps(eid))
        except ProfileRejected as exc:
            return "Rejected", exc.reason
        self.profiles.replace(new)
        for e in self.evses:
            if new.evse_id in (0, e.id):
                self._replan(e)
        return "Accepted", None

    def on_get_composite_schedule(
        self, duration: int, evse_id: int, unit: str | None
    ) -> dict[str, Any] | None:
        """The composite schedule (W) as CompositeScheduleType, or None (Rejected)."""
        if unit not in (None, "W") or (
            evse_id != 0 and not any(e.id == evse_id for e in self.evses)
        ):
            return None
        now = self.config.clock()
        evse = next((e for e in self.evses if e.id == evse_id), None)
        tx = evse.tx if evse is not None else None
        segs = self.profiles.segments(
            now,
            float(duration),
            evse_id,
            tx.id if tx else None,
            tx.started_at if tx else None,
        )
        cmax, dmax = mapping.rated_caps(self.config.charger_limits)
        periods: list[dict[str, Any]] = []
        for seg in segs:
            t = seg.target
            lim = cmax if t is None or t.limit_w is None else min(t.limit_w, cmax)
            per: dict[str, Any] = {
                "start_period": round(seg.start - now),
                "limit": lim if math.isfinite(lim) else 3_750_000.0,
            }
            if t is not None:
                dl = dmax if t.discharge_limit_w is None else min(t.discharge_limit_w, dmax)
                if math.isfinite(dl):
                    per["discharge_limit"] = -dl
                if t.setpoint_w is not None:
                    per["setpoint"] = t.setpoint_w
                per["operation_mode"] = t.mode.value
            if periods and periods[-1]["start_period"] == per["start_period"]:
                periods[-1] = per
            else:
                periods.append(per)
        return {
            "evse_id": evse_id,
            "duration": duration,
            "schedule_start": format_time(now),
            "charging_rate_unit": "W",
            "charging_schedule_period": periods,
        }

    def on_request_start(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None,
        profile: dict[str, Any] | None,
    ) -> tuple[str, str | None, str | None]:
        """RequestStartTransaction -> (status, reason, transactionId)."""
        if profile is not None and key(profile, "chargingProfilePurpose") != "TxProfile":
            return "Rejected", "InvalidProfile", None
        cands = [e for e in self.evses if evse_id is None or e.id == evse_id]
        if not cands:
            return "Rejected", "UnknownEVSE", None
        # a connected session still waiting for authorization: authorize it now
        for e in cands:
            if e.tx is not None and e.tx.id_token is None:
                e.tx.id_token = id_token
                e.tx.remote_start_id = remote_start_id
                now = self.config.clock()
                e.tx.authorized_sent = True
                self._tx_event(e, "Updated", "RemoteStart", now, id_token=id_token)
                if profile is not None:
                    try:
                        self._install(e.id, profile, tx_id=e.tx.id)
                    except (ProfileRejected, ProfileMalformed) as exc:
                        return "Rejected", getattr(exc, "reason", "InvalidProfile"), None
                return "Accepted", None, e.tx.id
        free = [e for e in cands if not e.busy and e.remote is None]
        if not free:
            return "Rejected", "Occupied", None
        free[0].remote = _RemoteStart(id_token, remote_start_id, profile)
        return "Accepted", None, None

    def on_request_stop(self, transaction_id: str) -> tuple[str, str | None]:
        for e in self.evses:
            if e.tx is not None and e.tx.id == transaction_id and e.control is not None:
                e.tx.stop_reason = "Remote"
                e.control.stop()
                return "Accepted", None
        return "Rejected", "TxNotFound"

    # -- the link ------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (pure unit tests): nothing to send anyway
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, payload: Any) -> Any | None:
        """Send a CALL if online; None when offline, on timeout or on a CALLERROR (logged)."""
        client = self._client
        if client is None or not self.online:
            return None
        try:
            return await client.call(payload, suppress=False)
        except OCPPError as exc:
            _log.warning("%s: CSMS answered %s with %s", self.id, type(payload).__name__, exc)
        except (TimeoutError, OSError, _closed_errors()) as exc:
            _log.info("%s: %s not delivered: %r", self.id, type(payload).__name__, exc)
        return None

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        delay = self.config.reconnect_min_s
        while not self._closing:
            try:
                async with connect(
                    self.config.url,
                    subprotocols=[Subprotocol(p) for p in self.config.protocols],
                    open_timeout=self.config.response_timeout_s,
                    ping_interval=20,
                    ping_timeout=20,
                ) as ws:
                    delay = self.config.reconnect_min_s
                    await self._session(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.info("%s: CSMS link: %r", self.id, exc)
            self._went_offline()
            if self._closing:
                return
            # exponential backoff with jitter (OCPP 2.1 B04 RetryBackOff*): no thundering herd
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(self.config.reconnect_max_s, delay * 2)

    async def _session(self, ws: Any) -> None:
        proto = ws.subprotocol or "ocpp2.1"
        self.protocol = str(proto)
        client = _Client(self, ws, self.protocol, self.config.response_timeout_s)
        self._ws = ws
        self._client = client
        reader = asyncio.create_task(client.start())
        try:
            while True:
                res = await client.call(
                    call.BootNotification(
                        charging_station={
                            "model": self.config.model[:20],
                            "vendor_name": self.config.vendor[:50],
                            "firmware_version": __version__,
                            "serial_number": self.config.serial_number,
                        },
                        reason="PowerUp" if self.connects == 0 else "Unknown",
                    ),
                    suppress=False,
                )
                interval = float(res.interval or 0) or 60.0
                if res.status == "Accepted":
                    break
                await asyncio.sleep(min(interval, 60.0))
            self.heartbeat_s = self.config.heartbeat_s or interval
            self.connects += 1
            self.online = True
            self.boot_accepted = True
            self._online_event.set()
            _log.info("%s: booted at %s (%s)", self.id, self.config.url, self.protocol)
            self._came_online()
            sender = asyncio.create_task(self._sender(client))
            beat = asyncio.create_task(self._heartbeat(client))
            try:
                await reader
            finally:
                sender.cancel()
                beat.cancel()
                for t in (sender, beat):
                    with contextlib.suppress(BaseException):
                        await t
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            self._client = None
            self._ws = None

    def _went_offline(self) -> None:
        if self.online and not self._closing:
            _log.warning("%s: CSMS link lost; policy %s", self.id, self.config.offline_policy)
        self.online = False
        self._online_event.clear()
        if self.offline_since is None:
            self.offline_since = self.config.clock()
        if self.config.offline_policy is OfflinePolicy.FALLBACK and not self._fallback_active:
            self._fallback_active = True
            for e in self.evses:
                self._replan(e)

    def _came_online(self) -> None:
        self.offline_since = None
        was_fallback = self._fallback_active
        self._fallback_active = False
        for e in self.evses:
            self._spawn(self._send_status(e))
            if e.snapshot is not None and e.snapshot.ev_limits is not None and not e.needs_sent:
                e.needs_sent = True
                self._spawn(self._notify_needs(e))
            if was_fallback:
                self._replan(e)
        self._wake.set()

    async def _sender(self, client: _Client) -> None:
        while True:
            ev = self.queue.head()
            if ev is None:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            payload = call.TransactionEvent(**ev.payload)
            try:
                await client.call(payload, suppress=False)
            except OCPPError as exc:
                # The CSMS refuses this message: resending it would be refused again.
                _log.error("%s: TransactionEvent seq %d refused: %s", self.id, ev.seq_no, exc)
            except TimeoutError:
                continue  # no answer: send it again (the CSMS de-duplicates by seqNo)
            self.queue.ack(ev)

    async def _heartbeat(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            with contextlib.suppress(TimeoutError, OCPPError):
                await client.call(call.Heartbeat(), suppress=False)

    async def _tick_loop(self) -> None:
        """Periodic meter values, offline-hold expiry and plan refresh at the horizon."""
        step = max(0.05, min(1.0, self.config.meter_interval_s / 2))
        last_plan = self.config.clock()
        while True:
            await asyncio.sleep(step)
            now = self.config.clock()
            for e in self.evses:
                tx, s = e.tx, e.snapshot
                due = tx is not None and now - tx.last_meter_at >= self.config.meter_interval_s
                if due and s is not None and s.in_charge_loop:
                    self._tx_event(e, "Updated", "MeterValuePeriodic", now, meter="Sample.Periodic")
            if self.offline_since is not None and not self.online:
                off = now - self.offline_since
                if self.profiles.drop_offline_invalid(off):
                    for e in self.evses:
                        self._replan(e)
                if off >= self.config.offline_hold_s and not self._fallback_active:
                    _log.warning("%s: offline for %.0f s: fallback plan", self.id, off)
                    self._fallback_active = True
                    for e in self.evses:
                        self._replan(e)
            if now - last_plan >= self.config.horizon_s / 2:
                last_plan = now
                for e in self.evses:
                    self._replan(e)


def _on_evse(prof: ChargingProfile, evse_id: int) -> ChargingProfile:
    return replace(prof, evse_id=evse_id) if prof.purpose is not Purpose.STATION_MAX else prof


def _closed_errors() -> type[Exception]:
    from websockets.exceptions import ConnectionClosed

    return ConnectionClosed


def _ocpp_error(exc: ProfileMalformed) -> OCPPError:
    cls = _OCPP_ERRORS.get(exc.code)
    if cls is None:
        from ocpp.exceptions import FormationViolationError

        cls = FormationViolationError
    return cls(description=exc.detail)


def _status_info(reason: str | None) -> dict[str, Any] | None:
    return None if reason is None else {"reason_code": reason}


class _Client(_OcppChargePoint):  # type: ignore[misc]
    """The ``ocpp`` library's ChargePoint with our handlers; version picked per connection."""

    def __init__(self, station: ChargingStation, ws: Any, protocol: str, timeout: float) -> None:
        super().__init__(
            station.id, ws, response_timeout=timeout, logger=wire_logger("mcscomm.backend.wire")
        )
        self._station = station
        if protocol == "ocpp2.0.1":
            from ocpp.v201 import call_result as v201_result

            self._ocpp_version = "2.0.1"
            self._call_result = v201_result

    @on(Action.set_charging_profile)
    def _set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> Any:
        try:
            status, reason = self._station.on_set_charging_profile(evse_id, charging_profile)
        except ProfileMalformed as exc:
            raise _ocpp_error(exc) from exc
        return call_result.SetChargingProfile(status=status, status_info=_status_info(reason))

    @on(Action.clear_charging_profile)
    def _clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        status = self._station.on_clear_charging_profile(
            charging_profile_id, charging_profile_criteria
        )
        return call_result.ClearChargingProfile(status=status)

    @on(Action.update_dynamic_schedule)
    def _update_dynamic_schedule(
        self, charging_profile_id: int, schedule_update: dict[str, Any], **_: Any
    ) -> Any:
        try:
            status, reason = self._station.on_update_dynamic_schedule(
                charging_profile_id, schedule_update
            )
        except ProfileMalformed as exc:
            raise _ocpp_error(exc) from exc
        return call_result.UpdateDynamicSchedule(status=status, status_info=_status_info(reason))

    @on(Action.get_composite_schedule)
    def _get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        sched = self._station.on_get_composite_schedule(duration, evse_id, charging_rate_unit)
        if sched is None:
            return call_result.GetCompositeSchedule(
                status="Rejected", status_info=_status_info("UnsupportedRateUnit")
            )
        return call_result.GetCompositeSchedule(status="Accepted", schedule=sched)

    @on(Action.request_start_transaction)
    def _request_start(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        status, reason, tx = self._station.on_request_start(
            id_token, remote_start_id, evse_id, charging_profile
        )
        return call_result.RequestStartTransaction(
            status=status, status_info=_status_info(reason), transaction_id=tx
        )

    @on(Action.request_stop_transaction)
    def _request_stop(self, transaction_id: str, **_: Any) -> Any:
        status, reason = self._station.on_request_stop(transaction_id)
        return call_result.RequestStopTransaction(status=status, status_info=_status_info(reason))


__all__ = ["ChargingStation", "EvseHandle", "Kind", "OfflinePolicy", "StationConfig"]
