"""A depot CSMS/EMS speaking OCPP 2.1: :mod:`.csms` (the server), :mod:`.manager` (the pure
energy manager sharing a grid connection), :mod:`.depot` (the two joined, run by ``mcscomm ems``).
"""

from mcscomm.ems.csms import Csms, StationCallError, StationOffline, StationRecord, TxRecord

__all__ = ["Csms", "StationCallError", "StationOffline", "StationRecord", "TxRecord"]
