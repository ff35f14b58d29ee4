"""The codec interface shared by the XML and EXI codecs, and the message/payload-type registry.

A codec turns typed messages into payload bytes and back. The payload type (V2GTP header) picks
the schema on decode: 0x8001 SupportedAppProtocol, 0x8002 CommonMessages, 0x8004 DC, 0x8102
MeteringConfirmation side stream (CommonMessages schema, only MeteringConfirmationReq/Res).
"""

from __future__ import annotations

from typing import Protocol, TypeAlias

from mcscomm.messages import app_protocol, common_messages, dc
from mcscomm.messages.app_protocol import SupportedAppProtocolReq, SupportedAppProtocolRes
from mcscomm.messages.common_messages import MeteringConfirmationReq, MeteringConfirmationRes
from mcscomm.messages.common_types import V2GMessage
from mcscomm.messages.meta import tag_of
from mcscomm.v2gtp import PayloadType

#: Anything a codec encodes or decodes as a whole document.
Message: TypeAlias = V2GMessage | SupportedAppProtocolReq | SupportedAppProtocolRes

#: payload type -> the message classes whose root element may arrive on it
PAYLOAD_MESSAGES: dict[int, tuple[type, ...]] = {
    PayloadType.SAP: app_protocol.ROOT_MESSAGES,
    PayloadType.COMMON: common_messages.ROOT_MESSAGES,
    PayloadType.DC: dc.ROOT_MESSAGES,
    PayloadType.METERING_CONFIRMATION: (MeteringConfirmationReq, MeteringConfirmationRes),
}

#: every message class we handle, by Clark-notation root tag
MESSAGE_CLASSES: dict[str, type] = {
    tag_of(cls): cls for classes in PAYLOAD_MESSAGES.values() for cls in classes
}

_PAYLOAD_OF: dict[type, int] = {}
for _pt in (PayloadType.SAP, PayloadType.COMMON, PayloadType.DC):
    for _cls in PAYLOAD_MESSAGES[_pt]:
        _PAYLOAD_OF[_cls] = int(_pt)
# V2G20-1084/1085: metering confirmation runs on its own side stream
_PAYLOAD_OF[MeteringConfirmationReq] = int(PayloadType.METERING_CONFIRMATION)
_PAYLOAD_OF[MeteringConfirmationRes] = int(PayloadType.METERING_CONFIRMATION)


def payload_type_for(message: object) -> int:
    """The V2GTP payload type a message travels on. Raises UnknownMessage for other objects."""
    from mcscomm.codec.errors import UnknownMessage

    try:
        return _PAYLOAD_OF[type(message)]
    except KeyError:
        raise UnknownMessage(f"{type(message).__name__} is not a message") from None


class Codec(Protocol):
    """Encode/decode messages by payload type; canonicalize signable fragments."""

    #: the xmldsig CanonicalizationMethod/Transform algorithm this codec implements
    canonicalization_uri: str

    def encode(self, message: Message) -> bytes:
        """Validated payload bytes for ``message``; raises CodecError (SchemaViolation, ...)."""
        ...

    def decode(self, payload_type: int, data: bytes) -> Message:
        """The message in ``data`` (validated); raises CodecError on any problem."""
        ...

    def payload_type_for(self, message: Message) -> int:
        """The V2GTP payload type ``message`` travels on."""
        ...

    def canonicalize(self, fragment: object) -> bytes:
        """Canonical bytes of a signable fragment or a SignedInfo (digest/signature input)."""
        ...
