"""-20 XML signatures: every signed part, both families, tampering in each region, chains."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, cast

import pki_fixtures
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mcscomm.codec import XmlCodec
from mcscomm.messages import (
    AbsolutePriceSchedule,
    AuthorizationReq,
    CertificateChain,
    CertificateInstallationReq,
    CertificateInstallationRes,
    ContractCertificateChain,
    Dynamic_SMDTControlMode,
    MeteringConfirmationReq,
    PnC_AReqAuthorizationMode,
    PriceLevelSchedule,
    PriceLevelScheduleEntry,
    PriceLevelScheduleEntryList,
    PriceRule,
    PriceRuleStack,
    PriceRuleStackList,
)
from mcscomm.messages.common_messages import (
    SignedCertificateChain,
    SignedInstallationData,
    SignedMeteringData,
    SubCertificates,
)
from mcscomm.messages.common_types import ListOfRootCertificateIDs, MessageHeader, MeterInfo
from mcscomm.messages.enums import AuthorizationType, EcdhCurve, Processing, ResponseCode
from mcscomm.messages.rational import RationalNumber
from mcscomm.messages.xmldsig import (
    C14N_EXI,
    ECDSA_SHA512,
    ED448,
    SHA512,
    SHAKE256,
    Signature,
    X509IssuerSerial,
)
from mcscomm.security import pki, xmldsig
from mcscomm.security.chain import verify_chain
from mcscomm.security.errors import (
    BadSignature,
    ChainNotYetValid,
    DigestMismatch,
    ExpiredChain,
    SignatureError,
    UnknownReference,
    UntrustedChain,
    WrongAlgorithm,
)

FAMILIES: tuple[pki.Algorithm, ...] = pki.ALGORITHMS
CODEC = XmlCodec()
NS_DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> pki_fixtures.PkiFactory:
    return pki_fixtures.factory(tmp_path_factory)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def header() -> MessageHeader:
    return MessageHeader(session_id=bytes.fromhex("0102030405060708"), timestamp=1_790_000_000)


def contract_chain(m: pki.Manifest) -> ContractCertificateChain:
    leaf, *subs = m.chain("contract_leaf")
    return ContractCertificateChain(
        certificate=der(leaf), sub_certificates=SubCertificates(certificate=[der(c) for c in subs])
    )


# --- the signed parts: (message or None, the part, signer role, trust root role) -----------------


@dataclasses.dataclass
class Case:
    message: Any  # a whole message carrying the part (None: the part alone)
    part: Any
    signer: str  # manifest role, or "mo_sub_ca2" for price schedules
    root: str
    content_tag: str  # an element inside the part whose text we tamper with


def auth_req(m: pki.Manifest) -> Case:
    part = PnC_AReqAuthorizationMode(
        id="pnc1", gen_challenge=bytes(range(16)), contract_certificate_chain=contract_chain(m)
    )
    msg = AuthorizationReq(
        header=header(),
        selected_authorization_service=AuthorizationType.PNC,
        authorization_mode=part,
    )
    return Case(msg, part, "contract_leaf", "mo_root", "GenChallenge")


def metering_req(m: pki.Manifest) -> Case:
    part = SignedMeteringData(
        id="smd1",
        session_id=bytes.fromhex("0102030405060708"),
        meter_info=MeterInfo(meter_id="MCSMETER01", charged_energy_reading_wh=987654321),
        control_mode=Dynamic_SMDTControlMode(),
    )
    msg = MeteringConfirmationReq(header=header(), signed_metering_data=part)
    return Case(msg, part, "contract_leaf", "mo_root", "ChargedEnergyReadingWh")


def cert_install_req(m: pki.Manifest) -> Case:
    leaf, *subs = m.chain("oem_prov_leaf")
    part = SignedCertificateChain(
        id="oem1",
        certificate=der(leaf),
        sub_certificates=SubCertificates(certificate=[der(c) for c in subs]),
    )
    root = m.certificate("v2g_root")
    msg = CertificateInstallationReq(
        header=header(),
        oem_provisioning_certificate_chain=part,
        list_of_root_certificate_ids=ListOfRootCertificateIDs(
            root_certificate_id=[
                X509IssuerSerial(
                    x509_issuer_name=root.issuer.rfc4514_string(),
                    x509_serial_number=root.serial_number,
                )
            ]
        ),
        maximum_contract_certificate_chains=1,
    )
    return Case(msg, part, "oem_prov_leaf", "oem_root", "Certificate")


def cert_install_res(m: pki.Manifest) -> Case:
    leaf, *subs = m.chain("cps_leaf")
    part = SignedInstallationData(
        id="sid1",
        contract_certificate_chain=contract_chain(m),
        ecdh_curve=EcdhCurve.SECP521,
        dh_public_key=bytes(range(133)),
        secp521_encrypted_private_key=bytes(range(94)),
    )
    msg = CertificateInstallationRes(
        header=header(),
        response_code=ResponseCode.OK,
        evse_processing=Processing.FINISHED,
        cps_certificate_chain=CertificateChain(
            certificate=der(leaf),
            sub_certificates=SubCertificates(certificate=[der(c) for c in subs]),
        ),
        signed_installation_data=part,
        remaining_contract_certificate_chains=0,
    )
    return Case(msg, part, "cps_leaf", "v2g_root", "DHPublicKey")


def absolute_price_schedule(m: pki.Manifest) -> Case:
    part = AbsolutePriceSchedule(
        id="aps1",
        time_anchor=1_790_000_000,
        price_schedule_id=1,
        currency="EUR",
        language="ENG",
        price_algorithm="urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power",
        price_rule_stacks=PriceRuleStackList(
            price_rule_stack=[
                PriceRuleStack(
                    duration=0,
                    price_rule=[
                        PriceRule(
                            energy_fee=RationalNumber(39, -2),
                            power_range_start=RationalNumber(0, 0),
                        )
                    ],
                )
            ]
        ),
    )
    return Case(None, part, "mo_sub_ca2", "mo_root", "EnergyFee")


def price_level_schedule(m: pki.Manifest) -> Case:
    part = PriceLevelSchedule(
        id="pls1",
        time_anchor=1_790_000_000,
        price_schedule_id=2,
        number_of_price_levels=3,
        price_level_schedule_entries=PriceLevelScheduleEntryList(
            price_level_schedule_entry=[PriceLevelScheduleEntry(duration=3600, price_level=2)]
        ),
    )
    return Case(None, part, "mo_sub_ca2", "mo_root", "PriceLevel")


CASES: dict[str, Callable[[pki.Manifest], Case]] = {
    "PnC_AReqAuthorizationMode": auth_req,
    "SignedMeteringData": metering_req,
    "OEMProvisioningCertificateChain": cert_install_req,
    "SignedInstallationData": cert_install_res,
    "AbsolutePriceSchedule": absolute_price_schedule,
    "PriceLevelSchedule": price_level_schedule,
}


def signer(m: pki.Manifest, case: Case) -> tuple[Any, list[x509.Certificate]]:
    if case.signer == "mo_sub_ca2":
        return m.extra_key("mo_sub_ca2"), m.chain("contract_leaf")[1:]
    return m.private_key(case.signer), m.chain(case.signer)


def signed(m: pki.Manifest, name: str) -> tuple[Case, Signature, list[x509.Certificate]]:
    case = CASES[name](m)
    key, chain = signer(m, case)
    signature = xmldsig.sign([case.part], key, CODEC)
    if case.message is not None:
        case.message.header.signature = signature
    return case, signature, chain


def check(
    m: pki.Manifest,
    case: Case,
    signature: Signature | None,
    chain: list[x509.Certificate],
    parts: dict[str, object] | None = None,
) -> None:
    xmldsig.verify(
        signature,
        parts if parts is not None else {case.part.id: case.part},
        chain,
        m.certificate(case.root),
        CODEC,
    )


# --- valid signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", CASES)
def test_valid_signature_verifies_after_a_round_trip_through_the_codec(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, name: str
) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, name)
    info = signature.signed_info
    assert info.signature_method == {"secp521r1": ECDSA_SHA512, "ed448": ED448}[family]
    assert info.canonicalization_method == CODEC.canonicalization_uri
    (ref,) = info.references
    assert ref.uri == f"#{case.part.id}"
    assert ref.digest_method == {"secp521r1": SHA512, "ed448": SHAKE256}[family]
    assert ref.transforms == [CODEC.canonicalization_uri]
    assert len(ref.digest_value) == 64
    assert len(signature.signature_value) == {"secp521r1": 132, "ed448": 114}[family]
    check(m, case, signature, chain)
    if case.message is not None:
        xml = CODEC.encode(case.message)
        assert b"KeyInfo" not in xml and b"Object" not in xml
        received: Any = CODEC.decode(CODEC.payload_type_for(case.message), xml)
        parts = xmldsig.signable_parts(received)
        assert list(parts) == [case.part.id]
        check(m, case, received.header.signature, chain, parts)


@pytest.mark.parametrize("family", FAMILIES)
def test_digest_and_signature_encodings_are_the_profile(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm
) -> None:
    """Independent recomputation with hashlib and cryptography's own verify."""
    m = pkis(family, "good")
    case, signature, chain = signed(m, "SignedMeteringData")
    canonical = CODEC.canonicalize(case.part)
    expected = (
        hashlib.sha512(canonical).digest()
        if family == "secp521r1"
        else hashlib.shake_256(canonical).digest(64)
    )
    assert signature.signed_info.references[0].digest_value == expected
    signed_info = CODEC.canonicalize(signature.signed_info)
    public = chain[0].public_key()
    value = signature.signature_value
    if family == "secp521r1":
        assert isinstance(public, ec.EllipticCurvePublicKey)
        r, s = int.from_bytes(value[:66], "big"), int.from_bytes(value[66:], "big")
        public.verify(encode_dss_signature(r, s), signed_info, ec.ECDSA(hashes.SHA512()))
    else:
        assert isinstance(public, ed448.Ed448PublicKey)
        public.verify(value, signed_info)


# --- tampering in each region, through the XML as received ---------------------------------------


def flip(text: str) -> str:
    """Change one character in the middle, keeping the lexical type (digits / base64 / text)."""
    i = len(text) // 2
    c = text[i]
    if text.isdigit():
        repl = str((int(c) + 1) % 10)
        if i == 0 and repl == "0" and len(text) > 1:
            repl = "9"
    else:
        repl = "B" if c == "A" else "A"
    return text[:i] + repl + text[i + 1 :]


def tamper_xml(xml: bytes, region: str, case: Case) -> bytes:
    root = etree.fromstring(xml)
    if region == "content":
        part = cast(list[Any], root.xpath("//*[@*[local-name()='Id']=$id]", id=case.part.id))[0]
        target = next(e for e in part.iter() if etree.QName(e).localname == case.content_tag)
    elif region == "signed_info":
        target = root.find(f".//{{{NS_DS}}}SignedInfo//{{{NS_DS}}}DigestValue")
    else:
        target = root.find(f".//{{{NS_DS}}}SignatureValue")
    assert target is not None and target.text
    target.text = flip(target.text.strip())
    return etree.tostring(root)


MESSAGE_CASES = [n for n in CASES if n not in ("AbsolutePriceSchedule", "PriceLevelSchedule")]
REGIONS = {"content": DigestMismatch, "signed_info": BadSignature, "signature_value": BadSignature}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", MESSAGE_CASES)
@pytest.mark.parametrize("region", REGIONS)
def test_tampered_messages_are_rejected(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, name: str, region: str
) -> None:
    m = pkis(family, "good")
    case, _, chain = signed(m, name)
    xml = CODEC.encode(case.message)
    tampered = tamper_xml(xml, region, case)
    assert tampered != etree.tostring(etree.fromstring(xml))
    received: Any = CODEC.decode(CODEC.payload_type_for(case.message), tampered)
    with pytest.raises(REGIONS[region]):
        check(m, case, received.header.signature, chain, xmldsig.signable_parts(received))


def _flip_bytes(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["AbsolutePriceSchedule", "PriceLevelSchedule"])
@pytest.mark.parametrize("region", REGIONS)
def test_tampered_price_schedules_are_rejected(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, name: str, region: str
) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, name)
    signature = copy.deepcopy(signature)
    part = copy.deepcopy(case.part)
    if region == "content":
        if name == "AbsolutePriceSchedule":
            part.price_rule_stacks.price_rule_stack[0].price_rule[0].energy_fee = RationalNumber(
                38, -2
            )
        else:
            part.price_level_schedule_entries.price_level_schedule_entry[0].price_level = 3
    elif region == "signed_info":
        ref = signature.signed_info.references[0]
        ref.digest_value = _flip_bytes(ref.digest_value)
    else:
        signature.signature_value = _flip_bytes(signature.signature_value)
    with pytest.raises(REGIONS[region]):
        check(m, case, signature, chain, {part.id: part})


# --- algorithm, structure and reference errors ---------------------------------------------------


def _edit(signature: Signature, **changes: Any) -> Signature:
    sig = copy.deepcopy(signature)
    for key, value in changes.items():
        if key in ("canonicalization_method", "signature_method"):
            setattr(sig.signed_info, key, value)
        else:
            setattr(sig.signed_info.references[0], key, value)
    return sig


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"signature_method": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"},
            WrongAlgorithm,
        ),
        ({"digest_method": "http://www.w3.org/2001/04/xmlenc#sha256"}, WrongAlgorithm),
        ({"canonicalization_method": C14N_EXI}, WrongAlgorithm),
        ({"transforms": []}, WrongAlgorithm),
        ({"transforms": [C14N_EXI]}, WrongAlgorithm),
        ({"uri": "#nobody"}, UnknownReference),
        ({"uri": "pnc1"}, UnknownReference),
    ],
)
def test_structure_errors(
    pkis: pki_fixtures.PkiFactory,
    family: pki.Algorithm,
    changes: dict[str, Any],
    error: type[SignatureError],
) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, "PnC_AReqAuthorizationMode")
    with pytest.raises(error):
        check(m, case, _edit(signature, **changes), chain)


def test_signature_method_of_the_other_family_is_wrong_algorithm(
    pkis: pki_fixtures.PkiFactory,
) -> None:
    ec_pki, ed_pki = pkis("secp521r1", "good"), pkis("ed448", "good")
    case, signature, _ = signed(ec_pki, "SignedMeteringData")
    with pytest.raises(WrongAlgorithm, match="ed448"):
        check(ed_pki, case, signature, ed_pki.chain("contract_leaf"))


def test_reference_sets_must_match(pkis: pki_fixtures.PkiFactory) -> None:
    m = pkis("ed448", "good")
    case, signature, chain = signed(m, "SignedMeteringData")
    other = metering_req(m).part
    other.id = "smd2"
    with pytest.raises(UnknownReference, match="without Reference"):
        check(m, case, signature, chain, {case.part.id: case.part, "smd2": other})
    doubled = copy.deepcopy(signature)
    doubled.signed_info.references.append(copy.deepcopy(doubled.signed_info.references[0]))
    with pytest.raises(UnknownReference, match="twice"):
        check(m, case, doubled, chain)
    with pytest.raises(UnknownReference):
        xmldsig.sign([case.part, case.part], m.private_key("contract_leaf"), CODEC)


def test_several_references_and_a_missing_signature(pkis: pki_fixtures.PkiFactory) -> None:
    m = pkis("secp521r1", "good")
    a = absolute_price_schedule(m).part
    b = price_level_schedule(m).part
    key, chain = m.extra_key("mo_sub_ca2"), m.chain("contract_leaf")[1:]
    signature = xmldsig.sign([a, b], key, CODEC)
    assert [r.uri for r in signature.signed_info.references] == ["#aps1", "#pls1"]
    root = m.certificate("mo_root")
    xmldsig.verify(signature, {"aps1": a, "pls1": b}, chain, root, CODEC)
    b.number_of_price_levels = 4
    with pytest.raises(DigestMismatch, match="pls1"):
        xmldsig.verify(signature, {"aps1": a, "pls1": b}, chain, root, CODEC)
    with pytest.raises(BadSignature, match="no Signature"):
        xmldsig.verify(None, {"aps1": a}, chain, root, CODEC)


@pytest.mark.parametrize("family", FAMILIES)
def test_truncated_signature_value(pkis: pki_fixtures.PkiFactory, family: pki.Algorithm) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, "SignedInstallationData")
    short = copy.deepcopy(signature)
    short.signature_value = short.signature_value[:-1]
    with pytest.raises(BadSignature, match="bytes"):
        check(m, case, short, chain)


def test_p256_signer_is_wrong_algorithm(pkis: pki_fixtures.PkiFactory) -> None:
    m = pkis("secp521r1", "good")
    case = auth_req(m)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "P256")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    signature = xmldsig.sign([case.part], m.private_key("contract_leaf"), CODEC)
    with pytest.raises(WrongAlgorithm, match="not secp521r1 or Ed448"):
        check(m, case, signature, [cert])


def test_codec_interface_is_all_signatures_need(pkis: pki_fixtures.PkiFactory) -> None:
    """Another canonicalisation (a stand-in for the EXI codec) plugs in without changes."""

    class FakeExi:
        canonicalization_uri = C14N_EXI

        def canonicalize(self, fragment: object) -> bytes:
            return b"exi:" + CODEC.canonicalize(fragment)[::-1]

    m = pkis("ed448", "good")
    case = metering_req(m)
    signature = xmldsig.sign([case.part], m.private_key("contract_leaf"), FakeExi())
    assert signature.signed_info.canonicalization_method == C14N_EXI
    chain, root = m.chain("contract_leaf"), m.certificate("mo_root")
    xmldsig.verify(signature, {case.part.id: case.part}, chain, root, FakeExi())
    with pytest.raises(WrongAlgorithm):
        xmldsig.verify(signature, {case.part.id: case.part}, chain, root, CODEC)


# --- the signer's chain --------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", CASES)
def test_chain_to_an_unknown_root(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, name: str
) -> None:
    good, other = pkis(family, "good"), pkis(family, "other")
    case, signature, _ = signed(other, name)
    _, chain = signer(other, case)
    with pytest.raises(UntrustedChain):
        check(good, case, signature, chain)  # same names, but other keys


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", ["expired", "future"])
@pytest.mark.parametrize("name", MESSAGE_CASES)
def test_expired_and_not_yet_valid_signers(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, variant: str, name: str
) -> None:
    m = pkis(family, variant)
    case, signature, chain = signed(m, name)
    with pytest.raises(ExpiredChain, match="expired" if variant == "expired" else "not valid") as e:
        check(m, case, signature, chain)
    assert isinstance(e.value, ChainNotYetValid) == (variant == "future")


@pytest.mark.parametrize("family", FAMILIES)
def test_chain_checked_at_the_given_time(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm
) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, "PnC_AReqAuthorizationMode")
    root = m.certificate("mo_root")
    parts = {case.part.id: case.part}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    with pytest.raises(ExpiredChain):
        xmldsig.verify(signature, parts, chain, root, CODEC, later)
    with pytest.raises(ExpiredChain):
        xmldsig.verify(signature, parts, chain, root, CODEC, later.timestamp())
    xmldsig.verify(
        signature,
        parts,
        [der(c) for c in chain],
        root,
        CODEC,
        (later - dt.timedelta(days=400)).timestamp(),
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_root_and_broken_chains(pkis: pki_fixtures.PkiFactory, family: pki.Algorithm) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, "PnC_AReqAuthorizationMode")
    mo_root, v2g_root = m.certificate("mo_root"), m.certificate("v2g_root")
    parts = {case.part.id: case.part}
    with pytest.raises(UntrustedChain):  # contract chain against the V2G root
        xmldsig.verify(signature, parts, chain, v2g_root, CODEC)
    with pytest.raises(UntrustedChain):  # Sub-CA 2 missing
        xmldsig.verify(signature, parts, [chain[0], chain[2]], mo_root, CODEC)
    with pytest.raises(UntrustedChain):  # wrong order
        xmldsig.verify(signature, parts, [chain[0], chain[2], chain[1]], mo_root, CODEC)
    with pytest.raises(UntrustedChain, match="unparseable"):
        xmldsig.verify(signature, parts, [b"\x30\x03junk"], mo_root, CODEC)
    xmldsig.verify(signature, parts, [*chain, mo_root], mo_root, CODEC)  # root included: fine


def _issue_under(
    m: pki.Manifest,
    issuer_cert: x509.Certificate,
    issuer_key: Any,
    cn: str,
    spec: dict[str, Any],
) -> tuple[x509.Certificate, Any]:
    key = pki.generate_key(m.algorithm)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    cert = pki._issue(
        spec,
        name,
        key,
        (issuer_cert.subject, issuer_key),
        now - dt.timedelta(hours=1),
        now + dt.timedelta(days=1),
    )
    return cert, key


@pytest.mark.parametrize("family", FAMILIES)
def test_ca_constraints_are_enforced(pkis: pki_fixtures.PkiFactory, family: pki.Algorithm) -> None:
    m = pkis(family, "good")
    leaf, sub2, sub1 = m.chain("contract_leaf")
    root = m.certificate("mo_root")
    # a "certificate" issued by the contract leaf (CA:FALSE)
    fake, _ = _issue_under(m, leaf, m.private_key("contract_leaf"), "Fake", {})
    with pytest.raises(UntrustedChain, match="CA:FALSE"):
        verify_chain([fake, leaf, sub2, sub1], root)
    # a CA below Sub-CA 2, whose pathLenConstraint is 0
    ca3, ca3_key = _issue_under(m, sub2, m.extra_key("mo_sub_ca2"), "SubCA3", {"path_length": 0})
    deep, _ = _issue_under(m, ca3, ca3_key, "Deep", {})
    with pytest.raises(UntrustedChain, match="path length"):
        verify_chain([deep, ca3, sub2, sub1], root)
    verify_chain([leaf, sub2, sub1], root)


def test_sign_refuses_keys_outside_the_profile() -> None:
    from mcscomm.security.errors import PkiError

    fragment = dataclasses.make_dataclass("F", [("id", str)])(id="x")
    with pytest.raises(PkiError):
        p256: Any = ec.generate_private_key(ec.SECP256R1())
        xmldsig.sign([fragment], p256, CODEC)


@pytest.mark.parametrize("family", FAMILIES)
def test_check_signature_with_an_already_trusted_key(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm
) -> None:
    m, other = pkis(family, "good"), pkis(family, "other")
    case, signature, chain = signed(m, "SignedMeteringData")
    parts = {case.part.id: case.part}
    signer_key: Any = chain[0].public_key()
    xmldsig.check_signature(signature, parts, signer_key, CODEC)
    wrong_key: Any = other.certificate("contract_leaf").public_key()
    with pytest.raises(BadSignature):
        xmldsig.check_signature(signature, parts, wrong_key, CODEC)
    with pytest.raises(WrongAlgorithm):
        xmldsig.check_signature(
            signature,
            parts,
            ec.generate_private_key(ec.SECP384R1()).public_key(),
            CODEC,
        )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    family=st.sampled_from(FAMILIES),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
    reading=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_any_bit_flip_or_changed_reading_is_caught(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, position: int, bit: int, reading: int
) -> None:
    m = pkis(family, "good")
    case, signature, chain = signed(m, "SignedMeteringData")
    flipped = copy.deepcopy(signature)
    value = bytearray(flipped.signature_value)
    value[position % len(value)] ^= 1 << bit
    flipped.signature_value = bytes(value)
    with pytest.raises(BadSignature):
        check(m, case, flipped, chain)
    digest_flip = copy.deepcopy(signature)
    dv = bytearray(digest_flip.signed_info.references[0].digest_value)
    dv[position % len(dv)] ^= 1 << bit
    digest_flip.signed_info.references[0].digest_value = bytes(dv)
    with pytest.raises(BadSignature):  # SignedInfo is covered by the signature
        check(m, case, digest_flip, chain)
    part = copy.deepcopy(case.part)
    part.meter_info.charged_energy_reading_wh = reading
    if reading != case.part.meter_info.charged_energy_reading_wh:
        with pytest.raises(DigestMismatch):
            check(m, case, signature, chain, {part.id: part})
