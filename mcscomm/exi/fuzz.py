"""Fuzz target for the EXI decoder (for hypothesis, atheris or the ``mcscomm fuzz`` campaigns).

``fuzz_one(data)`` uses the first byte to pick the payload type and decodes the rest. The oracle:
the decoder either returns a document, which must re-encode and decode to the same tree, or
raises an :class:`~mcscomm.codec.errors.CodecError`. Anything else escapes as a finding.

    python -m mcscomm.exi.fuzz < corpus_file      # run one input by hand
"""

from __future__ import annotations

import sys

from lxml import etree

from mcscomm.codec.errors import CodecError
from mcscomm.exi.codec import grammar_for_payload
from mcscomm.exi.stream import decode_document, encode_document

PAYLOAD_TYPES = (0x8001, 0x8002, 0x8004, 0x8102)


def fuzz_one(data: bytes) -> bool:
    """Run one input; True if it decoded, False if it was refused with a CodecError."""
    if not data:
        return False
    payload_type = PAYLOAD_TYPES[data[0] % len(PAYLOAD_TYPES)]
    grammar = grammar_for_payload(payload_type)
    try:
        root = decode_document(grammar, data[1:])
    except CodecError:
        return False
    again = decode_document(grammar, encode_document(grammar, root))
    if etree.tostring(again) != etree.tostring(root):  # pragma: no cover - a finding
        raise AssertionError("decoded document does not survive re-encoding")
    return True


def main() -> int:  # pragma: no cover - manual use
    print("decoded" if fuzz_one(sys.stdin.buffer.read()) else "refused")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
