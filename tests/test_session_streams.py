"""Payload types and framing errors at the connection: which stream a request may arrive on, on
which one a FAILED answer goes out, and that frames completed before a broken header are served.

Policy (mcscomm/session/streams.py): a payload type that is not a -20 TCP stream type (SDP,
manufacturer, reserved) closes the connection with a logged reason (V2G20-092, facts §1.3); a known
request on a -20 stream type that does not carry it is answered FAILED_SequenceError on the
response's own payload type (facts §1.2).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcscomm.messages import MeteringConfirmationRes, SessionSetupRes
from mcscomm.session.connection import EvccConnection, SeccConnection, default_codec
from mcscomm.session.events import MessageReceived, MessageSent, ProtocolError, SessionEnded
from mcscomm.session.loopback import default_configs, make_pair
from mcscomm.session.streams import (
    STREAM_PAYLOAD_TYPES,
    carries,
    is_stream_payload_type,
    response_payload_type,
)
from mcscomm.v2gtp import FrameDecoder, PayloadType, build_frame

# payload types outside the -20 TCP streams: SDP (UDP only), manufacturer, reserved
NOT_STREAM = (0x9000, 0x9001, 0x9002, 0xA000, 0xFFFF, 0x1234, 0x0000, 0x8007, 0x8105)
# -20 stream types that do not carry SessionSetupReq (0x8002 does)
WRONG_STREAM = (0x8001, 0x8003, 0x8004, 0x8005, 0x8006, 0x8101, 0x8102, 0x8103, 0x8104)


def _events(conn: SeccConnection | EvccConnection) -> list[object]:
    out: list[object] = []
    while (e := conn.next_event()) is not None:
        out.append(e)
    return out


def _sent(conn: SeccConnection) -> list[tuple[int, bytes]]:
    dec = FrameDecoder()
    return [(f.payload_type, f.payload) for f in dec.feed(conn.data_to_send())]


def _code(doc: bytes) -> str:
    m = re.search(rb"ResponseCode>([^<]+)</", doc)
    assert m is not None, doc
    return m.group(1).decode()


def _after_sap() -> tuple[SeccConnection, EvccConnection, bytes]:
    """An SECC past the SAP exchange, its EVCC peer, and the EVCC's SessionSetupReq document."""
    secc_cfg, evcc_cfg = default_configs()
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    evcc.start(0.0)
    secc.receive_data(evcc.data_to_send(), 0.0)
    evcc.receive_data(secc.data_to_send(), 0.0)
    (frame,) = FrameDecoder().feed(evcc.data_to_send())
    assert frame.payload_type == PayloadType.COMMON and b"SessionSetupReq" in frame.payload
    _events(secc)
    return secc, evcc, frame.payload


def test_stream_payload_types_are_the_minus20_tcp_streams() -> None:
    main, side = set(range(0x8001, 0x8007)), set(range(0x8101, 0x8105))
    assert main | side == STREAM_PAYLOAD_TYPES
    assert not any(is_stream_payload_type(p) for p in NOT_STREAM)


@pytest.mark.parametrize("pt", WRONG_STREAM, ids=hex)
def test_request_on_a_wrong_stream_is_answered_on_its_own_payload_type(pt: int) -> None:
    secc, _, doc = _after_sap()
    secc.receive_data(build_frame(pt, doc), 1.0)
    sent = _sent(secc)
    assert [p for p, _ in sent] == [PayloadType.COMMON], "FAILED answer on the request's type"
    assert b"SessionSetupRes" in sent[0][1] and _code(sent[0][1]) == "FAILED_SequenceError"
    events = _events(secc)
    err = next(e for e in events if isinstance(e, ProtocolError))
    assert err.kind == "wrong_payload_type" and f"0x{pt:04X}" in err.detail
    ended = next(e for e in events if isinstance(e, SessionEnded))
    assert ended.result == "failed" and secc.closed
    out = next(e for e in events if isinstance(e, MessageSent))
    assert out.payload_type == PayloadType.COMMON


@pytest.mark.parametrize("pt", NOT_STREAM, ids=hex)
def test_request_on_a_non_stream_payload_type_closes_with_reason(pt: int) -> None:
    secc, _, doc = _after_sap()
    secc.receive_data(build_frame(pt, doc), 1.0)
    assert secc.data_to_send() == b""  # V2G20-092: ignored, i.e. not answered
    assert secc.closed
    events = _events(secc)
    err = next(e for e in events if isinstance(e, ProtocolError))
    assert err.kind == "v2gtp" and "unsupported payload type" in err.detail
    assert f"payload_type=0x{pt:04X}" in err.detail
    assert secc.close_reason == err.detail
    assert not any(isinstance(e, MessageReceived) for e in events)


def test_sap_request_on_the_common_stream_gets_a_sap_answer() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    evcc.start(0.0)
    (frame,) = FrameDecoder().feed(evcc.data_to_send())
    secc.receive_data(build_frame(PayloadType.COMMON, frame.payload), 0.0)
    sent = _sent(secc)
    assert [p for p, _ in sent] == [PayloadType.SAP]
    assert b"supportedAppProtocolRes" in sent[0][1] and _code(sent[0][1]) == "Failed_NoNegotiation"
    assert secc.closed


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 0xFFFF))
def test_any_payload_type_never_answered_on_a_type_the_response_does_not_use(pt: int) -> None:
    secc, _, doc = _after_sap()
    secc.receive_data(build_frame(pt, doc), 1.0)
    sent = _sent(secc)
    if pt == PayloadType.COMMON:
        assert [_code(d) for _, d in sent] == ["OK_NewSessionEstablished"]
    elif pt in STREAM_PAYLOAD_TYPES:
        assert [(p, _code(d)) for p, d in sent] == [(PayloadType.COMMON, "FAILED_SequenceError")]
    else:
        assert sent == []
    assert secc.closed == (pt != PayloadType.COMMON)


def test_valid_request_before_a_broken_header_is_answered_then_closed() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    evcc.start(0.0)
    sap = evcc.data_to_send()
    secc.receive_data(sap + b"\x99" * 8, 0.0)
    sent = _sent(secc)
    assert [p for p, _ in sent] == [PayloadType.SAP]
    assert _code(sent[0][1]).startswith("OK_SuccessfulNegotiation")
    events = _events(secc)
    # order: the request, its answer, then the framing error that closes the connection
    kinds = [type(e).__name__ for e in events if isinstance(e, MessageReceived | MessageSent)]
    assert kinds == ["MessageReceived", "MessageSent"]
    err = next(e for e in events if isinstance(e, ProtocolError))
    assert err.kind == "v2gtp" and "protocol version 0x99" in err.detail
    assert events.index(err) > max(
        i for i, e in enumerate(events) if isinstance(e, MessageReceived | MessageSent)
    )
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == err.detail
    assert secc.closed and secc.close_reason == err.detail


def test_several_requests_before_a_non_stream_frame_are_all_served() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    evcc.start(0.0)
    secc.receive_data(evcc.data_to_send(), 0.0)
    evcc.receive_data(secc.data_to_send(), 0.0)
    setup = evcc.data_to_send()
    secc.receive_data(setup + build_frame(0x9000, b"\x00\x00"), 1.0)
    sent = _sent(secc)
    assert [(p, _code(d)) for p, d in sent] == [(PayloadType.COMMON, "OK_NewSessionEstablished")]
    assert secc.closed and "SDP_REQUEST (0x9000)" in (secc.close_reason or "")


def test_broken_header_after_a_failed_answer_adds_no_second_error() -> None:
    secc, _, doc = _after_sap()
    secc.receive_data(build_frame(0x8004, doc) + b"\x00" * 8, 1.0)
    events = _events(secc)
    assert [e.kind for e in events if isinstance(e, ProtocolError)] == ["wrong_payload_type"]
    assert isinstance(events[-1], SessionEnded)


def test_evcc_processes_a_response_before_a_broken_header_then_closes() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    evcc.start(0.0)
    secc.receive_data(evcc.data_to_send(), 0.0)
    # the response and a header with inverse version 0x00 in the same read
    evcc.receive_data(secc.data_to_send() + b"\x01\x00\x80\x02\x00\x00\x00\x00", 0.0)
    events = _events(evcc)
    got = [e.message for e in events if isinstance(e, MessageReceived)]
    assert got == ["SupportedAppProtocolRes"]
    err = next(e for e in events if isinstance(e, ProtocolError))
    assert err.kind == "v2gtp" and "inverse" in err.detail
    assert evcc.closed and evcc.result == "failed"


def test_evcc_closes_on_a_manufacturer_payload_type() -> None:
    secc_cfg, evcc_cfg = default_configs()
    evcc, secc = make_pair(secc_cfg, evcc_cfg)
    evcc.start(0.0)
    secc.receive_data(evcc.data_to_send(), 0.0)
    (frame,) = FrameDecoder().feed(secc.data_to_send())
    evcc.receive_data(build_frame(0xA001, frame.payload), 0.0)
    events = _events(evcc)
    assert not any(isinstance(e, MessageReceived) for e in events)
    err = next(e for e in events if isinstance(e, ProtocolError))
    assert err.kind == "v2gtp" and "manufacturer (0xA001)" in err.detail
    assert evcc.closed and evcc.result == "failed"


def test_session_refuses_a_decoded_request_handed_in_on_a_wrong_type() -> None:
    # the SeccSession itself holds the policy for callers that bypass the connection
    secc, _, doc = _after_sap()
    message = default_codec().decode(PayloadType.COMMON, doc)
    secc.session.receive(message, PayloadType.DC, 1.0)
    (out,) = secc.session.outgoing(1.0)
    assert out.payload_type == PayloadType.COMMON and isinstance(out.message, SessionSetupRes)
    assert out.message.response_code.value == "FAILED_SequenceError"
    assert secc.session.ended


def test_response_follows_its_request_stream_when_that_stream_carries_it() -> None:
    res = MeteringConfirmationRes.__new__(MeteringConfirmationRes)
    # MeteringConfirmation may run on the main stream or on its side stream (V2G20-1084/1085)
    assert response_payload_type(res, PayloadType.COMMON) == PayloadType.COMMON
    assert response_payload_type(res, PayloadType.METERING_CONFIRMATION) == 0x8102
    assert response_payload_type(res, PayloadType.DC) == 0x8102  # not on DC: its own
    assert carries(PayloadType.DC, type(res)) is False
