"""Sans-IO ISO 15118-20 sessions: the SECC and EVCC state machines, their timers and events.

``SeccConnection`` / ``EvccConnection`` (bytes in, bytes out, events, one deadline) are what the
asyncio endpoints drive; ``SeccSession`` / ``EvccSession`` are the state machines on typed
messages underneath. See docs/session.md.
"""

from __future__ import annotations

from mcscomm.session.config import (
    EvccConfig,
    EvccFaults,
    ImmediateAccept,
    Profile,
    SeccConfig,
    SeccFaults,
    SessionStore,
)
from mcscomm.session.connection import EvccConnection, SeccConnection
from mcscomm.session.evcc import EvccSession
from mcscomm.session.secc import SeccSession
from mcscomm.session.timings import Timings
from mcscomm.session.transitions import EvccState, SeccState

__all__ = [
    "EvccConfig",
    "EvccConnection",
    "EvccFaults",
    "EvccSession",
    "EvccState",
    "ImmediateAccept",
    "Profile",
    "SeccConfig",
    "SeccConnection",
    "SeccFaults",
    "SeccSession",
    "SeccState",
    "SessionStore",
    "Timings",
]
