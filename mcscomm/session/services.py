"""Energy services and their ServiceDetail parameter sets (facts §4.5), as plain data.

The SECC offers, for each energy service it supports, one parameter set per control mode it
supports: parameter set id 1 = Scheduled, 2 = Dynamic (the id equals the ControlMode value, which
keeps traces readable). Parameter names and values follow libiso15118 ``service_detail.cpp``:
DC and MCS carry {Connector, ControlMode, MobilityNeedsMode, Pricing}; the BPT services add
{BPTChannel, GeneratorMode}.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcscomm.messages.enums import (
    BptChannel,
    ControlMode,
    DcConnector,
    GeneratorMode,
    McsConnector,
    MobilityNeedsMode,
    Pricing,
    ServiceId,
)

#: The energy services a DC/MCS session can run (facts §4.5).
ENERGY_SERVICES: tuple[ServiceId, ...] = (
    ServiceId.DC,
    ServiceId.DC_BPT,
    ServiceId.MCS,
    ServiceId.MCS_BPT,
)
BIDIRECTIONAL: frozenset[ServiceId] = frozenset({ServiceId.DC_BPT, ServiceId.MCS_BPT})
MCS_SERVICES: frozenset[ServiceId] = frozenset({ServiceId.MCS, ServiceId.MCS_BPT})


def is_bidirectional(service: ServiceId) -> bool:
    """True for DC_BPT and MCS_BPT."""
    return service in BIDIRECTIONAL


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """One ServiceDetail parameter set: an id and its (name, integer value) parameters."""

    set_id: int
    parameters: tuple[tuple[str, int], ...]

    def get(self, name: str) -> int | None:
        for key, value in self.parameters:
            if key == name:
                return value
        return None

    @property
    def control(self) -> ControlMode:
        value = self.get("ControlMode")
        if value is None:
            raise ValueError(f"parameter set {self.set_id} has no ControlMode")
        return ControlMode(value)


def parameter_sets(service: ServiceId, controls: tuple[ControlMode, ...]) -> list[ParameterSet]:
    """The parameter sets the SECC offers for ``service``: one per supported control mode.

    MobilityNeedsMode is always 1 (provided by the EVCC): V2G20-2663 allows 2 only with Dynamic
    and libiso15118 forces 1 with Scheduled; the truck states its own needs here.
    """
    connector = int(McsConnector.MCS) if service in MCS_SERVICES else int(DcConnector.EXTENDED)
    sets = []
    for control in controls:
        params: list[tuple[str, int]] = [
            ("Connector", connector),
            ("ControlMode", int(control)),
            ("MobilityNeedsMode", int(MobilityNeedsMode.PROVIDED_BY_EVCC)),
            ("Pricing", int(Pricing.NONE)),
        ]
        if is_bidirectional(service):
            params += [
                ("BPTChannel", int(BptChannel.UNIFIED)),
                ("GeneratorMode", int(GeneratorMode.GRID_FOLLOWING)),
            ]
        sets.append(ParameterSet(set_id=int(control), parameters=tuple(params)))
    return sets


def find_parameter_set(sets: list[ParameterSet], set_id: int) -> ParameterSet | None:
    """The offered set with that id, or None."""
    return next((s for s in sets if s.set_id == set_id), None)
