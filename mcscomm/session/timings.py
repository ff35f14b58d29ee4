"""ISO 15118-20 timer values as one overridable dataclass.

Every value is a deadline the sans-IO sessions enforce (never a sleep). Tests, conformance cases and
fuzz campaigns override single fields with ``dataclasses.replace(Timings(), ...)``. Sources are the
facts file (`iso15118-20-facts.md`) sections 5.1-5.3.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# Messages with the long (5 s / 4.5 s) per-message timer: facts §5.1 (Table 215).
_LONG_MESSAGES = frozenset({"CertificateInstallationReq", "ServiceDetailReq"})
# DC messages in the charge loop: facts §5.2 (Table 217).
_LOOP_MESSAGES = frozenset({"DC_ChargeLoopReq"})


@dataclass(frozen=True, slots=True)
class Timings:
    """All session timers in seconds. Defaults are the ISO 15118-20 values."""

    # V2G_EVCC_Msg_Timeout: the EVCC fails when a response is later than this (facts §5.1/§5.2).
    evcc_msg_timeout_s: float = 2.0
    evcc_msg_timeout_long_s: float = 5.0
    evcc_charge_loop_msg_timeout_s: float = 0.5
    # V2G_SECC_Msg_Performance_Time: the SECC answers within this (facts §5.1/§5.2).
    secc_msg_performance_s: float = 1.5
    secc_msg_performance_long_s: float = 4.5
    secc_charge_loop_performance_s: float = 0.25
    # V2G_EVCC_Sequence_Performance_Time / V2G_SECC_Sequence_Timeout outside the loop (facts §5.1).
    evcc_sequence_performance_s: float = 40.0
    secc_sequence_timeout_s: float = 60.0
    # Charge-loop cadence (facts §5.2): the EVCC sends the next DC_ChargeLoopReq within 0.25 s of
    # the previous response; the SECC ends the session after 0.5 s of silence.
    charge_loop_cycle_s: float = 0.25
    secc_charge_loop_sequence_timeout_s: float = 0.5
    # Ongoing loops (facts §5.1): EVCC gives up after 60 s, the SECC must finish within 55 s.
    evcc_ongoing_timeout_s: float = 60.0
    secc_ongoing_performance_s: float = 55.0
    # Communication setup, plug-in/connection until SessionSetup (facts §5.3).
    evcc_communication_setup_s: float = 20.0
    secc_communication_setup_s: float = 18.0
    # Phase timers (facts §5.3): cable check 40 s (EVCC) / 38 s (SECC, -2 Table 111 value);
    # pre-charge 10 s on the EVCC (Josev -20; -2 had 7 s). No -20 SECC pre-charge timer was found,
    # so the EVCC's limit is the one enforced there.
    evcc_cable_check_timeout_s: float = 40.0
    secc_cable_check_s: float = 38.0
    evcc_pre_charge_timeout_s: float = 10.0
    # How long the EVCC waits before repeating a request answered with Ongoing (or a pre-charge /
    # welding-detection poll). Not normative; small enough for every timer above.
    evcc_poll_interval_s: float = 0.25

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"Timings.{f.name} must be a non-negative number, got {value!r}")
        if self.charge_loop_cycle_s > self.secc_charge_loop_sequence_timeout_s:
            raise ValueError("charge_loop_cycle_s must not exceed the SECC charge-loop timeout")

    def evcc_msg_timeout(self, request_name: str) -> float:
        """V2G_EVCC_Msg_Timeout for a request of that name."""
        if request_name in _LOOP_MESSAGES:
            return self.evcc_charge_loop_msg_timeout_s
        if request_name in _LONG_MESSAGES:
            return self.evcc_msg_timeout_long_s
        return self.evcc_msg_timeout_s

    def secc_performance(self, request_name: str) -> float:
        """V2G_SECC_Msg_Performance_Time for a request of that name."""
        if request_name in _LOOP_MESSAGES:
            return self.secc_charge_loop_performance_s
        if request_name in _LONG_MESSAGES:
            return self.secc_msg_performance_long_s
        return self.secc_msg_performance_s

    def secc_sequence_timeout(self, last_response_name: str) -> float:
        """V2G_SECC_Sequence_Timeout after sending a response of that name."""
        if last_response_name == "DC_ChargeLoopRes":
            return self.secc_charge_loop_sequence_timeout_s
        return self.secc_sequence_timeout_s
