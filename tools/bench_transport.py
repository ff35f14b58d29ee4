#!/usr/bin/env python3
"""V2GTP framing benchmark: ``FrameDecoder.feed`` per frame vs a bare ``struct`` header loop.

A stream of glued frames (128-byte payloads, the size of a charge-loop message) is decoded by
our checked, construct-based ``FrameDecoder`` and by a baseline loop that only unpacks headers
and slices payloads with no checks at all, in the same run. ``framing_ratio`` = ours / baseline.

    python tools/bench_transport.py
"""

from __future__ import annotations

import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcscomm.v2gtp import FrameDecoder, PayloadType, build_frame

_HEADER = struct.Struct(">BBHI")


def _baseline(stream: bytes) -> int:
    count, offset = 0, 0
    while offset < len(stream):
        _v, _i, _t, length = _HEADER.unpack_from(stream, offset)
        _payload = stream[offset + 8 : offset + 8 + length]
        offset += 8 + length
        count += 1
    return count


def _ours(stream: bytes) -> int:
    return len(FrameDecoder().feed(stream))


def run(quick: bool) -> dict[str, object]:
    """Median µs per frame for both decoders and their ratio."""
    frames = 1000
    stream = build_frame(PayloadType.DC, bytes(128)) * frames
    ours, base = [], []
    for _ in range(5 if quick else 20):
        start = time.perf_counter()
        assert _ours(stream) == frames
        ours.append((time.perf_counter() - start) / frames * 1e6)
        start = time.perf_counter()
        assert _baseline(stream) == frames
        base.append((time.perf_counter() - start) / frames * 1e6)
    ours_us, base_us = statistics.median(ours), statistics.median(base)
    return {
        "framing_us": round(ours_us, 2),
        "framing_baseline_us": round(base_us, 2),
        "framing_ratio": round(ours_us / base_us, 1),
    }


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
