#!/usr/bin/env python3
"""Codec benchmark: XmlCodec encode+validate and decode+validate vs lxml's own parse+validate.

For every message type (38: SAP, CommonMessages, DC) one fully populated example message is
encoded once; then, interleaved in the same loop, we time

* ``encode``   = ``XmlCodec.encode(message)``  (build tree, validate against the XSD, serialise)
* ``decode``   = ``XmlCodec.decode(payload_type, data)`` (hardened parse, validate, build the
  typed message)
* ``baseline`` = ``schema.validate(etree.fromstring(data))`` with lxml's default parser and
  the same compiled XSD: the cost of merely parsing and validating the same bytes.

Each figure is the median over repetitions, in microseconds. ``codec_ratio`` is the median over
message types of decode / baseline: how much typed decoding costs on top of what any validating
lxml user pays anyway. ``codec_encode_ratio`` is the same for encode / baseline.

    python tools/bench_codec.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lxml import etree

from mcscomm.codec import XmlCodec
from mcscomm.codec.base import MESSAGE_CLASSES
from mcscomm.messages.examples import example
from mcscomm.messages.meta import TYPE_TAGS


def run(quick: bool) -> dict[str, object]:
    """Measure every message type; return ``codec_ratio``, ``codec_encode_ratio``, ``codec_us``."""
    reps = 1000 if quick else 10000
    codec = XmlCodec()
    per_type: dict[str, dict[str, float]] = {}
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for cls in sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__):
            message: Any = example(cls)
            data = codec.encode(message)
            payload_type = codec.payload_type_for(message)
            ns = TYPE_TAGS[cls][0]
            assert ns is not None
            schema = codec.schema_for(ns)
            enc: list[float] = []
            dec: list[float] = []
            base: list[float] = []
            for _ in range(10):  # warm-up: plan compilation, caches
                codec.decode(payload_type, data)
                codec.encode(message)
            for _ in range(reps):
                t0 = clock()
                codec.encode(message)
                t1 = clock()
                codec.decode(payload_type, data)
                t2 = clock()
                ok = schema.validate(etree.fromstring(data))
                t3 = clock()
                assert ok
                enc.append(t1 - t0)
                dec.append(t2 - t1)
                base.append(t3 - t2)
            per_type[cls.__name__] = {
                "encode": round(statistics.median(enc) * 1e6, 2),
                "decode": round(statistics.median(dec) * 1e6, 2),
                "baseline": round(statistics.median(base) * 1e6, 2),
                "bytes": len(data),
            }
    finally:
        if gc_was_enabled:
            gc.enable()
    ratio = statistics.median(v["decode"] / v["baseline"] for v in per_type.values())
    enc_ratio = statistics.median(v["encode"] / v["baseline"] for v in per_type.values())
    return {
        "codec_ratio": round(ratio, 2),
        "codec_encode_ratio": round(enc_ratio, 2),
        "codec_us": per_type,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    result = run(args.quick)
    print(f"{'message':36s} {'bytes':>6s} {'encode':>8s} {'decode':>8s} {'lxml':>8s}  dec/lxml")
    per_type = result["codec_us"]
    assert isinstance(per_type, dict)
    for name, v in per_type.items():
        print(
            f"{name:36s} {v['bytes']:6d} {v['encode']:8.1f} {v['decode']:8.1f} "
            f"{v['baseline']:8.1f}  {v['decode'] / v['baseline']:.2f}"
        )
    print(f"codec_ratio (median decode/lxml): {result['codec_ratio']}")
    print(f"codec_encode_ratio (median encode/lxml): {result['codec_encode_ratio']}")
    print(json.dumps({k: v for k, v in result.items() if k != "codec_us"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
