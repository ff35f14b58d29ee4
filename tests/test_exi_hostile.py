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


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_fuzz_target_never_lets_anything_else_escape(data: bytes) -> None:
    from mcscomm.exi.fuzz import fuzz_one

    assert fuzz_one(data) in (True, False)


@needs_vectors
def test_fuzz_target_accepts_the_vectors() -> None:
    from mcscomm.exi.fuzz import PAYLOAD_TYPES, fuzz_one

    for vector in VECTORS:
        selector = PAYLOAD_TYPES.index(vector["v2gtp_payload_type"])
        assert fuzz_one(bytes([selector]) + bytes.fromhex(vector["exi_hex"]))


# -- string-table hits from non-profile peers (opt-in) ----------------------------------------
def _session_stop_with_strings(second: str | None) -> bytes:
    """SessionStopReq with EVTerminationCode "abc" and an EVTerminationExplanation that is a
    literal "abc" (second=None) or a global value hit (second="global")."""
    w = BitWriter()
    w.write(0x80, 8)
    w.write(_doc_code("CommonMessages", "SessionStopReq"), 6)
    w.write(0, 3)  # SE(Header), SE(SessionID), CH
    w.write_uint(8)
    w.write_bytes(bytes(8))
    w.write(0, 3)  # EE, SE(TimeStamp), CH
    w.write_uint(1)
    w.write(0, 1)  # EE
    w.write(1, 2)  # EE of Header
    w.write(0, 1)  # SE(ChargingSession)
    w.write(0, 1)  # CH
    w.write(1, 2)  # Terminate = #1 of 3
    w.write(0, 1)  # EE
    w.write(0, 2)  # {SE(EVTerminationCode), SE(EVTerminationExplanation), EE}: code
    w.write(0, 1)  # CH
    w.write_uint(3 + 2)
    w.write_bytes(b"abc")
    w.write(0, 1)  # EE
    w.write(0, 2)  # {SE(EVTerminationExplanation), EE}: explanation
    w.write(0, 1)  # CH
    if second is None:
        w.write_uint(3 + 2)
        w.write_bytes(b"abc")
    else:
        w.write_uint(1)  # global value hit; the global table holds 1 value -> 0-bit index
    w.write(0, 1)  # EE
    w.write(0, 1)  # EE of SessionStopReq
    return w.getvalue()


def test_value_hits_are_refused_by_default_and_decoded_on_request() -> None:
    g = grammars("CommonMessages")
    literal = _session_stop_with_strings(None)
    hit = _session_stop_with_strings("global")
    assert decode_document(g, literal) is not None
    with pytest.raises(ExiUnsupported, match="string table"):
        decode_document(g, hit)
    a = decode_document(g, literal, value_hits=True)
    b = decode_document(g, hit, value_hits=True)
    assert etree.tostring(a) == etree.tostring(b)
    cm = "{urn:iso:std:iso:15118:-20:CommonMessages}"
    assert b.findtext(f"{cm}EVTerminationExplanation") == "abc"
    # our encoder always writes literals, which every decoder accepts
    assert encode_document(g, b) == literal
    assert ExiCodec(value_hits=True).decode(0x8002, hit) == ExiCodec().decode(0x8002, literal)


def test_local_value_hit_and_bad_hits(tmp_path: Path) -> None:
    from mcscomm.exi.grammar import Grammars
    from mcscomm.exi.xsd import SchemaSet

    xsd = tmp_path / "s.xsd"
    xsd.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:s" '
        'elementFormDefault="qualified"><xs:element name="R"><xs:complexType><xs:sequence>'
        '<xs:element name="E" type="xs:string" maxOccurs="unbounded"/>'
        "</xs:sequence></xs:complexType></xs:element></xs:schema>"
    )
    g = Grammars(SchemaSet(xsd))

    def stream(*values: str | tuple[int, int]) -> bytes:
        w = BitWriter()
        w.write(0x80, 8)
        w.write(0, 1)  # SE(R): 1 global + SE(*) -> 1 bit
        for i, value in enumerate(values):
            w.write(0, 1 if i == 0 else 2)  # SE(E) (then {SE(E), EE})
            w.write(0, 1)  # CH
            if isinstance(value, str):
                w.write_uint(len(value) + 2)
                w.write_bytes(value.encode())
            else:
                kind, index = value
                w.write_uint(kind)
                w.write(index, 1)  # both tables hold 2 values here -> 1 bit
            w.write(0, 1)  # EE of E
        w.write(1, 2)  # EE of R
        return w.getvalue()

    root = decode_document(g, stream("x", "y", (0, 1), (1, 0)), value_hits=True)
    assert [e.text for e in root] == ["x", "y", "y", "x"]
    with pytest.raises(ExiDecodeError):
        decode_document(g, stream((0, 0)), value_hits=True)  # hit on an empty table
