"""Errors of the codec layer: every failure to encode or decode a document is a CodecError."""

from __future__ import annotations


class CodecError(Exception):
    """A message could not be encoded, or bytes could not be decoded into a message."""


class MalformedDocument(CodecError):
    """The bytes are not a well-formed document (bad XML syntax, invalid UTF-8, bad EXI)."""


class HostileDocument(MalformedDocument):
    """The document looks like an attack: DTD / entities (XXE, billion laughs), excessive size
    or nesting depth. Refused before or while parsing, without expanding anything."""


class SchemaViolation(CodecError):
    """The document or message does not satisfy the XSD (a facet, a missing or extra element).

    ``path`` names where: an XPath-like path of the offending element (``/ns:Root/ct:Value``) or
    a dotted field path (``DC_ChargeLoopReq.ev_present_voltage.value``).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class UnknownMessage(CodecError):
    """The root element is not a message we know, or not one allowed on this payload type."""
