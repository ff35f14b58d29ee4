"""AutoCodec: the session's encoding (EXI or XML) comes from the peer's first document."""

from __future__ import annotations

import pytest

from mcscomm.codec import MalformedDocument, XmlCodec
from mcscomm.codec.auto import AutoCodec, codec_for, shared_codec, sniff
from mcscomm.exi import CANONICAL_EXI, ExiCodec
from mcscomm.messages.app_protocol import AppProtocol, SupportedAppProtocolReq
from mcscomm.messages.common_messages import (
    ContractCertificateChain,
    PnC_AReqAuthorizationMode,
    SessionSetupReq,
    SubCertificates,
)
from mcscomm.messages.common_types import MessageHeader

SAP = SupportedAppProtocolReq(
    app_protocol=[
        AppProtocol(
            protocol_namespace="urn:iso:std:iso:15118:-20:DC",
            version_number_major=1,
            version_number_minor=0,
            schema_id=1,
            priority=1,
        )
    ]
)
SETUP = SessionSetupReq(
    header=MessageHeader(session_id=bytes(8), timestamp=1_767_225_600), evccid="WMCSTRUCK000000001"
)


@pytest.fixture(scope="module")
def xml() -> XmlCodec:
    return shared_codec("xml")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def exi() -> ExiCodec:
    return shared_codec("exi")  # type: ignore[return-value]


def test_sniff_tells_exi_from_xml() -> None:
    assert sniff(b"\x80\x00\xf3") == "exi"
    assert sniff(b"<a/>") == "xml"
    assert sniff(b"\xef\xbb\xbf \n\t<?xml version='1.0'?><a/>") == "xml"
    # EXI with a cookie or options is not the V2G profile; neither is plain text
    assert sniff(b"$EXI\x80") is None and sniff(b"\xa0\x00") is None
    assert sniff(b"hello") is None and sniff(b"") is None


def test_xml_first_fixes_xml_for_the_session(xml: XmlCodec, exi: ExiCodec) -> None:
    auto = AutoCodec()
    assert auto.detected is None and auto.encoding == "exi"  # the fallback before any message
    assert auto.decode(0x8001, xml.encode(SAP)) == SAP
    assert auto.detected == "xml"
    assert auto.encode(SETUP) == xml.encode(SETUP)
    assert auto.canonicalization_uri == xml.canonicalization_uri != CANONICAL_EXI
    with pytest.raises(MalformedDocument, match="EXI document in a session that speaks XML"):
        auto.decode(0x8002, exi.encode(SETUP))
    assert auto.decode(0x8002, xml.encode(SETUP)) == SETUP  # the session goes on in XML


def test_exi_first_fixes_exi_for_the_session(xml: XmlCodec, exi: ExiCodec) -> None:
    auto = AutoCodec(fallback="xml")
    assert auto.encode(SETUP) == xml.encode(SETUP)  # fallback until the peer speaks
    assert auto.decode(0x8001, exi.encode(SAP)) == SAP
    assert auto.detected == "exi" and auto.canonicalization_uri == CANONICAL_EXI
    data = auto.encode(SETUP)
    assert data[:1] == b"\x80" and data == exi.encode(SETUP)
    with pytest.raises(MalformedDocument, match="XML document in a session that speaks EXI"):
        auto.decode(0x8002, xml.encode(SETUP))
    with pytest.raises(MalformedDocument):
        auto.parse(xml.encode(SETUP))  # no XML root lookups in an EXI session


def test_garbage_first_is_malformed_and_fixes_nothing(exi: ExiCodec) -> None:
    auto = AutoCodec()
    with pytest.raises(MalformedDocument, match="neither"):
        auto.decode(0x8002, b"\x00\x01\x02")
    assert auto.detected is None
    assert auto.decode(0x8002, exi.encode(SETUP)) == SETUP


def test_canonicalize_follows_the_detected_encoding(xml: XmlCodec, exi: ExiCodec) -> None:
    chain = ContractCertificateChain(
        certificate=b"\x30\x03\x02\x01\x01",
        sub_certificates=SubCertificates(certificate=[b"\x30\x03\x02\x01\x02"]),
    )
    fragment = PnC_AReqAuthorizationMode(
        id="id1", gen_challenge=bytes(16), contract_certificate_chain=chain
    )
    as_exi, as_xml = exi.canonicalize(fragment), xml.canonicalize(fragment)
    assert as_exi != as_xml
    auto = AutoCodec()
    assert auto.canonicalize(fragment) == as_exi  # fallback EXI
    auto.decode(0x8001, xml.encode(SAP))
    assert auto.canonicalize(fragment) == as_xml
    auto = AutoCodec(fallback="xml")
    auto.decode(0x8001, exi.encode(SAP))
    assert auto.canonicalize(fragment) == as_exi


def test_codec_for_the_command_line_choices(xml: XmlCodec, exi: ExiCodec) -> None:
    assert codec_for("xml") is xml and codec_for("exi") is exi  # shared per process
    first, second = codec_for("auto"), codec_for("auto")
    assert isinstance(first, AutoCodec) and first is not second  # one per connection
    assert exi.xml is xml  # the EXI codec maps messages with the same (compiled) XML codec
    with pytest.raises(ValueError, match="unknown encoding"):
        codec_for("json")
    with pytest.raises(ValueError):
        AutoCodec(fallback="auto")  # type: ignore[arg-type]


def test_xml_parse_is_offered_for_root_lookups(xml: XmlCodec) -> None:
    auto = AutoCodec()
    assert auto.parse(xml.encode(SETUP)).tag.endswith("}SessionSetupReq")


def test_render_uses_the_trees_of_recent_documents(exi: ExiCodec) -> None:
    from mcscomm.codec.auto import render_exi
    from mcscomm.exi import ExiError

    data = exi.encode(SETUP)
    assert render_exi(0x8002, data) == exi.to_xml(0x8002, data)  # remembered from the encode
    for i in range(40):  # push it out of the bounded memory: it is decoded again, same text
        exi.encode(SessionSetupReq(header=SETUP.header, evccid=f"WMCSTRUCK{i:09d}"))
    assert render_exi(0x8002, data) == exi.to_xml(0x8002, data)
    with pytest.raises(ExiError):
        render_exi(0x8002, b"\x80\xff\xff")
