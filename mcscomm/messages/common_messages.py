"""Messages and types of ``V2G_CI_CommonMessages.xsd`` (V2GTP payload 0x8002; metering 0x8102).

One dataclass per XSD complex type (class name = type name without ``Type``, which equals the
element name for every root element and choice member). Field order is XSD sequence order.
"""

# Field defaults are metadata-carrying dataclasses.field() calls made by meta.el/attr/choice.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass

from mcscomm.messages.common_types import (
    DESCRIPTION,
    IDENTIFIER,
    NAME,
    NUMERIC_ID,
    PERCENT,
    PROCESSING,
    SESSION_ID,
    EVSEStatus,
    ListOfRootCertificateIDs,
    MeterInfo,
    Receipt,
    V2GRequest,
    V2GResponse,
)
from mcscomm.messages.enums import (
    AuthorizationType,
    ChannelSelection,
    ChargeProgress,
    ChargingSession,
    EcdhCurve,
    EvCheckInStatus,
    EvCheckOutStatus,
    EvseCheckOutStatus,
    ParkingMethod,
    PowerToleranceAcceptance,
    Processing,
)
from mcscomm.messages.meta import (
    BOOL,
    BYTE,
    ID,
    INT,
    NS_CM,
    SHORT,
    UBYTE,
    UINT,
    ULONG,
    USHORT,
    Simple,
    attr,
    choice,
    el,
    enum_type,
    xmltype,
)
from mcscomm.messages.rational import RationalNumber

# Simple types with facets [XSD CommonMessages]
SERVICE_ID = Simple("serviceIDType", "int", 0, 65535)
GEN_CHALLENGE = Simple("genChallengeType", "base64", length=16)
MAX_SUPPORTING_POINTS = Simple("maxSupportingPointsScheduleTupleType", "int", 12, 1024)
CURRENCY = Simple("currencyType", "str", max_length=3)
LANGUAGE = Simple("languageType", "str", max_length=3)
CERTIFICATE = Simple("certificateType", "base64", max_length=1600)
DH_PUBLIC_KEY = Simple("dhPublicKeyType", "base64", length=133)
SECP521_KEY = Simple("secp521_EncryptedPrivateKeyType", "base64", length=94)
X448_KEY = Simple("x448_EncryptedPrivateKeyType", "base64", length=84)
TPM_KEY = Simple("tpm_EncryptedPrivateKeyType", "base64", length=206)
AUTHORIZATION = enum_type(AuthorizationType, "authorizationType")
_R = RationalNumber


def _opt_r(name: str) -> RationalNumber | None:
    """An optional RationalNumber element of this namespace."""
    result: RationalNumber | None = el(name, NS_CM, RationalNumber, min_occurs=0)
    return result


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SubCertificates:
    """``SubCertificatesType``: up to 3 DER sub-CA certificates."""

    certificate: list[bytes] = el("Certificate", NS_CM, CERTIFICATE, max_occurs=3)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class CertificateChain:
    """``CertificateChainType``: DER leaf plus optional sub-CAs."""

    certificate: bytes = el("Certificate", NS_CM, CERTIFICATE)
    sub_certificates: SubCertificates | None = el(
        "SubCertificates", NS_CM, SubCertificates, min_occurs=0
    )


@xmltype(NS_CM, "OEMProvisioningCertificateChain")
@dataclass(slots=True, kw_only=True)
class SignedCertificateChain:
    """``SignedCertificateChainType`` (signable, ``Id``): the OEM provisioning chain."""

    id: str = attr("Id", NS_CM, ID)
    certificate: bytes = el("Certificate", NS_CM, CERTIFICATE)
    sub_certificates: SubCertificates | None = el(
        "SubCertificates", NS_CM, SubCertificates, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ContractCertificateChain:
    """``ContractCertificateChainType``: contract leaf plus (mandatory) sub-CAs."""

    certificate: bytes = el("Certificate", NS_CM, CERTIFICATE)
    sub_certificates: SubCertificates = el("SubCertificates", NS_CM, SubCertificates)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EMAIDList:
    """``EMAIDListType``: up to 8 prioritised EMAIDs."""

    emaid: list[str] = el("EMAID", NS_CM, IDENTIFIER, max_occurs=8)


# --------------------------------------------------------------------------------------------
# Session setup
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SessionSetupReq(V2GRequest):
    """SessionSetupReq: the EVCC identifies itself (all-zero SessionID starts a new session)."""

    evccid: str = el("EVCCID", NS_CM, IDENTIFIER)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SessionSetupRes(V2GResponse):
    """SessionSetupRes: the SECC's EVSEID; the header carries the new SessionID."""

    evseid: str = el("EVSEID", NS_CM, IDENTIFIER)


# --------------------------------------------------------------------------------------------
# Authorization setup / authorization
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SupportedProvidersList:
    """``SupportedProvidersListType``: up to 128 eMSP ids."""

    provider_id: list[str] = el("ProviderID", NS_CM, NAME, max_occurs=128)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EIM_ASResAuthorizationMode:
    """``EIM_ASResAuthorizationModeType`` (empty)."""


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PnC_ASResAuthorizationMode:
    """``PnC_ASResAuthorizationModeType``: 16-byte challenge, optional provider list."""

    gen_challenge: bytes = el("GenChallenge", NS_CM, GEN_CHALLENGE)
    supported_providers: SupportedProvidersList | None = el(
        "SupportedProviders", NS_CM, SupportedProvidersList, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AuthorizationSetupReq(V2GRequest):
    """AuthorizationSetupReq (header only)."""


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AuthorizationSetupRes(V2GResponse):
    """AuthorizationSetupRes: offered authorization services and the mode-specific data."""

    authorization_services: list[AuthorizationType] = el(
        "AuthorizationServices", NS_CM, AUTHORIZATION, max_occurs=2
    )
    certificate_installation_service: bool = el("CertificateInstallationService", NS_CM, BOOL)
    authorization_mode: EIM_ASResAuthorizationMode | PnC_ASResAuthorizationMode = choice(
        EIM_ASResAuthorizationMode, PnC_ASResAuthorizationMode
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EIM_AReqAuthorizationMode:
    """``EIM_AReqAuthorizationModeType`` (empty)."""


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PnC_AReqAuthorizationMode:
    """``PnC_AReqAuthorizationModeType`` (signable, ``Id``): challenge + contract chain."""

    id: str = attr("Id", NS_CM, ID)
    gen_challenge: bytes = el("GenChallenge", NS_CM, GEN_CHALLENGE)
    contract_certificate_chain: ContractCertificateChain = el(
        "ContractCertificateChain", NS_CM, ContractCertificateChain
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AuthorizationReq(V2GRequest):
    """AuthorizationReq: EIM, or PnC with the signed ``PnC_AReqAuthorizationMode``."""

    selected_authorization_service: AuthorizationType = el(
        "SelectedAuthorizationService", NS_CM, AUTHORIZATION
    )
    authorization_mode: EIM_AReqAuthorizationMode | PnC_AReqAuthorizationMode = choice(
        EIM_AReqAuthorizationMode, PnC_AReqAuthorizationMode
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AuthorizationRes(V2GResponse):
    """AuthorizationRes."""

    evse_processing: Processing = el("EVSEProcessing", NS_CM, PROCESSING)


# --------------------------------------------------------------------------------------------
# Service discovery / detail / selection
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceIDList:
    """``ServiceIDListType``: up to 16 service ids."""

    service_id: list[int] = el("ServiceID", NS_CM, SERVICE_ID, max_occurs=16)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Service:
    """``ServiceType``."""

    service_id: int = el("ServiceID", NS_CM, SERVICE_ID)
    free_service: bool = el("FreeService", NS_CM, BOOL)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceList:
    """``ServiceListType``: up to 8 services."""

    service: list[Service] = el("Service", NS_CM, Service, max_occurs=8)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SelectedService:
    """``SelectedServiceType``."""

    service_id: int = el("ServiceID", NS_CM, SERVICE_ID)
    parameter_set_id: int = el("ParameterSetID", NS_CM, SERVICE_ID)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SelectedServiceList:
    """``SelectedServiceListType``: up to 16 selected VAS."""

    selected_service: list[SelectedService] = el(
        "SelectedService", NS_CM, SelectedService, max_occurs=16
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Parameter:
    """``ParameterType``: a named value; exactly one of the ``*_value`` fields is set."""

    name: str = attr("Name", NS_CM, NAME)
    bool_value: bool | None = el("boolValue", NS_CM, BOOL, min_occurs=0, group="value")
    byte_value: int | None = el("byteValue", NS_CM, BYTE, min_occurs=0, group="value")
    short_value: int | None = el("shortValue", NS_CM, SHORT, min_occurs=0, group="value")
    int_value: int | None = el("intValue", NS_CM, INT, min_occurs=0, group="value")
    rational_number: RationalNumber | None = el(
        "rationalNumber", NS_CM, RationalNumber, min_occurs=0, group="value"
    )
    finite_string: str | None = el("finiteString", NS_CM, NAME, min_occurs=0, group="value")


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ParameterSet:
    """``ParameterSetType``."""

    parameter_set_id: int = el("ParameterSetID", NS_CM, SERVICE_ID)
    parameter: list[Parameter] = el("Parameter", NS_CM, Parameter, max_occurs=32)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceParameterList:
    """``ServiceParameterListType``."""

    parameter_set: list[ParameterSet] = el("ParameterSet", NS_CM, ParameterSet, max_occurs=32)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceDiscoveryReq(V2GRequest):
    """ServiceDiscoveryReq."""

    supported_service_ids: ServiceIDList | None = el(
        "SupportedServiceIDs", NS_CM, ServiceIDList, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceDiscoveryRes(V2GResponse):
    """ServiceDiscoveryRes."""

    service_renegotiation_supported: bool = el("ServiceRenegotiationSupported", NS_CM, BOOL)
    energy_transfer_service_list: ServiceList = el("EnergyTransferServiceList", NS_CM, ServiceList)
    vas_list: ServiceList | None = el("VASList", NS_CM, ServiceList, min_occurs=0)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceDetailReq(V2GRequest):
    """ServiceDetailReq."""

    service_id: int = el("ServiceID", NS_CM, SERVICE_ID)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceDetailRes(V2GResponse):
    """ServiceDetailRes."""

    service_id: int = el("ServiceID", NS_CM, SERVICE_ID)
    service_parameter_list: ServiceParameterList = el(
        "ServiceParameterList", NS_CM, ServiceParameterList
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceSelectionReq(V2GRequest):
    """ServiceSelectionReq."""

    selected_energy_transfer_service: SelectedService = el(
        "SelectedEnergyTransferService", NS_CM, SelectedService
    )
    selected_vas_list: SelectedServiceList | None = el(
        "SelectedVASList", NS_CM, SelectedServiceList, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ServiceSelectionRes(V2GResponse):
    """ServiceSelectionRes."""


# --------------------------------------------------------------------------------------------
# Schedules and prices
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PowerScheduleEntry:
    """``PowerScheduleEntryType`` (also ``EVPowerProfileEntry``)."""

    duration: int = el("Duration", NS_CM, UINT)
    power: RationalNumber = el("Power", NS_CM, RationalNumber)
    power_l2: RationalNumber | None = _opt_r("Power_L2")
    power_l3: RationalNumber | None = _opt_r("Power_L3")


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PowerScheduleEntryList:
    """``PowerScheduleEntryListType``: up to 1024 entries."""

    power_schedule_entry: list[PowerScheduleEntry] = el(
        "PowerScheduleEntry", NS_CM, PowerScheduleEntry, max_occurs=1024
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PowerSchedule:
    """``PowerScheduleType``."""

    time_anchor: int = el("TimeAnchor", NS_CM, ULONG)
    available_energy: RationalNumber | None = _opt_r("AvailableEnergy")
    power_tolerance: RationalNumber | None = _opt_r("PowerTolerance")
    power_schedule_entries: PowerScheduleEntryList = el(
        "PowerScheduleEntries", NS_CM, PowerScheduleEntryList
    )


@dataclass(slots=True, kw_only=True)
class PriceSchedule:
    """``PriceScheduleType`` (abstract base of the two price schedules)."""

    time_anchor: int = el("TimeAnchor", NS_CM, ULONG)
    price_schedule_id: int = el("PriceScheduleID", NS_CM, NUMERIC_ID)
    price_schedule_description: str | None = el(
        "PriceScheduleDescription", NS_CM, DESCRIPTION, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PriceLevelScheduleEntry:
    """``PriceLevelScheduleEntryType``."""

    duration: int = el("Duration", NS_CM, UINT)
    price_level: int = el("PriceLevel", NS_CM, UBYTE)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PriceLevelScheduleEntryList:
    """``PriceLevelScheduleEntryListType``: up to 1024 entries."""

    price_level_schedule_entry: list[PriceLevelScheduleEntry] = el(
        "PriceLevelScheduleEntry", NS_CM, PriceLevelScheduleEntry, max_occurs=1024
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PriceLevelSchedule(PriceSchedule):
    """``PriceLevelScheduleType`` (signable, optional ``Id``)."""

    id: str | None = attr("Id", NS_CM, ID, required=False)
    number_of_price_levels: int = el("NumberOfPriceLevels", NS_CM, UBYTE)
    price_level_schedule_entries: PriceLevelScheduleEntryList = el(
        "PriceLevelScheduleEntries", NS_CM, PriceLevelScheduleEntryList
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class TaxRule:
    """``TaxRuleType``."""

    tax_rule_id: int = el("TaxRuleID", NS_CM, NUMERIC_ID)
    tax_rule_name: str | None = el("TaxRuleName", NS_CM, NAME, min_occurs=0)
    tax_rate: RationalNumber = el("TaxRate", NS_CM, RationalNumber)
    tax_included_in_price: bool | None = el("TaxIncludedInPrice", NS_CM, BOOL, min_occurs=0)
    applies_to_energy_fee: bool = el("AppliesToEnergyFee", NS_CM, BOOL)
    applies_to_parking_fee: bool = el("AppliesToParkingFee", NS_CM, BOOL)
    applies_to_overstay_fee: bool = el("AppliesToOverstayFee", NS_CM, BOOL)
    applies_minimum_maximum_cost: bool = el("AppliesMinimumMaximumCost", NS_CM, BOOL)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class TaxRuleList:
    """``TaxRuleListType``: up to 10 tax rules."""

    tax_rule: list[TaxRule] = el("TaxRule", NS_CM, TaxRule, max_occurs=10)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PriceRule:
    """``PriceRuleType``."""

    energy_fee: RationalNumber = el("EnergyFee", NS_CM, RationalNumber)
    parking_fee: RationalNumber | None = _opt_r("ParkingFee")
    parking_fee_period: int | None = el("ParkingFeePeriod", NS_CM, UINT, min_occurs=0)
    carbon_dioxide_emission: int | None = el("CarbonDioxideEmission", NS_CM, USHORT, min_occurs=0)
    renewable_generation_percentage: int | None = el(
        "RenewableGenerationPercentage", NS_CM, UBYTE, min_occurs=0
    )
    power_range_start: RationalNumber = el("PowerRangeStart", NS_CM, RationalNumber)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PriceRuleStack:
    """``PriceRuleStackType``."""

    duration: int = el("Duration", NS_CM, UINT)
    price_rule: list[PriceRule] = el("PriceRule", NS_CM, PriceRule, max_occurs=8)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PriceRuleStackList:
    """``PriceRuleStackListType``: up to 1024 stacks."""

    price_rule_stack: list[PriceRuleStack] = el(
        "PriceRuleStack", NS_CM, PriceRuleStack, max_occurs=1024
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class OverstayRule:
    """``OverstayRuleType``."""

    overstay_rule_description: str | None = el(
        "OverstayRuleDescription", NS_CM, DESCRIPTION, min_occurs=0
    )
    start_time: int = el("StartTime", NS_CM, UINT)
    overstay_fee: RationalNumber = el("OverstayFee", NS_CM, RationalNumber)
    overstay_fee_period: int = el("OverstayFeePeriod", NS_CM, UINT)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class OverstayRuleList:
    """``OverstayRuleListType``."""

    overstay_time_threshold: int | None = el("OverstayTimeThreshold", NS_CM, UINT, min_occurs=0)
    overstay_power_threshold: RationalNumber | None = _opt_r("OverstayPowerThreshold")
    overstay_rule: list[OverstayRule] = el("OverstayRule", NS_CM, OverstayRule, max_occurs=5)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AdditionalService:
    """``AdditionalServiceType``."""

    service_name: str = el("ServiceName", NS_CM, NAME)
    service_fee: RationalNumber = el("ServiceFee", NS_CM, RationalNumber)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AdditionalServiceList:
    """``AdditionalServiceListType``: up to 5 services."""

    additional_service: list[AdditionalService] = el(
        "AdditionalService", NS_CM, AdditionalService, max_occurs=5
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class AbsolutePriceSchedule(PriceSchedule):
    """``AbsolutePriceScheduleType`` (signable, optional ``Id``; required signed for PnC)."""

    id: str | None = attr("Id", NS_CM, ID, required=False)
    currency: str = el("Currency", NS_CM, CURRENCY)
    language: str = el("Language", NS_CM, LANGUAGE)
    price_algorithm: str = el("PriceAlgorithm", NS_CM, IDENTIFIER)
    minimum_cost: RationalNumber | None = _opt_r("MinimumCost")
    maximum_cost: RationalNumber | None = _opt_r("MaximumCost")
    tax_rules: TaxRuleList | None = el("TaxRules", NS_CM, TaxRuleList, min_occurs=0)
    price_rule_stacks: PriceRuleStackList = el("PriceRuleStacks", NS_CM, PriceRuleStackList)
    overstay_rules: OverstayRuleList | None = el(
        "OverstayRules", NS_CM, OverstayRuleList, min_occurs=0
    )
    additional_selected_services: AdditionalServiceList | None = el(
        "AdditionalSelectedServices", NS_CM, AdditionalServiceList, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ChargingSchedule:
    """``ChargingScheduleType`` (element ``ChargingSchedule`` or ``DischargingSchedule``)."""

    power_schedule: PowerSchedule = el("PowerSchedule", NS_CM, PowerSchedule)
    price_schedule: AbsolutePriceSchedule | PriceLevelSchedule | None = choice(
        AbsolutePriceSchedule, PriceLevelSchedule, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ScheduleTuple:
    """``ScheduleTupleType``."""

    schedule_tuple_id: int = el("ScheduleTupleID", NS_CM, NUMERIC_ID)
    charging_schedule: ChargingSchedule = el("ChargingSchedule", NS_CM, ChargingSchedule)
    discharging_schedule: ChargingSchedule | None = el(
        "DischargingSchedule", NS_CM, ChargingSchedule, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPowerScheduleEntry:
    """``EVPowerScheduleEntryType``."""

    duration: int = el("Duration", NS_CM, UINT)
    power: RationalNumber = el("Power", NS_CM, RationalNumber)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPowerScheduleEntryList:
    """``EVPowerScheduleEntryListType``: up to 1024 entries."""

    ev_power_schedule_entry: list[EVPowerScheduleEntry] = el(
        "EVPowerScheduleEntry", NS_CM, EVPowerScheduleEntry, max_occurs=1024
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPowerSchedule:
    """``EVPowerScheduleType``."""

    time_anchor: int = el("TimeAnchor", NS_CM, ULONG)
    ev_power_schedule_entries: EVPowerScheduleEntryList = el(
        "EVPowerScheduleEntries", NS_CM, EVPowerScheduleEntryList
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPriceRule:
    """``EVPriceRuleType``."""

    energy_fee: RationalNumber = el("EnergyFee", NS_CM, RationalNumber)
    power_range_start: RationalNumber = el("PowerRangeStart", NS_CM, RationalNumber)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPriceRuleStack:
    """``EVPriceRuleStackType``."""

    duration: int = el("Duration", NS_CM, UINT)
    ev_price_rule: list[EVPriceRule] = el("EVPriceRule", NS_CM, EVPriceRule, max_occurs=8)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPriceRuleStackList:
    """``EVPriceRuleStackListType``: up to 1024 stacks."""

    ev_price_rule_stack: list[EVPriceRuleStack] = el(
        "EVPriceRuleStack", NS_CM, EVPriceRuleStack, max_occurs=1024
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVAbsolutePriceSchedule:
    """``EVAbsolutePriceScheduleType``."""

    time_anchor: int = el("TimeAnchor", NS_CM, ULONG)
    currency: str = el("Currency", NS_CM, CURRENCY)
    price_algorithm: str = el("PriceAlgorithm", NS_CM, IDENTIFIER)
    ev_price_rule_stacks: EVPriceRuleStackList = el(
        "EVPriceRuleStacks", NS_CM, EVPriceRuleStackList
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVEnergyOffer:
    """``EVEnergyOfferType``."""

    ev_power_schedule: EVPowerSchedule = el("EVPowerSchedule", NS_CM, EVPowerSchedule)
    ev_absolute_price_schedule: EVAbsolutePriceSchedule = el(
        "EVAbsolutePriceSchedule", NS_CM, EVAbsolutePriceSchedule
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Scheduled_SEReqControlMode:
    """``Scheduled_SEReqControlModeType``."""

    departure_time: int | None = el("DepartureTime", NS_CM, UINT, min_occurs=0)
    ev_target_energy_request: RationalNumber | None = _opt_r("EVTargetEnergyRequest")
    ev_maximum_energy_request: RationalNumber | None = _opt_r("EVMaximumEnergyRequest")
    ev_minimum_energy_request: RationalNumber | None = _opt_r("EVMinimumEnergyRequest")
    ev_energy_offer: EVEnergyOffer | None = el("EVEnergyOffer", NS_CM, EVEnergyOffer, min_occurs=0)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Dynamic_SEReqControlMode:
    """``Dynamic_SEReqControlModeType``."""

    departure_time: int = el("DepartureTime", NS_CM, UINT)
    minimum_soc: int | None = el("MinimumSOC", NS_CM, PERCENT, min_occurs=0)
    target_soc: int | None = el("TargetSOC", NS_CM, PERCENT, min_occurs=0)
    ev_target_energy_request: RationalNumber = el("EVTargetEnergyRequest", NS_CM, _R)
    ev_maximum_energy_request: RationalNumber = el("EVMaximumEnergyRequest", NS_CM, _R)
    ev_minimum_energy_request: RationalNumber = el("EVMinimumEnergyRequest", NS_CM, _R)
    ev_maximum_v2x_energy_request: RationalNumber | None = _opt_r("EVMaximumV2XEnergyRequest")
    ev_minimum_v2x_energy_request: RationalNumber | None = _opt_r("EVMinimumV2XEnergyRequest")


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Scheduled_SEResControlMode:
    """``Scheduled_SEResControlModeType``: 1..3 schedule tuples."""

    schedule_tuple: list[ScheduleTuple] = el("ScheduleTuple", NS_CM, ScheduleTuple, max_occurs=3)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Dynamic_SEResControlMode:
    """``Dynamic_SEResControlModeType``."""

    departure_time: int | None = el("DepartureTime", NS_CM, UINT, min_occurs=0)
    minimum_soc: int | None = el("MinimumSOC", NS_CM, PERCENT, min_occurs=0)
    target_soc: int | None = el("TargetSOC", NS_CM, PERCENT, min_occurs=0)
    price_schedule: AbsolutePriceSchedule | PriceLevelSchedule | None = choice(
        AbsolutePriceSchedule, PriceLevelSchedule, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ScheduleExchangeReq(V2GRequest):
    """ScheduleExchangeReq."""

    maximum_supporting_points: int = el("MaximumSupportingPoints", NS_CM, MAX_SUPPORTING_POINTS)
    control_mode: Dynamic_SEReqControlMode | Scheduled_SEReqControlMode = choice(
        Dynamic_SEReqControlMode, Scheduled_SEReqControlMode
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class ScheduleExchangeRes(V2GResponse):
    """ScheduleExchangeRes."""

    evse_processing: Processing = el("EVSEProcessing", NS_CM, PROCESSING)
    go_to_pause: bool | None = el("GoToPause", NS_CM, BOOL, min_occurs=0)
    control_mode: Dynamic_SEResControlMode | Scheduled_SEResControlMode = choice(
        Dynamic_SEResControlMode, Scheduled_SEResControlMode
    )


# --------------------------------------------------------------------------------------------
# Power delivery
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Scheduled_EVPPTControlMode:
    """``Scheduled_EVPPTControlModeType``."""

    selected_schedule_tuple_id: int = el("SelectedScheduleTupleID", NS_CM, NUMERIC_ID)
    power_tolerance_acceptance: PowerToleranceAcceptance | None = el(
        "PowerToleranceAcceptance",
        NS_CM,
        enum_type(PowerToleranceAcceptance, "powerToleranceAcceptanceType"),
        min_occurs=0,
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Dynamic_EVPPTControlMode:
    """``Dynamic_EVPPTControlModeType`` (empty)."""


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPowerProfileEntryList:
    """``EVPowerProfileEntryListType``: up to 2048 entries."""

    ev_power_profile_entry: list[PowerScheduleEntry] = el(
        "EVPowerProfileEntry", NS_CM, PowerScheduleEntry, max_occurs=2048
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class EVPowerProfile:
    """``EVPowerProfileType``."""

    time_anchor: int = el("TimeAnchor", NS_CM, ULONG)
    control_mode: Dynamic_EVPPTControlMode | Scheduled_EVPPTControlMode = choice(
        Dynamic_EVPPTControlMode, Scheduled_EVPPTControlMode
    )
    ev_power_profile_entries: EVPowerProfileEntryList = el(
        "EVPowerProfileEntries", NS_CM, EVPowerProfileEntryList
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PowerDeliveryReq(V2GRequest):
    """PowerDeliveryReq."""

    ev_processing: Processing = el("EVProcessing", NS_CM, PROCESSING)
    charge_progress: ChargeProgress = el(
        "ChargeProgress", NS_CM, enum_type(ChargeProgress, "chargeProgressType")
    )
    ev_power_profile: EVPowerProfile | None = el(
        "EVPowerProfile", NS_CM, EVPowerProfile, min_occurs=0
    )
    bpt_channel_selection: ChannelSelection | None = el(
        "BPT_ChannelSelection",
        NS_CM,
        enum_type(ChannelSelection, "channelSelectionType"),
        min_occurs=0,
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class PowerDeliveryRes(V2GResponse):
    """PowerDeliveryRes."""

    evse_status: EVSEStatus | None = el("EVSEStatus", NS_CM, EVSEStatus, min_occurs=0)


# --------------------------------------------------------------------------------------------
# Metering confirmation
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Scheduled_SMDTControlMode:
    """``Scheduled_SMDTControlModeType``."""

    selected_schedule_tuple_id: int = el("SelectedScheduleTupleID", NS_CM, NUMERIC_ID)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class Dynamic_SMDTControlMode:
    """``Dynamic_SMDTControlModeType`` (empty)."""


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SignedMeteringData:
    """``SignedMeteringDataType`` (signable, ``Id``)."""

    id: str = attr("Id", NS_CM, ID)
    session_id: bytes = el("SessionID", NS_CM, SESSION_ID)
    meter_info: MeterInfo = el("MeterInfo", NS_CM, MeterInfo)
    receipt: Receipt | None = el("Receipt", NS_CM, Receipt, min_occurs=0)
    control_mode: Dynamic_SMDTControlMode | Scheduled_SMDTControlMode = choice(
        Dynamic_SMDTControlMode, Scheduled_SMDTControlMode
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class MeteringConfirmationReq(V2GRequest):
    """MeteringConfirmationReq (sent on the 0x8102 side stream, signed by the EVCC)."""

    signed_metering_data: SignedMeteringData = el("SignedMeteringData", NS_CM, SignedMeteringData)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class MeteringConfirmationRes(V2GResponse):
    """MeteringConfirmationRes."""


# --------------------------------------------------------------------------------------------
# Session stop
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SessionStopReq(V2GRequest):
    """SessionStopReq."""

    charging_session: ChargingSession = el(
        "ChargingSession", NS_CM, enum_type(ChargingSession, "chargingSessionType")
    )
    ev_termination_code: str | None = el("EVTerminationCode", NS_CM, NAME, min_occurs=0)
    ev_termination_explanation: str | None = el(
        "EVTerminationExplanation", NS_CM, DESCRIPTION, min_occurs=0
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SessionStopRes(V2GResponse):
    """SessionStopRes."""


# --------------------------------------------------------------------------------------------
# Certificate installation
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class SignedInstallationData:
    """``SignedInstallationDataType`` (signable, ``Id``): exactly one encrypted key is set."""

    id: str = attr("Id", NS_CM, ID)
    contract_certificate_chain: ContractCertificateChain = el(
        "ContractCertificateChain", NS_CM, ContractCertificateChain
    )
    ecdh_curve: EcdhCurve = el("ECDHCurve", NS_CM, enum_type(EcdhCurve, "ecdhCurveType"))
    dh_public_key: bytes = el("DHPublicKey", NS_CM, DH_PUBLIC_KEY)
    secp521_encrypted_private_key: bytes | None = el(
        "SECP521_EncryptedPrivateKey", NS_CM, SECP521_KEY, min_occurs=0, group="key"
    )
    x448_encrypted_private_key: bytes | None = el(
        "X448_EncryptedPrivateKey", NS_CM, X448_KEY, min_occurs=0, group="key"
    )
    tpm_encrypted_private_key: bytes | None = el(
        "TPM_EncryptedPrivateKey", NS_CM, TPM_KEY, min_occurs=0, group="key"
    )


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class CertificateInstallationReq(V2GRequest):
    """CertificateInstallationReq (signed by the EVCC with the OEM provisioning key)."""

    oem_provisioning_certificate_chain: SignedCertificateChain = el(
        "OEMProvisioningCertificateChain", NS_CM, SignedCertificateChain
    )
    list_of_root_certificate_ids: ListOfRootCertificateIDs = el(
        "ListOfRootCertificateIDs", NS_CM, ListOfRootCertificateIDs
    )
    maximum_contract_certificate_chains: int = el("MaximumContractCertificateChains", NS_CM, UBYTE)
    prioritized_emaids: EMAIDList | None = el("PrioritizedEMAIDs", NS_CM, EMAIDList, min_occurs=0)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class CertificateInstallationRes(V2GResponse):
    """CertificateInstallationRes."""

    evse_processing: Processing = el("EVSEProcessing", NS_CM, PROCESSING)
    cps_certificate_chain: CertificateChain = el("CPSCertificateChain", NS_CM, CertificateChain)
    signed_installation_data: SignedInstallationData = el(
        "SignedInstallationData", NS_CM, SignedInstallationData
    )
    remaining_contract_certificate_chains: int = el(
        "RemainingContractCertificateChains", NS_CM, UBYTE
    )


# --------------------------------------------------------------------------------------------
# Vehicle check-in / check-out
# --------------------------------------------------------------------------------------------


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class TargetPosition:
    """``TargetPositionType`` (declared by the XSD, not used by any message)."""

    target_offset_x: int = el("TargetOffsetX", NS_CM, USHORT)
    target_offset_y: int = el("TargetOffsetY", NS_CM, USHORT)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class VehicleCheckInReq(V2GRequest):
    """VehicleCheckInReq."""

    ev_check_in_status: EvCheckInStatus = el(
        "EVCheckInStatus", NS_CM, enum_type(EvCheckInStatus, "evCheckInStatusType")
    )
    parking_method: ParkingMethod = el(
        "ParkingMethod", NS_CM, enum_type(ParkingMethod, "parkingMethodType")
    )
    vehicle_frame: int | None = el("VehicleFrame", NS_CM, SHORT, min_occurs=0)
    device_offset: int | None = el("DeviceOffset", NS_CM, SHORT, min_occurs=0)
    vehicle_travel: int | None = el("VehicleTravel", NS_CM, SHORT, min_occurs=0)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class VehicleCheckInRes(V2GResponse):
    """VehicleCheckInRes."""

    parking_space: int | None = el("ParkingSpace", NS_CM, SHORT, min_occurs=0)
    device_location: int | None = el("DeviceLocation", NS_CM, SHORT, min_occurs=0)
    target_distance: int | None = el("TargetDistance", NS_CM, SHORT, min_occurs=0)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class VehicleCheckOutReq(V2GRequest):
    """VehicleCheckOutReq."""

    ev_check_out_status: EvCheckOutStatus = el(
        "EVCheckOutStatus", NS_CM, enum_type(EvCheckOutStatus, "evCheckOutStatusType")
    )
    check_out_time: int = el("CheckOutTime", NS_CM, ULONG)


@xmltype(NS_CM)
@dataclass(slots=True, kw_only=True)
class VehicleCheckOutRes(V2GResponse):
    """VehicleCheckOutRes."""

    evse_check_out_status: EvseCheckOutStatus = el(
        "EVSECheckOutStatus", NS_CM, enum_type(EvseCheckOutStatus, "evseCheckOutStatusType")
    )


#: Root elements of the CommonMessages schema we handle, by local name.
ROOT_MESSAGES: tuple[type, ...] = (
    SessionSetupReq,
    SessionSetupRes,
    AuthorizationSetupReq,
    AuthorizationSetupRes,
    AuthorizationReq,
    AuthorizationRes,
    ServiceDiscoveryReq,
    ServiceDiscoveryRes,
    ServiceDetailReq,
    ServiceDetailRes,
    ServiceSelectionReq,
    ServiceSelectionRes,
    ScheduleExchangeReq,
    ScheduleExchangeRes,
    PowerDeliveryReq,
    PowerDeliveryRes,
    MeteringConfirmationReq,
    MeteringConfirmationRes,
    SessionStopReq,
    SessionStopRes,
    CertificateInstallationReq,
    CertificateInstallationRes,
    VehicleCheckInReq,
    VehicleCheckInRes,
    VehicleCheckOutReq,
    VehicleCheckOutRes,
)
