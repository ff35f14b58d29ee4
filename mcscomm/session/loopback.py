"""Run an EVCC and an SECC connection against each other in memory, in virtual time.

No sockets, no event loop: bytes written by one side are fed to the other at the same virtual
instant, and the clock jumps to the next deadline of either side. A 30-minute depot session runs
in seconds of wall time. Used by the tests, conformance cases and the fuzzer's in-process target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mcscomm.session.config import EvccConfig, SeccConfig
from mcscomm.session.connection import EvccConnection, SeccConnection
from mcscomm.session.events import SessionEnded, SessionEvent


@dataclass(slots=True)
class PairResult:
    """Everything both sides reported, in order, plus the final clock."""

    now: float
    evcc_events: list[SessionEvent] = field(default_factory=list)
    secc_events: list[SessionEvent] = field(default_factory=list)

    def ended(self, side: str) -> SessionEnded | None:
        events = self.evcc_events if side == "evcc" else self.secc_events
        return next((e for e in reversed(events) if isinstance(e, SessionEnded)), None)

    def of_type(self, side: str, cls: type) -> list[SessionEvent]:
        events = self.evcc_events if side == "evcc" else self.secc_events
        return [e for e in events if isinstance(e, cls)]


Hook = Callable[[float, EvccConnection, SeccConnection], None]


def run_pair(
    evcc: EvccConnection,
    secc: SeccConnection,
    *,
    start: float = 0.0,
    max_time: float = 7200.0,
    on_step: Hook | None = None,
    tamper: Callable[[bytes], bytes] | None = None,
) -> PairResult:
    """Drive both connections until both are closed (or ``max_time`` of virtual time passes).

    ``on_step`` is called at every step (to change backend setpoints, notify, ...); ``tamper``
    may rewrite EVCC → SECC bytes (fuzzing, error-path tests).
    """
    now = start
    result = PairResult(now=now)
    evcc.start(now)
    lost = False
    while True:
        moved = True
        while moved:
            moved = False
            data = evcc.data_to_send()
            if data:
                if tamper is not None:
                    data = tamper(data)
                secc.receive_data(data, now)
                moved = True
            data = secc.data_to_send()
            if data:
                evcc.receive_data(data, now)
                moved = True
        _drain(evcc, result.evcc_events)
        _drain(secc, result.secc_events)
        if evcc.closed and secc.closed:
            break
        if not lost and (evcc.closed or secc.closed):
            # the transport closes with the first side that is done: the other sees the loss
            lost = True
            other = secc if evcc.closed else evcc
            other.connection_lost(now, "peer closed the connection")
            continue
        if on_step is not None:
            on_step(now, evcc, secc)
        timers = [t for t in (evcc.get_timer(), secc.get_timer()) if t is not None]
        if not timers:
            break
        nxt = min(timers)
        if nxt > max_time:
            now = max_time
            break
        now = max(now, nxt)
        for conn in (evcc, secc):
            t = conn.get_timer()
            if t is not None and t <= now:
                conn.handle_timer(now)
    _drain(evcc, result.evcc_events)
    _drain(secc, result.secc_events)
    result.now = now
    return result


def _drain(conn: EvccConnection | SeccConnection, into: list[SessionEvent]) -> None:
    while (event := conn.next_event()) is not None:
        into.append(event)


def default_configs(
    *,
    charger: str = "mcs_1mw_bpt",
    truck: str = "mcs_7pack",
    scenario: str | None = "depot_peak_shaving",
    pki: object | None = None,
    time_scale: float | None = None,
) -> tuple[SeccConfig, EvccConfig]:
    """The `mcscomm session` defaults: 1 MW bidirectional MCS charger, 7-pack truck, depot
    peak-shaving backend (its SoC/departure overrides applied to the truck), MCS_BPT, Dynamic,
    PnC when a PKI manifest is given (else EIM)."""
    from mcscomm.messages.enums import AuthorizationType
    from mcscomm.power.profiles import load_charger, load_scenario, load_truck

    sc = load_scenario(scenario, time_scale=time_scale) if scenario is not None else None
    secc = SeccConfig(charger=load_charger(charger), scenario=sc, pki=pki)
    evcc = EvccConfig(
        truck=load_truck(truck),
        auth=AuthorizationType.PNC if pki is not None else AuthorizationType.EIM,
        pki=pki,
        initial_soc=sc.initial_soc if sc is not None else None,
        target_soc=sc.target_soc if sc is not None else None,
        departure_s=sc.departure_s * sc.time_scale
        if sc is not None and sc.departure_s is not None
        else None,
    )
    return secc, evcc


def make_pair(
    secc_config: SeccConfig,
    evcc_config: EvccConfig,
    *,
    now: float = 0.0,
    tls: bool = True,
    peer_cert_der: bytes | None = None,
) -> tuple[EvccConnection, SeccConnection]:
    """A fresh EVCC/SECC connection pair sharing one codec (``peer_cert_der``: the TLS client
    certificate the SECC is told about, for the resume check)."""
    secc = SeccConnection(secc_config, now=now, tls=tls, peer_cert_der=peer_cert_der)
    evcc = EvccConnection(evcc_config, now=now, tls=tls, codec=secc.codec)
    return evcc, secc
