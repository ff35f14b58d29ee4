"""Asyncio endpoints around the sans-IO sessions: SECC server, EVCC client, in-process pair.

* :mod:`.clock` — real or virtual time behind one interface;
* :mod:`.driver` — the thin adapter that drives one connection over one socket;
* :mod:`.secc_server` — many concurrent, isolated SECC sessions with resource limits;
* :mod:`.evcc_client` — SDP discovery or a given address, TLS, one session;
* :mod:`.pair` — both ends in one process over real loopback TLS (virtual or real time).
"""

from mcscomm.endpoints.clock import Clock, RealClock, VirtualClock
from mcscomm.endpoints.driver import ConnectionDriver, SansIoConnection, SessionOutcome
from mcscomm.endpoints.evcc_client import EvccResult, run_evcc
from mcscomm.endpoints.limits import Limits
from mcscomm.endpoints.pair import PairResult, run_pair
from mcscomm.endpoints.secc_server import SeccServer, ServerStats

__all__ = [
    "Clock",
    "ConnectionDriver",
    "EvccResult",
    "Limits",
    "PairResult",
    "RealClock",
    "SansIoConnection",
    "SeccServer",
    "ServerStats",
    "SessionOutcome",
    "VirtualClock",
    "run_evcc",
    "run_pair",
]
