"""SupportedAppProtocol negotiation, as pure functions for both sides (facts §3).

The EVCC offers 1..20 protocols (namespace, major/minor version, its own SchemaID, Priority
1..20 with 1 the highest). The SECC walks the offer from the highest priority down and picks the
first entry whose namespace it supports with the same **major** version; a different minor
version still succeeds with ``OK_SuccessfulNegotiationWithMinorDeviation``. Nothing usable gives
``Failed_NoNegotiation`` without a SchemaID. ISO 15118-20 may only be chosen over TLS 1.3
(V2G20-1235/2356), so callers on plain TCP pass ``tls13=False``.

MCS and MCS_BPT use the -20 DC namespace (facts §7); it is what mcscomm offers and accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mcscomm.messages.app_protocol import (
    AppProtocol,
    SupportedAppProtocolReq,
    SupportedAppProtocolRes,
)
from mcscomm.messages.enums import AppProtocolResponseCode

NS_ISO20_DC = "urn:iso:std:iso:15118:-20:DC"
NS_ISO20_AC = "urn:iso:std:iso:15118:-20:AC"
NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"
NS_DIN = "urn:din:70121:2012:MsgDef"
_ISO20_PREFIX = "urn:iso:std:iso:15118:-20:"


@dataclass(frozen=True, slots=True)
class ProtocolVersion:
    """A protocol namespace with its version (what a side supports)."""

    namespace: str
    major: int
    minor: int


#: ISO 15118-20 DC (also MCS / MCS_BPT), version 1.0 as sent by Josev and libiso15118
ISO20_DC = ProtocolVersion(NS_ISO20_DC, 1, 0)
DEFAULT_SUPPORTED: tuple[ProtocolVersion, ...] = (ISO20_DC,)


class SapError(Exception):
    """The SupportedAppProtocol exchange did not produce a usable protocol (EVCC side)."""


class NoNegotiation(SapError):
    """The SECC answered ``Failed_NoNegotiation``."""


class InvalidSapResponse(SapError):
    """The response is inconsistent: success without SchemaID, a SchemaID the EVCC never
    offered, or a SchemaID on a failure."""


@dataclass(frozen=True, slots=True)
class Negotiation:
    """The SECC's decision: the response to send and the chosen entry (None on failure)."""

    response: SupportedAppProtocolRes
    selected: AppProtocol | None
    supported: ProtocolVersion | None


def negotiate(
    offer: SupportedAppProtocolReq,
    supported: Sequence[ProtocolVersion] = DEFAULT_SUPPORTED,
    *,
    tls13: bool = True,
) -> Negotiation:
    """SECC side: choose from the EVCC's ``offer`` among the ``supported`` protocols.

    Highest priority (lowest number) wins; ties keep the offer's order. Major versions must be
    equal; a minor difference is a successful negotiation with minor deviation.
    """
    ranked = sorted(enumerate(offer.app_protocol), key=lambda item: (item[1].priority, item[0]))
    for _, entry in ranked:
        if not tls13 and entry.protocol_namespace.startswith(_ISO20_PREFIX):
            continue  # V2G20-2356: -20 only over TLS 1.3
        for ours in supported:
            if ours.namespace != entry.protocol_namespace:
                continue
            if ours.major != entry.version_number_major:
                continue
            code = (
                AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION
                if ours.minor == entry.version_number_minor
                else AppProtocolResponseCode.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION
            )
            res = SupportedAppProtocolRes(response_code=code, schema_id=entry.schema_id)
            return Negotiation(res, entry, ours)
    res = SupportedAppProtocolRes(response_code=AppProtocolResponseCode.FAILED_NO_NEGOTIATION)
    return Negotiation(res, None, None)


def build_offer(
    protocols: Sequence[ProtocolVersion] = DEFAULT_SUPPORTED, *, first_schema_id: int = 1
) -> SupportedAppProtocolReq:
    """EVCC side: an offer listing ``protocols`` in preference order.

    Priorities are 1, 2, ... in list order; SchemaIDs count up from ``first_schema_id``.
    Raises ValueError for an empty list or more than 20 protocols (XSD maxOccurs).
    """
    if not 1 <= len(protocols) <= 20:
        raise ValueError("an offer holds 1 to 20 protocols")
    return SupportedAppProtocolReq(
        app_protocol=[
            AppProtocol(
                protocol_namespace=p.namespace,
                version_number_major=p.major,
                version_number_minor=p.minor,
                schema_id=first_schema_id + i,
                priority=i + 1,
            )
            for i, p in enumerate(protocols)
        ]
    )


def check_response(
    offer: SupportedAppProtocolReq, response: SupportedAppProtocolRes
) -> AppProtocol:
    """EVCC side: the offered entry the SECC selected.

    Raises :class:`NoNegotiation` on ``Failed_NoNegotiation`` and :class:`InvalidSapResponse`
    when the response is inconsistent with the offer.
    """
    if response.response_code is AppProtocolResponseCode.FAILED_NO_NEGOTIATION:
        if response.schema_id is not None:
            raise InvalidSapResponse("Failed_NoNegotiation must not carry a SchemaID")
        raise NoNegotiation("the SECC supports none of the offered protocols")
    if response.schema_id is None:
        raise InvalidSapResponse(f"{response.response_code.value} without SchemaID")
    for entry in offer.app_protocol:
        if entry.schema_id == response.schema_id:
            return entry
    raise InvalidSapResponse(f"SchemaID {response.schema_id} was not offered")
