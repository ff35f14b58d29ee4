"""The EXI codec's fast paths agree with the slow ones bit for bit and error for error.

* Decoding: messages (held as one int by :class:`~mcscomm.exi.bits.BitReader`) go through
  ``stream._decode_small``, which cuts event codes and fixed-width values from that int itself;
  large inputs go through ``stream._decode_large`` (one ``read`` per field). Forcing the large
  path must give the same tree, or the same error, for vectors, mutated vectors and their
  truncations.
* Encoding: ``Datatype.bits`` (one write per simple-typed element) must give exactly the bits
  of ``Datatype.encode``, and ``from_bits`` the text of ``decode``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mcscomm.exi import bits as bits_module
from mcscomm.exi.bits import BitReader, BitWriter
from mcscomm.exi.codec import grammar_for_payload
from mcscomm.exi.datatypes import (
    BooleanType,
    Datatype,
    EnumerationType,
    IntegerType,
    NBitIntegerType,
    UnsignedIntegerType,
)
from mcscomm.exi.errors import ExiError
from mcscomm.exi.stream import decode_document

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS_FILE = SHARED / "exi-vectors" / "iso20_exi_vectors.json"
VECTORS: list[dict[str, Any]] = (
    [v for v in json.loads(VECTORS_FILE.read_text()) if v["schema"] != "AC"]
    if VECTORS_FILE.is_file()
    else []
)
needs_vectors = pytest.mark.skipif(not VECTORS, reason=f"EXI vectors not found at {VECTORS_FILE}")


def _outcome(payload_type: int, data: bytes) -> tuple[str, str]:
    try:
        root = decode_document(grammar_for_payload(payload_type), data)
    except ExiError as exc:
        return type(exc).__name__, str(exc)
    return "ok", etree.tostring(root, encoding="unicode")


def _both(payload_type: int, data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(payload_type, data)
    with monkeypatch.context() as m:
        m.setattr(bits_module, "SMALL_INPUT", -1)  # every input "large": the slow path
        slow = _outcome(payload_type, data)
    assert fast == slow


@needs_vectors
@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_vectors_and_truncations_decode_alike(
    vector: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes.fromhex(vector["exi_hex"])
    for cut in range(1, len(data) + 1):
        _both(vector["v2gtp_payload_type"], data[:cut], monkeypatch)


@needs_vectors
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    index=st.integers(min_value=0, max_value=max(len(VECTORS) - 1, 0)),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_mutated_vectors_decode_alike(
    index: int, flips: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    vector = VECTORS[index]
    data = bytearray.fromhex(vector["exi_hex"])
    for where, bit in flips:
        i = 1 + where % max(len(data) - 1, 1)  # keep the header: reach the element decoder
        if i < len(data):
            data[i] ^= 1 << bit
    _both(vector["v2gtp_payload_type"], bytes(data), monkeypatch)


TYPES: list[Datatype] = [
    BooleanType(),
    NBitIntegerType(-128, 127),
    NBitIntegerType(0, 0),
    NBitIntegerType(5, 4000),
    UnsignedIntegerType(0, None),
    UnsignedIntegerType(0, 65535),
    IntegerType(-32768, 32767),
    IntegerType(None, None),
    EnumerationType(["OK", "OK_NewSessionEstablished", "FAILED"], "string"),
    EnumerationType(["only"], "string"),
    EnumerationType(["1", "2", "3", "4", "5"], "integer"),
]

texts = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=-300, max_value=5000).map(lambda i: f" {i}\n"),
    st.sampled_from(["true", "false", "0", "1", " true ", "OK", "FAILED", "only", "3", "x", ""]),
    st.text(max_size=6),
)


def _encode(dt: Datatype, text: str) -> tuple[str, object]:
    w = BitWriter()
    try:
        dt.encode(w, text)
    except ExiError as exc:
        return type(exc).__name__, str(exc)
    return "ok", (w.acc, w.nbits)  # the raw bits, width included


def _bits(dt: Datatype, text: str) -> tuple[str, object]:
    try:
        return "ok", dt.bits(text)
    except ExiError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=600, deadline=None)
@given(index=st.integers(0, len(TYPES) - 1), text=texts)
def test_bits_equal_encode(index: int, text: str) -> None:
    dt = TYPES[index]
    assert dt.packs
    assert _bits(dt, text) == _encode(dt, text)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(TYPES) - 1), value=st.integers(0, 4095))
def test_from_bits_equals_decode(index: int, value: int) -> None:
    dt = TYPES[index]
    if dt.fixed_width < 0:
        return
    value &= (1 << dt.fixed_width) - 1
    data = (value << (16 - dt.fixed_width)).to_bytes(2, "big") if dt.fixed_width else b"\0\0"
    try:
        expected: tuple[str, str] = ("ok", dt.decode(BitReader(data)))
    except ExiError as exc:
        expected = (type(exc).__name__, str(exc))
    try:
        got: tuple[str, str] = ("ok", dt.from_bits(value))
    except ExiError as exc:
        got = (type(exc).__name__, str(exc))
    assert got == expected
