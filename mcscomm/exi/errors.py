"""Errors of the EXI layer: one base class, subclasses for the kinds.

Everything the EXI codec raises on bad input (from a peer or a caller) is an :class:`ExiError`.
The kinds also subclass the matching :mod:`mcscomm.codec.errors` class, so a session that
catches ``CodecError`` handles EXI and XML failures alike.
"""

from __future__ import annotations

from mcscomm.codec.errors import CodecError, HostileDocument, MalformedDocument, SchemaViolation


class ExiError(CodecError):
    """Base class of every EXI failure (bad stream, unencodable document, schema problem)."""


class ExiDecodeError(ExiError, MalformedDocument):
    """The EXI stream is not a valid stream for the grammar (wrong header, bad event code, ...)."""


class ExiTruncated(ExiDecodeError):
    """The stream ended before the document did."""


class ExiTrailingData(ExiDecodeError):
    """Bytes other than zero padding follow the end of the document."""


class ExiLimitExceeded(ExiDecodeError, HostileDocument):
    """A length, value or nesting depth exceeds what the input or the schema allows."""


class ExiUnsupported(ExiDecodeError):
    """A valid EXI feature the V2G profile excludes (second-level events, string-table hits)."""


class ExiEncodeError(ExiError, SchemaViolation):
    """The document does not fit the grammar (unknown element, missing child, bad value)."""


class ExiUnsupportedEncode(ExiEncodeError):
    """The document needs a feature the V2G profile does not use (wildcard content, xsi:type)."""


class ExiSchemaError(ExiError):
    """The XSDs cannot be read or use a construct the grammar builder does not support."""
