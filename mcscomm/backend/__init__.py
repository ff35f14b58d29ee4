"""OCPP 2.1 backend link of the SECC: the charger as a charging station steered by a CSMS/EMS.

* :mod:`.profiles` -- charging profiles: parsing, validation, stacking, composite schedule (pure);
* :mod:`.mapping` -- composite targets -> power-layer backend plans; sessions -> OCPP payloads;
* :mod:`.queue` -- the transaction-event queue that survives CSMS outages;
* :mod:`.port` -- the contract with a live -20 session (snapshots in, control out);
* :mod:`.station` -- the OCPP client: boot, heartbeat, transactions, CSMS commands, reconnect;
* :mod:`.loopback` -- a power-only session (tests, demos); :mod:`.secc_link` -- the real SECC.

Needs the ``backend`` extra (``ocpp``, ``websockets``).
"""

from mcscomm.backend.errors import BackendError, CsmsUnavailable, ProfileMalformed, ProfileRejected
from mcscomm.backend.port import SessionControl, SessionSnapshot
from mcscomm.backend.station import ChargingStation, EvseHandle, OfflinePolicy, StationConfig

__all__ = [
    "BackendError",
    "ChargingStation",
    "CsmsUnavailable",
    "EvseHandle",
    "OfflinePolicy",
    "ProfileMalformed",
    "ProfileRejected",
    "SessionControl",
    "SessionSnapshot",
    "StationConfig",
]
