"""Interop fixes found against Josev (docs/interop.md), in the in-memory pair.

(a) PowerToleranceAcceptance answers a schedule's PowerTolerance; (b) Dynamic PowerDelivery(Start)
carries an EVPowerProfile; (c) the EVCC stops cleanly when the EVSE's voltage window cannot serve
it; (d) the SECC keeps EVSEPresentVoltage within its maximum and checks EV voltages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mcscomm.messages.common_messages import Dynamic_EVPPTControlMode, Scheduled_EVPPTControlMode
from mcscomm.messages.enums import ControlMode, PowerToleranceAcceptance, ResponseCode, ServiceId
from mcscomm.messages.rational import RationalNumber
from mcscomm.power.limits import PartyLimits
from mcscomm.session import secc_handlers
from mcscomm.session.config import Profile
from mcscomm.session.connection import EvccConnection, SeccConnection
from mcscomm.session.context import SeccContext
from mcscomm.session.evcc import tolerance_acceptance
from mcscomm.session.events import MessageSent, ProtocolError
from mcscomm.session.loopback import PairResult, default_configs, make_pair, run_pair


def _sent(r: PairResult, side: str, name: str, secc: SeccConnection) -> list[Any]:
    return [
        secc.codec.decode(e.payload_type, e.document)
        for e in r.of_type(side, MessageSent)
        if isinstance(e, MessageSent) and e.message == name
    ]


def _pair(mode: ControlMode, **secc_kw: Any) -> tuple[EvccConnection, SeccConnection]:
    secc_cfg, evcc_cfg = default_configs(time_scale=1 / 30)
    secc_cfg = dataclasses.replace(secc_cfg, **secc_kw)
    evcc_cfg = dataclasses.replace(evcc_cfg, control_mode=mode, service=ServiceId.MCS_BPT)
    return make_pair(secc_cfg, evcc_cfg)


# -- (a) PowerToleranceAcceptance -----------------------------------------------------------------
def test_tolerance_confirmed_when_the_schedule_carries_one() -> None:
    evcc, secc = _pair(ControlMode.SCHEDULED, schedule_power_tolerance_w=2000.0)
    r = run_pair(evcc, secc, max_time=900)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    res = _sent(r, "secc", "ScheduleExchangeRes", secc)[-1]
    ps = res.control_mode.schedule_tuple[0].charging_schedule.power_schedule
    assert float(ps.power_tolerance) == 2000.0
    start = next(
        m for m in _sent(r, "evcc", "PowerDeliveryReq", secc) if m.ev_power_profile is not None
    )
    cm = start.ev_power_profile.control_mode
    assert isinstance(cm, Scheduled_EVPPTControlMode)
    assert cm.power_tolerance_acceptance is PowerToleranceAcceptance.POWER_TOLERANCE_CONFIRMED


def test_no_tolerance_no_acceptance() -> None:
    evcc, secc = _pair(ControlMode.SCHEDULED)
    r = run_pair(evcc, secc, max_time=900)
    start = next(
        m for m in _sent(r, "evcc", "PowerDeliveryReq", secc) if m.ev_power_profile is not None
    )
    assert start.ev_power_profile.control_mode.power_tolerance_acceptance is None


def test_tolerance_not_confirmed_below_the_truck_minimum() -> None:
    plan = [(60, 50_000.0), (60, 0.0), (60, -40_000.0)]
    confirmed = PowerToleranceAcceptance.POWER_TOLERANCE_CONFIRMED
    assert tolerance_acceptance(plan, 2000.0, 10_000.0, 10_000.0) is confirmed
    # 50 kW scheduled, truck cannot go below 60 kW, 2 kW tolerance: cannot honour
    assert tolerance_acceptance(plan, 2000.0, 60_000.0, 0.0) is not confirmed
    assert tolerance_acceptance(plan, 20_000.0, 60_000.0, 0.0) is confirmed
    assert tolerance_acceptance(plan, 0.0, 0.0, 45_000.0) is not confirmed


# -- (b) Dynamic EVPowerProfile -------------------------------------------------------------------
def test_dynamic_power_delivery_start_carries_a_profile() -> None:
    evcc, secc = _pair(ControlMode.DYNAMIC)
    r = run_pair(evcc, secc, max_time=900)
    assert r.ended("secc").result == "success"  # type: ignore[union-attr]
    starts = [
        m for m in _sent(r, "evcc", "PowerDeliveryReq", secc) if m.charge_progress.value == "Start"
    ]
    assert starts
    for m in starts:
        profile = m.ev_power_profile
        assert profile is not None
        assert isinstance(profile.control_mode, Dynamic_EVPPTControlMode)
        (entry,) = profile.ev_power_profile_entries.ev_power_profile_entry
        assert entry.duration >= 1
        assert float(entry.power) != 0  # the power it plans to ask for (sign = channel)
        assert profile.time_anchor == m.header.timestamp


# -- (c) voltage windows --------------------------------------------------------------------------
def _charger_volts(lo: float, hi: float) -> Any:
    secc_cfg, _ = default_configs()
    ch = secc_cfg.charger
    assert ch is not None
    return dataclasses.replace(
        ch, limits=dataclasses.replace(ch.limits, min_voltage_v=lo, max_voltage_v=hi)
    )


def _stopped_after_cpd(r: PairResult, secc: SeccConnection) -> None:
    names = [e.message for e in r.of_type("evcc", MessageSent) if isinstance(e, MessageSent)]
    assert names[-2:] == ["DC_ChargeParameterDiscoveryReq", "SessionStopReq"]
    assert "DC_PreChargeReq" not in names and "PowerDeliveryReq" not in names
    ended = r.ended("evcc")
    assert ended is not None and ended.result == "failed"
    assert "SessionStop(Terminate)" in ended.reason
    assert any(
        isinstance(e, ProtocolError) and e.kind == "voltage_mismatch"
        for e in r.of_type("evcc", ProtocolError)
    )


def test_evcc_stops_when_the_battery_voltage_is_outside_the_evse_window() -> None:
    # windows overlap (580-600 V) but the 7-pack sits near 745 V: pre-charge cannot reach it
    secc_cfg, evcc_cfg = default_configs(time_scale=1 / 30)
    secc_cfg = dataclasses.replace(secc_cfg, charger=_charger_volts(150.0, 600.0))
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc, max_time=900)
    _stopped_after_cpd(r, secc)
    assert "pre-charge unreachable" in r.ended("evcc").reason  # type: ignore[union-attr]


def test_evcc_stops_when_windows_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    # like Josev's EVSE (EVSEMaximumVoltage 500 V): an SECC that answers OK regardless
    original = secc_handlers.HANDLERS["DC_ChargeParameterDiscoveryReq"]

    def low_max(req: Any, ctx: SeccContext) -> Any:
        res, outcome = original(req, ctx)
        res.transfer_mode.evse_maximum_voltage = RationalNumber(500, 0)
        return res, outcome

    monkeypatch.setitem(secc_handlers.HANDLERS, "DC_ChargeParameterDiscoveryReq", low_max)
    secc_cfg, evcc_cfg = default_configs(time_scale=1 / 30)
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    r = run_pair(evcc, secc, max_time=900)
    _stopped_after_cpd(r, secc)
    assert "no common voltage window" in r.ended("evcc").reason  # type: ignore[union-attr]


# -- (d) SECC voltages ----------------------------------------------------------------------------
def _ctx(profile: Profile) -> SeccContext:
    _evcc, secc = _pair(ControlMode.DYNAMIC, profile=profile)
    ctx = secc.session.ctx
    ctx.ev_limits = PartyLimits(name="EV", min_voltage_v=400.0, max_voltage_v=900.0)
    ctx.evse_limits = PartyLimits(name="EVSE", min_voltage_v=200.0, max_voltage_v=800.0)
    return ctx


def test_strict_refuses_ev_voltage_outside_the_window() -> None:
    from mcscomm.session import errors

    ctx = _ctx(Profile.STRICT)
    assert secc_handlers._ev_voltage(ctx, "EVTargetVoltage", 750.0) == 750.0
    with pytest.raises(errors.WrongChargeParameter, match="20000 V outside the negotiated"):
        secc_handlers._ev_voltage(ctx, "EVPresentVoltage", 20_000.0)
    with pytest.raises(errors.WrongChargeParameter):
        secc_handlers._ev_voltage(ctx, "EVTargetVoltage", 300.0)  # below the EV's own minimum
    code = errors.WrongChargeParameter("x").response_code
    assert code == ResponseCode.FAILED_WRONG_CHARGE_PARAMETER.value


def test_lenient_clamps_and_warns() -> None:
    ctx = _ctx(Profile.LENIENT)
    assert secc_handlers._ev_voltage(ctx, "EVPresentVoltage", 20_000.0) == 800.0
    assert secc_handlers._ev_voltage(ctx, "EVTargetVoltage", 10.0) == 400.0
    warnings = [e for e in ctx.events if isinstance(e, ProtocolError)]
    assert [w.kind for w in warnings] == ["voltage_out_of_window"] * 2
    assert "clamped to 800 V" in warnings[0].detail


def test_evse_present_voltage_never_above_its_maximum() -> None:
    ctx = _ctx(Profile.LENIENT)
    assert secc_handlers._evse_voltage(ctx, 20_000.0) == 800.0
    assert secc_handlers._evse_voltage(ctx, 640.0) == 640.0


def test_lenient_pre_charge_to_a_huge_target_reports_at_most_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the Josev EV's 20 kV reaches the handler: the SECC answers OK, within its maximum voltage,
    # even with an output model that would simply follow whatever target it is given
    from mcscomm.messages.common_types import MessageHeader
    from mcscomm.messages.dc import DC_PreChargeReq
    from mcscomm.messages.enums import Processing

    ctx = _ctx(Profile.LENIENT)
    seen: list[float] = []

    def follow(now: float, target_v: float) -> float:
        seen.append(target_v)
        return 20_000.0

    monkeypatch.setattr(ctx.power, "pre_charge", follow)
    req = DC_PreChargeReq(
        header=MessageHeader(session_id=ctx.session_id, timestamp=0),
        ev_processing=Processing.ONGOING,
        ev_present_voltage=RationalNumber(20000, 0),
        ev_target_voltage=RationalNumber(20000, 0),
    )
    for k in range(20):
        ctx.now = k * 0.25
        res, _ = secc_handlers.handle_dc_pre_charge(req, ctx)
        assert float(res.evse_present_voltage) == 800.0
    assert res.response_code is ResponseCode.OK
    assert set(seen) == {800.0}  # the output is driven to the clamped target only
