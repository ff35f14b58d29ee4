"""V2GTP header and framing: layout, round trips, split/glued streams, every framing error."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcscomm import v2gtp
from mcscomm.v2gtp import (
    DEFAULT_MAX_PAYLOAD,
    FRAME,
    ConnectionClosed,
    Frame,
    FrameDecoder,
    InverseMismatch,
    Oversize,
    PayloadType,
    TrailingData,
    Truncated,
    UnknownPayloadType,
    V2gtpError,
    WrongVersion,
    build_frame,
    decode_datagram,
    is_known_payload_type,
    read_frame,
)


def header(version: int = 1, inverse: int = 0xFE, ptype: int = 0x8002, length: int = 0) -> bytes:
    return bytes([version, inverse]) + ptype.to_bytes(2, "big") + length.to_bytes(4, "big")


def reader_with(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


known_types = st.one_of(st.sampled_from(list(PayloadType)).map(int), st.integers(0xA000, 0xFFFF))
frames_st = st.builds(Frame, known_types, st.binary(max_size=300))


# ---------------------------------------------------------------------------- layout and enum


def test_header_layout_is_the_standards() -> None:
    # facts §1.1: 0x01 0xFE, uint16 payload type, uint32 length, big-endian.
    assert build_frame(0x8002, b"abc") == bytes.fromhex("01fe800200000003") + b"abc"
    assert build_frame(PayloadType.SDP_REQUEST, b"\x00\x00").hex() == "01fe9000000000020000"
    built = FRAME.build(
        {"version": 1, "inverse_version": 0xFE, "payload_type": 0x8004, "payload_length": 2,
         "payload": b"hi"}
    )  # fmt: skip
    assert built == build_frame(0x8004, b"hi")


def test_payload_type_values() -> None:
    expected = {
        "SAP": 0x8001, "COMMON": 0x8002, "AC": 0x8003, "DC": 0x8004, "ACDP": 0x8005,
        "WPT": 0x8006, "SCHEDULE_RENEGOTIATION": 0x8101, "METERING_CONFIRMATION": 0x8102,
        "ACDP_SYSTEM_STATUS": 0x8103, "PARKING_STATUS": 0x8104, "SDP_REQUEST": 0x9000,
        "SDP_RESPONSE": 0x9001, "SDP_REQUEST_WIRELESS": 0x9002, "SDP_RESPONSE_WIRELESS": 0x9003,
    }  # fmt: skip
    assert {p.name: p.value for p in PayloadType} == expected


@pytest.mark.parametrize(
    ("ptype", "known"),
    [(0x8001, True), (0x8104, True), (0x9003, True), (0xA000, True), (0xFFFF, True),
     (0x0000, False), (0x8007, False), (0x8105, False), (0x9004, False), (0x9FFF, False)],
)  # fmt: skip
def test_is_known_payload_type(ptype: int, known: bool) -> None:
    assert is_known_payload_type(ptype) is known


def test_build_frame_rejects_impossible_payload_type() -> None:
    with pytest.raises(ValueError):
        build_frame(0x10000, b"")


# ----------------------------------------------------------------------- properties: framing


@given(known_types, st.binary(max_size=2000))
def test_frame_round_trip(ptype: int, payload: bytes) -> None:
    data = build_frame(ptype, payload)
    assert len(data) == 8 + len(payload)
    assert FrameDecoder().feed(data) == [Frame(ptype, payload)]
    assert decode_datagram(data) == Frame(ptype, payload)


@given(st.lists(frames_st, max_size=8), st.data())
def test_any_split_of_a_stream_gives_the_same_frames(
    frames: list[Frame], data: st.DataObject
) -> None:
    stream = b"".join(build_frame(*f) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = FrameDecoder()
    got: list[Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += decoder.feed(stream[start:cut])
        start = cut
    assert got == frames
    assert decoder.buffered == 0
    decoder.eof()  # ended on a frame boundary: no error


@given(st.lists(frames_st, max_size=6))
@settings(max_examples=50)
def test_read_frame_reads_exactly_one_frame_each(frames: list[Frame]) -> None:
    async def scenario() -> list[Frame]:
        reader = reader_with(b"".join(build_frame(*f) for f in frames))
        got = [await read_frame(reader) for _ in frames]
        with pytest.raises(ConnectionClosed):
            await read_frame(reader)
        return got

    assert asyncio.run(scenario()) == frames


@given(st.binary(max_size=200), st.integers(1, 50))
def test_garbage_only_ever_raises_v2gtp_errors(junk: bytes, chunk: int) -> None:
    decoder = FrameDecoder(max_payload=100)
    try:
        for i in range(0, len(junk), chunk):
            decoder.feed(junk[i : i + chunk])
        decoder.eof()
    except V2gtpError:
        pass


# --------------------------------------------------------------------- negative: one per error

BAD_HEADERS: list[tuple[str, bytes, type[V2gtpError]]] = [
    ("wrong version", header(version=2, inverse=0xFD), WrongVersion),
    ("inverse mismatch", header(inverse=0xFF), InverseMismatch),
    ("unknown payload type", header(ptype=0x8007), UnknownPayloadType),
    ("reserved SDP type", header(ptype=0x9004), UnknownPayloadType),
    ("oversize", header(length=DEFAULT_MAX_PAYLOAD + 1), Oversize),
    # V2G20-090/092/094 order: the first failing check wins.
    ("version before type", header(version=0, inverse=0xFF, ptype=0x0001), WrongVersion),
    ("inverse before type", header(inverse=0x00, ptype=0x0001), InverseMismatch),
    ("type before length", header(ptype=0x0001, length=2**32 - 1), UnknownPayloadType),
]


@pytest.mark.parametrize(("name", "data", "error"), BAD_HEADERS, ids=[b[0] for b in BAD_HEADERS])
def test_bad_header_via_decoder(name: str, data: bytes, error: type[V2gtpError]) -> None:
    decoder = FrameDecoder()
    with pytest.raises(error) as info:
        decoder.feed(data + b"\x00" * 4)
    assert type(info.value) is error
    assert info.value.header is not None
    expected = v2gtp.Header(data[0], data[1], int.from_bytes(data[2:4]), int.from_bytes(data[4:8]))
    assert info.value.header == expected
    reason = info.value.close_reason
    assert reason.startswith("closing connection") and f"0x{data[0]:02X}" in reason
    # A byte stream cannot be resynchronised: the decoder stays failed.
    with pytest.raises(error):
        decoder.feed(build_frame(0x8002, b"ok"))


@pytest.mark.parametrize(("name", "data", "error"), BAD_HEADERS, ids=[b[0] for b in BAD_HEADERS])
async def test_bad_header_via_read_frame(name: str, data: bytes, error: type[V2gtpError]) -> None:
    with pytest.raises(error) as info:
        await read_frame(reader_with(data + b"\x00" * 4))
    assert type(info.value) is error
    assert info.value.header is not None and info.value.header.version == data[0]


def test_truncated_via_decoder() -> None:
    inside_header = FrameDecoder()
    assert inside_header.feed(build_frame(0x8002, b"abc")[:5]) == []
    with pytest.raises(Truncated) as info:
        inside_header.eof()
    assert (info.value.received, info.value.expected) == (5, 8)

    inside_payload = FrameDecoder()
    assert inside_payload.feed(build_frame(0x8004, b"abcdef")[:11]) == []
    with pytest.raises(Truncated) as info:
        inside_payload.eof()
    assert (info.value.received, info.value.expected) == (3, 6)
    assert info.value.header is not None and info.value.header.payload_type == 0x8004


async def test_truncated_via_read_frame() -> None:
    with pytest.raises(Truncated) as info:
        await read_frame(reader_with(build_frame(0x8002, b"abc")[:5]))
    assert not isinstance(info.value, ConnectionClosed)
    assert (info.value.received, info.value.expected) == (5, 8)

    with pytest.raises(Truncated) as info:
        await read_frame(reader_with(build_frame(0x8004, b"abcdef")[:11]))
    assert (info.value.received, info.value.expected) == (3, 6)

    with pytest.raises(ConnectionClosed) as closed:
        await read_frame(reader_with(b""))
    assert isinstance(closed.value, Truncated)  # still a V2gtpError for coarse handlers
    assert "closed by peer" in closed.value.close_reason


def test_decoder_keeps_frames_before_a_bad_header() -> None:
    good = build_frame(0x8002, b"one") + build_frame(0x8004, b"two")
    with pytest.raises(WrongVersion) as info:
        FrameDecoder().feed(good + header(version=9))
    assert info.value.frames == [Frame(0x8002, b"one"), Frame(0x8004, b"two")]


def test_glued_and_split_frames() -> None:
    a, b, c = build_frame(0x8001, b"A" * 10), build_frame(0x8002, b""), build_frame(0xA001, b"C")
    decoder = FrameDecoder()
    assert decoder.feed(a + b + c[:3]) == [Frame(0x8001, b"A" * 10), Frame(0x8002, b"")]
    assert decoder.feed(c[3:9]) == [Frame(0xA001, b"C")]


def test_manufacturer_types_accepted_and_accept_filter() -> None:
    assert FrameDecoder().feed(build_frame(0xBEEF, b"x")) == [Frame(0xBEEF, b"x")]
    sap_only = FrameDecoder(accept=lambda t: t == PayloadType.SAP)
    with pytest.raises(UnknownPayloadType):
        sap_only.feed(build_frame(0x8002, b""))


def test_max_payload_is_configurable() -> None:
    assert FrameDecoder(max_payload=4).feed(build_frame(0x8002, b"1234")) == [
        Frame(0x8002, b"1234")
    ]
    with pytest.raises(Oversize) as info:
        FrameDecoder(max_payload=3).feed(build_frame(0x8002, b"1234"))
    assert info.value.max_payload == 3


def test_decode_datagram_length_must_match() -> None:
    data = build_frame(0x9000, b"\x00\x00")
    with pytest.raises(Truncated):
        decode_datagram(data[:-1])
    with pytest.raises(Truncated):
        decode_datagram(data[:4])
    with pytest.raises(TrailingData):
        decode_datagram(data + b"\x00")


# ------------------------------------------------------------------------ oversize, no memory


def test_oversize_refused_before_buffering() -> None:
    decoder = FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(Oversize):
            decoder.feed(header(length=2**32 - 1))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # nowhere near the 4 GiB announced


async def test_read_frame_refuses_oversize_without_waiting_for_the_payload() -> None:
    reader = reader_with(header(length=2**32 - 1), eof=False)  # the payload never comes
    async with asyncio.timeout(5):  # would hang in readexactly if the length were trusted
        with pytest.raises(Oversize) as info:
            await read_frame(reader, max_payload=1024)
    assert info.value.header is not None and info.value.header.payload_length == 2**32 - 1
    assert "exceeds the maximum of 1024" in info.value.close_reason


async def test_read_frame_waits_for_slow_senders() -> None:
    reader = asyncio.StreamReader()
    task = asyncio.create_task(read_frame(reader))
    data = build_frame(0x8004, b"payload")
    for byte in data:
        reader.feed_data(bytes([byte]))
        await asyncio.sleep(0)
    assert await task == Frame(0x8004, b"payload")


@given(frames_st, st.data())
@settings(max_examples=50)
def test_any_cut_inside_a_frame_is_truncated_not_a_clean_close(
    frame: Frame, data: st.DataObject
) -> None:
    encoded = build_frame(*frame)
    cut = data.draw(st.integers(1, len(encoded) - 1))

    async def scenario() -> None:
        with pytest.raises(Truncated) as info:
            await read_frame(reader_with(encoded[:cut]))
        assert not isinstance(info.value, ConnectionClosed)

    asyncio.run(scenario())
    decoder = FrameDecoder()
    assert decoder.feed(encoded[:cut]) == []
    with pytest.raises(Truncated):
        decoder.eof()


# ------------------------------------------ fast path (struct) vs declared layout (construct)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=8, max_size=8), st.integers(0, 2**32))
def test_fast_path_agrees_with_the_declared_layout_on_every_header(
    raw: bytes, max_payload: int
) -> None:
    declared = v2gtp.HEADER.parse(raw)
    fields = (
        declared.version,
        declared.inverse_version,
        declared.payload_type,
        declared.payload_length,
    )
    try:
        got = v2gtp.parse_header(raw, max_payload)
    except V2gtpError as exc:
        # the error names the same header, and it is the first failing check of facts §1.3
        assert exc.header is not None and tuple(exc.header) == fields
        if fields[0] != 1:
            assert type(exc) is WrongVersion
        elif fields[1] != 0xFE:
            assert type(exc) is InverseMismatch
        elif not is_known_payload_type(fields[2]):
            assert type(exc) is UnknownPayloadType
        else:
            assert type(exc) is Oversize and fields[3] > max_payload
    else:
        assert tuple(got) == fields
        assert fields[:2] == (1, 0xFE) and is_known_payload_type(fields[2])
        assert fields[3] <= max_payload
    # the decoder reads the same header (it needs the payload too before it returns a frame)
    decoder = FrameDecoder(max_payload)
    try:
        assert decoder.feed(raw) == ([Frame(fields[2], b"")] if fields[3] == 0 else [])
    except V2gtpError as exc:
        assert tuple(exc.header or ()) == fields


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xFFFF), st.binary(max_size=64))
def test_build_frame_agrees_with_the_declared_layout(ptype: int, payload: bytes) -> None:
    declared = FRAME.build(
        {"version": 1, "inverse_version": 0xFE, "payload_type": ptype,
         "payload_length": len(payload), "payload": payload}
    )  # fmt: skip
    assert build_frame(ptype, payload) == declared
    assert v2gtp.HEADER.parse(declared[:8]).payload_length == len(payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(frames_st, max_size=6), st.data())
def test_decoder_input_types_and_tails(frames: list[Frame], data: st.DataObject) -> None:
    # bytes, bytearray and memoryview input, cut anywhere: same frames, nothing left over
    stream = b"".join(build_frame(f.payload_type, f.payload) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    kind = data.draw(st.sampled_from([bytes, bytearray, memoryview]))
    decoder = FrameDecoder()
    out: list[Frame] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(kind(stream[a:b]))
    assert out == frames
    assert all(type(f.payload) is bytes for f in out)
    assert decoder.buffered == 0
    decoder.eof()
