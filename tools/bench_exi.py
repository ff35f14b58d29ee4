#!/usr/bin/env python3
"""EXI benchmark: ExiCodec encode/decode per message type vs the XML codec in the same run.

For every message type (SAP, CommonMessages, DC: 38) one fully populated example message is
encoded once; then, interleaved in the same loop, we time

* ``exi_encode`` = ``ExiCodec.encode(message)`` (element tree, XSD validation, EXI encoding)
* ``exi_decode`` = ``ExiCodec.decode(payload_type, data)`` (EXI decoding, XSD validation,
  typed message)
* ``xml_encode`` / ``xml_decode`` = the same through ``XmlCodec`` (the baseline; if the XML
  codec is missing, lxml's serialise / parse of the same tree)
* ``raw_encode`` / ``raw_decode`` = the EXI layer alone (element tree <-> bytes), without
  validation and without the typed-message mapping.

Figures are medians in microseconds. ``exi_ratio`` is the median over message types of
(EXI encode + decode) / (XML encode + decode).

    python tools/bench_exi.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lxml import etree

from mcscomm.exi.codec import ExiCodec, grammar_for_payload
from mcscomm.exi.stream import decode_document, encode_document


def _load_messages() -> tuple[list[Any], Any]:
    try:
        from mcscomm.codec import XmlCodec
        from mcscomm.codec.base import MESSAGE_CLASSES
        from mcscomm.messages.examples import example
    except ImportError:  # pragma: no cover - the XML codec is part of the tree
        return [], None
    classes = sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)
    return [example(cls) for cls in classes], XmlCodec()


def _median_us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 2)


def run(quick: bool) -> dict[str, object]:
    """Measure every message type; return ``exi_ratio``, ``exi_charge_loop_us`` and ``exi_us``."""
    reps = 300 if quick else 3000
    messages, xml = _load_messages()
    exi = ExiCodec()
    clock = time.perf_counter
    per_type: dict[str, dict[str, float]] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for message in messages:
            name = type(message).__name__
            payload_type = exi.payload_type_for(message)
            data = exi.encode(message)
            xml_data = xml.encode(message)
            root = exi.decode_element(payload_type, data)
            grammar = grammar_for_payload(payload_type)
            steps: dict[str, Callable[[], object]] = {
                "exi_encode": partial(exi.encode, message),
                "exi_decode": partial(exi.decode, payload_type, data),
                "xml_encode": partial(xml.encode, message),
                "xml_decode": partial(xml.decode, payload_type, xml_data),
                "raw_encode": partial(encode_document, grammar, root),
                "raw_decode": partial(decode_document, grammar, data),
                "lxml_serialise": partial(etree.tostring, root),
                "lxml_parse": partial(etree.fromstring, xml_data),
            }
            for fn in steps.values():  # warm-up: grammar and plan caches
                for _ in range(5):
                    fn()
            samples: dict[str, list[float]] = {k: [] for k in steps}
            for _ in range(reps):
                for key, fn in steps.items():
                    t0 = clock()
                    fn()
                    samples[key].append(clock() - t0)
            figures = {k: _median_us(v) for k, v in samples.items()}
            figures["exi_bytes"] = len(data)
            figures["xml_bytes"] = len(xml_data)
            per_type[name] = figures
    finally:
        if gc_was_enabled:
            gc.enable()
    ratio = statistics.median(
        (v["exi_encode"] + v["exi_decode"]) / (v["xml_encode"] + v["xml_decode"])
        for v in per_type.values()
    )
    raw_ratio = statistics.median(
        (v["raw_encode"] + v["raw_decode"]) / (v["lxml_serialise"] + v["lxml_parse"])
        for v in per_type.values()
    )
    size_ratio = statistics.median(v["exi_bytes"] / v["xml_bytes"] for v in per_type.values())
    loop = {k: v for k, v in per_type.items() if "ChargeLoop" in k}
    return {
        "exi_ratio": round(ratio, 2),
        "exi_raw_ratio": round(raw_ratio, 2),
        "exi_size_ratio": round(size_ratio, 3),
        "exi_charge_loop_us": {
            k: {"encode": v["exi_encode"], "decode": v["exi_decode"]} for k, v in loop.items()
        },
        "exi_us": per_type,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    result = run(args.quick)
    per_type = result["exi_us"]
    assert isinstance(per_type, dict)
    print(
        f"{'message':32s} {'exi B':>6s} {'xml B':>6s} {'exi enc':>8s} {'exi dec':>8s} "
        f"{'xml enc':>8s} {'xml dec':>8s} {'raw enc':>8s} {'raw dec':>8s}"
    )
    for name, v in per_type.items():
        print(
            f"{name:32s} {v['exi_bytes']:6d} {v['xml_bytes']:6d} {v['exi_encode']:8.1f} "
            f"{v['exi_decode']:8.1f} {v['xml_encode']:8.1f} {v['xml_decode']:8.1f} "
            f"{v['raw_encode']:8.1f} {v['raw_decode']:8.1f}"
        )
    print(json.dumps({k: v for k, v in result.items() if k != "exi_us"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
