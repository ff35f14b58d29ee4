"""The XML-signature elements of the ISO 15118-20 profile (namespace xmldsig#).

Only what the -20 profile allows is modelled (facts §6.2, V2G20-771 forbids KeyInfo, Object,
SignedInfo/@Id, Reference/@Type, HMACOutputLength, SignatureValue/@Id). Algorithm URIs are plain
strings; constants for the -20 profile are below.
"""

# Field defaults are metadata-carrying dataclasses.field() calls made by meta.el/attr/choice.

from __future__ import annotations

from dataclasses import dataclass

from mcscomm.messages.meta import (
    BASE64,
    ID,
    INTEGER,
    NS_DS,
    STRING,
    UNBOUNDED,
    URI,
    attr,
    el,
    xmltype,
)

#: V2G20-766: canonicalization and transform algorithm of the -20 profile
C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
#: exclusive XML canonicalization (what our XML codec actually computes)
C14N_EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"  # V2G20-2473
ED448 = "urn:iso:std:iso:15118:-20:Security:xmldsig#Ed448"  # V2G20-2474
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"  # V2G20-2475
SHAKE256 = "urn:iso:std:iso:15118:-20:Security:xmlenc#SHAKE256"  # V2G20-2476


@xmltype(NS_DS, order=("transforms", "digest_method", "digest_value", "uri", "id"))
@dataclass(slots=True)
class Reference:
    """``ds:Reference``: ``uri`` is ``#<Id of the signed element>``."""

    uri: str = attr("URI", None, URI)
    digest_method: str = el("DigestMethod", NS_DS, URI, via_attr="Algorithm")
    digest_value: bytes = el("DigestValue", NS_DS, BASE64)
    transforms: list[str] = el(
        "Transform",
        NS_DS,
        URI,
        min_occurs=0,
        max_occurs=UNBOUNDED,
        via_attr="Algorithm",
        wrapper="Transforms",
    )
    id: str | None = attr("Id", None, ID, required=False)


@xmltype(NS_DS)
@dataclass(slots=True)
class SignedInfo:
    """``ds:SignedInfo``: what the signature value covers."""

    canonicalization_method: str = el("CanonicalizationMethod", NS_DS, URI, via_attr="Algorithm")
    signature_method: str = el("SignatureMethod", NS_DS, URI, via_attr="Algorithm")
    references: list[Reference] = el("Reference", NS_DS, Reference, max_occurs=UNBOUNDED)


@xmltype(NS_DS, order=("signed_info", "signature_value", "id"))
@dataclass(slots=True)
class Signature:
    """``ds:Signature`` as carried in ``MessageHeader.signature``."""

    signed_info: SignedInfo = el("SignedInfo", NS_DS, SignedInfo)
    signature_value: bytes = el("SignatureValue", NS_DS, BASE64)
    id: str | None = attr("Id", None, ID, required=False)


@xmltype(NS_DS)
@dataclass(slots=True)
class X509IssuerSerial:
    """``ds:X509IssuerSerialType``: issuer DN and serial of a root certificate."""

    x509_issuer_name: str = el("X509IssuerName", NS_DS, STRING)
    x509_serial_number: int = el("X509SerialNumber", NS_DS, INTEGER)
