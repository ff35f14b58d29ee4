"""Messages and types of ``V2G_CI_DC.xsd`` (V2GTP payload 0x8004; also used by MCS / MCS_BPT).

BPT variants subclass the plain DC variant, mirroring the XSD substitution groups: a field typed
``DC_CPDReqEnergyTransferMode`` accepts a ``BPT_DC_CPDReqEnergyTransferMode`` too, and the codec
writes the element name of the actual class.
"""

# Field defaults are metadata-carrying dataclasses.field() calls made by meta.el/attr/choice.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass

from mcscomm.messages.common_types import (
    PERCENT,
    PROCESSING,
    ChargeLoopReq,
    ChargeLoopRes,
    ChargeParameterDiscoveryReq,
    ChargeParameterDiscoveryRes,
    Dynamic_CLReqControlMode,
    Dynamic_CLResControlMode,
    Scheduled_CLReqControlMode,
    Scheduled_CLResControlMode,
    V2GRequest,
    V2GResponse,
)
from mcscomm.messages.enums import Processing
from mcscomm.messages.meta import BOOL, NS_DC, choice, el, xmltype
from mcscomm.messages.rational import RationalNumber


def _opt(name: str) -> RationalNumber | None:
    """An optional RationalNumber element of the DC namespace."""
    result: RationalNumber | None = el(name, NS_DC, RationalNumber, min_occurs=0)
    return result


# --------------------------------------------------------------------------------------------
# DC_ChargeParameterDiscovery energy transfer modes
# --------------------------------------------------------------------------------------------


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_CPDReqEnergyTransferMode:
    """``DC_CPDReqEnergyTransferModeType``: the EV's DC limits."""

    ev_maximum_charge_power: RationalNumber = el("EVMaximumChargePower", NS_DC, RationalNumber)
    ev_minimum_charge_power: RationalNumber = el("EVMinimumChargePower", NS_DC, RationalNumber)
    ev_maximum_charge_current: RationalNumber = el("EVMaximumChargeCurrent", NS_DC, RationalNumber)
    ev_minimum_charge_current: RationalNumber = el("EVMinimumChargeCurrent", NS_DC, RationalNumber)
    ev_maximum_voltage: RationalNumber = el("EVMaximumVoltage", NS_DC, RationalNumber)
    ev_minimum_voltage: RationalNumber = el("EVMinimumVoltage", NS_DC, RationalNumber)
    target_soc: int | None = el("TargetSOC", NS_DC, PERCENT, min_occurs=0)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_CPDResEnergyTransferMode:
    """``DC_CPDResEnergyTransferModeType``: the EVSE's DC limits."""

    evse_maximum_charge_power: RationalNumber = el("EVSEMaximumChargePower", NS_DC, RationalNumber)
    evse_minimum_charge_power: RationalNumber = el("EVSEMinimumChargePower", NS_DC, RationalNumber)
    evse_maximum_charge_current: RationalNumber = el(
        "EVSEMaximumChargeCurrent", NS_DC, RationalNumber
    )
    evse_minimum_charge_current: RationalNumber = el(
        "EVSEMinimumChargeCurrent", NS_DC, RationalNumber
    )
    evse_maximum_voltage: RationalNumber = el("EVSEMaximumVoltage", NS_DC, RationalNumber)
    evse_minimum_voltage: RationalNumber = el("EVSEMinimumVoltage", NS_DC, RationalNumber)
    evse_power_ramp_limitation: RationalNumber | None = _opt("EVSEPowerRampLimitation")


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class BPT_DC_CPDReqEnergyTransferMode(DC_CPDReqEnergyTransferMode):
    """``BPT_DC_CPDReqEnergyTransferModeType``: + discharge limits."""

    ev_maximum_discharge_power: RationalNumber = el(
        "EVMaximumDischargePower", NS_DC, RationalNumber
    )
    ev_minimum_discharge_power: RationalNumber = el(
        "EVMinimumDischargePower", NS_DC, RationalNumber
    )
    ev_maximum_discharge_current: RationalNumber = el(
        "EVMaximumDischargeCurrent", NS_DC, RationalNumber
    )
    ev_minimum_discharge_current: RationalNumber = el(
        "EVMinimumDischargeCurrent", NS_DC, RationalNumber
    )


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class BPT_DC_CPDResEnergyTransferMode(DC_CPDResEnergyTransferMode):
    """``BPT_DC_CPDResEnergyTransferModeType``: + discharge limits."""

    evse_maximum_discharge_power: RationalNumber = el(
        "EVSEMaximumDischargePower", NS_DC, RationalNumber
    )
    evse_minimum_discharge_power: RationalNumber = el(
        "EVSEMinimumDischargePower", NS_DC, RationalNumber
    )
    evse_maximum_discharge_current: RationalNumber = el(
        "EVSEMaximumDischargeCurrent", NS_DC, RationalNumber
    )
    evse_minimum_discharge_current: RationalNumber = el(
        "EVSEMinimumDischargeCurrent", NS_DC, RationalNumber
    )


# --------------------------------------------------------------------------------------------
# DC_ChargeLoop control modes (substitution group members of CLReq/CLResControlMode)
# --------------------------------------------------------------------------------------------


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class Scheduled_DC_CLReqControlMode(Scheduled_CLReqControlMode):
    """``Scheduled_DC_CLReqControlModeType``."""

    ev_target_current: RationalNumber = el("EVTargetCurrent", NS_DC, RationalNumber)
    ev_target_voltage: RationalNumber = el("EVTargetVoltage", NS_DC, RationalNumber)
    ev_maximum_charge_power: RationalNumber | None = _opt("EVMaximumChargePower")
    ev_minimum_charge_power: RationalNumber | None = _opt("EVMinimumChargePower")
    ev_maximum_charge_current: RationalNumber | None = _opt("EVMaximumChargeCurrent")
    ev_maximum_voltage: RationalNumber | None = _opt("EVMaximumVoltage")
    ev_minimum_voltage: RationalNumber | None = _opt("EVMinimumVoltage")


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class Scheduled_DC_CLResControlMode(Scheduled_CLResControlMode):
    """``Scheduled_DC_CLResControlModeType``."""

    evse_maximum_charge_power: RationalNumber | None = _opt("EVSEMaximumChargePower")
    evse_minimum_charge_power: RationalNumber | None = _opt("EVSEMinimumChargePower")
    evse_maximum_charge_current: RationalNumber | None = _opt("EVSEMaximumChargeCurrent")
    evse_maximum_voltage: RationalNumber | None = _opt("EVSEMaximumVoltage")


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class BPT_Scheduled_DC_CLReqControlMode(Scheduled_DC_CLReqControlMode):
    """``BPT_Scheduled_DC_CLReqControlModeType``."""

    ev_maximum_discharge_power: RationalNumber | None = _opt("EVMaximumDischargePower")
    ev_minimum_discharge_power: RationalNumber | None = _opt("EVMinimumDischargePower")
    ev_maximum_discharge_current: RationalNumber | None = _opt("EVMaximumDischargeCurrent")


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class BPT_Scheduled_DC_CLResControlMode(Scheduled_DC_CLResControlMode):
    """``BPT_Scheduled_DC_CLResControlModeType``."""

    evse_maximum_discharge_power: RationalNumber | None = _opt("EVSEMaximumDischargePower")
    evse_minimum_discharge_power: RationalNumber | None = _opt("EVSEMinimumDischargePower")
    evse_maximum_discharge_current: RationalNumber | None = _opt("EVSEMaximumDischargeCurrent")
    evse_minimum_voltage: RationalNumber | None = _opt("EVSEMinimumVoltage")


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class Dynamic_DC_CLReqControlMode(Dynamic_CLReqControlMode):
    """``Dynamic_DC_CLReqControlModeType``."""

    ev_maximum_charge_power: RationalNumber = el("EVMaximumChargePower", NS_DC, RationalNumber)
    ev_minimum_charge_power: RationalNumber = el("EVMinimumChargePower", NS_DC, RationalNumber)
    ev_maximum_charge_current: RationalNumber = el("EVMaximumChargeCurrent", NS_DC, RationalNumber)
    ev_maximum_voltage: RationalNumber = el("EVMaximumVoltage", NS_DC, RationalNumber)
    ev_minimum_voltage: RationalNumber = el("EVMinimumVoltage", NS_DC, RationalNumber)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class Dynamic_DC_CLResControlMode(Dynamic_CLResControlMode):
    """``Dynamic_DC_CLResControlModeType``."""

    evse_maximum_charge_power: RationalNumber = el("EVSEMaximumChargePower", NS_DC, RationalNumber)
    evse_minimum_charge_power: RationalNumber = el("EVSEMinimumChargePower", NS_DC, RationalNumber)
    evse_maximum_charge_current: RationalNumber = el(
        "EVSEMaximumChargeCurrent", NS_DC, RationalNumber
    )
    evse_maximum_voltage: RationalNumber = el("EVSEMaximumVoltage", NS_DC, RationalNumber)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class BPT_Dynamic_DC_CLReqControlMode(Dynamic_DC_CLReqControlMode):
    """``BPT_Dynamic_DC_CLReqControlModeType``."""

    ev_maximum_discharge_power: RationalNumber = el(
        "EVMaximumDischargePower", NS_DC, RationalNumber
    )
    ev_minimum_discharge_power: RationalNumber = el(
        "EVMinimumDischargePower", NS_DC, RationalNumber
    )
    ev_maximum_discharge_current: RationalNumber = el(
        "EVMaximumDischargeCurrent", NS_DC, RationalNumber
    )
    ev_maximum_v2x_energy_request: RationalNumber | None = _opt("EVMaximumV2XEnergyRequest")
    ev_minimum_v2x_energy_request: RationalNumber | None = _opt("EVMinimumV2XEnergyRequest")


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class BPT_Dynamic_DC_CLResControlMode(Dynamic_DC_CLResControlMode):
    """``BPT_Dynamic_DC_CLResControlModeType``."""

    evse_maximum_discharge_power: RationalNumber = el(
        "EVSEMaximumDischargePower", NS_DC, RationalNumber
    )
    evse_minimum_discharge_power: RationalNumber = el(
        "EVSEMinimumDischargePower", NS_DC, RationalNumber
    )
    evse_maximum_discharge_current: RationalNumber = el(
        "EVSEMaximumDischargeCurrent", NS_DC, RationalNumber
    )
    evse_minimum_voltage: RationalNumber = el("EVSEMinimumVoltage", NS_DC, RationalNumber)


#: Members of the ``CLReqControlMode`` / ``CLResControlMode`` substitution groups.
CL_REQ_CONTROL_MODES = (
    Scheduled_DC_CLReqControlMode,
    BPT_Scheduled_DC_CLReqControlMode,
    Dynamic_DC_CLReqControlMode,
    BPT_Dynamic_DC_CLReqControlMode,
)
CL_RES_CONTROL_MODES = (
    Scheduled_DC_CLResControlMode,
    BPT_Scheduled_DC_CLResControlMode,
    Dynamic_DC_CLResControlMode,
    BPT_Dynamic_DC_CLResControlMode,
)

# --------------------------------------------------------------------------------------------
# DC messages
# --------------------------------------------------------------------------------------------


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_ChargeParameterDiscoveryReq(ChargeParameterDiscoveryReq):
    """DC_ChargeParameterDiscoveryReq: DC or BPT limits of the EV."""

    transfer_mode: DC_CPDReqEnergyTransferMode = choice(
        DC_CPDReqEnergyTransferMode, BPT_DC_CPDReqEnergyTransferMode
    )


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_ChargeParameterDiscoveryRes(ChargeParameterDiscoveryRes):
    """DC_ChargeParameterDiscoveryRes: DC or BPT limits of the EVSE."""

    transfer_mode: DC_CPDResEnergyTransferMode = choice(
        DC_CPDResEnergyTransferMode, BPT_DC_CPDResEnergyTransferMode
    )


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_CableCheckReq(V2GRequest):
    """DC_CableCheckReq (header only)."""


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_CableCheckRes(V2GResponse):
    """DC_CableCheckRes."""

    evse_processing: Processing = el("EVSEProcessing", NS_DC, PROCESSING)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_PreChargeReq(V2GRequest):
    """DC_PreChargeReq."""

    ev_processing: Processing = el("EVProcessing", NS_DC, PROCESSING)
    ev_present_voltage: RationalNumber = el("EVPresentVoltage", NS_DC, RationalNumber)
    ev_target_voltage: RationalNumber = el("EVTargetVoltage", NS_DC, RationalNumber)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_PreChargeRes(V2GResponse):
    """DC_PreChargeRes."""

    evse_present_voltage: RationalNumber = el("EVSEPresentVoltage", NS_DC, RationalNumber)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_ChargeLoopReq(ChargeLoopReq):
    """DC_ChargeLoopReq: one of the four DC control modes."""

    ev_present_voltage: RationalNumber = el("EVPresentVoltage", NS_DC, RationalNumber)
    control_mode: Scheduled_DC_CLReqControlMode | Dynamic_DC_CLReqControlMode = choice(
        *CL_REQ_CONTROL_MODES
    )


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_ChargeLoopRes(ChargeLoopRes):
    """DC_ChargeLoopRes: present values, limit flags and one of the four DC control modes."""

    evse_present_current: RationalNumber = el("EVSEPresentCurrent", NS_DC, RationalNumber)
    evse_present_voltage: RationalNumber = el("EVSEPresentVoltage", NS_DC, RationalNumber)
    evse_power_limit_achieved: bool = el("EVSEPowerLimitAchieved", NS_DC, BOOL)
    evse_current_limit_achieved: bool = el("EVSECurrentLimitAchieved", NS_DC, BOOL)
    evse_voltage_limit_achieved: bool = el("EVSEVoltageLimitAchieved", NS_DC, BOOL)
    control_mode: Scheduled_DC_CLResControlMode | Dynamic_DC_CLResControlMode = choice(
        *CL_RES_CONTROL_MODES
    )


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_WeldingDetectionReq(V2GRequest):
    """DC_WeldingDetectionReq."""

    ev_processing: Processing = el("EVProcessing", NS_DC, PROCESSING)


@xmltype(NS_DC)
@dataclass(slots=True, kw_only=True)
class DC_WeldingDetectionRes(V2GResponse):
    """DC_WeldingDetectionRes."""

    evse_present_voltage: RationalNumber = el("EVSEPresentVoltage", NS_DC, RationalNumber)


#: Root elements of the DC schema we handle.
ROOT_MESSAGES: tuple[type, ...] = (
    DC_ChargeParameterDiscoveryReq,
    DC_ChargeParameterDiscoveryRes,
    DC_CableCheckReq,
    DC_CableCheckRes,
    DC_PreChargeReq,
    DC_PreChargeRes,
    DC_ChargeLoopReq,
    DC_ChargeLoopRes,
    DC_WeldingDetectionReq,
    DC_WeldingDetectionRes,
)
