"""Schema-informed EXI for ISO 15118-20 (the V2G EXI profile), built from the XSDs in schemas/.

``ExiCodec`` is the :class:`mcscomm.codec.base.Codec` for EXI: typed messages <-> EXI bytes, and
``canonicalize`` for signatures (EXI fragment encoding). See docs/exi.md.

    from mcscomm.exi import ExiCodec
    codec = ExiCodec()
    data = codec.encode(message)                  # b"\\x80..."
    message = codec.decode(0x8004, data)
"""

from __future__ import annotations

from mcscomm.exi.codec import CANONICAL_EXI, ExiCodec, grammar_for_payload, grammars, preload
from mcscomm.exi.errors import (
    ExiDecodeError,
    ExiEncodeError,
    ExiError,
    ExiLimitExceeded,
    ExiSchemaError,
    ExiTrailingData,
    ExiTruncated,
    ExiUnsupported,
)

__all__ = [
    "CANONICAL_EXI",
    "ExiCodec",
    "ExiDecodeError",
    "ExiEncodeError",
    "ExiError",
    "ExiLimitExceeded",
    "ExiSchemaError",
    "ExiTrailingData",
    "ExiTruncated",
    "ExiUnsupported",
    "grammar_for_payload",
    "grammars",
    "preload",
]
