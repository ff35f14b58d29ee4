"""Which V2GTP payload types a -20 TCP/TLS connection carries, and which messages go on each.

A -20 connection multiplexes streams by payload type (facts §1.2, -20 §8.6.5): the main stream
(SAP 0x8001, CommonMessages 0x8002, DC 0x8004, ...) and side streams (0x8101–0x8104, e.g. metering
confirmation on 0x8102, V2G20-1084/1085). The SDP types 0x9000–0x9003 belong to UDP (facts §2.1),
manufacturer types 0xA000–0xFFFF mean nothing to us, and the rest is reserved.

Policy of both connection ends (used by ``connection.py`` and ``secc.py``):

* a frame whose payload type is not one of the -20 stream types is an unsupported payload type:
  the standard says *ignore* the message (V2G20-092, facts §1.3), which on a byte stream means
  closing the connection with a logged reason (``v2gtp.UnknownPayloadType``);
* a known request on a stream type that does not carry it is answered FAILED_SequenceError
  (``errors.WrongPayloadType``) -- on the response's *own* payload type, never echoing the
  request's wrong one;
* otherwise a response travels on the stream its request came on (MeteringConfirmation may use
  the main stream 0x8002 or its side stream 0x8102).
"""

from __future__ import annotations

from mcscomm.codec.base import PAYLOAD_MESSAGES, payload_type_for
from mcscomm.v2gtp import PayloadType

#: The payload types of the -20 TCP/TLS streams (facts §1.2): main 0x8001–0x8006, side
#: 0x8101–0x8104. Not the SDP types (UDP only) nor the manufacturer range.
STREAM_PAYLOAD_TYPES: frozenset[int] = frozenset(
    int(p) for p in PayloadType if 0x8001 <= p <= 0x80FF or 0x8101 <= p <= 0x81FF
)

# payload type -> the message classes the codecs carry on it, and their names
_CARRIED: dict[int, frozenset[type]] = {
    int(pt): frozenset(classes) for pt, classes in PAYLOAD_MESSAGES.items()
}
_CARRIED_NAMES: dict[int, frozenset[str]] = {
    pt: frozenset(cls.__name__ for cls in classes) for pt, classes in _CARRIED.items()
}


def is_stream_payload_type(payload_type: int) -> bool:
    """The ``accept`` of a connection's FrameDecoder: True for a -20 stream payload type."""
    return payload_type in STREAM_PAYLOAD_TYPES


def carries(payload_type: int, message_type: type) -> bool:
    """True if messages of ``message_type`` may travel on ``payload_type``."""
    return message_type in _CARRIED.get(payload_type, ())


def carries_name(payload_type: int, message_name: str) -> bool:
    """:func:`carries` by class name (the root element of a document that did not decode)."""
    return message_name in _CARRIED_NAMES.get(payload_type, ())


def response_payload_type(response: object, request_payload_type: int) -> int:
    """The payload type to send ``response`` on: its request's when that stream carries it,
    else the response's own (a request that came on the wrong stream)."""
    if carries(request_payload_type, type(response)):
        return request_payload_type
    return payload_type_for(response)


__all__ = [
    "STREAM_PAYLOAD_TYPES",
    "carries",
    "carries_name",
    "is_stream_payload_type",
    "response_payload_type",
]
