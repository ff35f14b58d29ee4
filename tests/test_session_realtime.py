"""Sessions on a Unix-time clock (real-time runs): ``now`` ~1.7e9 with a fractional start.

Regression: the SECC built its schedule on the fractional backend plan while the wire carried
truncated whole-second Durations, so the EV's EVPowerProfile (following the wire schedule) hit a
change point early and got FAILED_EVPowerProfileViolation.
"""

from __future__ import annotations

import dataclasses

import pytest

from mcscomm.messages.enums import ControlMode, ServiceId
from mcscomm.power.schedule import PowerSchedule
from mcscomm.session.loopback import default_configs, make_pair, run_pair
from mcscomm.session.secc_handlers import _on_wire

UNIX_START = 1.7e9 + 0.37


@pytest.mark.parametrize("start", [UNIX_START, 0.37])
@pytest.mark.parametrize("mode", [ControlMode.SCHEDULED, ControlMode.DYNAMIC])
@pytest.mark.parametrize(
    "service", [ServiceId.DC, ServiceId.DC_BPT, ServiceId.MCS, ServiceId.MCS_BPT]
)
def test_session_succeeds_on_unix_time(start: float, mode: ControlMode, service: ServiceId) -> None:
    # time_scale 1/30: plan steps land on fractional seconds (the real-time CLI's --duration)
    secc_cfg, evcc_cfg = default_configs(time_scale=1 / 30)
    evcc_cfg = dataclasses.replace(evcc_cfg, control_mode=mode, service=service)
    evcc, secc = make_pair(secc_cfg, evcc_cfg, now=start)
    result = run_pair(evcc, secc, start=start, max_time=start + 900)
    for side in ("evcc", "secc"):
        ended = result.ended(side)
        assert ended is not None, side
        assert ended.result == "success", (side, ended.reason)
    assert secc.session.ctx.counters.charge_loop_cycles > 0
    if mode is ControlMode.SCHEDULED:
        assert secc.session.ctx.selected_schedule_id is not None


def test_on_wire_rounds_change_points_without_drift() -> None:
    ps = PowerSchedule(1_700_000_000.0, ((600.37, 750e3), (540.0, 0.0), (0.1, 5.0), (99.6, 1e3)))
    wire = _on_wire(ps)
    assert wire.time_anchor == 1_700_000_000.0
    # change points at round(600.37)=600, round(1140.37)=1140; the 0.1 s entry
    # (1140.37-1140.47) vanishes
    assert wire.entries == ((600.0, 750e3), (540.0, 0.0), (100.0, 1e3))
    assert all(d == int(d) for d, _ in wire.entries)
    # the total length follows the rounded end, not the sum of truncated durations
    assert wire.end == round(ps.end)


def test_on_wire_powers_are_the_wire_values() -> None:
    # 1 000 000.9 W cannot be sent exactly: the EV reads 10000 x 10^2, and so must the SECC
    wire = _on_wire(PowerSchedule(0.0, ((10.0, 1_000_000.9),)))
    assert wire.entries == ((10.0, 1_000_000.0),)
