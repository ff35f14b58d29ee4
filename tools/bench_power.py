#!/usr/bin/env python3
"""Power benchmark: one negotiation + control step, in µs, against a baseline in the same run.

One "step" is what every charge-loop cycle of every session costs the power layer on both ends:
the truck builds its request (battery integration, derating, limits), the SECC controller decides
(limits in force from all parties and the backend, clamp, flags, ramp, meter, safe state), and
the truck observes the result. The baseline is a trivial ``min()`` over the same number of floats
the SECC step combines (the limits in force), so the ratio says how much dearer the real thing
is than the least any limit check could cost.

    python tools/bench_power.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcscomm.power import (
    Mode,
    load_charger,
    load_scenario,
    load_truck,
)
from mcscomm.power.sim import pair

N_LIMITS = 24  # floats the SECC step combines per cycle (EVSE side, EV side, backend, request)


def _best_of(fn: object, loops: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(loops)  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def run(quick: bool) -> dict[str, object]:
    """``power_step_us`` (truck request + SECC step + observe), its baseline ratio, and
    ``power_secc_step_us`` (the SECC controller's step alone, what an SECC pays per truck)."""
    loops = 20_000 if quick else 200_000
    repeats = 3 if quick else 5
    secc, truck = pair(
        load_truck("mcs_7pack"),
        load_charger("mcs_1mw_bpt"),
        load_scenario("depot_peak_shaving"),
        mode=Mode.DYNAMIC,
    )
    secc.start_power_delivery(0.0)
    state = {"t": 0.0}

    def steps(n: int) -> None:
        t = state["t"]
        for _ in range(n):
            t += 0.25
            req = truck.request(t)
            d = secc.step(t, req)
            truck.accept_evse_limits(d)
            truck.observe(t, d.present_current_a, d.present_voltage_v)
        state["t"] = t

    req = truck.request(state["t"])

    def secc_only(n: int) -> None:
        t = state["t"]
        for _ in range(n):
            t += 0.25
            secc.step(t, req)
        state["t"] = t

    floats = [float(k) for k in range(N_LIMITS)]

    def baseline(n: int) -> None:
        for _ in range(n):
            min(floats)

    steps(1000)  # warm up
    step_s = _best_of(steps, loops, repeats)
    secc_s = _best_of(secc_only, loops, repeats)
    base_s = _best_of(baseline, loops, repeats)
    return {
        "power_step_us": round(step_s * 1e6, 2),
        "power_step_baseline_us": round(base_s * 1e6, 3),
        "power_step_ratio": round(step_s / base_s, 1),
        "power_secc_step_us": round(secc_s * 1e6, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.quick)))
