"""Types of ``V2G_CI_CommonTypes.xsd`` (namespace ``urn:iso:std:iso:15118:-20:CommonTypes``).

Abstract XSD base types (V2GMessage, V2GRequest, ChargeLoopReq, CLReqControlMode, ...) are
dataclass base classes; concrete messages and control modes in the other modules extend them.
Elements declared here (``Header``, ``ResponseCode``, ``MeterInfoRequested``, ...) are in the
CommonTypes namespace even when they appear inside a CommonMessages or DC element.
"""

# Field defaults are metadata-carrying dataclasses.field() calls made by meta.el/attr/choice.

from __future__ import annotations

from dataclasses import dataclass

from mcscomm.messages.enums import EvseNotification, Processing, ResponseCode
from mcscomm.messages.meta import (
    BOOL,
    NS_CT,
    SHORT,
    UINT,
    ULONG,
    USHORT,
    Simple,
    el,
    enum_type,
    xmltype,
)
from mcscomm.messages.rational import RationalNumber
from mcscomm.messages.xmldsig import Signature, X509IssuerSerial

# Simple types with facets [XSD CommonTypes]
NUMERIC_ID = Simple("numericIDType", "int", 1, 2**32 - 1)
SESSION_ID = Simple("sessionIDType", "hex", length=8)
PERCENT = Simple("percentValueType", "int", 0, 100)
IDENTIFIER = Simple("identifierType", "str", max_length=255)
NAME = Simple("nameType", "str", max_length=80)
DESCRIPTION = Simple("descriptionType", "str", max_length=160)
METER_ID = Simple("meterIDType", "str", max_length=32)
METER_SIGNATURE = Simple("meterSignatureType", "base64", max_length=64)
RESPONSE_CODE = enum_type(ResponseCode, "responseCodeType")
PROCESSING = enum_type(Processing, "processingType")
EVSE_NOTIFICATION = enum_type(EvseNotification, "evseNotificationType")


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class MessageHeader:
    """``MessageHeaderType``: 8-byte session id, Unix time in seconds, optional signature."""

    session_id: bytes = el("SessionID", NS_CT, SESSION_ID)
    timestamp: int = el("TimeStamp", NS_CT, ULONG)
    signature: Signature | None = el(
        "Signature", "http://www.w3.org/2000/09/xmldsig#", Signature, min_occurs=0
    )


@dataclass(slots=True, kw_only=True)
class V2GMessage:
    """``V2GMessageType`` (abstract): every -20 message starts with a header."""

    header: MessageHeader = el("Header", NS_CT, MessageHeader)


@dataclass(slots=True, kw_only=True)
class V2GRequest(V2GMessage):
    """``V2GRequestType`` (abstract)."""


@dataclass(slots=True, kw_only=True)
class V2GResponse(V2GMessage):
    """``V2GResponseType`` (abstract): every response has a ResponseCode."""

    response_code: ResponseCode = el("ResponseCode", NS_CT, RESPONSE_CODE)


@dataclass(slots=True, kw_only=True)
class ChargeParameterDiscoveryReq(V2GRequest):
    """``ChargeParameterDiscoveryReqType`` (abstract)."""


@dataclass(slots=True, kw_only=True)
class ChargeParameterDiscoveryRes(V2GResponse):
    """``ChargeParameterDiscoveryResType`` (abstract)."""


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class DisplayParameters:
    """``DisplayParametersType``: optional HMI values sent by the EV."""

    present_soc: int | None = el("PresentSOC", NS_CT, PERCENT, min_occurs=0)
    minimum_soc: int | None = el("MinimumSOC", NS_CT, PERCENT, min_occurs=0)
    target_soc: int | None = el("TargetSOC", NS_CT, PERCENT, min_occurs=0)
    maximum_soc: int | None = el("MaximumSOC", NS_CT, PERCENT, min_occurs=0)
    remaining_time_to_minimum_soc: int | None = el(
        "RemainingTimeToMinimumSOC", NS_CT, UINT, min_occurs=0
    )
    remaining_time_to_target_soc: int | None = el(
        "RemainingTimeToTargetSOC", NS_CT, UINT, min_occurs=0
    )
    remaining_time_to_maximum_soc: int | None = el(
        "RemainingTimeToMaximumSOC", NS_CT, UINT, min_occurs=0
    )
    charging_complete: bool | None = el("ChargingComplete", NS_CT, BOOL, min_occurs=0)
    battery_energy_capacity: RationalNumber | None = el(
        "BatteryEnergyCapacity", NS_CT, RationalNumber, min_occurs=0
    )
    inlet_hot: bool | None = el("InletHot", NS_CT, BOOL, min_occurs=0)


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class EVSEStatus:
    """``EVSEStatusType``: a notification and how long the EVSE waits for the EV to react."""

    notification_max_delay: int = el("NotificationMaxDelay", NS_CT, USHORT)
    evse_notification: EvseNotification = el("EVSENotification", NS_CT, EVSE_NOTIFICATION)


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class MeterInfo:
    """``MeterInfoType``."""

    meter_id: str = el("MeterID", NS_CT, METER_ID)
    charged_energy_reading_wh: int = el("ChargedEnergyReadingWh", NS_CT, ULONG)
    bpt_discharged_energy_reading_wh: int | None = el(
        "BPT_DischargedEnergyReadingWh", NS_CT, ULONG, min_occurs=0
    )
    capacitive_energy_reading_varh: int | None = el(
        "CapacitiveEnergyReadingVARh", NS_CT, ULONG, min_occurs=0
    )
    bpt_inductive_energy_reading_varh: int | None = el(
        "BPT_InductiveEnergyReadingVARh", NS_CT, ULONG, min_occurs=0
    )
    meter_signature: bytes | None = el("MeterSignature", NS_CT, METER_SIGNATURE, min_occurs=0)
    meter_status: int | None = el("MeterStatus", NS_CT, SHORT, min_occurs=0)
    meter_timestamp: int | None = el("MeterTimestamp", NS_CT, ULONG, min_occurs=0)


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class DetailedCost:
    """``DetailedCostType``."""

    amount: RationalNumber = el("Amount", NS_CT, RationalNumber)
    cost_per_unit: RationalNumber = el("CostPerUnit", NS_CT, RationalNumber)


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class DetailedTax:
    """``DetailedTaxType``."""

    tax_rule_id: int = el("TaxRuleID", NS_CT, NUMERIC_ID)
    amount: RationalNumber = el("Amount", NS_CT, RationalNumber)


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class Receipt:
    """``ReceiptType``."""

    time_anchor: int = el("TimeAnchor", NS_CT, ULONG)
    energy_costs: DetailedCost | None = el("EnergyCosts", NS_CT, DetailedCost, min_occurs=0)
    occupancy_costs: DetailedCost | None = el("OccupancyCosts", NS_CT, DetailedCost, min_occurs=0)
    additional_services_costs: DetailedCost | None = el(
        "AdditionalServicesCosts", NS_CT, DetailedCost, min_occurs=0
    )
    overstay_costs: DetailedCost | None = el("OverstayCosts", NS_CT, DetailedCost, min_occurs=0)
    tax_costs: list[DetailedTax] = el("TaxCosts", NS_CT, DetailedTax, min_occurs=0, max_occurs=10)


@xmltype(NS_CT)
@dataclass(slots=True, kw_only=True)
class ListOfRootCertificateIDs:
    """``ListOfRootCertificateIDsType``: 1..20 root certificates the EV trusts."""

    root_certificate_id: list[X509IssuerSerial] = el(
        "RootCertificateID", NS_CT, X509IssuerSerial, max_occurs=20
    )


@dataclass(slots=True, kw_only=True)
class ChargeLoopReq(V2GRequest):
    """``ChargeLoopReqType`` (abstract base of DC_ChargeLoopReq)."""

    display_parameters: DisplayParameters | None = el(
        "DisplayParameters", NS_CT, DisplayParameters, min_occurs=0
    )
    meter_info_requested: bool = el("MeterInfoRequested", NS_CT, BOOL)


@dataclass(slots=True, kw_only=True)
class ChargeLoopRes(V2GResponse):
    """``ChargeLoopResType`` (abstract base of DC_ChargeLoopRes)."""

    evse_status: EVSEStatus | None = el("EVSEStatus", NS_CT, EVSEStatus, min_occurs=0)
    meter_info: MeterInfo | None = el("MeterInfo", NS_CT, MeterInfo, min_occurs=0)
    receipt: Receipt | None = el("Receipt", NS_CT, Receipt, min_occurs=0)


@dataclass(slots=True, kw_only=True)
class CLReqControlMode:
    """``CLReqControlModeType`` (abstract head of the charge-loop request control modes)."""


@dataclass(slots=True, kw_only=True)
class CLResControlMode:
    """``CLResControlModeType`` (abstract head of the charge-loop response control modes)."""


@dataclass(slots=True, kw_only=True)
class Scheduled_CLReqControlMode(CLReqControlMode):
    """``Scheduled_CLReqControlModeType`` (abstract)."""

    ev_target_energy_request: RationalNumber | None = el(
        "EVTargetEnergyRequest", NS_CT, RationalNumber, min_occurs=0
    )
    ev_maximum_energy_request: RationalNumber | None = el(
        "EVMaximumEnergyRequest", NS_CT, RationalNumber, min_occurs=0
    )
    ev_minimum_energy_request: RationalNumber | None = el(
        "EVMinimumEnergyRequest", NS_CT, RationalNumber, min_occurs=0
    )


@dataclass(slots=True, kw_only=True)
class Scheduled_CLResControlMode(CLResControlMode):
    """``Scheduled_CLResControlModeType`` (abstract, empty)."""


@dataclass(slots=True, kw_only=True)
class Dynamic_CLReqControlMode(CLReqControlMode):
    """``Dynamic_CLReqControlModeType`` (abstract)."""

    departure_time: int | None = el("DepartureTime", NS_CT, UINT, min_occurs=0)
    ev_target_energy_request: RationalNumber = el("EVTargetEnergyRequest", NS_CT, RationalNumber)
    ev_maximum_energy_request: RationalNumber = el("EVMaximumEnergyRequest", NS_CT, RationalNumber)
    ev_minimum_energy_request: RationalNumber = el("EVMinimumEnergyRequest", NS_CT, RationalNumber)


@dataclass(slots=True, kw_only=True)
class Dynamic_CLResControlMode(CLResControlMode):
    """``Dynamic_CLResControlModeType`` (abstract)."""

    departure_time: int | None = el("DepartureTime", NS_CT, UINT, min_occurs=0)
    minimum_soc: int | None = el("MinimumSOC", NS_CT, PERCENT, min_occurs=0)
    target_soc: int | None = el("TargetSOC", NS_CT, PERCENT, min_occurs=0)
    ack_max_delay: int | None = el("AckMaxDelay", NS_CT, USHORT, min_occurs=0)
