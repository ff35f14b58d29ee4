"""Minimal schema-valid responses carrying an error code, for every request type.

When the SECC must answer FAILED_* (sequence error, unknown session, a request that did not
decode, ...) the response still has to be a valid document: mandatory elements are filled with
neutral values (zero, Finished, no services). One builder per response type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcscomm.messages import (
    AuthorizationRes,
    AuthorizationSetupRes,
    CertificateInstallationRes,
    MeteringConfirmationRes,
    PowerDeliveryRes,
    ScheduleExchangeRes,
    ServiceDetailRes,
    ServiceDiscoveryRes,
    ServiceSelectionRes,
    SessionSetupRes,
    SessionStopRes,
    SupportedAppProtocolRes,
)
from mcscomm.messages.common_messages import (
    CertificateChain,
    ContractCertificateChain,
    Dynamic_SEResControlMode,
    EIM_ASResAuthorizationMode,
    Parameter,
    ParameterSet,
    Service,
    ServiceList,
    ServiceParameterList,
    SignedInstallationData,
    SubCertificates,
    VehicleCheckInRes,
    VehicleCheckOutRes,
)
from mcscomm.messages.common_types import MessageHeader
from mcscomm.messages.dc import (
    DC_CableCheckRes,
    DC_ChargeLoopRes,
    DC_ChargeParameterDiscoveryRes,
    DC_CPDResEnergyTransferMode,
    DC_PreChargeRes,
    DC_WeldingDetectionRes,
    Dynamic_DC_CLResControlMode,
)
from mcscomm.messages.enums import (
    AppProtocolResponseCode,
    AuthorizationType,
    EcdhCurve,
    EvseCheckOutStatus,
    Processing,
    ResponseCode,
)
from mcscomm.messages.rational import RationalNumber
from mcscomm.session.context import timestamp

_ZERO = RationalNumber(0, 0)


def _zero_cpd() -> DC_CPDResEnergyTransferMode:
    return DC_CPDResEnergyTransferMode(
        evse_maximum_charge_power=_ZERO,
        evse_minimum_charge_power=_ZERO,
        evse_maximum_charge_current=_ZERO,
        evse_minimum_charge_current=_ZERO,
        evse_maximum_voltage=_ZERO,
        evse_minimum_voltage=_ZERO,
    )


def _zero_cl_mode() -> Dynamic_DC_CLResControlMode:
    return Dynamic_DC_CLResControlMode(
        evse_maximum_charge_power=_ZERO,
        evse_minimum_charge_power=_ZERO,
        evse_maximum_charge_current=_ZERO,
        evse_maximum_voltage=_ZERO,
    )


def _dummy_installation() -> tuple[CertificateChain, SignedInstallationData]:
    cert = b"\x30\x00"  # an empty DER SEQUENCE: schema-valid filler, never used by the EVCC
    chain = CertificateChain(certificate=cert, sub_certificates=None)
    data = SignedInstallationData(
        id="failed",
        contract_certificate_chain=ContractCertificateChain(
            certificate=cert, sub_certificates=SubCertificates(certificate=[cert])
        ),
        ecdh_curve=EcdhCurve.SECP521,
        dh_public_key=b"\x00" * 133,
        secp521_encrypted_private_key=b"\x00" * 94,
    )
    return chain, data


_Builder = Callable[[MessageHeader, ResponseCode], Any]

_BUILDERS: dict[str, _Builder] = {
    "SessionSetupRes": lambda h, c: SessionSetupRes(header=h, response_code=c, evseid="unknown"),
    "AuthorizationSetupRes": lambda h, c: AuthorizationSetupRes(
        header=h,
        response_code=c,
        authorization_services=[AuthorizationType.EIM],
        certificate_installation_service=False,
        authorization_mode=EIM_ASResAuthorizationMode(),
    ),
    "AuthorizationRes": lambda h, c: AuthorizationRes(
        header=h, response_code=c, evse_processing=Processing.FINISHED
    ),
    "ServiceDiscoveryRes": lambda h, c: ServiceDiscoveryRes(
        header=h,
        response_code=c,
        service_renegotiation_supported=False,
        energy_transfer_service_list=ServiceList(service=[_placeholder_service()]),
    ),
    "ServiceDetailRes": lambda h, c: ServiceDetailRes(
        header=h,
        response_code=c,
        service_id=0,
        service_parameter_list=ServiceParameterList(
            parameter_set=[
                ParameterSet(parameter_set_id=0, parameter=[Parameter(name="None", int_value=0)])
            ]
        ),
    ),
    "ServiceSelectionRes": lambda h, c: ServiceSelectionRes(header=h, response_code=c),
    "ScheduleExchangeRes": lambda h, c: ScheduleExchangeRes(
        header=h,
        response_code=c,
        evse_processing=Processing.FINISHED,
        control_mode=Dynamic_SEResControlMode(),
    ),
    "PowerDeliveryRes": lambda h, c: PowerDeliveryRes(header=h, response_code=c),
    "MeteringConfirmationRes": lambda h, c: MeteringConfirmationRes(header=h, response_code=c),
    "SessionStopRes": lambda h, c: SessionStopRes(header=h, response_code=c),
    "CertificateInstallationRes": lambda h, c: CertificateInstallationRes(
        header=h,
        response_code=c,
        evse_processing=Processing.FINISHED,
        cps_certificate_chain=_dummy_installation()[0],
        signed_installation_data=_dummy_installation()[1],
        remaining_contract_certificate_chains=0,
    ),
    "VehicleCheckInRes": lambda h, c: VehicleCheckInRes(header=h, response_code=c),
    "VehicleCheckOutRes": lambda h, c: VehicleCheckOutRes(
        header=h, response_code=c, evse_check_out_status=EvseCheckOutStatus.COMPLETED
    ),
    "DC_ChargeParameterDiscoveryRes": lambda h, c: DC_ChargeParameterDiscoveryRes(
        header=h, response_code=c, transfer_mode=_zero_cpd()
    ),
    "DC_CableCheckRes": lambda h, c: DC_CableCheckRes(
        header=h, response_code=c, evse_processing=Processing.FINISHED
    ),
    "DC_PreChargeRes": lambda h, c: DC_PreChargeRes(
        header=h, response_code=c, evse_present_voltage=_ZERO
    ),
    "DC_ChargeLoopRes": lambda h, c: DC_ChargeLoopRes(
        header=h,
        response_code=c,
        evse_present_current=_ZERO,
        evse_present_voltage=_ZERO,
        evse_power_limit_achieved=False,
        evse_current_limit_achieved=False,
        evse_voltage_limit_achieved=False,
        control_mode=_zero_cl_mode(),
    ),
    "DC_WeldingDetectionRes": lambda h, c: DC_WeldingDetectionRes(
        header=h, response_code=c, evse_present_voltage=_ZERO
    ),
}


def _placeholder_service() -> Service:
    return Service(service_id=0, free_service=False)


def failed_response(name: str, code: ResponseCode, session_id: bytes, now: float) -> Any | None:
    """A ``name`` response with ``code`` and neutral mandatory fields; None for unknown names.

    ``SupportedAppProtocolRes`` gets ``Failed_NoNegotiation`` whatever ``code`` says.
    """
    if name == "SupportedAppProtocolRes":
        return SupportedAppProtocolRes(response_code=AppProtocolResponseCode.FAILED_NO_NEGOTIATION)
    builder = _BUILDERS.get(name)
    if builder is None:
        return None
    header = MessageHeader(session_id=session_id, timestamp=timestamp(now))
    return builder(header, code)


def known_responses() -> frozenset[str]:
    """Names of every response type :func:`failed_response` can build."""
    return frozenset(_BUILDERS) | {"SupportedAppProtocolRes"}
