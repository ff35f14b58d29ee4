"""When a truck with no duration and no departure leaves: the idle rule at its target SoC
(``EvccConfig.v2g_floor_idle_s``), and the depot flow that must not be cut short by it."""

from __future__ import annotations

import pytest

from mcscomm.session.events import PowerSample
from mcscomm.session.loopback import PairResult, default_configs, make_pair, run_pair

IDLE_S = 30.0


def _full_pair(
    *, departure_s: float | None = None, backend_w: float | None = None, max_time: float = 600.0
) -> PairResult:
    """A bidirectional (MCS_BPT, EIM) truck that starts just below its target, no duration."""
    secc_cfg, evcc_cfg = default_configs(scenario=None)
    evcc_cfg.initial_soc = 0.795
    evcc_cfg.target_soc = 0.8
    evcc_cfg.departure_s = departure_s
    evcc_cfg.v2g_floor_idle_s = IDLE_S
    assert evcc_cfg.duration_s is None
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    if backend_w is not None:
        secc.set_backend(backend_w, 0.0)
    return run_pair(evcc, secc, max_time=max_time)


def test_full_bidirectional_truck_without_departure_leaves_after_idling() -> None:
    r = _full_pair()
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "success"
    assert ended.reason.endswith("at its target SoC")
    samples = [e for e in r.evcc_events if isinstance(e, PowerSample)]
    soc = [s.soc or 0.0 for s in samples]
    assert soc[-1] >= 80.0
    # it charged first, then idled at least IDLE_S before leaving (not immediately on arrival)
    assert any(s.power_w > 1000.0 for s in samples)
    full_at = next(s.t for s, x in zip(samples, soc, strict=True) if x >= 80.0)
    assert samples[-1].t - full_at >= IDLE_S - 1.0
    assert r.now < 600.0


def test_full_truck_with_departure_stays_until_departure() -> None:
    r = _full_pair(departure_s=200.0)
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "success"
    assert "target SoC" not in ended.reason
    samples = [e for e in r.evcc_events if isinstance(e, PowerSample)]
    assert samples[-1].t >= 199.0  # the backend may still want its energy until departure


def test_discharging_truck_is_not_idle() -> None:
    # the backend discharges from the start: the truck is never idle at its target
    r = _full_pair(backend_w=-200_000.0, max_time=120.0)
    assert r.ended("evcc") is None  # still in the loop when the clock stops
    samples = [e for e in r.evcc_events if isinstance(e, PowerSample)]
    assert any(s.power_w < -1000.0 for s in samples)


def test_unidirectional_truck_leaves_when_full() -> None:
    from mcscomm.messages.enums import ServiceId

    secc_cfg, evcc_cfg = default_configs(scenario=None)
    evcc_cfg.service = ServiceId.MCS
    evcc_cfg.initial_soc, evcc_cfg.target_soc = 0.795, 0.8
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc, max_time=600.0)
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "success"
    assert r.now < IDLE_S * 4  # no idle wait: full means done


def test_default_depot_flow_without_duration_charges_discharges_tops_up_and_departs() -> None:
    secc_cfg, evcc_cfg = default_configs()  # `mcscomm session` defaults: 30 min, virtual time
    assert evcc_cfg.duration_s is None and evcc_cfg.departure_s is not None
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc)
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "success"
    assert "target SoC" not in ended.reason and "V2G floor" not in ended.reason
    p = [e.power_w for e in r.secc_events if isinstance(e, PowerSample)]
    first_dis = next(i for i, x in enumerate(p) if x < -1000.0)
    assert any(x > 1000.0 for x in p[:first_dis])  # charges first
    assert any(x > 1000.0 for x in p[first_dis:])  # and tops up after the evening peak
    assert r.now == pytest.approx(evcc_cfg.departure_s, abs=1.0)  # leaves at departure
