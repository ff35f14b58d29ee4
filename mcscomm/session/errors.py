"""Typed errors of the session layer.

A handler raises one of these when the peer's request (SECC) or response (EVCC) is wrong. The
session catches them at its boundary: the SECC answers with ``response_code`` (when the request
type is known) and ends the session; the EVCC ends the session. None of them leaves the
session objects; callers see ``ProtocolError``/``SessionEnded`` events and ``close_reason``.
"""

from __future__ import annotations


class SessionError(Exception):
    """Base class. ``response_code`` is the ResponseCode member name the SECC answers with.

    A WARNING code normally lets the session go on (see ``secc_handlers.handle_authorization``);
    ``final`` marks one that ends it anyway (e.g. the ongoing time is over)."""

    response_code: str | None = "FAILED"
    kind: str = "failed"
    final: bool = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SequenceError(SessionError):
    """A request the current state does not accept (facts §4.3)."""

    response_code = "FAILED_SequenceError"
    kind = "sequence_error"


class WrongPayloadType(SequenceError):
    """A known request on a -20 V2GTP payload type that does not carry it (e.g. SessionSetupReq
    on the DC stream 0x8004 or the side stream 0x8101, facts §1.2).

    Each -20 stream (main 0x8001–0x80FF, side 0x8101–0x81FF, -20 §8.6.5) has its own message
    sequence, so a request on a stream it does not belong to is out of that stream's sequence:
    FAILED_SequenceError, answered on the response's own payload type."""

    kind = "wrong_payload_type"


class UnknownSession(SessionError):
    """A SessionID that is not this session's (or not a paused one on SessionSetup)."""

    response_code = "FAILED_UnknownSession"
    kind = "unknown_session"


class SignatureFailure(SessionError):
    """A signed part did not verify (mapped from the security layer's SignatureError)."""

    response_code = "FAILED_SignatureError"
    kind = "signature_error"


class WrongChargeParameter(SessionError):
    """Charge parameters that do not fit the selected service or make no sense."""

    response_code = "FAILED_WrongChargeParameter"
    kind = "wrong_charge_parameter"


class ServiceSelectionInvalid(SessionError):
    """A ServiceSelection naming a service/parameter set that was not offered."""

    response_code = "FAILED_ServiceSelectionInvalid"
    kind = "service_selection_invalid"


class ServiceIdInvalid(SessionError):
    """A ServiceDetailReq for a service that was not offered."""

    response_code = "FAILED_ServiceIDInvalid"
    kind = "service_id_invalid"


class NoEnergyTransferServiceSelected(SessionError):
    """A ServiceSelection without an energy transfer service we offer."""

    response_code = "FAILED_NoEnergyTransferServiceSelected"
    kind = "no_energy_transfer_service"


class ChallengeInvalid(SessionError):
    """PnC AuthorizationReq with a GenChallenge that is not the one we sent."""

    # WARNING_ChallengeInvalid is the code for a wrong challenge; the EVCC may try again.
    response_code = "WARNING_ChallengeInvalid"
    kind = "challenge_invalid"


class AuthorizationFailed(SessionError):
    """The backend refused (or did not decide in time) the authorization."""

    response_code = "WARNING_EIMAuthorizationFailure"
    kind = "authorization_failed"


class AuthorizationSelectionInvalid(SessionError):
    """AuthorizationReq selecting a service that was not offered (or the wrong mode)."""

    response_code = "WARNING_AuthorizationSelectionInvalid"
    kind = "authorization_selection_invalid"


class PowerDeliveryNotApplied(SessionError):
    """PowerDelivery(Start) while the charger cannot close its contactors."""

    response_code = "FAILED_PowerDeliveryNotApplied"
    kind = "power_delivery_not_applied"


class ScheduleSelectionInvalid(SessionError):
    """An EVPowerProfile naming a ScheduleTupleID that was not offered."""

    response_code = "FAILED_ScheduleSelectionInvalid"
    kind = "schedule_selection_invalid"


class NoServiceRenegotiation(SessionError):
    """SessionStop(ServiceRenegotiation) while the SECC does not support it."""

    response_code = "FAILED_NoServiceRenegotiationSupported"
    kind = "no_service_renegotiation"


class PauseNotAllowed(SessionError):
    """SessionStop(Pause) before anything could be resumed."""

    response_code = "FAILED_PauseNotAllowed"
    kind = "pause_not_allowed"


class PowerProfileViolation(SessionError):
    """An EVPowerProfile outside the schedule the SECC sent."""

    response_code = "FAILED_EVPowerProfileViolation"
    kind = "power_profile_violation"


class MeteringSignatureInvalid(SessionError):
    """MeteringConfirmationReq whose signature does not verify."""

    response_code = "FAILED_MeteringSignatureNotValid"
    kind = "metering_signature_invalid"


class InvalidRequest(SessionError):
    """A request that decoded but cannot be served (schema-valid nonsense)."""

    response_code = "FAILED"
    kind = "invalid_request"


class MalformedMessage(SessionError):
    """Bytes that did not decode to a message (codec error)."""

    response_code = "FAILED"
    kind = "malformed_message"


class PeerFailed(SessionError):
    """EVCC side: the SECC answered with a FAILED response code or a wrong message."""

    response_code = None
    kind = "peer_failed"


class UnexpectedMessage(SessionError):
    """EVCC side: a message that is not the awaited response."""

    response_code = None
    kind = "unexpected_message"
