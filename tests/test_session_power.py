"""Power safety through the whole protocol stack: with random backend setpoints, the SECC never
reports or commands beyond any limit in force (charger, cable, MCS envelope, truck, grid,
backend caps)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcscomm.messages.enums import ControlMode, ServiceId
from mcscomm.power.limits import MCS_ENVELOPE
from mcscomm.session.events import PowerSample, SafeStateReached
from mcscomm.session.loopback import default_configs, make_pair, run_pair

setpoints = st.one_of(st.just(math.inf), st.floats(min_value=-1.5e6, max_value=1.5e6))
caps = st.one_of(st.just(math.inf), st.floats(min_value=0.0, max_value=2e6))
plans = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=14.0), setpoints, caps, caps),
    min_size=1,
    max_size=5,
).map(sorted)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=plans,
    service=st.sampled_from([ServiceId.MCS, ServiceId.MCS_BPT, ServiceId.DC_BPT]),
    control=st.sampled_from([ControlMode.DYNAMIC, ControlMode.SCHEDULED]),
    charger=st.sampled_from(["mcs_1mw_bpt", "mcs_3750kw"]),
    soc=st.floats(min_value=0.35, max_value=0.9),
)
def test_secc_never_exceeds_any_limit(
    plan: list[tuple[float, float, float, float]],
    service: ServiceId,
    control: ControlMode,
    charger: str,
    soc: float,
) -> None:
    bpt = service in (ServiceId.MCS_BPT, ServiceId.DC_BPT)
    assume(not (bpt and charger == "mcs_3750kw"))  # a charge-only unit never offers BPT
    secc_cfg, evcc_cfg = default_configs(charger=charger, scenario=None)
    evcc_cfg.service, evcc_cfg.control_mode = service, control
    evcc_cfg.duration_s = 15.0
    evcc_cfg.initial_soc = soc
    evcc_cfg.departure_s = 36_000.0
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    pending = list(plan)
    applied: list[tuple[float, float, float]] = [(0.0, math.inf, math.inf)]

    def steer(now: float, e: object, s: object) -> None:
        while pending and pending[0][0] <= now:
            _, sp, charge_cap, discharge_cap = pending.pop(0)
            secc.set_backend(
                sp, now, max_charge_power_w=charge_cap, max_discharge_power_w=discharge_cap
            )
            applied.append((now, charge_cap, discharge_cap))

    r = run_pair(evcc, secc, on_step=steer)
    assert r.ended("secc") is not None and r.ended("evcc") is not None
    assert not r.of_type("secc", SafeStateReached)  # a clean run never needs the safe state
    c = secc_cfg.charger
    truck = evcc_cfg.truck
    assert c is not None and truck is not None
    max_ci = min(c.limits.max_charge_current_a, c.cable.max_charge_current_a,
                 MCS_ENVELOPE.max_charge_current_a, truck.limits.max_charge_current_a)  # fmt: skip
    max_cp = min(c.limits.max_charge_power_w, c.cable.max_charge_power_w,
                 MCS_ENVELOPE.max_charge_power_w, truck.limits.max_charge_power_w,
                 c.grid_import_w * c.efficiency)  # fmt: skip
    max_di = min(c.limits.max_discharge_current_a, c.cable.max_discharge_current_a,
                 truck.limits.max_discharge_current_a) if bpt else 0.0  # fmt: skip
    max_dp = min(c.limits.max_discharge_power_w, c.cable.max_discharge_power_w,
                 truck.limits.max_discharge_power_w,
                 c.grid_export_w / c.efficiency) if bpt else 0.0  # fmt: skip
    max_v = min(c.limits.max_voltage_v, truck.limits.max_voltage_v, MCS_ENVELOPE.max_voltage_v)
    samples = r.of_type("secc", PowerSample)
    assert samples
    for s in samples:
        assert isinstance(s, PowerSample)
        assert s.voltage_v <= max_v + 1e-6
        assert s.current_a <= max_ci + 1e-6
        assert -s.current_a <= max_di + 1e-6
        assert s.power_w <= max_cp + 1.0
        assert -s.power_w <= max_dp + 1.0
        # what the SECC announces as its limits never exceeds its own rating
        assert s.max_charge_power_w is not None
        assert s.max_charge_power_w <= c.limits.max_charge_power_w
        # backend caps: in force from the cycle they were set in (forced reductions are at once)
        _, charge_cap, discharge_cap = [a for a in applied if a[0] < s.t or a[0] == 0.0][-1]
        assert s.power_w <= charge_cap + 1.0
        assert -s.power_w <= discharge_cap + 1.0
