#!/usr/bin/env python3
"""mcscomm benchmarks: every figure is a ratio against a baseline measured in the same run.

Each area has a module ``tools/bench_<area>.py`` with ``run(quick: bool) -> dict``; this script
runs them in order, prints a human summary and, with ``--json``, one JSON object as its last line.

    python tools/bench.py --quick --json
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

AREAS = [
    "transport",
    "codec",
    "security",
    "power",
    "session",
    "backend",
    "conformance",
    "fuzz",
    "exi",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument("--only", nargs="*", choices=AREAS, help="run only these areas")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    result: dict[str, Any] = {}
    for area in args.only or AREAS:
        try:
            module = importlib.import_module(f"bench_{area}")
        except ImportError as exc:
            print(f"[{area}] skipped: {exc}", file=sys.stderr)
            continue
        started = time.perf_counter()
        figures = module.run(args.quick)
        print(f"[{area}] {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for key, value in figures.items():
            print(f"  {key}: {json.dumps(value)}", file=sys.stderr)
        result.update(figures)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
