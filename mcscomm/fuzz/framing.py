"""V2GTP-level mutations of one frame: header bytes, payload type, lying lengths, split and
glued frames, slow senders (ISO 15118-20 §V2GTP, facts §1.1–1.3).

Each is ``(rng, payload_type, document, expect) -> (steps-as-(data, expect, chunks, gap), label)``
where ``expect`` is the expectation of the intact frame. A broken header must make the target close
the connection without answering (facts §1.3), so such frames expect ``reject``.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from mcscomm.fuzz.model import ANY, REJECT
from mcscomm.v2gtp import INVERSE_PROTOCOL_VERSION, PROTOCOL_VERSION, build_frame

#: (data, expectations of the frames it completes, chunks, gap between chunks in s)
Write = tuple[bytes, tuple[str, ...], int, float]
FrameMutator = Callable[[random.Random, int, bytes, str], tuple[list[Write], str]]


def _header(version: int, inverse: int, payload_type: int, length: int) -> bytes:
    return struct.pack(">BBHI", version, inverse, payload_type, length)


def version(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    v = rng.choice([x for x in (0x00, 0x02, 0xFE, 0xFF, rng.randrange(256)) if x != 1])
    data = _header(v, v ^ 0xFF, pt, len(doc)) + doc
    return [(data, (REJECT,), 1, 0.0)], f"version {v:#04x}"


def inverse(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    inv = rng.choice([x for x in (0x00, 0xFF, 0x01, rng.randrange(256)) if x != 0xFE])
    data = _header(PROTOCOL_VERSION, inv, pt, len(doc)) + doc
    return [(data, (REJECT,), 1, 0.0)], f"inverse {inv:#04x}"


_PAYLOAD_TYPES = (
    0x0000,
    0x1234,
    0x8001,
    0x8002,
    0x8003,
    0x8004,
    0x8005,
    0x8101,
    0x8102,
    0x9000,
    0x9001,
    0xA000,
    0xFFFF,
)


def payload_type(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    new = rng.choice([p for p in _PAYLOAD_TYPES if p != pt])
    # expectation decided by the caller's classifier (it knows which types carry what)
    return [(build_frame(new, doc), ("classify",), 1, 0.0)], f"payload type {new:#06x}"


def length_short(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    cut = rng.randint(1, max(1, len(doc)))
    data = _header(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, pt, len(doc) - cut) + doc
    return [(data, (REJECT,), 1, 0.0)], f"length {cut} short"


def length_long(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    extra = rng.choice((1, 7, 100, 4096))
    data = _header(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, pt, len(doc) + extra) + doc
    return [(data, (), 1, 0.0)], f"length {extra} long (never completed)"


def length_max(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    n = rng.choice((0xFFFFFFFF, 0x80000000, 65537, 1 << 24))
    data = _header(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, pt, n) + doc
    return [(data, (), 1, 0.0)], f"length {n:#x}"


def length_zero(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    data = _header(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, pt, 0)
    return [(data, (REJECT,), 1, 0.0)], "empty payload"


def split(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    n = rng.choice((2, 3, 8, 9, 64))
    return [(build_frame(pt, doc), (expect,), n, 0.0)], f"split in {n}"


def slow(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    n = rng.choice((2, 4, 10))
    gap = rng.choice((0.05, 0.3, 2.0, 30.0))
    return [(build_frame(pt, doc), (expect,), n, gap)], f"{n} chunks {gap}s apart"


def glued(rng: random.Random, pt: int, doc: bytes, expect: str) -> tuple[list[Write], str]:
    times = rng.choice((2, 3, 16))
    frame = build_frame(pt, doc)
    # repeats of a request are only fine where the state loops on it: let the caller classify
    return [(frame * times, (expect,) + ("repeat",) * (times - 1), 1, 0.0)], f"glued x{times}"


def trailing_garbage(
    rng: random.Random, pt: int, doc: bytes, expect: str
) -> tuple[list[Write], str]:
    junk = rng.randbytes(rng.choice((1, 7, 8, 30)))
    return [(build_frame(pt, doc) + junk, (expect,), 1, 0.0)], f"{len(junk)} junk bytes after"


FRAME_MUTATORS: dict[str, tuple[FrameMutator, int]] = {
    "v2gtp.version": (version, 1),
    "v2gtp.inverse": (inverse, 1),
    "v2gtp.payload_type": (payload_type, 2),
    "v2gtp.length_short": (length_short, 1),
    "v2gtp.length_long": (length_long, 1),
    "v2gtp.length_max": (length_max, 1),
    "v2gtp.length_zero": (length_zero, 1),
    "v2gtp.split": (split, 2),
    "v2gtp.slow": (slow, 1),
    "v2gtp.glued": (glued, 1),
    "v2gtp.trailing_garbage": (trailing_garbage, 1),
}

__all__ = ["ANY", "FRAME_MUTATORS", "REJECT", "Write"]
