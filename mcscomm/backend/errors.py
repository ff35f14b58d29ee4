"""Errors of the OCPP backend layer: one base class, subclasses for the kinds.

* :class:`ProfileMalformed` -- a charging profile (or schedule update) that breaks OCPP's own
  rules beyond the JSON schema (periods out of order, a setpoint outside its own limits, ...).
  It carries the OCPP error code the station answers with (a CALLERROR, OCPP-J §4.3).
* :class:`ProfileRejected` -- a well-formed profile this station cannot honour (no V2X on this
  session, a setpoint beyond the rated envelope, no transaction for a TxProfile, ...). The station
  answers ``status=Rejected`` with ``statusInfo.reasonCode`` (max 20 characters, OCPP 2.1 schema).
"""

from __future__ import annotations


class BackendError(Exception):
    """Base class of every error raised by :mod:`mcscomm.backend` and :mod:`mcscomm.ems`."""


class ProfileMalformed(BackendError):
    """Structurally invalid profile; ``code`` is the OCPP CALLERROR code to answer with."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


class ProfileRejected(BackendError):
    """A valid profile the station cannot honour; ``reason`` becomes statusInfo.reasonCode."""

    def __init__(self, reason: str, detail: str) -> None:
        if len(reason) > 20:
            raise ValueError(f"OCPP reasonCode is at most 20 characters: {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class CsmsUnavailable(BackendError):
    """The CSMS could not be reached (or the link dropped) while a call was in flight."""
