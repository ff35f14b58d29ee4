"""Hooking the OCPP station into the real SECC: one wrapped connection per -20 session.

:func:`attach` wraps the SECC's connection factory (``endpoints.setup.secc_factory``): every
connection it makes is a :class:`BackendLink`, a transparent proxy around the ``SeccConnection``
that occupies an EVSE of the station, reports the session (:class:`SessionSnapshot` read from the
session context after every input, plus its PowerSample/SessionEnded events) and implements
:class:`SessionControl`: backend plans are played in the session's ``SeccPower`` (the power layer
keeps every other limit in force), a schedule renegotiation or a stop becomes an EVSENotification
on the next DC_ChargeLoopRes. Authorization of each session is decided by its EVSE (so a
RequestStartTransaction for EVSE 2 authorizes the truck on EVSE 2, not another one).

The ``--csms`` options of ``mcscomm secc`` / ``session`` are wired in :mod:`mcscomm.backend.cli`.

Contract with the session layer (read-only, besides ``notify``/``play``): ``conn.session.ctx``
(``SeccContext``: ``power``, ``service``, ``control_mode``, ``selected_auth``, ``emaid``,
``authorized``, ``ev_limits``, ``evse_limits``, ``counters``), ``conn.session.state`` and
``conn.session.config``, ``conn.notify(notification)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mcscomm.backend.errors import CsmsUnavailable
from mcscomm.backend.port import SessionSnapshot
from mcscomm.backend.station import ChargingStation, EvseHandle
from mcscomm.power.ems import Scenario

_log = logging.getLogger("mcscomm.backend.link")


def _fin(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class _EvseAuthorizer:
    """The -20 ``Authorizer`` of one session: asks the station on behalf of one EVSE."""

    def __init__(self, handle: EvseHandle) -> None:
        self._handle = handle

    def decide(self, auth: Any, emaid: str | None, now: float) -> bool | None:
        return self._handle.decide(str(getattr(auth, "value", auth)), emaid, now)


class BackendLink:
    """A ``SeccConnection`` reporting to, and steered by, an OCPP :class:`ChargingStation`."""

    def __init__(self, conn: Any, station: ChargingStation, now: float) -> None:
        self._conn = conn
        self._station = station
        self._t_session = now
        self._t_wall = time.monotonic()
        self._soc: float | None = None
        self._target_soc: float | None = None
        self._done = False
        session = conn.session
        self._initial_ems = session.ctx.power.ems
        self.handle = station.open_session(self)
        # Per-session authorizer: the SeccConfig is shared by all sessions of the server, so
        # this session gets a shallow copy that differs only in who decides authorization.
        cfg = replace(session.config, authorizer=_EvseAuthorizer(self.handle))
        session.config = cfg
        session.ctx.config = cfg
        self._observe(now)

    # -- the SansIoConnection contract (forwarded) ---------------------------------------------
    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)

    @property
    def close_reason(self) -> str | None:
        reason: str | None = self._conn.close_reason
        return reason

    def receive_data(self, data: bytes, now: float) -> None:
        self._conn.receive_data(data, now)
        self._observe(now)

    def data_to_send(self) -> bytes:
        out: bytes = self._conn.data_to_send()
        return out

    def next_event(self) -> Any | None:
        ev = self._conn.next_event()
        if ev is not None:
            name = type(ev).__name__
            if name == "PowerSample" and ev.soc is not None:
                self._soc = float(ev.soc)
            elif name == "SessionEnded":
                self._end(str(ev.reason), ev.result in ("success", "paused"))
        return ev

    def get_timer(self) -> float | None:
        t: float | None = self._conn.get_timer()
        return t

    def handle_timer(self, now: float) -> None:
        self._conn.handle_timer(now)
        self._observe(now)

    def connection_lost(self, now: float, reason: str = "connection lost") -> None:
        self._conn.connection_lost(now, reason)
        self._observe(now)
        # SessionEnded normally follows through next_event(); make sure the EVSE is freed
        self._end(reason, False)

    # -- SessionControl ------------------------------------------------------------------------
    def _now(self) -> float:
        return self._t_session + (time.monotonic() - self._t_wall)

    def apply_plan(self, plan: Scenario | None, epoch_now: float) -> None:
        power = self._conn.session.ctx.power
        now = self._now()
        if plan is None:
            power.ems = self._initial_ems
            if power.controller is not None:
                power.controller.ems = self._initial_ems
            return
        power.play(plan, now)

    def renegotiate(self) -> None:
        from mcscomm.messages.enums import EvseNotification

        self._conn.notify(EvseNotification.SCHEDULE_RENEGOTIATION)

    def stop(self) -> None:
        from mcscomm.messages.enums import EvseNotification

        self._conn.notify(EvseNotification.TERMINATE)

    # -- reporting -----------------------------------------------------------------------------
    def _end(self, reason: str, by_ev: bool) -> None:
        if self._done:
            return
        self._done = True
        soc = self._soc
        if soc is not None and self._target_soc is not None and soc >= self._target_soc:
            by_ev = True
        self.handle.close(reason, by_ev=by_ev)

    def _observe(self, now: float) -> None:
        self._t_session, self._t_wall = now, time.monotonic()
        if self._done:
            return
        try:
            snap = self._snapshot(now)
        except Exception:  # the session is someone else's; never let a read break it
            _log.exception("reading the session for the OCPP station failed")
            return
        self.handle.update(snap)

    def _snapshot(self, now: float) -> SessionSnapshot:
        session = self._conn.session
        ctx = session.ctx
        power = ctx.power
        d = power.last
        ctl = power.controller
        req = None if ctl is None else ctl.last_request
        charged, discharged = power.meter()
        loop = getattr(session.state, "name", "") in ("CHARGE_LOOP", "WAIT_RENEGOTIATED_SCHEDULE")
        cm = ctx.control_mode
        return SessionSnapshot(
            t=now,
            service=None if ctx.service is None else ctx.service.name,
            control_mode=None if cm is None else cm.name.capitalize(),
            auth=None if ctx.selected_auth is None else str(ctx.selected_auth.value),
            id_token=ctx.emaid,
            authorized=bool(ctx.authorized),
            ev_limits=ctx.ev_limits,
            evse_limits=ctx.evse_limits,
            soc=self._soc if self._soc is not None else ctx.counters.soc,
            target_soc=self._target_soc,
            voltage_v=0.0 if d is None else d.present_voltage_v,
            current_a=0.0 if d is None else d.present_current_a,
            power_w=0.0 if d is None else d.present_power_w,
            charged_wh=float(charged),
            discharged_wh=float(discharged),
            in_charge_loop=loop,
            target_energy_wh=None if req is None else _fin(req.target_energy_wh),
            min_energy_wh=None if req is None else _fin(req.min_energy_wh),
            max_energy_wh=None if req is None else _fin(req.max_energy_wh),
            min_v2x_energy_wh=None if req is None else _fin(req.min_v2x_energy_wh),
            max_v2x_energy_wh=None if req is None else _fin(req.max_v2x_energy_wh),
            departure_s=None if req is None else _fin(req.departure_s),
            ev_power_profile=getattr(ctx, "ev_power_profile", None),
            setpoint_w=None if d is None else _fin(d.setpoint_w),
        )


def attach(factory: Callable[[float], Any], station: ChargingStation) -> Callable[[float], Any]:
    """Wrap an SECC connection factory: each session becomes a transaction at ``station``.

    When every EVSE is busy the session still runs, unlinked (logged): a charger never refuses
    a truck because its backend bookkeeping is full.
    """

    from mcscomm.endpoints.driver import accepts_peer_cert

    forwards = accepts_peer_cert(factory)

    def make(now: float, **kwargs: Any) -> Any:
        # kwargs (the SECC server's peer_cert_der) reach the wrapped factory when it takes them.
        conn = factory(now, **kwargs) if forwards else factory(now)
        try:
            return BackendLink(conn, station, now)
        except CsmsUnavailable as exc:
            _log.warning("session not reported to the CSMS: %s", exc)
            return conn

    return make
