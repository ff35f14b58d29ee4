"""Documents <-> typed messages: the :class:`Codec` interface and the validated XML codec.

``XmlCodec().encode(msg)`` gives schema-valid XML bytes; ``XmlCodec().decode(payload_type,
data)`` parses (hardened), validates and returns the typed message. Every failure is a
:class:`CodecError`.
"""

from __future__ import annotations

from mcscomm.codec.base import Codec, Message, payload_type_for
from mcscomm.codec.errors import (
    CodecError,
    HostileDocument,
    MalformedDocument,
    SchemaViolation,
    UnknownMessage,
)
from mcscomm.codec.xml import C14N_EXCLUSIVE, DEFAULT_MAX_BYTES, XmlCodec

__all__ = [
    "C14N_EXCLUSIVE",
    "DEFAULT_MAX_BYTES",
    "Codec",
    "CodecError",
    "HostileDocument",
    "MalformedDocument",
    "Message",
    "SchemaViolation",
    "UnknownMessage",
    "XmlCodec",
    "payload_type_for",
]
