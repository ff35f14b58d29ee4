"""DC energy meter at the charger outlet: charged and discharged Wh that never go backwards."""

from __future__ import annotations

import math


class Meter:
    """Two monotonic counters. Positive power adds to ``charged_wh``, negative to ``discharged_wh``.

    Readings for MeterInfo (ChargedEnergyReadingWh / BPT_DischargedEnergyReadingWh, xs:unsignedLong,
    facts §4.4) are whole Wh, floored so a reported reading never exceeds the energy measured.
    """

    __slots__ = ("charged_wh", "discharged_wh", "meter_id")

    def __init__(self, meter_id: str = "MCSCOMM-METER-1") -> None:
        self.meter_id = meter_id
        self.charged_wh = 0.0
        self.discharged_wh = 0.0

    def add(self, power_w: float, dt_s: float) -> None:
        """Account ``power_w`` (> 0 charging the truck) flowing for ``dt_s`` seconds."""
        if not dt_s > 0.0 or not math.isfinite(power_w) or not math.isfinite(dt_s):
            return  # time going backwards or garbage never moves a counter
        e = power_w * dt_s / 3600.0
        if e > 0.0:
            self.charged_wh += e
        elif e < 0.0:
            self.discharged_wh -= e

    @property
    def net_wh(self) -> float:
        """Charged minus discharged energy, Wh."""
        return self.charged_wh - self.discharged_wh

    def readings(self) -> tuple[int, int]:
        """(charged, discharged) as whole Wh for MeterInfo."""
        return int(self.charged_wh), int(self.discharged_wh)
