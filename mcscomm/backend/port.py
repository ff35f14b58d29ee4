"""The contract between the OCPP station and one live -20 session on one EVSE (pure types).

The station never reaches into the session layer. An adapter (``secc_link`` for the real SECC,
``loopback`` for tests and demos) hands it a :class:`SessionSnapshot` whenever something changed,
and implements :class:`SessionControl` so the station can steer the session: play a backend plan
in the power layer, ask for a schedule renegotiation (Scheduled control) or stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mcscomm.power.ems import Scenario
from mcscomm.power.limits import PartyLimits


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What the station needs to know of a session, in SI units (W, Wh, V, A, s, SoC in %).

    ``service`` is the -20 energy service name (``DC``, ``DC_BPT``, ``MCS``, ``MCS_BPT``),
    ``control_mode`` ``Scheduled`` or ``Dynamic``; ``ev_limits`` the truck's declared limits
    (ChargeParameterDiscovery) once known. Energy requests come from the Dynamic charge loop or
    ScheduleExchange (Wh, None = not sent); ``departure_s`` is seconds from ``t``.
    ``ev_power_profile`` is the truck's EVPowerProfile (duration s, signed W) when it sent one.
    """

    t: float
    service: str | None = None
    control_mode: str | None = None
    auth: str | None = None
    id_token: str | None = None
    authorized: bool = False
    ev_limits: PartyLimits | None = None
    evse_limits: PartyLimits | None = None
    soc: float | None = None
    target_soc: float | None = None
    voltage_v: float = 0.0
    current_a: float = 0.0
    power_w: float = 0.0
    charged_wh: float = 0.0
    discharged_wh: float = 0.0
    in_charge_loop: bool = False
    target_energy_wh: float | None = None
    min_energy_wh: float | None = None
    max_energy_wh: float | None = None
    min_v2x_energy_wh: float | None = None
    max_v2x_energy_wh: float | None = None
    departure_s: float | None = None
    max_schedule_tuples: int | None = None
    ev_power_profile: tuple[tuple[float, float], ...] | None = None
    setpoint_w: float | None = None

    @property
    def bidirectional(self) -> bool:
        """True on a BPT service whose truck declared discharge limits."""
        return (
            self.service is not None
            and self.service.endswith("_BPT")
            and (self.ev_limits is None or self.ev_limits.can_discharge)
        )


class SessionControl(Protocol):
    """How the station steers one session (implemented by the session adapter)."""

    def apply_plan(self, plan: Scenario | None, epoch_now: float) -> None:
        """Play ``plan`` (step times relative to ``epoch_now``, wall seconds) in the power layer
        from now on; None removes backend steering. Must not block."""
        ...

    def renegotiate(self) -> None:
        """Scheduled control: ask the truck for a schedule renegotiation (EVSENotification)."""
        ...

    def stop(self) -> None:
        """End the session (EVSENotification Terminate at the next charge-loop answer)."""
        ...
