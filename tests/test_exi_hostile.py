"""Hostile EXI input: every failure is one typed ExiError, fast, with bounded memory.

Includes the decoder fuzz target: random bytes and mutated vectors either decode to a document
(which then re-encodes and decodes to the same document) or raise ExiError, never anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mcscomm.exi.bits import BitWriter
from mcscomm.exi.codec import ExiCodec, grammar_for_payload, grammars
from mcscomm.exi.errors import (
    ExiDecodeError,
    ExiEncodeError,
    ExiError,
    ExiLimitExceeded,
    ExiTrailingData,
    ExiTruncated,
    ExiUnsupported,
)
from mcscomm.exi.stream import decode_document, decode_fragment, encode_document

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS_FILE = SHARED / "exi-vectors" / "iso20_exi_vectors.json"
VECTORS: list[dict[str, Any]] = (
    [v for v in json.loads(VECTORS_FILE.read_text()) if v["schema"] != "AC"]
    if VECTORS_FILE.is_file()
    else []
)
needs_vectors = pytest.mark.skipif(not VECTORS, reason=f"EXI vectors not found at {VECTORS_FILE}")
PAYLOADS = [0x8001, 0x8002, 0x8004, 0x8102]


def decode_or_error(payload_type: int, data: bytes) -> etree._Element | None:
    """The fuzz oracle: a document or an ExiError (anything else fails the test)."""
    try:
        root = ExiCodec().decode_element(payload_type, data)
    except ExiError:
        return None
    except Exception as exc:  # pragma: no cover - what the test is looking for
        from mcscomm.codec.errors import CodecError

        if isinstance(exc, CodecError):  # UnknownMessage on 0x8102 is a CodecError too
            return None
        raise
    # A decoded document must be encodable again and decode to the same tree.
    grammar = grammar_for_payload(payload_type)
    again = decode_document(grammar, encode_document(grammar, root))
    assert etree.tostring(again) == etree.tostring(root)
    return root


@needs_vectors
@pytest.mark.parametrize("vector", VECTORS[:45:4], ids=lambda v: v["name"])
def test_every_truncation_is_a_typed_error(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["exi_hex"])
    for cut in range(len(data)):
        with pytest.raises(ExiDecodeError):
            decode_document(grammar_for_payload(vector["v2gtp_payload_type"]), data[:cut])


@needs_vectors
def test_trailing_bytes_are_refused() -> None:
    vector = VECTORS[0]
    data = bytes.fromhex(vector["exi_hex"])
    with pytest.raises(ExiTrailingData):
        decode_document(grammar_for_payload(vector["v2gtp_payload_type"]), data + b"\x00")


def test_bad_headers() -> None:
    g = grammars("DC")
    with pytest.raises(ExiDecodeError, match="header"):
        decode_document(g, b"\x81\x00")
    with pytest.raises(ExiUnsupported, match="cookie"):
        decode_document(g, b"$EXI\x80")
    with pytest.raises(ExiUnsupported, match="options"):
        decode_document(g, b"\xa0\x00")
    with pytest.raises(ExiTruncated):
        decode_document(g, b"")


def _doc_code(g_name: str, local: str) -> int:
    names = [q[1] for q in grammars(g_name).global_names]
    return names.index(local)


def test_escape_and_invalid_event_codes() -> None:
    g = grammars("AppProtocol")
    # 2-bit document codes: 0, 1 = the two globals, 2 = SE(*), 3 = invalid
    with pytest.raises(ExiUnsupported, match="wildcard"):
        decode_document(g, bytes([0x80, 0b10 << 6]))
    with pytest.raises(ExiDecodeError, match="invalid event code"):
        decode_document(g, bytes([0x80, 0b11 << 6]))
    # supportedAppProtocolRes: its first state has 1 production (+ escape) -> code 1 = escape
    with pytest.raises(ExiUnsupported, match="second-level"):
        decode_document(g, bytes([0x80, 0b01_1 << 5]))


def _session_setup_with_evccid_length(length_field: int, chars: int) -> bytes:
    """SessionSetupReq whose EVCCID string announces ``length_field`` (raw EXI value)."""
    w = BitWriter()
    w.write(0x80, 8)
    w.write(_doc_code("CommonMessages", "SessionSetupReq"), 6)
    w.write(0, 1)  # SE(Header)
    w.write(0, 1)  # SE(SessionID)
    w.write(0, 1)  # CH
    w.write_uint(8)
    w.write_bytes(bytes(8))
    w.write(0, 1)  # EE
    w.write(0, 1)  # SE(TimeStamp)
    w.write(0, 1)  # CH
    w.write_uint(1)
    w.write(0, 1)  # EE
    w.write(1, 2)  # EE of Header
    w.write(0, 1)  # SE(EVCCID)
    w.write(0, 1)  # CH
    w.write_uint(length_field)
    for _ in range(chars):
        w.write(ord("A"), 8)
    w.write(0, 1)  # EE of EVCCID
    w.write(0, 1)  # EE of SessionSetupReq
    return w.getvalue()


def test_string_lengths_are_bounded_by_input_and_schema() -> None:
    g = grammars("CommonMessages")
    ok = _session_setup_with_evccid_length(3 + 2, 3)
    root = decode_document(g, ok)
    assert root.findtext("{urn:iso:std:iso:15118:-20:CommonMessages}EVCCID") == "AAA"
    # A length of 2**60 with no characters behind it: refused before allocating anything.
    with pytest.raises(ExiLimitExceeded):
        decode_document(g, _session_setup_with_evccid_length(2**60, 0))
    # identifierType has maxLength 255: 300 characters are refused even when present.
    with pytest.raises(ExiLimitExceeded, match="schema"):
        decode_document(g, _session_setup_with_evccid_length(300 + 2, 300))
    # Value 0 and 1 are string-table hits, which the profile never uses.
    with pytest.raises(ExiUnsupported, match="string table"):
        decode_document(g, _session_setup_with_evccid_length(0, 0))
    with pytest.raises(ExiUnsupported):
        decode_document(g, _session_setup_with_evccid_length(1, 0))


def test_endless_integer_and_huge_binary_lengths() -> None:
    g = grammars("CommonMessages")
    w = BitWriter()
    w.write(0x80, 8)
    w.write(_doc_code("CommonMessages", "SessionSetupReq"), 6)
    w.write(0, 3)  # SE(Header), SE(SessionID), CH
    w.write_bytes(b"\xff" * 64)  # an unsigned integer whose groups never end
    with pytest.raises(ExiLimitExceeded):
        decode_document(g, w.getvalue())
    w = BitWriter()
    w.write(0x80, 8)
    w.write(_doc_code("CommonMessages", "SessionSetupReq"), 6)
    w.write(0, 3)
    w.write_uint(2**40)  # 1 TB of session id
    with pytest.raises(ExiDecodeError):
        decode_document(g, w.getvalue() + bytes(16))


def test_invalid_xml_characters_are_refused() -> None:
    with pytest.raises(ExiLimitExceeded, match="XML character"):
        decode_document(grammars("CommonMessages"), _nul_evccid())


def _nul_evccid() -> bytes:
    w = BitWriter()
    w.write(0x80, 8)
    w.write(_doc_code("CommonMessages", "SessionSetupReq"), 6)
    w.write(0, 3)
    w.write_uint(8)
    w.write_bytes(bytes(8))
    w.write(0, 2)
    w.write(0, 1)
    w.write_uint(1)
    w.write(0, 1)
    w.write(1, 2)
    w.write(0, 2)
    w.write_uint(3)
    w.write(0, 8)  # U+0000
    w.write(0, 2)
    return w.getvalue()


def test_deep_nesting_on_encode_is_refused() -> None:
    root = etree.Element("{urn:iso:std:iso:15118:-20:DC}DC_ChargeLoopReq")
    node = root
    for _ in range(200):
        node = etree.SubElement(node, "{urn:iso:std:iso:15118:-20:CommonTypes}Header")
    with pytest.raises(ExiEncodeError):
        encode_document(grammars("DC"), root)


def test_fragment_decoder_is_hardened() -> None:
    with pytest.raises(ExiDecodeError):
        decode_fragment(grammars("xmldsig"), b"\x80")
    with pytest.raises(ExiError):
        decode_fragment(grammars("xmldsig"), b"\x80" + b"\xff" * 10)


# -- fuzz target ----------------------------------------------------------------------------
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.sampled_from(PAYLOADS), body=st.binary(max_size=80))
def test_fuzz_random_bodies(payload: int, body: bytes) -> None:
    decode_or_error(payload, b"\x80" + body)


@needs_vectors
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=max(len(VECTORS) - 1, 0)),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=4),
    insert=st.binary(max_size=6),
    at=st.integers(0, 10_000),
    cut=st.integers(0, 10_000),
)
def test_fuzz_mutated_vectors(
    index: int, flips: list[tuple[int, int]], insert: bytes, at: int, cut: int
) -> None:
    vector = VECTORS[index]
    data = bytearray.fromhex(vector["exi_hex"])
    for pos, bit in flips:
        data[pos % len(data)] ^= 1 << bit
    pos = at % (len(data) + 1)
    data[pos:pos] = insert
    if cut % 3 == 0:
        del data[cut % len(data) :]
    decode_or_error(vector["v2gtp_payload_type"], bytes(data))


# -- encoder/decoder round trip over generated documents ------------------------------------
_CT = "urn:iso:std:iso:15118:-20:CommonTypes"
_DC = "urn:iso:std:iso:15118:-20:DC"
_rational = st.tuples(st.integers(-128, 127), st.integers(-32768, 32767))


def _rn(parent: etree._Element, tag: str, value: tuple[int, int]) -> None:
    node = etree.SubElement(parent, tag)
    etree.SubElement(node, f"{{{_CT}}}Exponent").text = str(value[0])
    etree.SubElement(node, f"{{{_CT}}}Value").text = str(value[1])


@settings(max_examples=150, deadline=None)
@given(
    session=st.binary(min_size=8, max_size=8),
    timestamp=st.integers(0, 2**64 - 1),
    soc=st.none() | st.integers(0, 100),
    meter=st.booleans(),
    values=st.lists(_rational, min_size=6, max_size=6),
    departure=st.none() | st.integers(0, 2**32 - 1),
)
def test_generated_charge_loop_requests_round_trip(
    session: bytes,
    timestamp: int,
    soc: int | None,
    meter: bool,
    values: list[tuple[int, int]],
    departure: int | None,
) -> None:
    root = etree.Element(f"{{{_DC}}}DC_ChargeLoopReq")
    header = etree.SubElement(root, f"{{{_CT}}}Header")
    etree.SubElement(header, f"{{{_CT}}}SessionID").text = session.hex().upper()
    etree.SubElement(header, f"{{{_CT}}}TimeStamp").text = str(timestamp)
    if soc is not None:
        display = etree.SubElement(root, f"{{{_CT}}}DisplayParameters")
        etree.SubElement(display, f"{{{_CT}}}PresentSOC").text = str(soc)
    etree.SubElement(root, f"{{{_CT}}}MeterInfoRequested").text = "true" if meter else "false"
    _rn(root, f"{{{_DC}}}EVPresentVoltage", values[0])
    mode = etree.SubElement(root, f"{{{_DC}}}Scheduled_DC_CLReqControlMode")
    if departure is not None:
        # Scheduled has no DepartureTime: use the optional energy request instead
        _rn(mode, f"{{{_CT}}}EVTargetEnergyRequest", values[5])
    _rn(mode, f"{{{_DC}}}EVTargetCurrent", values[1])
    _rn(mode, f"{{{_DC}}}EVTargetVoltage", values[2])
    _rn(mode, f"{{{_DC}}}EVMaximumChargePower", values[3])
    grammar = grammars("DC")
    data = encode_document(grammar, root)
    back = decode_document(grammar, data)
    assert [(e.tag, e.text) for e in back.iter()] == [(e.tag, e.text) for e in root.iter()]
    # and the message level agrees (validated, typed)
    message = ExiCodec().decode(0x8004, data)
    assert ExiCodec().encode(message) == data
