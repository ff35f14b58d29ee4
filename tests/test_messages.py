"""The message classes follow the naming contract and their metadata matches the XSD rules."""

from __future__ import annotations

import dataclasses
import re

import pytest

from mcscomm.codec.base import MESSAGE_CLASSES
from mcscomm.messages import (
    AbsolutePriceSchedule,
    BPT_DC_CPDReqEnergyTransferMode,
    BPT_DC_CPDResEnergyTransferMode,
    BPT_Dynamic_DC_CLReqControlMode,
    BPT_Dynamic_DC_CLResControlMode,
    BPT_Scheduled_DC_CLReqControlMode,
    BPT_Scheduled_DC_CLResControlMode,
    DC_CPDReqEnergyTransferMode,
    DC_CPDResEnergyTransferMode,
    Dynamic_DC_CLReqControlMode,
    Dynamic_DC_CLResControlMode,
    MessageHeader,
    PnC_AReqAuthorizationMode,
    PriceLevelSchedule,
    Scheduled_DC_CLReqControlMode,
    Scheduled_DC_CLResControlMode,
    SignedCertificateChain,
    SignedInstallationData,
    SignedMeteringData,
    SupportedAppProtocolReq,
    SupportedAppProtocolRes,
    V2GRequest,
    V2GResponse,
)
from mcscomm.messages.enums import ResponseCode, ServiceId
from mcscomm.messages.meta import TYPE_TAGS, xml_fields
from mcscomm.messages.xmldsig import Reference, Signature, SignedInfo

ALL = sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)
SAP = (SupportedAppProtocolReq, SupportedAppProtocolRes)

# acronyms whose snake form is not the mechanical one
_SPECIAL = {
    "TimeStamp": "timestamp",  # the contract name (common.md)
    "SupportedServiceIDs": "supported_service_ids",
    "PrioritizedEMAIDs": "prioritized_emaids",
    "ListOfRootCertificateIDs": "list_of_root_certificate_ids",
    "CapacitiveEnergyReadingVARh": "capacitive_energy_reading_varh",
    "BPT_InductiveEnergyReadingVARh": "bpt_inductive_energy_reading_varh",
}


def snake(name: str) -> str:
    if name in _SPECIAL:
        return _SPECIAL[name]
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return s.replace("v2_x", "v2x").replace("__", "_")


def all_classes() -> list[type]:
    seen: list[type] = []

    def visit(cls: type) -> None:
        if cls in seen or not dataclasses.is_dataclass(cls):
            return
        seen.append(cls)
        for _, xf in xml_fields(cls):
            for c in (xf.type, *xf.choices):
                if isinstance(c, type):
                    visit(c)

    for cls in ALL:
        visit(cls)
    return seen


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_class_name_is_root_element_name(cls: type) -> None:
    _ns, name = TYPE_TAGS[cls]
    if cls in SAP:
        assert name == cls.__name__[0].lower() + cls.__name__[1:]
    else:
        assert name == cls.__name__


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_header_and_response_code(cls: type) -> None:
    if cls in SAP:
        return
    names = [f.name for f in dataclasses.fields(cls)]
    assert names[0] == "header"
    assert issubclass(cls, V2GRequest) == cls.__name__.endswith("Req")
    if cls.__name__.endswith("Res"):
        assert issubclass(cls, V2GResponse)
        assert names[1] == "response_code"


def test_field_names_are_snake_case_of_element_names() -> None:
    for cls in all_classes():
        for name, xf in xml_fields(cls):
            if xf.choices or xf.attribute or xf.wrapper:
                continue
            if cls in (SignedInfo, Signature, Reference) and name == "references":
                continue
            assert name == snake(xf.name), f"{cls.__name__}.{name} vs {xf.name}"


def test_signable_elements_have_ids() -> None:
    required = (
        PnC_AReqAuthorizationMode,
        SignedInstallationData,
        SignedMeteringData,
        SignedCertificateChain,
    )
    for cls in required:
        f = {x.name: x for x in dataclasses.fields(cls)}["id"]
        assert f.default is dataclasses.MISSING
    for cls in (AbsolutePriceSchedule, PriceLevelSchedule):
        f = {x.name: x for x in dataclasses.fields(cls)}["id"]
        assert f.default is None


def test_bpt_variants_subclass_their_base_variant() -> None:
    pairs = [
        (BPT_DC_CPDReqEnergyTransferMode, DC_CPDReqEnergyTransferMode),
        (BPT_DC_CPDResEnergyTransferMode, DC_CPDResEnergyTransferMode),
        (BPT_Scheduled_DC_CLReqControlMode, Scheduled_DC_CLReqControlMode),
        (BPT_Scheduled_DC_CLResControlMode, Scheduled_DC_CLResControlMode),
        (BPT_Dynamic_DC_CLReqControlMode, Dynamic_DC_CLReqControlMode),
        (BPT_Dynamic_DC_CLResControlMode, Dynamic_DC_CLResControlMode),
    ]
    for bpt, base in pairs:
        assert issubclass(bpt, base)
        base_fields = [f.name for f in dataclasses.fields(base)]
        assert [f.name for f in dataclasses.fields(bpt)][: len(base_fields)] == base_fields


def test_optional_fields_default_to_none_and_lists_to_empty() -> None:
    for cls in all_classes():
        for f in dataclasses.fields(cls):
            xf = f.metadata.get("xml")
            if xf is None:
                continue
            if xf.is_list:
                assert f.default_factory is list, f"{cls.__name__}.{f.name}"  # type: ignore[comparison-overlap]
            elif xf.min_occurs == 0:
                assert f.default is None, f"{cls.__name__}.{f.name}"


def test_enums() -> None:
    assert len(ResponseCode) == 40  # indices 0..39
    assert list(ResponseCode)[34] is ResponseCode.FAILED_SEQUENCE_ERROR  # EXI index, facts §4.2
    assert ServiceId.MCS == 8 and ServiceId.MCS_BPT == 9
    assert ResponseCode("WARNING_eMSPUnknown") is ResponseCode.WARNING_EMSP_UNKNOWN
    assert ResponseCode.OK_OLD_SESSION_JOINED.is_ok and ResponseCode.FAILED.is_failed


def test_header_shape() -> None:
    h = MessageHeader(session_id=bytes(8), timestamp=0)
    assert h.signature is None
    assert [f.name for f in dataclasses.fields(h)] == ["session_id", "timestamp", "signature"]
