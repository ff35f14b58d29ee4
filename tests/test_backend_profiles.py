"""OCPP 2.1 charging profiles: parsing, malformed vs unhonourable, stacking, composite, mapping."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcscomm.backend import mapping
from mcscomm.backend.errors import ProfileMalformed, ProfileRejected
from mcscomm.backend.port import SessionSnapshot
from mcscomm.backend.profiles import (
    EvseCaps,
    Kind,
    OperationMode,
    ProfileStore,
    Purpose,
    apply_dynamic_update,
    check_honourable,
    format_time,
    parse_profile,
    parse_time,
)
from mcscomm.backend.queue import TxEventQueue
from mcscomm.power.limits import INF, PartyLimits

T0 = 1_800_000_000.0


def period(start: int = 0, **kw: Any) -> dict[str, Any]:
    return {"start_period": start, **kw}


def profile(
    pid: int = 1,
    *,
    purpose: str = "TxProfile",
    kind: str = "Absolute",
    level: int = 0,
    periods: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    sched: dict[str, Any] = {
        "id": 1,
        "charging_rate_unit": extra.pop("unit", "W"),
        "charging_schedule_period": periods or [period(limit=100_000.0)],
    }
    if "start" in extra:
        sched["start_schedule"] = extra.pop("start")
    return {
        "id": pid,
        "stack_level": level,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": kind,
        "charging_schedule": [sched],
        **extra,
    }


def parse(raw: dict[str, Any], evse: int = 1) -> Any:
    return parse_profile(raw, evse_id=evse, received_at=T0)


def test_times_round_trip() -> None:
    assert parse_time(format_time(T0), "t") == pytest.approx(T0)
    assert parse_time("2027-01-15T08:00:00+01:00", "t") == parse_time("2027-01-15T07:00:00Z", "t")
    with pytest.raises(ProfileMalformed) as exc:
        parse_time("tomorrow", "startSchedule")
    assert exc.value.code == "FormatViolation"


def test_v2x_period_fields_are_parsed_with_signs() -> None:
    p = parse(
        profile(
            periods=[
                period(
                    limit=500_000.0,
                    discharge_limit=-400_000.0,
                    setpoint=-300_000.0,
                    operation_mode="CentralSetpoint",
                ),
            ]
        )
    )
    per = p.schedule.periods[0]
    assert (per.limit_w, per.discharge_limit_w, per.setpoint_w) == (500e3, 400e3, -300e3)
    assert per.mode is OperationMode.CENTRAL_SETPOINT
    # camelCase keys (as a CSMS sends them) parse the same
    raw = {
        "id": 2,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Dynamic",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "setpoint": 1000.0, "operationMode": "CentralSetpoint"}
                ],
            }
        ],
    }
    assert parse(raw).schedule.periods[0].setpoint_w == 1000.0


@pytest.mark.parametrize(
    ("periods", "code"),
    [
        ([period(5, limit=1.0)], "PropertyConstraintViolation"),  # first period not at 0
        ([period(0, limit=1.0), period(0, limit=2.0)], "PropertyConstraintViolation"),
        ([period(0, limit=-1.0)], "PropertyConstraintViolation"),
        ([period(0, discharge_limit=5.0)], "PropertyConstraintViolation"),
        ([period(0, operation_mode="CentralSetpoint")], "OccurrenceConstraintViolation"),
        ([period(0, setpoint=-5.0, operation_mode="ChargingOnly")], "PropertyConstraintViolation"),
        ([period(0, limit=10.0, setpoint=20.0)], "PropertyConstraintViolation"),
        ([period(0, discharge_limit=-10.0, setpoint=-20.0)], "PropertyConstraintViolation"),
        ([period(0, limit=1.0, operation_mode="Bogus")], "FormationViolation"),
    ],
)
def test_malformed_periods_name_the_ocpp_error(periods: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(ProfileMalformed) as exc:
        parse(profile(periods=periods))
    assert exc.value.code == code


def test_malformed_profile_level_rules() -> None:
    with pytest.raises(ProfileMalformed):
        parse(profile(kind="Recurring"))  # no recurrencyKind / startSchedule
    with pytest.raises(ProfileMalformed):
        parse(profile(kind="Relative", start=format_time(T0)))
    with pytest.raises(ProfileMalformed):
        parse(profile(valid_from=format_time(T0 + 10), valid_to=format_time(T0)))
    with pytest.raises(ProfileMalformed):
        parse(profile(purpose="TxDefaultProfile", transaction_id="x"))


CAPS = EvseCaps(
    can_discharge=True,
    max_charge_w=750e3,
    max_discharge_w=500e3,
    min_charge_w=10e3,
    transaction_id="tx1",
)


@pytest.mark.parametrize(
    ("raw", "caps", "reason"),
    [
        (
            profile(periods=[period(setpoint=-100e3)]),
            EvseCaps(can_discharge=False, transaction_id="tx1"),
            "V2XNotSupported",
        ),
        (profile(periods=[period(setpoint=900e3)]), CAPS, "SetpointOutOfRange"),
        (profile(periods=[period(setpoint=-600e3)]), CAPS, "SetpointOutOfRange"),
        (profile(periods=[period(setpoint=5e3)]), CAPS, "SetpointBelowMinimum"),
        (profile(unit="A"), CAPS, "UnsupportedRateUnit"),
        (
            profile(periods=[period(limit=1.0, operation_mode="LocalFrequency")]),
            CAPS,
            "UnsupportedOpMode",
        ),
        (profile(), EvseCaps(), "NoTransaction"),
        (profile(transaction_id="other"), CAPS, "TxNotFound"),
        (profile(purpose="ChargingStationExternalConstraints"), CAPS, "UnsupportedPurpose"),
        (profile(purpose="ChargingStationMaxProfile"), CAPS, "UnknownEVSE"),  # evse 1
    ],
)
def test_unhonourable_profiles_are_rejected_with_a_reason(
    raw: dict[str, Any], caps: EvseCaps, reason: str
) -> None:
    with pytest.raises(ProfileRejected) as exc:
        check_honourable(parse(raw), caps)
    assert exc.value.reason == reason
    assert len(reason) <= 20  # OCPP reasonCode maxLength


def test_honourable_profile_passes() -> None:
    check_honourable(parse(profile(periods=[period(setpoint=-400e3)])), CAPS)
    check_honourable(parse(profile(periods=[period(setpoint=0.0)])), CAPS)  # hold is fine


def test_stacking_and_composite() -> None:
    store = ProfileStore()
    store.install(
        parse(
            profile(
                1,
                purpose="ChargingStationMaxProfile",
                periods=[period(limit=400e3, discharge_limit=-300e3)],
            ),
            evse=0,
        )
    )
    store.install(
        parse(profile(2, purpose="TxDefaultProfile", periods=[period(limit=100e3)]), evse=0)
    )
    t = store.target_at(T0, 1, None, None)
    assert t is not None and t.limit_w == 100e3 and t.sources == (2, 1)
    # a TxProfile overrides the default; the station max still caps its setpoint
    store.install(
        parse(profile(3, periods=[period(setpoint=600e3, operation_mode="CentralSetpoint")]))
    )
    t = store.target_at(T0, 1, "tx1", T0)
    assert t is not None and t.setpoint_w == 400e3 and t.limit_w == 400e3
    # higher stack level wins within a purpose; same level + purpose replaces
    store.install(parse(profile(4, level=1, periods=[period(setpoint=-200e3)])))
    t = store.target_at(T0, 1, "tx1", T0)
    assert t is not None and t.setpoint_w == -200e3 and t.discharge_limit_w == 300e3
    store.install(parse(profile(5, level=1, periods=[period(limit=50e3)])))
    assert store.get(4) is None
    # without a transaction, TxProfiles do not apply
    t = store.target_at(T0, 1, None, None)
    assert t is not None and t.sources[0] == 2
    # ending the transaction removes its TxProfiles
    store.end_transaction("tx1", 1)
    assert store.get(3) is None and store.get(5) is None
    assert store.clear(purpose=Purpose.TX_DEFAULT)[0].id == 2
    assert store.clear(1)[0].id == 1 and len(store) == 0


def test_absolute_relative_recurring_timing() -> None:
    store = ProfileStore()
    store.install(
        parse(
            profile(
                1,
                start=format_time(T0 + 100),
                periods=[period(0, limit=10.0), period(60, limit=20.0)],
                valid_to=format_time(T0 + 1000),
            )
        )
    )
    assert store.target_at(T0 + 50, 1, "tx", T0) is None  # not started
    assert store.target_at(T0 + 100, 1, "tx", T0).limit_w == 10.0  # type: ignore[union-attr]
    assert store.target_at(T0 + 170, 1, "tx", T0).limit_w == 20.0  # type: ignore[union-attr]
    assert store.target_at(T0 + 1000, 1, "tx", T0) is None  # validTo
    segs = store.segments(T0, 2000, 1, "tx", T0)
    assert [(s.start - T0, s.end - T0) for s in segs] == [
        (0, 100),
        (100, 160),
        (160, 1000),
        (1000, 2000),
    ]
    rel = ProfileStore()
    rel.install(
        parse(profile(2, kind="Relative", periods=[period(0, limit=5.0), period(30, limit=6.0)]))
    )
    assert rel.target_at(T0 + 40, 1, "tx", T0 + 20).limit_w == 5.0  # type: ignore[union-attr]
    assert rel.target_at(T0 + 50, 1, "tx", T0 + 20).limit_w == 6.0  # type: ignore[union-attr]
    rec = ProfileStore()
    rec.install(
        parse(
            profile(
                3,
                kind="Recurring",
                recurrency_kind="Daily",
                start=format_time(T0),
                periods=[period(0, limit=1.0), period(3600, limit=2.0)],
            )
        )
    )
    assert rec.target_at(T0 + 86_400 * 3 + 10, 1, "tx", T0).limit_w == 1.0  # type: ignore[union-attr]
    assert rec.target_at(T0 + 86_400 * 3 + 4000, 1, "tx", T0).limit_w == 2.0  # type: ignore[union-attr]


def test_dynamic_update_replaces_values_and_keeps_checks() -> None:
    p = parse(
        profile(
            kind="Dynamic", periods=[period(limit=500e3, discharge_limit=-500e3, setpoint=100e3)]
        )
    )
    q = apply_dynamic_update(p, {"setpoint": -250e3})
    per = q.schedule.periods[0]
    assert (per.setpoint_w, per.limit_w, per.discharge_limit_w) == (-250e3, 500e3, 500e3)
    with pytest.raises(ProfileMalformed):
        apply_dynamic_update(p, {"setpoint": 900e3})  # above its own limit
    with pytest.raises(ProfileRejected):
        apply_dynamic_update(parse(profile()), {"setpoint": 1.0})  # not Dynamic
    assert p.kind is Kind.DYNAMIC


def test_mapping_by_operation_mode() -> None:
    from mcscomm.backend.profiles import Target

    s = mapping.step_for(Target(OperationMode.IDLE), 0.0)
    assert (s.setpoint_w, s.max_charge_power_w, s.max_discharge_power_w) == (0.0, 0.0, 0.0)
    s = mapping.step_for(Target(OperationMode.CHARGING_ONLY, 300e3), 0.0)
    assert (s.setpoint_w, s.max_charge_power_w, s.max_discharge_power_w) == (INF, 300e3, 0.0)
    s = mapping.step_for(Target(OperationMode.CENTRAL_SETPOINT, 300e3, 200e3, -150e3), 0.0)
    assert (s.setpoint_w, s.max_charge_power_w, s.max_discharge_power_w) == (-150e3, 300e3, 200e3)
    s = mapping.step_for(Target(OperationMode.EXTERNAL_LIMITS, 300e3, 200e3), 0.0)
    assert (s.setpoint_w, s.max_discharge_power_w) == (INF, 200e3)
    assert mapping.step_for(None, 5.0).setpoint_w == INF


def test_plan_from_segments_is_relative_to_now() -> None:
    store = ProfileStore()
    store.install(
        parse(
            profile(
                1,
                start=format_time(T0 - 50),
                periods=[period(0, setpoint=10e3), period(100, setpoint=20e3)],
            )
        )
    )
    plan = mapping.plan_from_segments(store.segments(T0, 3600, 1, "tx", T0), T0)
    assert [(s.at_s, s.setpoint_w) for s in plan.steps] == [(0.0, 10e3), (50.0, 20e3)]


@settings(max_examples=200, deadline=None)
@given(
    limit=st.floats(0, 4e6),
    dis=st.floats(0, 4e6),
    sp=st.floats(-4e6, 4e6),
    max_limit=st.floats(0, 4e6),
)
def test_composite_setpoint_never_outside_any_limit(
    limit: float, dis: float, sp: float, max_limit: float
) -> None:
    """Whatever a valid TxProfile says, the composite setpoint stays within every level's limits."""
    sp = min(max(sp, -dis), limit)
    store = ProfileStore()
    store.install(
        parse(
            profile(
                1,
                purpose="ChargingStationMaxProfile",
                periods=[period(limit=max_limit, discharge_limit=-max_limit)],
            ),
            evse=0,
        )
    )
    store.install(
        parse(
            profile(
                2,
                periods=[
                    period(
                        limit=limit,
                        discharge_limit=-dis,
                        setpoint=sp,
                        operation_mode="CentralSetpoint",
                    )
                ],
            )
        )
    )
    t = store.target_at(T0, 1, "tx", T0)
    assert t is not None and t.setpoint_w is not None
    assert t.setpoint_w <= min(limit, max_limit) + 1e-6
    assert -t.setpoint_w <= min(dis, max_limit) + 1e-6
    step = mapping.step_for(t, 0.0)
    assert step.setpoint_w <= step.max_charge_power_w + 1e-6
    assert -step.setpoint_w <= step.max_discharge_power_w + 1e-6


def test_charging_needs_from_a_bpt_session() -> None:
    ev = PartyLimits(
        "truck",
        max_voltage_v=870,
        min_voltage_v=580,
        max_charge_current_a=1000,
        max_charge_power_w=750e3,
        max_discharge_current_a=1000,
        max_discharge_power_w=700e3,
    )
    s = SessionSnapshot(
        t=0.0,
        service="MCS_BPT",
        control_mode="Dynamic",
        ev_limits=ev,
        soc=41.6,
        target_soc=80,
        target_energy_wh=280e3,
        min_v2x_energy_wh=-80e3,
    )
    n = mapping.charging_needs(s, T0 + 3600)
    assert n["requested_energy_transfer"] == "DC_BPT"  # MCS_BPT has no OCPP value
    assert n["control_mode"] == "DynamicControl"
    assert n["dc_charging_parameters"]["ev_max_power"] == 750e3
    assert n["dc_charging_parameters"]["state_of_charge"] == 42
    v2x = n["v2x_charging_parameters"]
    assert v2x["max_discharge_power"] == 700e3 and v2x["ev_min_v2x_energy_request"] == -80e3
    assert n["departure_time"] == format_time(T0 + 3600)
    plain = mapping.charging_needs(SessionSnapshot(t=0, service="MCS", ev_limits=ev), None)
    assert plain["requested_energy_transfer"] == "DC" and "v2x_charging_parameters" not in plain


def test_meter_values_have_both_directions() -> None:
    s = SessionSnapshot(
        t=0, power_w=-200e3, charged_wh=10.0, discharged_wh=20.0, soc=50.0, voltage_v=700.0
    )
    vals = {v["measurand"]: v["value"] for v in mapping.sampled_values(s, "Sample.Periodic")}
    assert vals["Power.Active.Export"] == 200e3 and vals["Power.Active.Import"] == 0.0
    assert vals["Energy.Active.Export.Register"] == 20.0 and vals["SoC"] == 50.0
    idle = SessionSnapshot(t=0, power_w=0.0)
    for v in mapping.sampled_values(idle, "Sample.Periodic"):
        assert math.copysign(1.0, v["value"]) > 0  # no "-0.0" on the wire


def test_queue_numbers_per_transaction_and_keeps_order() -> None:
    q = TxEventQueue()
    a0 = q.push("a", "Started", {}, 0.0)
    b0 = q.push("b", "Started", {}, 0.0)
    a1 = q.push("a", "Ended", {}, 1.0)
    assert [e.seq_no for e in (a0, b0, a1)] == [0, 0, 1]
    assert a1.payload["seq_no"] == 1
    assert q.head() is a0
    q.ack(b0)  # not the head: ignored
    assert len(q) == 3
    q.ack(a0)
    assert q.head() is b0 and q.sent == 1


def test_queue_bound_drops_meter_samples_not_boundaries() -> None:
    q = TxEventQueue(max_len=3)
    q.push("a", "Started", {}, 0)
    q.push("a", "Updated", {}, 1)
    q.push("a", "Updated", {}, 2)
    q.push("a", "Ended", {}, 3)
    kinds = [e.event_type for e in q.pending()]
    assert kinds == ["Started", "Updated", "Ended"] and q.dropped == 1


def test_offline_invalid_profiles_are_dropped_after_max_offline_duration() -> None:
    store = ProfileStore()
    store.install(parse(profile(1, max_offline_duration=60, invalid_after_offline_duration=True)))
    store.install(parse(profile(2, level=1, max_offline_duration=60)))
    assert store.drop_offline_invalid(30.0) == []
    assert [p.id for p in store.drop_offline_invalid(61.0)] == [1]
    assert store.get(2) is not None  # without invalidAfterOfflineDuration it stays


def test_ev_schedule_from_a_power_profile() -> None:
    sched = mapping.ev_schedule(((60.0, 100e3), (30.0, -50e3)))
    assert sched["duration"] == 90 and sched["charging_rate_unit"] == "W"
    assert sched["charging_schedule_period"][1]["discharge_limit"] == -50e3
