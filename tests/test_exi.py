"""EXI codec against the public vectors (shared/exi-vectors), message level and CLI.

Every vector decodes to its document (namespace-aware comparison) and every XSD-valid one
re-encodes to exactly its bytes. AC vectors are skipped: mcscomm has no AC schema (MCS is DC).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from mcscomm.codec.errors import CodecError, SchemaViolation, UnknownMessage
from mcscomm.commands import exi as exi_cmd
from mcscomm.exi.codec import (
    CANONICAL_EXI,
    ExiCodec,
    grammar_for_payload,
    grammars,
    has_grammar,
)
from mcscomm.exi.errors import ExiDecodeError, ExiEncodeError, ExiError
from mcscomm.exi.stream import decode_document, encode_document

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS_FILE = SHARED / "exi-vectors" / "iso20_exi_vectors.json"

if not VECTORS_FILE.is_file():  # pragma: no cover - CI has shared/ next to the clone
    pytest.skip(f"EXI vectors not found at {VECTORS_FILE}", allow_module_level=True)

VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text())
#: mcscomm ships no AC schema (MCS is DC); with the ISO AC XSD in the schema folder the AC
#: vectors run too.
HAS_AC = has_grammar("AC")
SUPPORTED = [v for v in VECTORS if v["schema"] != "AC" or HAS_AC]
AC_VECTORS = [v for v in VECTORS if v["schema"] == "AC"]
VALID = [v for v in SUPPORTED if v["verification"]["xsd_valid"]]


def canon(elem: etree._Element) -> tuple[Any, ...]:
    """Namespace-aware, prefix-independent form of an element tree."""
    return (
        elem.tag,
        sorted(elem.attrib.items()),
        elem.text or "",
        [canon(c) for c in elem if isinstance(c.tag, str)],
    )


def ids(vs: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vs]


def test_vector_file_has_what_we_expect() -> None:
    assert len(VECTORS) == 53
    assert len(AC_VECTORS) == 8
    assert {"AppProtocol", "CommonMessages", "DC"} <= {v["schema"] for v in SUPPORTED}


@pytest.mark.skipif(HAS_AC, reason="an AC schema is installed")
@pytest.mark.parametrize("vector", AC_VECTORS, ids=ids(AC_VECTORS))
def test_ac_vectors_need_an_ac_schema(vector: dict[str, Any]) -> None:
    pytest.skip(f"no V2G_CI_AC.xsd in the schema folder: {vector['name']} not checked")


@pytest.mark.parametrize("vector", SUPPORTED, ids=ids(SUPPORTED))
def test_vector_decodes_to_its_document(vector: dict[str, Any]) -> None:
    grammar = grammar_for_payload(vector["v2gtp_payload_type"])
    decoded = decode_document(grammar, bytes.fromhex(vector["exi_hex"]))
    assert canon(decoded) == canon(etree.fromstring(vector["document"]))


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_vector_reencodes_byte_exact(vector: dict[str, Any]) -> None:
    grammar = grammar_for_payload(vector["v2gtp_payload_type"])
    document = etree.fromstring(vector["document"])
    assert encode_document(grammar, document).hex() == vector["exi_hex"]


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_vector_message_round_trip(vector: dict[str, Any]) -> None:
    """Bytes -> typed message (validated) -> bytes, through the XML codec's mapping."""
    codec = ExiCodec()
    data = bytes.fromhex(vector["exi_hex"])
    message = codec.decode(vector["v2gtp_payload_type"], data)
    assert type(message).__name__.lower() == vector["message"].lower()
    assert codec.payload_type_for(message) == vector["v2gtp_payload_type"]
    assert codec.encode(message) == data


def test_invalid_vector_decodes_but_message_level_refuses_it() -> None:
    # SessionID of 1 byte: EXI carries the length, the XSD demands 8 (vector notes).
    (vector,) = [v for v in VECTORS if v["name"] == "SessionSetupReq_2024_1byteSessionID"]
    data = bytes.fromhex(vector["exi_hex"])
    root = ExiCodec().decode_element(0x8002, data)
    assert root.findtext(".//{urn:iso:std:iso:15118:-20:CommonTypes}SessionID") == "00"
    with pytest.raises(SchemaViolation):
        ExiCodec().decode(0x8002, data)
    # Without validation the element still encodes back to the same bytes.
    assert encode_document(grammars("CommonMessages"), root) == data


@pytest.mark.skipif(HAS_AC, reason="an AC schema is installed")
def test_ac_payload_is_refused_without_an_ac_grammar() -> None:
    with pytest.raises(ExiDecodeError, match="AC"):
        grammar_for_payload(0x8003)


def test_metering_confirmation_payload_type_accepts_only_metering_messages() -> None:
    codec = ExiCodec()
    (vector,) = [v for v in VECTORS if v["name"] == "SessionStopReq_Terminate"]
    data = bytes.fromhex(vector["exi_hex"])
    with pytest.raises(UnknownMessage):
        codec.decode_element(0x8102, data)
    with pytest.raises(ExiEncodeError):
        codec.encode_element(etree.fromstring(vector["document"]), 0x8102)


def test_message_on_wrong_payload_type_is_refused() -> None:
    (vector,) = [v for v in VECTORS if v["name"] == "DC_CableCheckReq"]
    data = bytes.fromhex(vector["exi_hex"])
    with pytest.raises(CodecError):
        ExiCodec().decode(0x8002, data)  # the DC bytes read with the CommonMessages grammar


def test_exi_codec_implements_the_codec_protocol() -> None:
    from mcscomm.codec.base import Codec

    codec: Codec = ExiCodec()  # checked by mypy
    assert codec.canonicalization_uri == CANONICAL_EXI


def test_codec_errors_are_codec_errors() -> None:
    assert issubclass(ExiError, CodecError)
    with pytest.raises(CodecError):
        ExiCodec().decode(0x8004, b"\x00\x01")
    assert ExiCodec.canonicalization_uri == CANONICAL_EXI == "http://www.w3.org/TR/canonical-exi/"


# -- CLI -------------------------------------------------------------------------------------
def run_cli(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str) -> tuple[int, str, str]:
    import argparse

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    parser = argparse.ArgumentParser()
    exi_cmd.configure(parser)
    code = exi_cmd.run(parser.parse_args(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_decode_batch_keeps_order_and_reports_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    dc = [v for v in SUPPORTED if v["schema"] == "DC"][:3]
    stdin = "\n".join([dc[0]["exi_hex"], "80ff", dc[1]["exi_hex"], "nothex", dc[2]["exi_hex"]])
    code, out, err = run_cli(monkeypatch, ["decode", "--payload-type", "0x8004"], stdin + "\n")
    lines = out.splitlines()
    assert len(lines) == 5 and code == 1 and "2 of 5" in err
    assert lines[1].startswith("ERROR:") and lines[3].startswith("ERROR:")
    for line, vector in zip((lines[0], lines[2], lines[4]), dc, strict=True):
        assert canon(etree.fromstring(line)) == canon(etree.fromstring(vector["document"]))


def test_cli_encode_batch_and_single_pretty_document(monkeypatch: pytest.MonkeyPatch) -> None:
    cm = [v for v in VALID if v["schema"] == "CommonMessages"][:2]
    stdin = "\n".join([cm[0]["document"], "<broken", cm[1]["document"]]) + "\n"
    code, out, _err = run_cli(monkeypatch, ["encode", "--payload-type", "0x8002"], stdin)
    assert code == 1
    assert out.splitlines()[0] == cm[0]["exi_hex"]
    assert out.splitlines()[1].startswith("ERROR:")
    assert out.splitlines()[2] == cm[1]["exi_hex"]
    pretty = etree.tostring(etree.fromstring(cm[0]["document"]), pretty_print=True).decode()
    assert len(pretty.splitlines()) > 1
    code, out, _err = run_cli(monkeypatch, ["encode", "-t", "common"], pretty)
    assert code == 0 and out.strip() == cm[0]["exi_hex"]


def test_cli_decode_accepts_a_whole_v2gtp_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    (vector,) = [v for v in VECTORS if v["name"] == "SupportedAppProtocolRes_OK"]
    body = bytes.fromhex(vector["exi_hex"])
    frame = b"\x01\xfe\x80\x01" + len(body).to_bytes(4, "big") + body
    code, out, _err = run_cli(monkeypatch, ["decode"], frame.hex())
    assert code == 0
    assert canon(etree.fromstring(out)) == canon(etree.fromstring(vector["document"]))


def test_cli_grammar_prints_states_and_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _err = run_cli(monkeypatch, ["grammar", "DC_ChargeLoopReq"], "")
    assert code == 0
    assert "SE({urn:iso:std:iso:15118:-20:DC}BPT_Dynamic_DC_CLReqControlMode)" in out
    assert "(3 bits)" in out  # the five control modes + escape need 3 bits
    code, out, _err = run_cli(monkeypatch, ["grammar", "fragment", "--schema", "xmldsig"], "")
    assert (
        code == 0
        and "6 bits" in out
        and "SE({http://www.w3.org/2000/09/xmldsig#}SignedInfo)" in out
    )
    code, _out, err = run_cli(monkeypatch, ["grammar", "NoSuchElement"], "")
    assert code == 1 and "no element" in err


def test_cli_main_entry_point(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcscomm import cli

    (vector,) = [v for v in VECTORS if v["name"] == "DC_CableCheckReq"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(vector["exi_hex"] + "\n"))
    assert cli.main(["exi", "decode", "--payload-type", "0x8004"]) == 0
    out = capsys.readouterr().out
    assert canon(etree.fromstring(out)) == canon(etree.fromstring(vector["document"]))


def _example_classes() -> list[type]:
    from mcscomm.codec.base import MESSAGE_CLASSES

    return sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _example_classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("signed", [False, True], ids=["plain", "signed"])
def test_every_message_type_round_trips(cls: type, signed: bool) -> None:
    """Fully populated examples of all message types (incl. signed headers): EXI and back."""
    from mcscomm.codec.xml import XmlCodec
    from mcscomm.messages.examples import example

    if signed and not hasattr(cls, "header"):
        pytest.skip("SupportedAppProtocol messages have no header")
    message: Any = example(cls, with_signature=signed)
    codec = ExiCodec()
    data = codec.encode(message)
    assert data[0] == 0x80
    assert codec.decode(codec.payload_type_for(message), data) == message
    # EXI and XML carry the same infoset
    xml_root = XmlCodec().to_element(message)
    assert canon(codec.decode_element(codec.payload_type_for(message), data)) == canon(xml_root)
