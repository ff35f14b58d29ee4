"""SupportedAppProtocol negotiation on both sides (facts §3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcscomm.codec import XmlCodec
from mcscomm.messages import AppProtocol, SupportedAppProtocolReq, SupportedAppProtocolRes
from mcscomm.messages.enums import AppProtocolResponseCode as Code
from mcscomm.sap import (
    ISO20_DC,
    NS_DIN,
    NS_ISO2,
    NS_ISO20_AC,
    NS_ISO20_DC,
    InvalidSapResponse,
    NoNegotiation,
    ProtocolVersion,
    build_offer,
    check_response,
    negotiate,
)


def entry(ns: str, major: int, minor: int, schema_id: int, priority: int) -> AppProtocol:
    return AppProtocol(
        protocol_namespace=ns,
        version_number_major=major,
        version_number_minor=minor,
        schema_id=schema_id,
        priority=priority,
    )


def test_exact_match_is_successful_negotiation() -> None:
    offer = SupportedAppProtocolReq(app_protocol=[entry(NS_ISO20_DC, 1, 0, 7, 1)])
    result = negotiate(offer)
    assert result.response == SupportedAppProtocolRes(
        response_code=Code.OK_SUCCESSFUL_NEGOTIATION, schema_id=7
    )
    assert result.supported == ISO20_DC


def test_highest_priority_supported_entry_wins() -> None:
    offer = SupportedAppProtocolReq(
        app_protocol=[
            entry(NS_DIN, 2, 0, 1, 3),
            entry(NS_ISO20_DC, 1, 0, 2, 2),
            entry(NS_ISO2, 2, 0, 3, 1),  # priority 1 but not supported by this SECC
        ]
    )
    assert negotiate(offer).response.schema_id == 2
    supported = [ISO20_DC, ProtocolVersion(NS_ISO2, 2, 0)]
    assert negotiate(offer, supported).response.schema_id == 3  # now priority 1 is usable


def test_priority_not_list_order_decides() -> None:
    offer = SupportedAppProtocolReq(
        app_protocol=[entry(NS_ISO20_DC, 1, 0, 10, 5), entry(NS_ISO20_DC, 1, 1, 11, 2)]
    )
    res = negotiate(offer).response
    assert res.schema_id == 11
    assert res.response_code is Code.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION


def test_minor_deviation() -> None:
    offer = SupportedAppProtocolReq(app_protocol=[entry(NS_ISO20_DC, 1, 3, 4, 1)])
    res = negotiate(offer).response
    assert res.response_code is Code.OK_SUCCESSFUL_NEGOTIATION_WITH_MINOR_DEVIATION
    assert res.schema_id == 4


def test_major_mismatch_and_unknown_namespace_fail() -> None:
    offer = SupportedAppProtocolReq(
        app_protocol=[entry(NS_ISO20_DC, 2, 0, 1, 1), entry(NS_ISO20_AC, 1, 0, 2, 2)]
    )
    result = negotiate(offer)
    assert result.response == SupportedAppProtocolRes(response_code=Code.FAILED_NO_NEGOTIATION)
    assert result.selected is None


def test_iso20_not_selected_without_tls13() -> None:
    offer = SupportedAppProtocolReq(
        app_protocol=[entry(NS_ISO20_DC, 1, 0, 1, 1), entry(NS_ISO2, 2, 0, 2, 2)]
    )
    supported = [ISO20_DC, ProtocolVersion(NS_ISO2, 2, 0)]
    assert negotiate(offer, supported, tls13=False).response.schema_id == 2
    assert negotiate(offer, supported, tls13=True).response.schema_id == 1


def test_evcc_offer_and_check() -> None:
    offer = build_offer()
    assert offer.app_protocol == [entry(NS_ISO20_DC, 1, 0, 1, 1)]
    selected = check_response(offer, negotiate(offer).response)
    assert selected.protocol_namespace == NS_ISO20_DC


def test_evcc_rejects_bad_responses() -> None:
    offer = build_offer()
    with pytest.raises(NoNegotiation):
        check_response(offer, SupportedAppProtocolRes(response_code=Code.FAILED_NO_NEGOTIATION))
    with pytest.raises(InvalidSapResponse, match="not offered"):
        check_response(
            offer,
            SupportedAppProtocolRes(response_code=Code.OK_SUCCESSFUL_NEGOTIATION, schema_id=99),
        )
    with pytest.raises(InvalidSapResponse, match="without SchemaID"):
        check_response(offer, SupportedAppProtocolRes(response_code=Code.OK_SUCCESSFUL_NEGOTIATION))
    with pytest.raises(InvalidSapResponse):
        check_response(
            offer,
            SupportedAppProtocolRes(response_code=Code.FAILED_NO_NEGOTIATION, schema_id=1),
        )


def test_build_offer_limits() -> None:
    with pytest.raises(ValueError):
        build_offer([])
    with pytest.raises(ValueError):
        build_offer([ISO20_DC] * 21)
    assert [p.priority for p in build_offer([ISO20_DC] * 20).app_protocol] == list(range(1, 21))


offers = st.lists(
    st.builds(
        entry,
        ns=st.sampled_from([NS_ISO20_DC, NS_ISO20_AC, NS_ISO2, NS_DIN]),
        major=st.integers(0, 3),
        minor=st.integers(0, 3),
        schema_id=st.integers(0, 255),
        priority=st.integers(1, 20),
    ),
    min_size=1,
    max_size=20,
).map(lambda ps: SupportedAppProtocolReq(app_protocol=ps))


@given(offers)
def test_negotiation_properties(offer: SupportedAppProtocolReq) -> None:
    result = negotiate(offer)
    eligible = [
        p
        for p in offer.app_protocol
        if p.protocol_namespace == NS_ISO20_DC and p.version_number_major == 1
    ]
    if not eligible:
        assert result.response.response_code is Code.FAILED_NO_NEGOTIATION
        assert result.response.schema_id is None
        return
    assert result.selected is not None
    assert result.selected.priority == min(p.priority for p in eligible)
    assert result.response.schema_id == result.selected.schema_id
    # whatever the SECC answers, the EVCC accepts it as one of its own entries
    assert check_response(offer, result.response).schema_id == result.response.schema_id
    # and both messages are schema-valid
    codec = XmlCodec()
    codec.encode(offer)
    codec.encode(result.response)
