"""Enumerations of ISO 15118-20 (DC profile) and the SupportedAppProtocol handshake.

String enums carry the XSD literal as their value, in XSD order (the order is the EXI
enumeration index, facts §4.2). Member names are the literals in UPPER_SNAKE_CASE.
Integer enums (service ids, service parameter values) are the values used in ServiceDetail.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ResponseCode(StrEnum):
    """``responseCodeType`` [XSD CommonTypes], 40 values in XSD order."""

    OK = "OK"
    OK_CERTIFICATE_EXPIRES_SOON = "OK_CertificateExpiresSoon"
    OK_NEW_SESSION_ESTABLISHED = "OK_NewSessionEstablished"
    OK_OLD_SESSION_JOINED = "OK_OldSessionJoined"
    OK_POWER_TOLERANCE_CONFIRMED = "OK_PowerToleranceConfirmed"
    WARNING_AUTHORIZATION_SELECTION_INVALID = "WARNING_AuthorizationSelectionInvalid"
    WARNING_CERTIFICATE_EXPIRED = "WARNING_CertificateExpired"
    WARNING_CERTIFICATE_NOT_YET_VALID = "WARNING_CertificateNotYetValid"
    WARNING_CERTIFICATE_REVOKED = "WARNING_CertificateRevoked"
    WARNING_CERTIFICATE_VALIDATION_ERROR = "WARNING_CertificateValidationError"
    WARNING_CHALLENGE_INVALID = "WARNING_ChallengeInvalid"
    WARNING_EIM_AUTHORIZATION_FAILURE = "WARNING_EIMAuthorizationFailure"
    WARNING_EMSP_UNKNOWN = "WARNING_eMSPUnknown"
    WARNING_EV_POWER_PROFILE_VIOLATION = "WARNING_EVPowerProfileViolation"
    WARNING_GENERAL_PNC_AUTHORIZATION_ERROR = "WARNING_GeneralPnCAuthorizationError"
    WARNING_NO_CERTIFICATE_AVAILABLE = "WARNING_NoCertificateAvailable"
    WARNING_NO_CONTRACT_MATCHING_PCID_FOUND = "WARNING_NoContractMatchingPCIDFound"
    WARNING_POWER_TOLERANCE_NOT_CONFIRMED = "WARNING_PowerToleranceNotConfirmed"
    WARNING_SCHEDULE_RENEGOTIATION_FAILED = "WARNING_ScheduleRenegotiationFailed"
    WARNING_STANDBY_NOT_ALLOWED = "WARNING_StandbyNotAllowed"
    WARNING_WPT = "WARNING_WPT"
    FAILED = "FAILED"
    FAILED_ASSOCIATION_ERROR = "FAILED_AssociationError"
    FAILED_CONTACTOR_ERROR = "FAILED_ContactorError"
    FAILED_EV_POWER_PROFILE_INVALID = "FAILED_EVPowerProfileInvalid"
    FAILED_EV_POWER_PROFILE_VIOLATION = "FAILED_EVPowerProfileViolation"
    FAILED_METERING_SIGNATURE_NOT_VALID = "FAILED_MeteringSignatureNotValid"
    FAILED_NO_ENERGY_TRANSFER_SERVICE_SELECTED = "FAILED_NoEnergyTransferServiceSelected"
    FAILED_NO_SERVICE_RENEGOTIATION_SUPPORTED = "FAILED_NoServiceRenegotiationSupported"
    FAILED_PAUSE_NOT_ALLOWED = "FAILED_PauseNotAllowed"
    FAILED_POWER_DELIVERY_NOT_APPLIED = "FAILED_PowerDeliveryNotApplied"
    FAILED_POWER_TOLERANCE_NOT_CONFIRMED = "FAILED_PowerToleranceNotConfirmed"
    FAILED_SCHEDULE_RENEGOTIATION = "FAILED_ScheduleRenegotiation"
    FAILED_SCHEDULE_SELECTION_INVALID = "FAILED_ScheduleSelectionInvalid"
    FAILED_SEQUENCE_ERROR = "FAILED_SequenceError"
    FAILED_SERVICE_ID_INVALID = "FAILED_ServiceIDInvalid"
    FAILED_SERVICE_SELECTION_INVALID = "FAILED_ServiceSelectionInvalid"
    FAILED_SIGNATURE_ERROR = "FAILED_SignatureError"
    FAILED_UNKNOWN_SESSION = "FAILED_UnknownSession"
    FAILED_WRONG_CHARGE_PARAMETER = "FAILED_WrongChargeParameter"

    @property
    def is_ok(self) -> bool:
        return self.value.startswith("OK")

    @property
    def is_failed(self) -> bool:
        return self.value.startswith("FAILED")


class Processing(StrEnum):
    """``processingType`` (EVSEProcessing / EVProcessing)."""

    FINISHED = "Finished"
    ONGOING = "Ongoing"
    ONGOING_WAITING_FOR_CUSTOMER_INTERACTION = "Ongoing_WaitingForCustomerInteraction"


class EvseNotification(StrEnum):
    """``evseNotificationType``."""

    PAUSE = "Pause"
    EXIT_STANDBY = "ExitStandby"
    TERMINATE = "Terminate"
    SCHEDULE_RENEGOTIATION = "ScheduleRenegotiation"
    SERVICE_RENEGOTIATION = "ServiceRenegotiation"
    METERING_CONFIRMATION = "MeteringConfirmation"


class AuthorizationType(StrEnum):
    """``authorizationType`` (CommonMessages)."""

    EIM = "EIM"
    PNC = "PnC"


class ChargeProgress(StrEnum):
    """``chargeProgressType`` (PowerDeliveryReq)."""

    START = "Start"
    STOP = "Stop"
    STANDBY = "Standby"
    SCHEDULE_RENEGOTIATION = "ScheduleRenegotiation"


class ChannelSelection(StrEnum):
    """``channelSelectionType`` (PowerDeliveryReq ``BPT_ChannelSelection``)."""

    CHARGE = "Charge"
    DISCHARGE = "Discharge"


class ChargingSession(StrEnum):
    """``chargingSessionType`` (SessionStopReq)."""

    PAUSE = "Pause"
    TERMINATE = "Terminate"
    SERVICE_RENEGOTIATION = "ServiceRenegotiation"


class PowerToleranceAcceptance(StrEnum):
    """``powerToleranceAcceptanceType``."""

    POWER_TOLERANCE_NOT_CONFIRMED = "PowerToleranceNotConfirmed"
    POWER_TOLERANCE_CONFIRMED = "PowerToleranceConfirmed"


class EcdhCurve(StrEnum):
    """``ecdhCurveType``."""

    SECP521 = "SECP521"
    X448 = "X448"


class EvCheckInStatus(StrEnum):
    """``evCheckInStatusType``."""

    CHECK_IN = "CheckIn"
    PROCESSING = "Processing"
    COMPLETED = "Completed"


class EvCheckOutStatus(StrEnum):
    """``evCheckOutStatusType``."""

    CHECK_OUT = "CheckOut"
    PROCESSING = "Processing"
    COMPLETED = "Completed"


class EvseCheckOutStatus(StrEnum):
    """``evseCheckOutStatusType``."""

    SCHEDULED = "Scheduled"
    COMPLETED = "Completed"


class ParkingMethod(StrEnum):
    """``parkingMethodType``."""

    AUTO_PARKING = "AutoParking"
    MV_GUIDE_MANUAL = "MVGuideManual"
    MANUAL = "Manual"


class AppProtocolResponseCode(StrEnum):
    """``responseCodeType`` of the SupportedAppProtocol schema (facts §3)."""

    OK_SUCCESSFUL_NEGOTIATION = "OK_SuccessfulNegotiation"
    OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION = "OK_SuccessfulNegotiationWithMinorDeviation"
    FAILED_NO_NEGOTIATION = "Failed_NoNegotiation"


class ServiceId(IntEnum):
    """Energy transfer and value-added service ids (facts §4.5; MCS/MCS_BPT per -20 Amd.)."""

    AC = 1
    DC = 2
    WPT = 3
    DC_ACDP = 4
    AC_BPT = 5
    DC_BPT = 6
    DC_ACDP_BPT = 7
    MCS = 8
    MCS_BPT = 9
    INTERNET = 65
    PARKING_STATUS = 66


class ControlMode(IntEnum):
    """ServiceDetail parameter ``ControlMode``."""

    SCHEDULED = 1
    DYNAMIC = 2


class MobilityNeedsMode(IntEnum):
    """ServiceDetail parameter ``MobilityNeedsMode`` (V2G20-2663: 2 only with Dynamic)."""

    PROVIDED_BY_EVCC = 1
    PROVIDED_BY_SECC = 2


class Pricing(IntEnum):
    """ServiceDetail parameter ``Pricing``."""

    NONE = 0
    ABSOLUTE = 1
    PRICE_LEVELS = 2


class DcConnector(IntEnum):
    """ServiceDetail parameter ``Connector`` for DC / DC_BPT."""

    CORE = 1
    EXTENDED = 2
    DUAL2 = 3
    DUAL4 = 4


class McsConnector(IntEnum):
    """ServiceDetail parameter ``Connector`` for MCS / MCS_BPT (libiso15118 ``McsConnector``)."""

    MCS = 1
    CHAOJI = 2
    ULTRA_CHAOJI = 3
    RMCS = 4
    XMCS = 5
    AVIATION = 6
    MARINE = 7


class BptChannel(IntEnum):
    """ServiceDetail parameter ``BPTChannel``."""

    UNIFIED = 1
    SEPARATED = 2


class GeneratorMode(IntEnum):
    """ServiceDetail parameter ``GeneratorMode``."""

    GRID_FOLLOWING = 1
    GRID_FORMING = 2


class PriceAlgorithm(StrEnum):
    """Price algorithm URNs of AbsolutePriceSchedule (facts §4.4)."""

    POWER = "urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power"
    PEAK_POWER = "urn:iso:std:iso:15118:-20:PriceAlgorithm:2-PeakPower"
    STACKED_ENERGY = "urn:iso:std:iso:15118:-20:PriceAlgorithm:3-StackedEnergy"
