"""Tests for the XSD files in ``schemas/`` and their loader ``mcscomm.codec.schemas``.

What is checked:
* every schema compiles with lxml through the hardened loader;
* the structure that the EXI encoding depends on (global elements, enumeration order,
  substitution groups, derivations) is as ISO 15118-20 has it;
* the shared EXI vectors' documents and our hand-written examples (``tests/data/xml``) validate,
  and together cover every message of a DC / DC_BPT / MCS / MCS_BPT session;
* each kind of facet and content-model rule rejects what it must and accepts its limits;
* ``schema_dir()`` / ``load_schema()`` locate, override, cache and refuse as documented;
* optionally (``MCSCOMM_ISO_SCHEMA_DIR``), our files equal the official ones component by
  component.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from mcscomm.codec import schemas as sch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "xml"
# The repository is cloned next to shared/ (CI and the lead's tree).
SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = SHARED / "exi-vectors" / "iso20_exi_vectors.json"

XS = "http://www.w3.org/2001/XMLSchema"
CM = "urn:iso:std:iso:15118:-20:CommonMessages"
CT = "urn:iso:std:iso:15118:-20:CommonTypes"
DC = "urn:iso:std:iso:15118:-20:DC"
APP = "urn:iso:15118:2:2010:AppProtocol"
DS = "http://www.w3.org/2000/09/xmldsig#"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _parse_file(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.parse(str(path), parser)


def _validate(root: etree._Element) -> tuple[bool, str]:
    """Validate ``root`` as received bytes would be: serialize and re-parse first (libxml2
    registers xs:ID values while parsing, so in-memory edits would escape the ID checks)."""
    schema = sch.schema_for_namespace(etree.QName(root).namespace or "")
    document = etree.fromstring(etree.tostring(root))
    ok = schema.validate(document)
    return ok, str(schema.error_log)


def _example(name: str) -> etree._Element:
    return _parse_file(DATA / f"{name}.xml").getroot()


def _find(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    assert found is not None, f"{path} not in {etree.QName(root).localname}"
    return found


def _b64(n: int) -> str:
    return base64.b64encode(bytes(range(256)) * (n // 256) + bytes(range(n % 256))).decode()


def _xsd_root(name: str) -> etree._Element:
    return _parse_file(sch.schema_dir() / name).getroot()


def _global_elements(file_name: str, folder: Path) -> set[tuple[str, str]]:
    """(namespace, name) of all global elements in the import closure of ``file_name``."""
    seen: set[str] = set()
    result: set[tuple[str, str]] = set()
    todo = [file_name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        root = _parse_file(folder / current).getroot()
        target = root.get("targetNamespace", "")
        for child in root:
            if child.tag == f"{{{XS}}}element":
                result.add((target, child.get("name", "")))
            elif child.tag in (f"{{{XS}}}import", f"{{{XS}}}include"):
                location = child.get("schemaLocation")
                if location:
                    todo.append(location)
    return result


def _enumeration(file_name: str, type_name: str) -> list[str]:
    root = _xsd_root(file_name)
    simple = root.find(f"{{{XS}}}simpleType[@name='{type_name}']")
    assert simple is not None, type_name
    return [e.get("value", "") for e in simple.iter(f"{{{XS}}}enumeration")]


# ---------------------------------------------------------------------------------------------
# compilation and structure
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sch.SCHEMA_FILES)
def test_every_schema_compiles(name: str) -> None:
    schema = sch.load_schema(name)
    assert isinstance(schema, etree.XMLSchema)


@pytest.mark.parametrize(
    ("file_name", "namespace"),
    [(f, ns) for ns, f in sch.NAMESPACE_SCHEMAS.items()],
)
def test_target_namespaces_and_form_defaults(file_name: str, namespace: str) -> None:
    root = _xsd_root(file_name)
    assert root.get("targetNamespace") == namespace
    if namespace.startswith("urn:iso:std:iso:15118:-20:"):
        # -20: local elements and attributes (Id, Name) are namespace-qualified.
        assert root.get("elementFormDefault") == "qualified"
        assert root.get("attributeFormDefault") == "qualified"
    elif namespace == APP:
        # AppProtocol sets neither: children of the two roots are unqualified.
        assert root.get("elementFormDefault") is None
        assert root.get("attributeFormDefault") is None
    else:
        assert root.get("elementFormDefault") == "qualified"
        assert root.get("attributeFormDefault") is None


@pytest.mark.parametrize(
    ("file_name", "count"),
    [(sch.COMMON_MESSAGES, 54), (sch.DC, 48), (sch.APP_PROTOCOL, 2)],
)
def test_global_element_count_of_schema_set(file_name: str, count: int) -> None:
    # The EXI document grammar indexes these (exi-vectors README §5): 54 / 48 -> 6 bits, 2 -> 2.
    assert len(_global_elements(file_name, sch.schema_dir())) == count


def test_global_elements_by_namespace() -> None:
    elements = _global_elements(sch.DC, sch.schema_dir()) | _global_elements(
        sch.COMMON_MESSAGES, sch.schema_dir()
    )
    by_ns: dict[str, set[str]] = {}
    for ns, name in elements:
        by_ns.setdefault(ns, set()).add(name)
    assert by_ns[CT] == {"CLReqControlMode", "CLResControlMode"}
    assert len(by_ns[DS]) == 24
    assert {"Signature", "SignedInfo", "Reference", "KeyInfo", "Object"} <= by_ns[DS]
    assert {"SignedInstallationData", "SignedMeteringData"} <= by_ns[CM]
    assert len(by_ns[CM]) == 28
    assert len(by_ns[DC]) == 22


# facts §4.2 (39 values, XSD order = EXI enumeration index)
RESPONSE_CODES = [
    "OK",
    "OK_CertificateExpiresSoon",
    "OK_NewSessionEstablished",
    "OK_OldSessionJoined",
    "OK_PowerToleranceConfirmed",
    "WARNING_AuthorizationSelectionInvalid",
    "WARNING_CertificateExpired",
    "WARNING_CertificateNotYetValid",
    "WARNING_CertificateRevoked",
    "WARNING_CertificateValidationError",
    "WARNING_ChallengeInvalid",
    "WARNING_EIMAuthorizationFailure",
    "WARNING_eMSPUnknown",
    "WARNING_EVPowerProfileViolation",
    "WARNING_GeneralPnCAuthorizationError",
    "WARNING_NoCertificateAvailable",
    "WARNING_NoContractMatchingPCIDFound",
    "WARNING_PowerToleranceNotConfirmed",
    "WARNING_ScheduleRenegotiationFailed",
    "WARNING_StandbyNotAllowed",
    "WARNING_WPT",
    "FAILED",
    "FAILED_AssociationError",
    "FAILED_ContactorError",
    "FAILED_EVPowerProfileInvalid",
    "FAILED_EVPowerProfileViolation",
    "FAILED_MeteringSignatureNotValid",
    "FAILED_NoEnergyTransferServiceSelected",
    "FAILED_NoServiceRenegotiationSupported",
    "FAILED_PauseNotAllowed",
    "FAILED_PowerDeliveryNotApplied",
    "FAILED_PowerToleranceNotConfirmed",
    "FAILED_ScheduleRenegotiation",
    "FAILED_ScheduleSelectionInvalid",
    "FAILED_SequenceError",
    "FAILED_ServiceIDInvalid",
    "FAILED_ServiceSelectionInvalid",
    "FAILED_SignatureError",
    "FAILED_UnknownSession",
    "FAILED_WrongChargeParameter",
]

ENUMERATIONS = [
    (sch.COMMON_TYPES, "responseCodeType", RESPONSE_CODES),
    (
        sch.COMMON_TYPES,
        "processingType",
        ["Finished", "Ongoing", "Ongoing_WaitingForCustomerInteraction"],
    ),
    (
        sch.COMMON_TYPES,
        "evseNotificationType",
        [
            "Pause",
            "ExitStandby",
            "Terminate",
            "ScheduleRenegotiation",
            "ServiceRenegotiation",
            "MeteringConfirmation",
        ],
    ),
    (
        sch.COMMON_MESSAGES,
        "chargeProgressType",
        ["Start", "Stop", "Standby", "ScheduleRenegotiation"],
    ),
    (sch.COMMON_MESSAGES, "channelSelectionType", ["Charge", "Discharge"]),
    (sch.COMMON_MESSAGES, "chargingSessionType", ["Pause", "Terminate", "ServiceRenegotiation"]),
    (sch.COMMON_MESSAGES, "authorizationType", ["EIM", "PnC"]),
    (
        sch.COMMON_MESSAGES,
        "powerToleranceAcceptanceType",
        ["PowerToleranceNotConfirmed", "PowerToleranceConfirmed"],
    ),
    (sch.COMMON_MESSAGES, "ecdhCurveType", ["SECP521", "X448"]),
    (sch.COMMON_MESSAGES, "evCheckInStatusType", ["CheckIn", "Processing", "Completed"]),
    (sch.COMMON_MESSAGES, "evCheckOutStatusType", ["CheckOut", "Processing", "Completed"]),
    (sch.COMMON_MESSAGES, "evseCheckOutStatusType", ["Scheduled", "Completed"]),
    (sch.COMMON_MESSAGES, "parkingMethodType", ["AutoParking", "MVGuideManual", "Manual"]),
    (
        sch.APP_PROTOCOL,
        "responseCodeType",
        [
            "OK_SuccessfulNegotiation",
            "OK_SuccessfulNegotiationWithMinorDeviation",
            "Failed_NoNegotiation",
        ],
    ),
]


@pytest.mark.parametrize(
    ("file_name", "type_name", "values"), ENUMERATIONS, ids=[e[1] for e in ENUMERATIONS]
)
def test_enumerations_in_iso_order(file_name: str, type_name: str, values: list[str]) -> None:
    assert _enumeration(file_name, type_name) == values


SUBSTITUTION_GROUPS = {
    "BPT_DC_CPDReqEnergyTransferMode": "DC_CPDReqEnergyTransferMode",
    "BPT_DC_CPDResEnergyTransferMode": "DC_CPDResEnergyTransferMode",
    "Scheduled_DC_CLReqControlMode": "v2gci_ct:CLReqControlMode",
    "Scheduled_DC_CLResControlMode": "v2gci_ct:CLResControlMode",
    "BPT_Scheduled_DC_CLReqControlMode": "Scheduled_DC_CLReqControlMode",
    "BPT_Scheduled_DC_CLResControlMode": "Scheduled_DC_CLResControlMode",
    "Dynamic_DC_CLReqControlMode": "v2gci_ct:CLReqControlMode",
    "Dynamic_DC_CLResControlMode": "v2gci_ct:CLResControlMode",
    "BPT_Dynamic_DC_CLReqControlMode": "Dynamic_DC_CLReqControlMode",
    "BPT_Dynamic_DC_CLResControlMode": "Dynamic_DC_CLResControlMode",
}


def test_dc_substitution_groups_and_extension_chain() -> None:
    root = _xsd_root(sch.DC)
    groups = {
        e.get("name"): e.get("substitutionGroup")
        for e in root.findall(f"{{{XS}}}element")
        if e.get("substitutionGroup")
    }
    assert groups == SUBSTITUTION_GROUPS
    # Each BPT type extends its DC counterpart (so a BPT element is a DC element plus fields).
    for member in SUBSTITUTION_GROUPS:
        if member.startswith("BPT_"):
            ext = root.find(
                f"{{{XS}}}complexType[@name='{member}Type']/{{{XS}}}complexContent/{{{XS}}}extension"
            )
            assert ext is not None and ext.get("base") == f"{member[4:]}Type"


BASES = {
    "Req": ("V2GRequestType", "ChargeParameterDiscoveryReqType", "ChargeLoopReqType"),
    "Res": ("V2GResponseType", "ChargeParameterDiscoveryResType", "ChargeLoopResType"),
}


def test_message_types_extend_request_and_response_bases() -> None:
    for file_name in (sch.COMMON_MESSAGES, sch.DC):
        root = _xsd_root(file_name)
        for element in root.findall(f"{{{XS}}}element"):
            name = element.get("name", "")
            if not name.endswith(("Req", "Res")):
                continue
            ext = root.find(
                f"{{{XS}}}complexType[@name='{name}Type']/{{{XS}}}complexContent/{{{XS}}}extension"
            )
            assert ext is not None, name
            base = ext.get("base", "")
            assert base.startswith("v2gci_ct:"), (name, base)
            assert base.removeprefix("v2gci_ct:") in BASES[name[-3:]], (name, base)
    # ... and those bases derive from V2GRequestType / V2GResponseType / V2GMessageType.
    ct = _xsd_root(sch.COMMON_TYPES)
    for kind, bases in BASES.items():
        for base in bases:
            ext = ct.find(
                f"{{{XS}}}complexType[@name='{base}']/{{{XS}}}complexContent/{{{XS}}}extension"
            )
            assert ext is not None, base
            expected = "V2GMessageType" if base.startswith("V2G") else BASES[kind][0]
            assert ext.get("base") == expected, (base, ext.get("base"))


# ---------------------------------------------------------------------------------------------
# valid documents: shared EXI vectors and hand-written examples
# ---------------------------------------------------------------------------------------------


def _vector_params() -> list[Any]:
    if not VECTORS.is_file():
        return [
            pytest.param(
                None,
                id="no-shared-vectors",
                marks=pytest.mark.skip(reason=f"shared EXI vectors not found at {VECTORS}"),
            )
        ]
    params = []
    for vector in json.loads(VECTORS.read_text(encoding="utf-8")):
        marks = []
        if vector["schema"] == "AC":
            marks.append(pytest.mark.skip(reason="AC namespace: mcscomm ships no AC schema"))
        params.append(pytest.param(vector, id=vector["name"], marks=marks))
    return params


@pytest.mark.parametrize("vector", _vector_params())
def test_exi_vector_document_validity(vector: dict[str, Any]) -> None:
    root = etree.fromstring(vector["document"].encode())
    ok, log = _validate(root)
    assert ok == vector["verification"]["xsd_valid"], log


def test_exi_vectors_count() -> None:
    if not VECTORS.is_file():
        pytest.skip(f"shared EXI vectors not found at {VECTORS}")
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    valid = [v for v in vectors if v["verification"]["xsd_valid"]]
    assert len(valid) == 52
    # 44 of them need no AC schema; the 45th non-AC vector is the invalid 1-byte SessionID one.
    assert len([v for v in valid if v["schema"] != "AC"]) == 44
    assert [v["name"] for v in vectors if not v["verification"]["xsd_valid"]] == [
        "SessionSetupReq_2024_1byteSessionID"
    ]


def test_one_byte_session_id_vector_is_rejected() -> None:
    if not VECTORS.is_file():
        pytest.skip(f"shared EXI vectors not found at {VECTORS}")
    vectors = {v["name"]: v for v in json.loads(VECTORS.read_text(encoding="utf-8"))}
    vector = vectors["SessionSetupReq_2024_1byteSessionID"]
    ok, log = _validate(etree.fromstring(vector["document"].encode()))
    assert not ok
    assert "SessionID" in log and "length" in log


EXAMPLES = sorted(p.stem for p in DATA.glob("*.xml"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_hand_written_example_is_valid(name: str) -> None:
    ok, log = _validate(_example(name))
    assert ok, log


def test_examples_cover_every_message_and_substitution_member() -> None:
    roots: set[tuple[str, str]] = set()
    members: set[str] = set()
    for name in EXAMPLES:
        root = _example(name)
        roots.add((etree.QName(root).namespace or "", etree.QName(root).localname))
        members.update(etree.QName(e).localname for e in root.iter() if isinstance(e.tag, str))
    folder = sch.schema_dir()
    messages = {
        (ns, name)
        for ns, name in _global_elements(sch.COMMON_MESSAGES, folder)
        | _global_elements(sch.DC, folder)
        | _global_elements(sch.APP_PROTOCOL, folder)
        if name.endswith(("Req", "Res"))
    }
    assert len(messages) == 26 + 10 + 2
    assert messages <= roots, sorted(messages - roots)
    assert set(SUBSTITUTION_GROUPS) <= members
    # Both price schedules, both schedule kinds and a signed header appear somewhere.
    assert {
        "AbsolutePriceSchedule",
        "PriceLevelSchedule",
        "DischargingSchedule",
        "Signature",
    } <= members


# ---------------------------------------------------------------------------------------------
# facets: limits accepted, one step beyond rejected
# ---------------------------------------------------------------------------------------------

FACETS: list[tuple[str, str, str, list[str], list[str]]] = [
    # (id, example, element path, accepted, rejected)
    (
        "int8-exponent",
        "DC_ChargeLoopReq_Dynamic_MCS",
        f".//{{{DC}}}EVPresentVoltage/{{{CT}}}Exponent",
        ["-128", "127", "0"],
        ["128", "-129", "1.5", ""],
    ),
    (
        "int16-value",
        "DC_ChargeLoopReq_Dynamic_MCS",
        f".//{{{DC}}}EVPresentVoltage/{{{CT}}}Value",
        ["-32768", "32767"],
        ["32768", "-32769"],
    ),
    (
        "percent-0-100",
        "DC_ChargeParameterDiscoveryReq_BPT",
        f".//{{{DC}}}TargetSOC",
        ["0", "100"],
        ["101", "-1"],
    ),
    (
        "unsignedShort-serviceID",
        "ServiceDetailReq_MCS",
        f".//{{{CM}}}ServiceID",
        ["0", "65535"],
        ["65536", "-1"],
    ),
    (
        "numericID-min-1",
        "ScheduleExchangeRes_Scheduled_Discharging_AbsolutePrice",
        f".//{{{CM}}}ScheduleTupleID",
        ["1", "4294967295"],
        ["0", "4294967296"],
    ),
    (
        "maxSupportingPoints-12-1024",
        "ScheduleExchangeReq_Dynamic_V2X",
        f".//{{{CM}}}MaximumSupportingPoints",
        ["12", "1024"],
        ["11", "1025"],
    ),
    (
        "sap-priority-1-20",
        "supportedAppProtocolReq_20DC",
        "AppProtocol/Priority",
        ["1", "20"],
        ["0", "21"],
    ),
    (
        "unsignedLong-timestamp",
        "SessionSetupRes",
        f".//{{{CT}}}TimeStamp",
        ["0", "18446744073709551615"],
        ["18446744073709551616", "-1"],
    ),
    ("identifier-255", "SessionSetupReq", f".//{{{CM}}}EVCCID", ["", "x" * 255], ["x" * 256]),
    ("name-80", "SessionStopReq_Pause", f".//{{{CM}}}EVTerminationCode", ["x" * 80], ["x" * 81]),
    (
        "description-160",
        "SessionStopReq_Pause",
        f".//{{{CM}}}EVTerminationExplanation",
        ["x" * 160],
        ["x" * 161],
    ),
    ("meterID-32", "DC_ChargeLoopRes_BPT_Dynamic", f".//{{{CT}}}MeterID", ["M" * 32], ["M" * 33]),
    (
        "currency-3",
        "ScheduleExchangeRes_Scheduled_Discharging_AbsolutePrice",
        f".//{{{CM}}}Currency",
        ["EUR", ""],
        ["EURO"],
    ),
    (
        "sap-namespace-100",
        "supportedAppProtocolReq_20DC",
        "AppProtocol/ProtocolNamespace",
        ["urn:" + "x" * 96],
        ["urn:" + "x" * 97],
    ),
    (
        "hexBinary-sessionID-8",
        "SessionSetupRes",
        f".//{{{CT}}}SessionID",
        ["0000000000000000", "ABCDEF0123456789", "abcdef0123456789"],
        ["00000000000000", "000000000000000000", "ABCDEF012345678", "GHIJKL0123456789"],
    ),
    (
        "hexBinary-signedMetering-sessionID-8",
        "MeteringConfirmationReq_signed",
        f".//{{{CM}}}SignedMeteringData/{{{CM}}}SessionID",
        ["0102030405060708"],
        ["01020304050607"],
    ),
    (
        "base64-genChallenge-16",
        "AuthorizationSetupRes_PnC_providers",
        f".//{{{CM}}}GenChallenge",
        [_b64(16)],
        [_b64(15), _b64(17), "not base64!"],
    ),
    (
        "base64-certificate-1600",
        "CertificateInstallationReq_signed",
        f".//{{{CM}}}OEMProvisioningCertificateChain/{{{CM}}}Certificate",
        [_b64(1600), _b64(1)],
        [_b64(1601)],
    ),
    (
        "base64-meterSignature-64",
        "DC_ChargeLoopRes_BPT_Dynamic",
        f".//{{{CT}}}MeterSignature",
        [_b64(64)],
        [_b64(65)],
    ),
    (
        "base64-dhPublicKey-133",
        "CertificateInstallationRes_SECP521",
        f".//{{{CM}}}DHPublicKey",
        [_b64(133)],
        [_b64(132), _b64(134)],
    ),
    (
        "base64-secp521-key-94",
        "CertificateInstallationRes_SECP521",
        f".//{{{CM}}}SECP521_EncryptedPrivateKey",
        [_b64(94)],
        [_b64(93), _b64(95)],
    ),
    (
        "enum-responseCode",
        "SessionSetupRes",
        f".//{{{CT}}}ResponseCode",
        RESPONSE_CODES,
        ["OK_Maybe", "ok", "", " OK_Unknown"],
    ),
    (
        "enum-processing",
        "DC_CableCheckRes_Finished",
        f".//{{{DC}}}EVSEProcessing",
        ["Finished", "Ongoing", "Ongoing_WaitingForCustomerInteraction"],
        ["Done", "finished"],
    ),
    (
        "enum-channelSelection",
        "PowerDeliveryReq_Start_Dynamic_Discharge",
        f".//{{{CM}}}BPT_ChannelSelection",
        ["Charge", "Discharge"],
        ["Idle"],
    ),
    (
        "enum-sap-responseCode",
        "supportedAppProtocolRes_OK",
        "ResponseCode",
        ["OK_SuccessfulNegotiation", "Failed_NoNegotiation"],
        ["OK"],
    ),
    (
        "boolean",
        "DC_ChargeLoopReq_Dynamic_MCS",
        f".//{{{CT}}}MeterInfoRequested",
        ["true", "false", "1", "0"],
        ["yes", "TRUE"],
    ),
]


@pytest.mark.parametrize(
    ("example", "path", "accepted", "rejected"),
    [f[1:] for f in FACETS],
    ids=[f[0] for f in FACETS],
)
def test_facet_limits(example: str, path: str, accepted: list[str], rejected: list[str]) -> None:
    root = _example(example)
    element = _find(root, path)
    local = etree.QName(element).localname
    for value in accepted:
        element.text = value
        ok, log = _validate(root)
        assert ok, f"{local}={value!r} should be accepted: {log}"
    for value in rejected:
        element.text = value
        ok, log = _validate(root)
        assert not ok, f"{local}={value!r} should be rejected"
        assert local in log, log


# ---------------------------------------------------------------------------------------------
# content models: order, required elements, repetitions, namespaces, choices, groups
# ---------------------------------------------------------------------------------------------


def _swap_first_two(root: etree._Element, path: str) -> None:
    parent = _find(root, path)
    first, second = parent[0], parent[1]
    parent.remove(second)
    parent.insert(0, second)
    assert parent[1] is first


def _remove(root: etree._Element, path: str) -> None:
    element = _find(root, path)
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def _repeat(root: etree._Element, path: str, total: int) -> None:
    element = _find(root, path)
    parent = element.getparent()
    assert parent is not None
    current = len(parent.findall(element.tag))
    for _ in range(total - current):
        element.addnext(_copy(element))


def _copy(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def _rename(root: etree._Element, path: str, tag: str) -> None:
    _find(root, path).tag = tag


def _move_attribute(root: etree._Element, path: str, old: str, new: str) -> None:
    element = _find(root, path)
    value = element.attrib.pop(old)
    element.set(new, value)


Mutation = Callable[[etree._Element], object]

STRUCTURE: list[tuple[str, str, Mutation, str]] = [
    # (id, example, mutation, element name expected in the error log)
    (
        "order-rational-number",
        "DC_PreChargeReq_MCS",
        lambda r: _swap_first_two(r, f".//{{{DC}}}EVTargetVoltage"),
        "Value",
    ),
    (
        "order-target-current-voltage",
        "DC_ChargeLoopReq_Scheduled",
        lambda r: _swap_first_two(r, f".//{{{DC}}}Scheduled_DC_CLReqControlMode"),
        "EVTargetVoltage",
    ),
    (
        "order-header-last",
        "SessionSetupReq",
        lambda r: r.append(_find(r, f"{{{CT}}}Header")),
        "EVCCID",
    ),
    (
        "missing-timestamp",
        "SessionSetupReq",
        lambda r: _remove(r, f".//{{{CT}}}TimeStamp"),
        "TimeStamp",
    ),
    (
        "missing-evccid",
        "SessionSetupReq",
        lambda r: _remove(r, f"{{{CM}}}EVCCID"),
        "SessionSetupReq",
    ),
    (
        "missing-control-mode",
        "DC_ChargeLoopReq_Scheduled",
        lambda r: _remove(r, f"{{{DC}}}Scheduled_DC_CLReqControlMode"),
        "DC_ChargeLoopReq",
    ),
    (
        "missing-required-bpt-field",
        "DC_ChargeParameterDiscoveryReq_BPT",
        lambda r: _remove(r, f".//{{{DC}}}EVMinimumDischargeCurrent"),
        "BPT_DC_CPDReqEnergyTransferMode",
    ),
    (
        "missing-id-attribute",
        "AuthorizationReq_PnC_signed",
        lambda r: _find(r, f"{{{CM}}}PnC_AReqAuthorizationMode").attrib.pop(f"{{{CM}}}Id"),
        "PnC_AReqAuthorizationMode",
    ),
    (
        "missing-signature-value",
        "AuthorizationReq_PnC_signed",
        lambda r: _remove(r, f".//{{{DS}}}SignatureValue"),
        "Signature",
    ),
    (
        "too-many-authorization-services",
        "AuthorizationSetupRes_PnC_providers",
        lambda r: _repeat(r, f"{{{CM}}}AuthorizationServices", 3),
        "AuthorizationServices",
    ),
    (
        "too-many-subcertificates",
        "AuthorizationReq_PnC_signed",
        lambda r: _repeat(r, f".//{{{CM}}}SubCertificates/{{{CM}}}Certificate", 4),
        "Certificate",
    ),
    (
        "too-many-schedule-tuples",
        "ScheduleExchangeRes_Scheduled_Discharging_AbsolutePrice",
        lambda r: _repeat(r, f".//{{{CM}}}ScheduleTuple", 4),
        "ScheduleTuple",
    ),
    (
        "too-many-app-protocols",
        "supportedAppProtocolReq_20DC",
        lambda r: _repeat(r, "AppProtocol", 21),
        "AppProtocol",
    ),
    (
        "too-many-tax-costs",
        "MeteringConfirmationReq_signed",
        lambda r: _repeat(r, f".//{{{CT}}}TaxCosts", 11),
        "TaxCosts",
    ),
    (
        "too-many-parameters",
        "ServiceDetailRes_MCS_BPT",
        lambda r: _repeat(r, f".//{{{CM}}}Parameter", 33),
        "Parameter",
    ),
    (
        "wrong-namespace-local-element",
        "SessionSetupReq",
        lambda r: _rename(r, f"{{{CM}}}EVCCID", f"{{{CT}}}EVCCID"),
        "EVCCID",
    ),
    (
        "wrong-namespace-inherited-element",
        "DC_ChargeLoopReq_Scheduled",
        lambda r: _rename(r, f"{{{CT}}}MeterInfoRequested", f"{{{DC}}}MeterInfoRequested"),
        "MeterInfoRequested",
    ),
    (
        "wrong-namespace-unqualified-name-attribute",
        "ServiceDetailRes_MCS_BPT",
        lambda r: _move_attribute(r, f".//{{{CM}}}Parameter", f"{{{CM}}}Name", "Name"),
        "Parameter",
    ),
    (
        "wrong-namespace-qualified-sap-child",
        "supportedAppProtocolRes_OK",
        lambda r: _rename(r, "ResponseCode", f"{{{APP}}}ResponseCode"),
        "ResponseCode",
    ),
    (
        "abstract-head-used-directly",
        "DC_ChargeLoopReq_Scheduled",
        lambda r: _rename(r, f"{{{DC}}}Scheduled_DC_CLReqControlMode", f"{{{CT}}}CLReqControlMode"),
        "CLReqControlMode",
    ),
    (
        "response-mode-in-request",
        "DC_ChargeLoopRes_Scheduled",
        lambda r: _rename(
            r, f"{{{DC}}}Scheduled_DC_CLResControlMode", f"{{{DC}}}Scheduled_DC_CLReqControlMode"
        ),
        "Scheduled_DC_CLReqControlMode",
    ),
    (
        "both-choice-branches",
        "AuthorizationReq_EIM",
        lambda r: r.append(etree.Element(f"{{{CM}}}PnC_AReqAuthorizationMode")),
        "PnC_AReqAuthorizationMode",
    ),
    (
        "duplicate-id",
        "ScheduleExchangeRes_Scheduled_Discharging_AbsolutePrice",
        lambda r: r.find(f".//{{{CM}}}DischargingSchedule/{{{CM}}}AbsolutePriceSchedule").set(  # type: ignore[union-attr]
            f"{{{CM}}}Id", "price-charge-1"
        ),
        "price-charge-1",
    ),
    (
        "unknown-element",
        "SessionStopRes",
        lambda r: r.append(etree.Element(f"{{{CM}}}Surprise")),
        "Surprise",
    ),
    (
        "unknown-root",
        "SessionStopRes",
        lambda r: setattr(r, "tag", f"{{{CM}}}SessionPauseRes"),
        "SessionPauseRes",
    ),
]


@pytest.mark.parametrize(
    ("example", "mutate", "expected"), [s[1:] for s in STRUCTURE], ids=[s[0] for s in STRUCTURE]
)
def test_content_model_violation_is_rejected(example: str, mutate: Mutation, expected: str) -> None:
    root = _example(example)
    assert _validate(root)[0]
    mutate(root)
    ok, log = _validate(root)
    assert not ok
    assert expected in log, log


@pytest.mark.parametrize(
    ("example", "path", "maximum"),
    [
        ("AuthorizationSetupRes_PnC_providers", f"{{{CM}}}AuthorizationServices", 2),
        ("AuthorizationReq_PnC_signed", f".//{{{CM}}}SubCertificates/{{{CM}}}Certificate", 3),
        ("ScheduleExchangeRes_Scheduled_Discharging_AbsolutePrice", f".//{{{CM}}}ScheduleTuple", 3),
        ("supportedAppProtocolReq_20DC", "AppProtocol", 20),
    ],
)
def test_repetition_limits_are_accepted(example: str, path: str, maximum: int) -> None:
    root = _example(example)
    if example.startswith("ScheduleExchangeRes"):
        # Copies would duplicate the ID attributes of the price schedules; drop them first.
        for element in root.iter(f"{{{CM}}}AbsolutePriceSchedule"):
            del element.attrib[f"{{{CM}}}Id"]
    _repeat(root, path, maximum)
    ok, log = _validate(root)
    assert ok, log


def test_bpt_member_substitutes_for_dc_head() -> None:
    # A plain DC element where the request expects the DC head stays valid, as does its BPT member.
    root = _example("DC_ChargeParameterDiscoveryReq_MCS")
    assert _validate(root)[0]
    bpt = _example("DC_ChargeParameterDiscoveryReq_BPT")
    assert _validate(bpt)[0]
    # A BPT member of the *response* group is not allowed in the request.
    _rename(
        bpt, f"{{{DC}}}BPT_DC_CPDReqEnergyTransferMode", f"{{{DC}}}BPT_DC_CPDResEnergyTransferMode"
    )
    assert not _validate(bpt)[0]


# ---------------------------------------------------------------------------------------------
# schema_dir() / load_schema()
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sch.ENV_VAR, raising=False)


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "my schemas"  # a space, to exercise file-URL handling
    shutil.copytree(sch.schema_dir(), folder)
    return folder


def test_schema_dir_default_holds_all_files(no_env: None) -> None:
    folder = sch.schema_dir()
    assert folder.is_absolute()
    for name in sch.SCHEMA_FILES:
        assert (folder / name).is_file()
    import mcscomm

    package = Path(mcscomm.__file__).resolve().parent
    # Installed from a wheel: mcscomm/schemas; checkout or editable install: <repo>/schemas.
    assert folder in (package / "schemas", package.parent / "schemas")


def test_wheel_force_include_matches_packaged_location() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force.get("schemas") == "mcscomm/schemas"


def test_env_var_and_explicit_override(
    monkeypatch: pytest.MonkeyPatch, schema_copy: Path, tmp_path: Path
) -> None:
    monkeypatch.delenv(sch.ENV_VAR, raising=False)
    default = sch.schema_dir()
    monkeypatch.setenv(sch.ENV_VAR, str(schema_copy))
    assert sch.schema_dir() == schema_copy.resolve()
    schema = sch.load_schema(sch.DC)
    assert schema is sch.load_schema(sch.DC, schema_copy)
    assert schema is not sch.load_schema(sch.DC, default)
    other = tmp_path / "other"
    other.mkdir()
    assert sch.schema_dir(other) == other.resolve()  # the argument beats the variable


def test_override_from_user_folder_is_used(schema_copy: Path) -> None:
    # Prove the override's files are what gets compiled: widen one facet in the copy.
    path = schema_copy / sch.COMMON_TYPES
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            '<xs:length value="8"/>', '<xs:length value="1"/>'
        ),
        encoding="utf-8",
    )
    doc = etree.fromstring(
        f'<ns:SessionStopRes xmlns:ns="{CM}" xmlns:ct="{CT}"><ct:Header>'
        "<ct:SessionID>00</ct:SessionID><ct:TimeStamp>1</ct:TimeStamp></ct:Header>"
        "<ct:ResponseCode>OK</ct:ResponseCode></ns:SessionStopRes>"
    )
    assert sch.schema_for_namespace(CM, schema_copy).validate(doc)
    assert not sch.schema_for_namespace(CM).validate(doc)


def test_missing_folder_and_file_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(sch.SchemaLoadError, match="not a directory"):
        sch.schema_dir(tmp_path / "absent")
    monkeypatch.setenv(sch.ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(sch.SchemaLoadError, match=sch.ENV_VAR):
        sch.schema_dir()
    monkeypatch.delenv(sch.ENV_VAR)
    with pytest.raises(sch.SchemaLoadError, match="not found"):
        sch.load_schema(sch.DC, tmp_path)


def test_empty_env_var_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sch.ENV_VAR, "")
    assert (sch.schema_dir() / sch.DC).is_file()


def test_load_schema_cache_and_names(no_env: None) -> None:
    assert sch.load_schema("V2G_CI_DC.xsd") is sch.load_schema("V2G_CI_DC")
    for bad in ("../schemas/V2G_CI_DC.xsd", "/etc/passwd", "", ".."):
        with pytest.raises(sch.SchemaLoadError):
            sch.load_schema(bad)
    with pytest.raises(sch.SchemaLoadError, match="namespace"):
        sch.schema_for_namespace("urn:iso:std:iso:15118:-20:AC")


def _write_schema(folder: Path, body: str, prolog: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.xsd").write_text(
        f'<?xml version="1.0"?>{prolog}<xs:schema xmlns:xs="{XS}" targetNamespace="urn:t" '
        f'xmlns="urn:t">{body}</xs:schema>',
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    "location", ["http://example.invalid/x.xsd", "https://example.invalid/x.xsd", "../outside.xsd"]
)
def test_imports_outside_the_folder_are_refused(tmp_path: Path, location: str) -> None:
    (tmp_path / "outside.xsd").write_text(f'<xs:schema xmlns:xs="{XS}" targetNamespace="urn:o"/>')
    folder = tmp_path / "schemas"
    _write_schema(folder, f'<xs:import namespace="urn:o" schemaLocation="{location}"/>')
    with pytest.raises(sch.SchemaLoadError):
        sch.load_schema("x.xsd", folder)


def test_external_entities_in_a_schema_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("LEAK")
    folder = tmp_path / "schemas"
    _write_schema(
        folder,
        '<xs:element name="e"><xs:simpleType><xs:restriction base="xs:string">'
        '<xs:enumeration value="a&secret;"/></xs:restriction></xs:simpleType></xs:element>',
        prolog=f'<!DOCTYPE xs:schema [<!ENTITY secret SYSTEM "{tmp_path / "secret.txt"}">]>',
    )
    with pytest.raises(sch.SchemaLoadError):
        sch.load_schema("x.xsd", folder)


# ---------------------------------------------------------------------------------------------
# optional: component-by-component comparison with the official ISO files
# ---------------------------------------------------------------------------------------------

ISO_DIR = os.environ.get("MCSCOMM_ISO_SCHEMA_DIR")
_QNAME_ATTRIBUTES = {"type", "base", "ref", "substitutionGroup", "itemType"}


def _canonical(element: etree._Element) -> tuple[Any, ...]:
    """Comparable form of an XSD component: prefixes resolved, annotations/comments dropped."""

    def resolve(value: str) -> str:
        prefix, _, local = value.rpartition(":")
        return f"{{{element.nsmap.get(prefix or None, '')}}}{local}"

    attributes = tuple(
        sorted(
            (str(k), resolve(str(v)) if k in _QNAME_ATTRIBUTES else str(v))
            for k, v in element.attrib.items()
        )
    )
    children = tuple(
        _canonical(c) for c in element if isinstance(c.tag, str) and c.tag != f"{{{XS}}}annotation"
    )
    return (etree.QName(element).localname, attributes, children)


def _components(path: Path) -> list[tuple[Any, ...]]:
    parser = etree.XMLParser(
        remove_comments=True, resolve_entities=False, load_dtd=False, no_network=True
    )
    root = etree.parse(str(path), parser).getroot()
    return [_canonical(root)]


@pytest.mark.skipif(not ISO_DIR, reason="set MCSCOMM_ISO_SCHEMA_DIR to compare with the ISO files")
@pytest.mark.parametrize("name", sch.SCHEMA_FILES)
def test_equal_to_official_iso_schema(name: str) -> None:
    assert ISO_DIR is not None
    official = _components(Path(ISO_DIR) / name)
    ours = _components(sch.schema_dir() / name)
    assert ours == official
