"""A small OCPP 2.1 CSMS: accepts charging stations over WebSocket and records what they say.

:class:`Csms` serves ``ws://HOST:PORT/<station id>`` (subprotocols ``ocpp2.1`` and ``ocpp2.0.1``),
answers BootNotification/Heartbeat/StatusNotification/Authorize/TransactionEvent/
NotifyEVChargingNeeds/NotifyEVChargingSchedule/MeterValues, and keeps per-station and
per-transaction records (every TransactionEvent with its ``seqNo`` and ``offline`` flag, so tests
can prove that none was lost or reordered). Commands to a station (SetChargingProfile,
UpdateDynamicSchedule, ...) are coroutines; a CALLERROR from the station raises
:class:`StationCallError`. Restartable: :meth:`stop` then :meth:`start` keeps the records (an
outage in a test).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v21 import ChargePoint as _OcppChargePoint
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from mcscomm.backend._ocpp import on, validate_inline, wire_logger
from mcscomm.backend.errors import BackendError
from mcscomm.backend.profiles import key

_log = logging.getLogger("mcscomm.ems.csms")


class StationCallError(BackendError):
    """The station answered a CSMS command with a CALLERROR (``code``: the OCPP error code)."""

    def __init__(self, code: str, description: str) -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")


class StationOffline(BackendError):
    """The station is not connected."""


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(slots=True)
class TxRecord:
    """One transaction as the CSMS saw it."""

    id: str
    station_id: str
    evse_id: int | None = None
    seq_nos: list[int] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    offline_flags: list[bool] = field(default_factory=list)
    duplicates: int = 0
    started: bool = False
    ended: bool = False
    stopped_reason: str | None = None
    charging_state: str | None = None
    operation_mode: str | None = None
    id_token: str | None = None
    remote_start_id: int | None = None
    meter: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    @property
    def soc(self) -> float | None:
        return self.meter.get("SoC")

    @property
    def power_w(self) -> float:
        """Latest net power (> 0 charging the truck)."""
        return self.meter.get("Power.Active.Import", 0.0) - self.meter.get(
            "Power.Active.Export", 0.0
        )


@dataclass(slots=True)
class StationRecord:
    """One charging station as the CSMS saw it."""

    id: str
    protocol: str | None = None
    connected: bool = False
    boots: int = 0
    heartbeats: int = 0
    model: str | None = None
    status: dict[int, str] = field(default_factory=dict)
    needs: dict[int, dict[str, Any]] = field(default_factory=dict)
    ev_schedules: dict[int, dict[str, Any]] = field(default_factory=dict)
    authorizations: list[str] = field(default_factory=list)
    active_tx: dict[int, str] = field(default_factory=dict)


class Csms:
    """The CSMS server (see the module docstring).

    ``authorize(id_token, type) -> status`` decides Authorize (default: Accepted);
    ``on_change(station_id)`` is called after every message from a station (for an EMS loop).
    """

    def __init__(
        self,
        *,
        heartbeat_s: int = 60,
        authorize: Callable[[str, str], str] | None = None,
        on_change: Callable[[str], None] | None = None,
        response_timeout_s: float = 10.0,
    ) -> None:
        validate_inline()
        self.heartbeat_s = heartbeat_s
        self._authorize = authorize or (lambda _token, _type: "Accepted")
        self._on_change = on_change
        self.response_timeout_s = response_timeout_s
        self.stations: dict[str, StationRecord] = {}
        self.transactions: dict[str, TxRecord] = {}
        self._handlers: dict[str, _StationHandler] = {}
        self._server: Any = None
        self._changed = asyncio.Condition()
        self._pending: set[asyncio.Future[None]] = set()
        self.address: tuple[str, int] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; returns the bound (host, port)."""
        from websockets.asyncio.server import serve
        from websockets.typing import Subprotocol

        self._server = await serve(
            self._serve,
            host,
            port,
            subprotocols=[Subprotocol("ocpp2.1"), Subprotocol("ocpp2.0.1")],
            ping_interval=20,
        )
        sock = next(iter(self._server.sockets))
        name = sock.getsockname()
        self.address = (str(name[0]), int(name[1]))
        _log.info("CSMS listening on ws://%s:%d/<station id>", *self.address)
        return self.address

    def url(self, station_id: str) -> str:
        """The URL a station with ``station_id`` connects to."""
        assert self.address is not None, "CSMS not started"
        host, port = self.address
        return f"ws://{host}:{port}/{station_id}"

    async def stop(self) -> None:
        """Close every station connection and stop listening (records are kept)."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        for st in self.stations.values():
            st.connected = False
        self._handlers.clear()

    async def __aenter__(self) -> Csms:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> bool:
        """Wait until ``predicate()`` holds (checked after each station message)."""

        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        try:
            await asyncio.wait_for(waiter(), within)
        except TimeoutError:
            return predicate()
        return True

    # -- commands ------------------------------------------------------------------------------
    def _handler(self, station_id: str) -> _StationHandler:
        h = self._handlers.get(station_id)
        if h is None:
            raise StationOffline(f"station {station_id} is not connected")
        return h

    async def _cmd(self, station_id: str, payload: Any, *, validate: bool = True) -> Any:
        try:
            return await self._handler(station_id).call(
                payload, suppress=False, skip_schema_validation=not validate
            )
        except OCPPError as exc:
            raise StationCallError(
                getattr(exc, "code", "GenericError"), str(exc.description)
            ) from exc

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any], *, validate: bool = True
    ) -> tuple[str, str | None]:
        """SetChargingProfile -> (status, reasonCode). ``validate=False`` sends it even when it
        breaks the JSON schema (to test a station's error path)."""
        res = await self._cmd(
            station_id,
            call.SetChargingProfile(evse_id=evse_id, charging_profile=profile),
            validate=validate,
        )
        return res.status, key(res.status_info or {}, "reasonCode")

    async def update_dynamic_schedule(
        self, station_id: str, profile_id: int, update: dict[str, Any]
    ) -> tuple[str, str | None]:
        res = await self._cmd(
            station_id,
            call.UpdateDynamicSchedule(charging_profile_id=profile_id, schedule_update=update),
        )
        return res.status, key(res.status_info or {}, "reasonCode")

    async def clear_charging_profile(
        self, station_id: str, profile_id: int | None = None, criteria: dict[str, Any] | None = None
    ) -> str:
        res = await self._cmd(
            station_id,
            call.ClearChargingProfile(
                charging_profile_id=profile_id, charging_profile_criteria=criteria
            ),
        )
        return str(res.status)

    async def get_composite_schedule(
        self, station_id: str, evse_id: int, duration: int
    ) -> dict[str, Any] | None:
        res = await self._cmd(
            station_id,
            call.GetCompositeSchedule(duration=duration, evse_id=evse_id, charging_rate_unit="W"),
        )
        return res.schedule if res.status == "Accepted" else None

    async def request_start(
        self,
        station_id: str,
        id_token: str,
        remote_start_id: int,
        *,
        evse_id: int | None = None,
        profile: dict[str, Any] | None = None,
    ) -> tuple[str, str | None]:
        res = await self._cmd(
            station_id,
            call.RequestStartTransaction(
                id_token={"id_token": id_token, "type": "Central"},
                remote_start_id=remote_start_id,
                evse_id=evse_id,
                charging_profile=profile,
            ),
        )
        return res.status, res.transaction_id

    async def request_stop(self, station_id: str, transaction_id: str) -> str:
        res = await self._cmd(
            station_id, call.RequestStopTransaction(transaction_id=transaction_id)
        )
        return str(res.status)

    # -- incoming ------------------------------------------------------------------------------
    async def _serve(self, ws: Any) -> None:
        path = ws.request.path if ws.request is not None else "/"
        sid = path.rstrip("/").rsplit("/", 1)[-1]
        if not sid or ws.subprotocol is None:
            _log.warning("refusing %s: no station id or no OCPP subprotocol", path)
            await ws.close(1002, "OCPP 2.1/2.0.1 subprotocol and station id required")
            return
        st = self.stations.setdefault(sid, StationRecord(sid))
        st.protocol = str(ws.subprotocol)
        st.connected = True
        handler = _StationHandler(self, sid, ws, st.protocol)
        self._handlers[sid] = handler
        _log.info("station %s connected (%s)", sid, st.protocol)
        try:
            await handler.start()
        except Exception as exc:
            _log.info("station %s disconnected: %r", sid, exc)
        finally:
            if self._handlers.get(sid) is handler:
                del self._handlers[sid]
                st.connected = False
            await self._notify(sid)

    async def _notify(self, station_id: str) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self._on_change is not None:
            try:
                self._on_change(station_id)
            except Exception:
                _log.exception("on_change callback failed")

    def _record_tx(self, station_id: str, p: dict[str, Any]) -> TxRecord:
        info = p["transaction_info"]
        tid = key(info, "transactionId")
        tx = self.transactions.get(tid)
        if tx is None:
            tx = self.transactions[tid] = TxRecord(tid, station_id)
        seq = int(p["seq_no"])
        if seq in tx.seq_nos:
            tx.duplicates += 1  # re-sent after a lost answer: OCPP allows it, count it once
            return tx
        tx.seq_nos.append(seq)
        etype = p["event_type"]
        tx.event_types.append(etype)
        tx.triggers.append(p["trigger_reason"])
        tx.offline_flags.append(bool(p.get("offline")))
        evse = p.get("evse")
        if evse:
            tx.evse_id = key(evse, "id")
        if etype == "Started":
            tx.started = True
        if etype == "Ended":
            tx.ended = True
            tx.stopped_reason = key(info, "stoppedReason")
        st = key(info, "chargingState")
        if st:
            tx.charging_state = st
        mode = key(info, "operationMode")
        if mode:
            tx.operation_mode = mode
        if key(info, "remoteStartId") is not None:
            tx.remote_start_id = key(info, "remoteStartId")
        tok = p.get("id_token")
        if tok:
            tx.id_token = key(tok, "idToken")
        for mv in p.get("meter_value") or []:
            values = {
                str(key(sv, "measurand") or "Energy.Active.Import.Register"): float(
                    key(sv, "value")
                )
                for sv in key(mv, "sampledValue") or []
            }
            tx.meter.update(values)
            tx.samples.append((time.time(), values))
        rec = self.stations.setdefault(station_id, StationRecord(station_id))
        if tx.evse_id is not None:
            if etype == "Ended":
                rec.active_tx.pop(tx.evse_id, None)
            else:
                rec.active_tx[tx.evse_id] = tid
        return tx


class _StationHandler(_OcppChargePoint):  # type: ignore[misc]
    """One station's connection (the ``ocpp`` library's ChargePoint, CSMS side)."""

    def __init__(self, csms: Csms, station_id: str, ws: Any, protocol: str) -> None:
        super().__init__(
            station_id,
            ws,
            response_timeout=csms.response_timeout_s,
            logger=wire_logger("mcscomm.ems.wire"),
        )
        self._csms = csms
        if protocol == "ocpp2.0.1":
            from ocpp.v201 import call_result as v201_result

            self._ocpp_version = "2.0.1"
            self._call_result = v201_result

    @property
    def _rec(self) -> StationRecord:
        return self._csms.stations.setdefault(self.id, StationRecord(self.id))

    def _changed(self) -> None:
        task = asyncio.ensure_future(self._csms._notify(self.id))
        self._csms._pending.add(task)
        task.add_done_callback(self._csms._pending.discard)

    @on(Action.boot_notification)
    def _csms_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        rec = self._rec
        rec.boots += 1
        rec.model = key(charging_station, "model")
        self._changed()
        return call_result.BootNotification(
            current_time=_now_iso(), interval=self._csms.heartbeat_s, status="Accepted"
        )

    @on(Action.heartbeat)
    def _csms_heartbeat(self, **_: Any) -> Any:
        self._rec.heartbeats += 1
        return call_result.Heartbeat(current_time=_now_iso())

    @on(Action.status_notification)
    def _csms_status(self, evse_id: int, connector_status: str, **_: Any) -> Any:
        self._rec.status[evse_id] = connector_status
        self._changed()
        return call_result.StatusNotification()

    @on(Action.authorize)
    def _csms_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        token, kind = str(key(id_token, "idToken")), str(key(id_token, "type"))
        self._rec.authorizations.append(token)
        status = self._csms._authorize(token, kind)
        return call_result.Authorize(id_token_info={"status": status})

    @on(Action.transaction_event)
    def _csms_tx_event(self, **payload: Any) -> Any:
        self._csms._record_tx(self.id, payload)
        self._changed()
        return call_result.TransactionEvent()

    @on(Action.notify_ev_charging_needs)
    def _csms_needs(self, evse_id: int, charging_needs: dict[str, Any], **_: Any) -> Any:
        self._rec.needs[evse_id] = charging_needs
        self._changed()
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on(Action.notify_ev_charging_schedule)
    def _csms_ev_schedule(self, evse_id: int, charging_schedule: dict[str, Any], **_: Any) -> Any:
        self._rec.ev_schedules[evse_id] = charging_schedule
        self._changed()
        return call_result.NotifyEVChargingSchedule(status="Accepted")

    @on(Action.meter_values)
    def _csms_meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()
