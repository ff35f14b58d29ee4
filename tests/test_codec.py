"""XmlCodec: round trips for every message type, facets, hostile input, reference documents."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mcscomm.codec import (
    CodecError,
    HostileDocument,
    MalformedDocument,
    SchemaViolation,
    UnknownMessage,
    XmlCodec,
)
from mcscomm.codec.base import MESSAGE_CLASSES, PAYLOAD_MESSAGES
from mcscomm.messages import (
    AppProtocol,
    AuthorizationSetupRes,
    AuthorizationType,
    ContractCertificateChain,
    DC_ChargeLoopReq,
    DC_ChargeParameterDiscoveryReq,
    EIM_ASResAuthorizationMode,
    MessageHeader,
    MeteringConfirmationReq,
    PnC_AReqAuthorizationMode,
    Processing,
    RationalNumber,
    Reference,
    ResponseCode,
    Scheduled_DC_CLReqControlMode,
    Service,
    ServiceDiscoveryRes,
    ServiceList,
    SessionSetupReq,
    SessionSetupRes,
    Signature,
    SignedInfo,
    SubCertificates,
    SupportedAppProtocolReq,
)
from mcscomm.messages.examples import example
from mcscomm.messages.strategies import strategy_for
from mcscomm.v2gtp import PayloadType

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = SHARED / "exi-vectors" / "iso20_exi_vectors.json"
XML_DATA = Path(__file__).resolve().parent / "data" / "xml"

ALL_MESSAGES = sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)
HEADER = MessageHeader(session_id=bytes.fromhex("0102030405060708"), timestamp=1_700_000_000)


@pytest.fixture(scope="module")
def codec() -> XmlCodec:
    return XmlCodec()


def canonical_tree(data: bytes) -> Any:
    """A namespace-aware, prefix-independent view of a document for comparison (indentation
    between elements is ignored; text of leaf elements is compared exactly)."""

    def walk(e: etree._Element) -> Any:
        children = [walk(c) for c in e]
        text = (e.text or "").strip() if children else (e.text or "")
        return (e.tag, sorted(e.attrib.items()), text, children)

    return walk(etree.fromstring(data))


# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------


def test_every_payload_type_has_messages() -> None:
    assert set(PAYLOAD_MESSAGES) == {0x8001, 0x8002, 0x8004, 0x8102}
    assert len(ALL_MESSAGES) == 38


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
def test_example_round_trip(codec: XmlCodec, cls: type) -> None:
    msg = example(cls, with_signature=True)
    data = codec.encode(msg)  # type: ignore[arg-type]
    assert codec.decode(codec.payload_type_for(msg), data) == msg  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_property_round_trip(codec: XmlCodec, cls: type, data: st.DataObject) -> None:
    msg = data.draw(strategy_for(cls))
    encoded = codec.encode(msg)
    decoded = codec.decode(codec.payload_type_for(msg), encoded)
    assert decoded == msg
    # and the document is stable: encoding the decoded message gives the same bytes
    assert codec.encode(decoded) == encoded


def test_payload_types(codec: XmlCodec) -> None:
    assert codec.payload_type_for(example(SupportedAppProtocolReq)) == PayloadType.SAP
    assert codec.payload_type_for(example(SessionSetupReq)) == PayloadType.COMMON
    assert codec.payload_type_for(example(DC_ChargeLoopReq)) == PayloadType.DC
    assert (
        codec.payload_type_for(example(MeteringConfirmationReq))
        == PayloadType.METERING_CONFIRMATION
    )
    with pytest.raises(UnknownMessage):
        codec.payload_type_for(HEADER)  # type: ignore[arg-type]


def test_metering_confirmation_accepted_on_both_streams(codec: XmlCodec) -> None:
    msg = example(MeteringConfirmationReq)
    data = codec.encode(msg)
    assert codec.decode(0x8102, data) == msg
    assert codec.decode(0x8002, data) == msg


def test_root_not_allowed_on_payload_type(codec: XmlCodec) -> None:
    data = codec.encode(example(DC_ChargeLoopReq))
    with pytest.raises(UnknownMessage):
        codec.decode(PayloadType.COMMON, data)
    with pytest.raises(UnknownMessage):
        codec.decode(0x8102, codec.encode(example(SessionSetupReq)))
    with pytest.raises(UnknownMessage):
        codec.decode(0x9000, data)


def test_global_non_message_root_is_refused(codec: XmlCodec) -> None:
    # a Signature is a valid global element of the CommonMessages schema set, not a message
    sig = Signature(
        signed_info=SignedInfo(
            canonicalization_method="urn:x",
            signature_method="urn:y",
            references=[Reference(uri="#a", digest_method="urn:z", digest_value=b"d")],
        ),
        signature_value=b"x",
    )
    data = etree.tostring(codec.fragment_element(sig))
    with pytest.raises(UnknownMessage):
        codec.decode(PayloadType.COMMON, data)


def test_bpt_substitution_member_is_written_with_its_own_name(codec: XmlCodec) -> None:
    from mcscomm.messages import BPT_DC_CPDReqEnergyTransferMode

    msg = example(DC_ChargeParameterDiscoveryReq)
    msg.transfer_mode = example(BPT_DC_CPDReqEnergyTransferMode)
    data = codec.encode(msg)
    assert b"<dc:BPT_DC_CPDReqEnergyTransferMode>" in data
    back = codec.decode(PayloadType.DC, data)
    assert isinstance(back, DC_ChargeParameterDiscoveryReq)
    assert type(back.transfer_mode) is BPT_DC_CPDReqEnergyTransferMode


def test_namespaces_follow_the_declaring_schema(codec: XmlCodec) -> None:
    root = etree.fromstring(codec.encode(example(DC_ChargeLoopReq)))
    ct = "urn:iso:std:iso:15118:-20:CommonTypes"
    dc = "urn:iso:std:iso:15118:-20:DC"
    assert root.tag == f"{{{dc}}}DC_ChargeLoopReq"
    assert root[0].tag == f"{{{ct}}}Header"  # declared by V2GMessageType in CommonTypes
    assert root.find(f"{{{ct}}}MeterInfoRequested") is not None  # ChargeLoopReqType
    mode = root.find(f"{{{dc}}}Scheduled_DC_CLReqControlMode")
    assert mode is not None
    assert mode[0].tag == f"{{{ct}}}EVTargetEnergyRequest"  # Scheduled_CLReqControlModeType
    sap = etree.fromstring(codec.encode(example(SupportedAppProtocolReq)))
    assert sap[0].tag == "AppProtocol"  # AppProtocol schema: unqualified children


# --------------------------------------------------------------------------------------------
# facets: the codec refuses to encode out-of-range values, naming where
# --------------------------------------------------------------------------------------------


def _loop_with_current(value: int, exponent: int = 0) -> DC_ChargeLoopReq:
    msg = example(DC_ChargeLoopReq)
    mode = example(Scheduled_DC_CLReqControlMode)
    mode.ev_target_current = RationalNumber(value, exponent)
    msg.control_mode = mode
    return msg


@pytest.mark.parametrize(
    ("make", "where"),
    [
        # xs:short range (RationalNumber.Value)
        (lambda: _loop_with_current(40000), "Value"),
        # xs:byte range (RationalNumber.Exponent)
        (lambda: _loop_with_current(1, -129), "Exponent"),
        # hexBinary length 8 (SessionID)
        (
            lambda: SessionSetupReq(
                header=MessageHeader(session_id=b"1234567", timestamp=1), evccid="x"
            ),
            "SessionID",
        ),
        # maxLength 255 (identifierType)
        (lambda: SessionSetupReq(header=HEADER, evccid="E" * 256), "EVCCID"),
        # enumeration
        (
            lambda: SessionSetupRes(header=HEADER, response_code="OK_Nope", evseid="x"),  # type: ignore[arg-type]
            "ResponseCode",
        ),
        # xs:unsignedLong lower bound
        (
            lambda: SessionSetupReq(
                header=MessageHeader(session_id=bytes(8), timestamp=-1), evccid="x"
            ),
            "TimeStamp",
        ),
        # minInclusive/maxInclusive of a restricted type (priorityType 1..20)
        (
            lambda: SupportedAppProtocolReq(
                app_protocol=[
                    AppProtocol(
                        protocol_namespace="urn:x",
                        version_number_major=1,
                        version_number_minor=0,
                        schema_id=1,
                        priority=0,
                    )
                ]
            ),
            "Priority",
        ),
        # base64Binary length 16 (genChallengeType)
        (
            lambda: PnC_message(gen_challenge=bytes(15)),
            "GenChallenge",
        ),
        # base64Binary maxLength (certificateType 1600)
        (
            lambda: PnC_message(certificate=bytes(1601)),
            "Certificate",
        ),
        # maxOccurs (AuthorizationServices <= 2)
        (
            lambda: AuthorizationSetupRes(
                header=HEADER,
                response_code=ResponseCode.OK,
                authorization_services=[AuthorizationType.EIM] * 3,
                certificate_installation_service=False,
                authorization_mode=EIM_ASResAuthorizationMode(),
            ),
            "AuthorizationServices",
        ),
        # maxOccurs (SubCertificates <= 3)
        (lambda: PnC_message(sub_certificates=[b"a"] * 4), "Certificate"),
        # minOccurs (ServiceList needs one Service)
        (
            lambda: ServiceDiscoveryRes(
                header=HEADER,
                response_code=ResponseCode.OK,
                service_renegotiation_supported=False,
                energy_transfer_service_list=ServiceList(service=[]),
            ),
            "service",
        ),
        # required element missing (None)
        (lambda: SessionSetupReq(header=HEADER, evccid=None), "evccid"),  # type: ignore[arg-type]
        # wrong Python type
        (lambda: SessionSetupReq(header=HEADER, evccid=5), "evccid"),  # type: ignore[arg-type]
        # xs:ID lexical space (NCName)
        (lambda: PnC_message(id="1 not a name"), "Id"),
    ],
)
def test_facet_violations_raise_schema_violation_with_path(
    codec: XmlCodec, make: Any, where: str
) -> None:
    with pytest.raises(SchemaViolation) as info:
        codec.encode(make())
    assert where in str(info.value)
    assert info.value.path  # names the element / field


def PnC_message(
    *,
    gen_challenge: bytes = bytes(16),
    certificate: bytes = b"leaf",
    sub_certificates: list[bytes] | None = None,
    id: str = "id1",
) -> Any:
    from mcscomm.messages import AuthorizationReq

    return AuthorizationReq(
        header=HEADER,
        selected_authorization_service=AuthorizationType.PNC,
        authorization_mode=PnC_AReqAuthorizationMode(
            id=id,
            gen_challenge=gen_challenge,
            contract_certificate_chain=ContractCertificateChain(
                certificate=certificate,
                sub_certificates=SubCertificates(certificate=sub_certificates or [b"sub"]),
            ),
        ),
    )


def test_choice_member_of_wrong_type_is_refused(codec: XmlCodec) -> None:
    msg = example(DC_ChargeLoopReq)
    msg.control_mode = Service(service_id=1, free_service=True)  # type: ignore[assignment]
    with pytest.raises(SchemaViolation) as info:
        codec.encode(msg)
    assert "control_mode" in str(info.value)


def test_decode_refuses_schema_invalid_document(codec: XmlCodec) -> None:
    data = codec.encode(SessionSetupReq(header=HEADER, evccid="ok"))
    bad = data.replace(b"0102030405060708", b"01020304050607")
    with pytest.raises(SchemaViolation) as info:
        codec.decode(PayloadType.COMMON, bad)
    assert "SessionID" in str(info.value)
    reordered = codec.encode(example(DC_ChargeLoopReq)).replace(b"ct:Header", b"ct:Headr")
    with pytest.raises(SchemaViolation):
        codec.decode(PayloadType.DC, reordered)


# --------------------------------------------------------------------------------------------
# hostile and malformed documents
# --------------------------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<ns:SessionSetupReq xmlns:ns="urn:iso:std:iso:15118:-20:CommonMessages">&x;</ns:SessionSetupReq>"""

LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']><ns:SessionSetupReq xmlns:ns="urn:iso:std:iso:15118:-20:CommonMessages">&lol9;'
    b"</ns:SessionSetupReq>"
)


def _deep(n: int) -> bytes:
    return b"<a>" * n + b"</a>" * n


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("xxe", XXE, HostileDocument),
        ("billion-laughs", LAUGHS, HostileDocument),
        ("deep-nesting", _deep(10_000), HostileDocument),
        ("huge-text", b"<a>" + b"x" * 50_000_000 + b"</a>", HostileDocument),
        ("invalid-utf8", b"<a>\xff\xfe\xfa</a>", MalformedDocument),
        ("utf16-declared", b'<?xml version="1.0" encoding="UTF-16"?><a/>', CodecError),
        ("not-xml", b"\x80\x00\x01 EXI?", MalformedDocument),
        ("empty", b"", MalformedDocument),
        ("truncated", b"<ns:SessionSetupReq xmlns:ns='x'><ns:A>", MalformedDocument),
        (
            "external-schema-location",
            b"<a xmlns:xi='http://www.w3.org/2001/XInclude'>"
            b"<xi:include href='file:///etc/passwd'/></a>",
            CodecError,
        ),
    ],
)
def test_hostile_documents_fail_fast(
    codec: XmlCodec, name: str, data: bytes, error: type[Exception]
) -> None:
    start = time.perf_counter()
    with pytest.raises(error):
        codec.decode(PayloadType.COMMON, data)
    # generous bound, only to catch runaway expansion (not a speed assertion)
    assert time.perf_counter() - start < 5


def test_hostile_is_a_malformed_is_a_codec_error() -> None:
    assert issubclass(HostileDocument, MalformedDocument)
    assert issubclass(MalformedDocument, CodecError)
    assert issubclass(SchemaViolation, CodecError)


def test_max_bytes_is_configurable() -> None:
    small = XmlCodec(max_bytes=64)
    data = XmlCodec().encode(SessionSetupReq(header=HEADER, evccid="x" * 100))
    with pytest.raises(HostileDocument):
        small.decode(PayloadType.COMMON, data)


def test_comments_and_processing_instructions_are_ignored(codec: XmlCodec) -> None:
    data = codec.encode(SessionSetupReq(header=HEADER, evccid="abc"))
    i = data.index(b"<ns:EVCCID>")
    noisy = data[:i] + b"<!-- hi --><?pi x?>" + data[i:]
    assert codec.decode(PayloadType.COMMON, noisy) == SessionSetupReq(header=HEADER, evccid="abc")


# --------------------------------------------------------------------------------------------
# canonicalization (for XML signatures)
# --------------------------------------------------------------------------------------------


def test_canonicalize_is_exclusive_c14n_of_the_fragment(codec: XmlCodec) -> None:
    msg = PnC_message()
    part = msg.authorization_mode
    c14n = codec.canonicalize(part)
    assert c14n.startswith(b"<ns:PnC_AReqAuthorizationMode xmlns:ns=")
    assert b'ns:Id="id1"' in c14n
    assert b"xmlns:dc" not in c14n and b"xmlns:xmlsig" not in c14n  # only used namespaces
    # the same bytes as the element inside the encoded message, canonicalized there
    root = etree.fromstring(codec.encode(msg))
    inner = root.find("{urn:iso:std:iso:15118:-20:CommonMessages}PnC_AReqAuthorizationMode")
    assert etree.tostring(inner, method="c14n", exclusive=True) == c14n
    assert codec.canonicalization_uri == "http://www.w3.org/2001/10/xml-exc-c14n#"


def test_canonicalize_signed_info(codec: XmlCodec) -> None:
    si = SignedInfo(
        canonicalization_method=codec.canonicalization_uri,
        signature_method="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
        references=[
            Reference(
                uri="#id1",
                digest_method="http://www.w3.org/2001/04/xmlenc#sha512",
                digest_value=b"\x01" * 64,
                transforms=[codec.canonicalization_uri],
            )
        ],
    )
    c14n = codec.canonicalize(si)
    assert c14n.startswith(b'<xmlsig:SignedInfo xmlns:xmlsig="http://www.w3.org/2000/09/xmldsig#">')
    assert b'URI="#id1"' in c14n
    assert c14n.index(b"Transforms") < c14n.index(b"DigestMethod")
    assert codec.canonicalize(si) == c14n  # deterministic


def test_signed_header_round_trip(codec: XmlCodec) -> None:
    msg = PnC_message()
    msg.header = MessageHeader(
        session_id=bytes(8),
        timestamp=1,
        signature=Signature(
            signed_info=SignedInfo(
                canonicalization_method=codec.canonicalization_uri,
                signature_method="urn:iso:std:iso:15118:-20:Security:xmldsig#Ed448",
                references=[
                    Reference(uri="#id1", digest_method="urn:x:sha", digest_value=b"d" * 64)
                ],
            ),
            signature_value=b"s" * 114,
        ),
    )
    data = codec.encode(msg)
    assert b"<xmlsig:Signature>" in data
    assert codec.decode(PayloadType.COMMON, data) == msg


# --------------------------------------------------------------------------------------------
# reference documents
# --------------------------------------------------------------------------------------------


def _vectors() -> list[dict[str, Any]]:
    if not VECTORS.is_file():
        return []
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    return [v for v in vectors if v["schema"] != "AC" and v["verification"].get("xsd_valid")]


@pytest.mark.skipif(not VECTORS.is_file(), reason=f"{VECTORS} not present")
@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_reference_vector_documents_round_trip(codec: XmlCodec, vector: dict[str, Any]) -> None:
    original = vector["document"].encode()
    msg = codec.decode(vector["v2gtp_payload_type"], original)
    assert type(msg).__name__.lower() == vector["message"].lower()
    assert canonical_tree(codec.encode(msg)) == canonical_tree(original)


@pytest.mark.skipif(not VECTORS.is_file(), reason=f"{VECTORS} not present")
def test_known_vector_values(codec: XmlCodec) -> None:
    by_name = {v["name"]: v for v in _vectors()}
    v = by_name["DC_ChargeLoopReq_Scheduled"]
    msg = codec.decode(v["v2gtp_payload_type"], v["document"].encode())
    assert isinstance(msg, DC_ChargeLoopReq)
    assert isinstance(msg.control_mode, Scheduled_DC_CLReqControlMode)
    assert len(msg.header.session_id) == 8
    v = by_name["AuthorizationRes_Finished"]
    res = codec.decode(v["v2gtp_payload_type"], v["document"].encode())
    assert getattr(res, "evse_processing", None) is Processing.FINISHED


def _xml_files() -> list[Path]:
    return sorted(XML_DATA.glob("*.xml")) if XML_DATA.is_dir() else []


@pytest.mark.skipif(not _xml_files(), reason=f"no documents in {XML_DATA}")
@pytest.mark.parametrize("path", _xml_files(), ids=lambda p: p.name)
def test_schema_helper_documents_round_trip(codec: XmlCodec, path: Path) -> None:
    original = path.read_bytes().strip()
    msg = codec.decode_any(original)
    assert canonical_tree(codec.encode(msg)) == canonical_tree(original)
