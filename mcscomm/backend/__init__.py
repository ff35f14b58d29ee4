"""OCPP 2.1 backend link of the SECC: the charger as a charging station steered by a CSMS/EMS.

* :mod:`.profiles` -- charging profiles: parsing, validation, stacking, composite schedule (pure);
* :mod:`.mapping` -- composite targets -> power-layer backend plans; sessions -> OCPP payloads;
* :mod:`.queue` -- the transaction-event queue that survives CSMS outages;
* :mod:`.port` -- the contract with a live -20 session (snapshots in, control out);
* :mod:`.station` -- the OCPP client: boot, heartbeat, transactions, CSMS commands, reconnect;
* :mod:`.secc_link` -- the real SECC's sessions as transactions; :mod:`.cli` -- ``--csms``;
* :mod:`.loopback` -- a power-only session (tests, demos).

The names below load lazily, so ``mcscomm.backend.cli`` imports without the ``backend`` extra
(``ocpp``, ``websockets``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "BackendError": "mcscomm.backend.errors",
    "CsmsUnavailable": "mcscomm.backend.errors",
    "ProfileMalformed": "mcscomm.backend.errors",
    "ProfileRejected": "mcscomm.backend.errors",
    "SessionControl": "mcscomm.backend.port",
    "SessionSnapshot": "mcscomm.backend.port",
    "ChargingStation": "mcscomm.backend.station",
    "EvseHandle": "mcscomm.backend.station",
    "OfflinePolicy": "mcscomm.backend.station",
    "StationConfig": "mcscomm.backend.station",
    "attach": "mcscomm.backend.secc_link",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mcscomm.backend' has no attribute {name!r}")
    return getattr(import_module(module), name)
