"""Deliberately broken SECCs: proof that the oracles see real defects (issue 7, tests).

Each variant wraps or configures the real :class:`~mcscomm.session.connection.SeccConnection`
with exactly one defect:

* ``crash-on-field`` -- an exception escapes ``receive_data`` when any RationalNumber of a
  request has an exponent of 100 or more (a ``10**exponent`` conversion bug);
* ``hang-in-state`` -- in WAIT_CHARGE_PARAMETER_DISCOVERY a request the state does not allow is
  swallowed: no answer, no FAILED, connection left open;
* ``sequence-error`` -- out-of-order requests are served (``SeccFaults.accept_out_of_order``);
* ``exceed-limit`` -- the charge loop reports 1.2 x the allowed current
  (``SeccFaults.exceed_limit``);
* ``leak-memory`` -- every connection leaves a few objects behind in a module-level list (the
  resource oracle's case).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mcscomm.codec import CodecError
from mcscomm.messages import RationalNumber
from mcscomm.session.config import SeccFaults
from mcscomm.session.connection import SeccConnection, default_codec
from mcscomm.session.secc import InjectedCrash
from mcscomm.session.transitions import SECC_TABLE

HANG_STATE = "WAIT_CHARGE_PARAMETER_DISCOVERY"


class PlantedCrash(InjectedCrash):
    """The exception the crash-on-field variant lets escape (an ``InjectedCrash``, the one
    exception the connection's last line of defence lets through on purpose)."""


def _has_big_exponent(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, RationalNumber):
        return obj.exponent >= 100
    if depth > 12 or not dataclasses.is_dataclass(obj):
        return False
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        items = v if isinstance(v, list) else [v]
        if any(_has_big_exponent(x, depth + 1) for x in items):
            return True
    return False


class CrashOnFieldSecc(SeccConnection):
    def _receive_frame(self, payload_type: int, payload: bytes, now: float) -> None:
        try:
            message = self.codec.decode(payload_type, payload)
        except CodecError:
            message = None
        if message is not None and _has_big_exponent(message):
            raise PlantedCrash("10**exponent overflow converting a RationalNumber")
        super()._receive_frame(payload_type, payload, now)


class HangInStateSecc(SeccConnection):
    def _receive_frame(self, payload_type: int, payload: bytes, now: float) -> None:
        state = self.session.state
        if state.name == HANG_STATE:
            try:
                name = type(self.codec.decode(payload_type, payload)).__name__
            except CodecError:
                name = None
            if name is not None and name not in SECC_TABLE[state]:
                return  # swallowed: the planted hang
        super()._receive_frame(payload_type, payload, now)


#: where the leaking variant puts what it forgets to free
LEAKED: list[object] = []


class LeakingSecc(SeccConnection):
    def receive_data(self, data: bytes, now: float) -> None:
        # Nine gc-tracked objects per call: a leak clearly above the object-count noise of bounded
        # caches warming up elsewhere in the process, so the oracle's verdict is not load-dependent.
        LEAKED.extend([{"conn": id(self), "i": i} for i in range(8)] + [[now], bytearray(64)])
        super().receive_data(data, now)


def _faults_variant(faults: SeccFaults) -> Callable[[Any], SeccConnection]:
    def make(config: Any) -> SeccConnection:
        return SeccConnection(
            dataclasses.replace(config, faults=faults), now=0.0, tls=True, codec=default_codec()
        )

    return make


def _class_variant(cls: type[SeccConnection]) -> Callable[[Any], SeccConnection]:
    def make(config: Any) -> SeccConnection:
        return cls(config, now=0.0, tls=True, codec=default_codec())

    return make


#: name -> factory(SeccConfig) -> SeccConnection
VARIANTS: dict[str, Callable[[Any], SeccConnection]] = {
    "crash-on-field": _class_variant(CrashOnFieldSecc),
    "hang-in-state": _class_variant(HangInStateSecc),
    "sequence-error": _faults_variant(SeccFaults(accept_out_of_order=True)),
    "exceed-limit": _faults_variant(SeccFaults(exceed_limit=1.2)),
    "leak-memory": _class_variant(LeakingSecc),
}
