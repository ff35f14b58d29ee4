"""The SECC-side per-cycle decision: limits in force + the EV's request + now -> what flows.

Theory of operation, one charge-loop cycle (:meth:`SeccController.step`):

1. The meter accounts the power that flowed since the last cycle (so it matches what the truck's
   battery integrates over the same interval).
2. *EVSE-side limits in force* = negotiated envelope of every party but the EV, then the backend
   step (caps, grid import/export at the charger's efficiency), the selected schedule (Scheduled
   mode) and the safe-state ramp-down cap. These are what the SECC reports as its limits.
3. *All limits in force* = those, the EV's negotiated limits and the limits in this request.
4. *Wanted* current: Scheduled -> the EV's target current (signed); Dynamic -> the backend
   setpoint (inf = "as much as allowed") over the present voltage, gated by the EV's energy
   requests. Stop, safe state or open contactors -> 0.
5. The wanted current is clamped to the limits (and to 0 below an operating minimum), the flags
   are computed from the clamp (exact rules on :class:`SeccDecision`), and the power stage ramps
   towards it, forced into the limit window when a limit fell below what flows.

Everything is plain float arithmetic on cached attributes; one step allocates one decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from mcscomm.power.ems import Ems
from mcscomm.power.envelope import Envelope, Parties, negotiate
from mcscomm.power.limits import INF, ChargerSpec
from mcscomm.power.meter import Meter
from mcscomm.power.safety import (
    OverVoltage,
    OverVoltageMonitor,
    SafeState,
    SafeStateCause,
    cable_check_voltage,
)
from mcscomm.power.schedule import ScheduleTuple
from mcscomm.power.stage import PowerStage

NAN = math.nan


class Mode(StrEnum):
    """Control mode of the energy transfer (ISO 15118-20 Scheduled or Dynamic)."""

    SCHEDULED = "scheduled"
    DYNAMIC = "dynamic"


@dataclass(frozen=True, slots=True)
class EvRequest:
    """What the truck asks for in one cycle. Magnitudes except ``target_current_a`` (signed).

    Scheduled mode: ``target_current_a`` (> 0 charge, < 0 discharge) and ``target_voltage_v``.
    Dynamic mode: leave them NaN; the limits and energy requests (Wh, NaN = not sent) apply.
    Limits default to "no restriction" (the negotiated EV limits still apply).
    """

    present_voltage_v: float
    target_current_a: float = NAN
    target_voltage_v: float = NAN
    max_charge_power_w: float = INF
    min_charge_power_w: float = 0.0
    max_charge_current_a: float = INF
    max_voltage_v: float = INF
    min_voltage_v: float = 0.0
    max_discharge_power_w: float = INF
    min_discharge_power_w: float = 0.0
    max_discharge_current_a: float = INF
    target_energy_wh: float = NAN
    max_energy_wh: float = NAN
    min_energy_wh: float = NAN
    max_v2x_energy_wh: float = NAN
    min_v2x_energy_wh: float = NAN
    departure_s: float = NAN
    stop: bool = False


@dataclass(frozen=True, slots=True)
class SeccDecision:
    """One cycle's outcome: what flows, what to report, and why.

    Flags (reported as EVSEPowerLimitAchieved / EVSECurrentLimitAchieved /
    EVSEVoltageLimitAchieved) are exact: the current flag is true iff the commanded |I| equals
    the EVSE-side current limit in force (the charger, not the truck, is what stops it going
    higher); the power flag iff the commanded |I| equals the EVSE-side power limit / present
    voltage; the voltage flag iff energy was wanted and the present voltage is at or beyond the
    EVSE-side voltage limit in that direction (max when charging, min when discharging).
    ``evse_*`` fields are the EVSE-side limits in force (magnitudes) to report this cycle.
    """

    now: float
    present_current_a: float  # > 0 charging the truck
    present_voltage_v: float
    present_power_w: float
    commanded_current_a: float  # after clamping, before the ramp
    power_limit_achieved: bool
    current_limit_achieved: bool
    voltage_limit_achieved: bool
    evse_max_charge_power_w: float
    evse_min_charge_power_w: float
    evse_max_charge_current_a: float
    evse_max_discharge_power_w: float
    evse_min_discharge_power_w: float
    evse_max_discharge_current_a: float
    evse_max_voltage_v: float
    evse_min_voltage_v: float
    setpoint_w: float  # backend setpoint in force (inf = as much as allowed)
    binding: str  # what limited the command ("request" when nothing did)
    safe_state: bool
    contactors_open: bool
    over_voltage: OverVoltage
    charged_wh: float
    discharged_wh: float
    # All limits in force this cycle (EVSE side AND the EV's), magnitudes; for audits/tests.
    max_charge_current_a: float = INF
    max_charge_power_w: float = INF
    max_discharge_current_a: float = INF
    max_discharge_power_w: float = INF
    max_voltage_v: float = INF
    min_voltage_v: float = 0.0

    @property
    def discharging(self) -> bool:
        """True when power flows from the truck to the grid."""
        return self.present_current_a < 0.0


class SeccController:
    """Per-session SECC power controller. Construct once the parties are known.

    Raises :class:`~mcscomm.power.envelope.EnvelopeInverted` / ``LimitsError`` when the
    negotiated envelope is empty (map to FAILED_WrongChargeParameter).
    """

    def __init__(
        self,
        parties: Parties,
        charger: ChargerSpec,
        *,
        mode: Mode = Mode.DYNAMIC,
        ems: Ems | None = None,
        start: float = 0.0,
        comm_timeout_s: float = 0.5,  # charge-loop performance time on the SECC side (facts §5.2)
        cable_check_hold_s: float = 0.5,
        meter_id: str = "MCSCOMM-METER-1",
    ) -> None:
        self.parties = parties
        self.charger = charger
        self.envelope: Envelope = negotiate(parties)
        ev = parties.ev
        self.evse_envelope: Envelope = negotiate(
            [p for p in parties.all() if p is not ev], strict=False
        )
        self.mode = mode
        self.ems = ems
        self.schedule: ScheduleTuple | None = None
        self.stage = PowerStage(charger.ramp)
        self.meter = Meter(meter_id)
        self.safe = SafeState(charger.safe_ramp_down_s)
        self.ovm = OverVoltageMonitor(self.envelope.max_voltage_v)
        self.comm_timeout_s = comm_timeout_s
        self.cable_check_hold_s = cable_check_hold_s
        self.last_request: EvRequest | None = None
        self.last_decision: SeccDecision | None = None
        self._t_last = start
        self._t_req = start
        self._t_v: float | None = None
        self._cc_reached: float | None = None
        self._p_last = 0.0
        self._eff = charger.efficiency
        self._cache()

    def _cache(self) -> None:
        e, a = self.evse_envelope, self.envelope
        ec, ed, ac, ad = e.charge, e.discharge, a.charge, a.discharge
        self._e_ci = ec.max_current_a if ec.available else 0.0
        self._e_cp = ec.max_power_w if ec.available else 0.0
        self._e_cpmin = ec.min_power_w if ec.available else 0.0
        self._e_di = ed.max_current_a if ed.available else 0.0
        self._e_dp = ed.max_power_w if ed.available else 0.0
        self._e_dpmin = ed.min_power_w if ed.available else 0.0
        self._e_vhi, self._e_vlo = e.max_voltage_v, e.min_voltage_v
        self._a_ci = ac.max_current_a if ac.available else 0.0
        self._a_cp = ac.max_power_w if ac.available else 0.0
        self._a_cimin, self._a_cpmin = ac.min_current_a, ac.min_power_w
        self._a_di = ad.max_current_a if ad.available else 0.0
        self._a_dp = ad.max_power_w if ad.available else 0.0
        self._a_dimin, self._a_dpmin = ad.min_current_a, ad.min_power_w
        self._a_vhi, self._a_vlo = a.max_voltage_v, a.min_voltage_v
        self._names = (
            f"EVSE-side current limit ({ec.current_binding})",
            f"EVSE-side power limit ({ec.power_binding})",
            f"EVSE-side current limit ({ed.current_binding})",
            f"EVSE-side power limit ({ed.power_binding})",
        )

    # -- session-level events -------------------------------------------------------------

    def select_schedule(self, offer: ScheduleTuple | None) -> None:
        """Scheduled mode: the tuple the EV selected (None: no schedule caps)."""
        self.schedule = offer

    def start_power_delivery(self, now: float) -> bool:
        """PowerDeliveryReq(Start): close the contactors unless latched in a fault safe state.

        A finished normal stop is cleared so a session may pause and resume.
        """
        if self.safe.active:
            if self.safe.cause is not SafeStateCause.STOP or not self.safe.contactors_open:
                return False
            self.safe = SafeState(self.charger.safe_ramp_down_s)
        self.stage.contactors_closed = True
        self._t_req = now
        if now > self._t_last:  # nothing flowed before: ramps start from here
            self._t_last = now
        return True

    def stop_power_delivery(self, now: float) -> None:
        """PowerDeliveryReq(Stop/Standby): ramp to zero within the safe time, then open."""
        self.safe.trigger(now, SafeStateCause.STOP, self.stage.current_a)

    def trigger_safe_state(self, now: float, cause: SafeStateCause) -> None:
        """Communication loss, timeout, emergency or a fault: bounded ramp-down, contactors open."""
        if cause is SafeStateCause.EMERGENCY or cause is SafeStateCause.OVER_VOLTAGE:
            # emergency/over-voltage shutdown does not ramp: zero at once (IEC 61851-23 6.3.1.106)
            self.safe.trigger(now, cause, 0.0)
            if self.safe.cause is not cause:  # already ramping for another reason: cut now
                self.safe.i0 = 0.0
                self.safe.cause = cause
        else:
            self.safe.trigger(now, cause, self.stage.current_a)

    def cable_check(self, now: float) -> tuple[float, bool]:
        """Drive the isolation test voltage (facts §7); returns (output V, finished)."""
        ev_max = min(self.parties.ev.max_voltage_v, self._a_vhi)
        test_v = cable_check_voltage(ev_max, self._e_vhi)
        v = self._track_voltage(now, test_v)
        if v >= test_v and self._cc_reached is None:
            self._cc_reached = now
        done = self._cc_reached is not None and now - self._cc_reached >= self.cable_check_hold_s
        if done:
            # the test voltage may exceed the EV's maximum (formula CC.1): discharge the output
            # after the test so pre-charge starts from below every limit
            self.stage.voltage_v = 0.0
        return v, done

    def precharge(self, now: float, target_v: float) -> float:
        """Pre-charge: converge the output voltage on the EV's target (within the envelope)."""
        if not math.isfinite(target_v):
            target_v = 0.0
        target_v = min(max(target_v, self._a_vlo), self._a_vhi)
        if self.stage.voltage_v > target_v:
            # the output discharge circuit brings it down at once; only the rise is slewed
            self.stage.voltage_v = target_v
        return self._track_voltage(now, target_v)

    def _track_voltage(self, now: float, target_v: float) -> float:
        dt = 0.0 if self._t_v is None else max(0.0, now - self._t_v)
        self._t_v = now
        return self.stage.track_voltage(target_v, dt)

    # -- the charge loop ------------------------------------------------------------------

    def step(self, now: float, request: EvRequest) -> SeccDecision:
        """One charge-loop cycle with the EV's request at ``now``."""
        self._t_req = now
        self.last_request = request
        return self._advance(now, request)

    def tick(self, now: float) -> SeccDecision:
        """Advance without a request (timer): trips COMMUNICATION_LOSS after ``comm_timeout_s``."""
        if not self.safe.active and now - self._t_req > self.comm_timeout_s:
            self.trigger_safe_state(self._t_req + self.comm_timeout_s, SafeStateCause.TIMEOUT)
        req = self.last_request or EvRequest(self.stage.voltage_v, stop=True)
        return self._advance(now, req)

    def _advance(self, now: float, req: EvRequest) -> SeccDecision:
        dt = now - self._t_last
        if dt > 0.0:
            self.meter.add(self._p_last, dt)
            self._t_last = now
        else:
            dt = 0.0  # a clock that went backwards never moves anything
        v = req.present_voltage_v
        if not (v > 0.0 and v < INF):
            v = self.stage.voltage_v
        ov = self.ovm.check(now, v)
        if ov is OverVoltage.EMERGENCY or ov is OverVoltage.ERROR:
            self.trigger_safe_state(now, SafeStateCause.OVER_VOLTAGE)

        # 2. EVSE-side limits in force
        n_ci, n_cp, n_di, n_dp = self._names
        c_i, c_p, d_i, d_p = self._e_ci, self._e_cp, self._e_di, self._e_dp
        setpoint = INF
        step = self.ems.at(now) if self.ems is not None else None
        if step is not None:
            setpoint = step.setpoint_w
            x = step.max_charge_power_w
            if x < c_p:
                c_p, n_cp = x, "backend charge cap"
            x = step.grid_import_w * self._eff
            if x < c_p:
                c_p, n_cp = x, "backend grid import cap"
            x = step.max_discharge_power_w
            if x < d_p:
                d_p, n_dp = x, "backend discharge cap"
            x = step.grid_export_w / self._eff
            if x < d_p:
                d_p, n_dp = x, "backend grid export cap"
        sched = self.schedule
        if sched is not None:
            x = sched.charge_power_at(now)
            if x < c_p:
                c_p, n_cp = x, "charging schedule"
            x = sched.discharge_power_at(now)
            if x < d_p:
                d_p, n_dp = x, "discharging schedule"
        cap = self.safe.current_cap(now)
        if cap < c_i:
            c_i, n_ci = cap, "safe-state ramp-down"
        if cap < d_i:
            d_i, n_di = cap, "safe-state ramp-down"
        e_vhi, e_vlo = self._e_vhi, self._e_vlo

        # 3. all limits in force (the EV's too)
        ci = min(c_i, self._a_ci, req.max_charge_current_a)
        cp = min(c_p, self._a_cp, req.max_charge_power_w)
        di = min(d_i, self._a_di, req.max_discharge_current_a)
        dp = min(d_p, self._a_dp, req.max_discharge_power_w)
        vhi = min(self._a_vhi, req.max_voltage_v)
        vlo = max(self._a_vlo, req.min_voltage_v)
        hi = min(ci, cp / v) if v > 0.0 else 0.0
        lo = min(di, dp / v) if v > 0.0 else 0.0
        if v >= vhi:
            hi = 0.0  # at/above the voltage limit nothing may push it further up
        if v <= vlo:
            lo = 0.0

        # 4. wanted current
        if req.stop or self.safe.active or not self.stage.contactors_closed or v <= 0.0:
            want = 0.0
        elif self.mode is Mode.SCHEDULED:
            want = req.target_current_a
            if want != want:  # NaN: nothing asked
                want = 0.0
            tv = req.target_voltage_v
            if want > 0.0 and tv == tv and v >= tv:
                hi = 0.0  # the truck's own target voltage reached
        else:
            sp = setpoint
            if sp > 0.0 and req.max_energy_wh <= 0.0:
                sp = 0.0  # the truck cannot take more energy
            elif sp < 0.0 and req.min_v2x_energy_wh >= 0.0:
                sp = 0.0  # the truck has no energy to give (V2X request not negative)
            want = sp / v

        # 5. clamp, floors, flags
        binding = "request"
        pflag = cflag = vflag = False
        if want > 0.0:
            cmd = want
            if cmd >= hi:
                cmd = hi
                if v >= vhi:
                    binding = "voltage limit"
                elif hi == ci:
                    binding = n_ci if ci == c_i else "EV current limit"
                else:
                    binding = n_cp if cp == c_p else "EV power limit"
            if cmd > 0.0 and (
                cmd < self._a_cimin or cmd * v < max(self._a_cpmin, req.min_charge_power_w)
            ):
                cmd, binding = 0.0, "below charge minimum"
            cflag = cmd > 0.0 and cmd == c_i
            pflag = cmd > 0.0 and cmd == c_p / v
            vflag = v >= e_vhi
        elif want < 0.0:
            cmd = want
            if -cmd >= lo:
                cmd = -lo
                if v <= vlo:
                    binding = "voltage limit"
                elif lo == di:
                    binding = n_di if di == d_i else "EV discharge current limit"
                else:
                    binding = n_dp if dp == d_p else "EV discharge power limit"
            if cmd < 0.0 and (
                -cmd < self._a_dimin or -cmd * v < max(self._a_dpmin, req.min_discharge_power_w)
            ):
                cmd, binding = 0.0, "below discharge minimum"
            cflag = cmd < 0.0 and -cmd == d_i
            pflag = cmd < 0.0 and -cmd == d_p / v
            vflag = v <= e_vlo
        else:
            cmd = 0.0
            if self.safe.active:
                binding = f"safe state ({self.safe.cause.value if self.safe.cause else ''})"
            elif req.stop:
                binding = "stop requested"

        i = self.stage.track_current(cmd, dt, v, -lo, hi)
        contactors_open = self.safe.update(now, i)
        if contactors_open:
            self.stage.contactors_closed = False
        p = i * v
        self._p_last = p
        meter = self.meter
        d = SeccDecision(
            now, i, v, p, cmd, pflag, cflag, vflag,
            c_p, self._e_cpmin, c_i, d_p, self._e_dpmin, d_i, e_vhi, e_vlo,
            setpoint, binding, self.safe.active, contactors_open, ov,
            meter.charged_wh, meter.discharged_wh,
            ci, cp, di, dp, vhi, vlo,
        )  # fmt: skip
        self.last_decision = d
        return d
