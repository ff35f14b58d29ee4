"""ISO 15118-20 XML signatures: sign and verify signable message parts (facts §6.2).

Signable parts carry an ``Id`` (``PnC_AReqAuthorizationMode``, ``SignedMeteringData``,
``OEMProvisioningCertificateChain``, ``SignedInstallationData``, ``AbsolutePriceSchedule``,
``PriceLevelSchedule``). A signature has one Reference per signed part (``URI="#<Id>"``), exactly
one Transform (V2G20-767) equal to the CanonicalizationMethod, no KeyInfo and no Object
(V2G20-771); it travels in the message header.

Canonical bytes come from the codec (``codec.canonicalize`` and ``codec.canonicalization_uri``):
exclusive XML C14N for the XML codec today, the EXI canonical fragment encoding
(``http://www.w3.org/TR/canonical-exi/``, V2G20-766) once the EXI codec provides it; callers do
not change.

Algorithm families (V2G20-2320):

* ``secp521r1``: DigestMethod SHA-512, SignatureMethod ``ecdsa-sha512`` (V2G20-2473/2475); the
  SignatureValue is the raw fixed-size ``r || s`` encoding, 2 x 66 = 132 bytes (not DER);
* ``ed448``: DigestMethod SHAKE256 with a **64-byte** output (V2G20-2476; the output length is
  our choice, matching SHA-512's), SignatureMethod Ed448 (V2G20-2474): PureEdDSA over the
  canonical SignedInfo, 114 bytes.

Verification order: algorithms and structure, references, the signer's chain, the signature
over SignedInfo, then each digest against the element as received. Each failure kind has its own
:class:`~mcscomm.security.errors.SignatureError` subclass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, TypeGuard

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from mcscomm.messages.xmldsig import (
    ECDSA_SHA512,
    ED448,
    SHA512,
    SHAKE256,
    Reference,
    Signature,
    SignedInfo,
)
from mcscomm.security.chain import verify_chain
from mcscomm.security.errors import (
    BadSignature,
    DigestMismatch,
    UnknownReference,
    UntrustedChain,
    WrongAlgorithm,
)
from mcscomm.security.pki import Algorithm, PrivateKey, PublicKey, algorithm_of

#: SignatureMethod and DigestMethod URIs per family (V2G20-2473..2476).
SIGNATURE_METHOD: dict[Algorithm, str] = {"secp521r1": ECDSA_SHA512, "ed448": ED448}
DIGEST_METHOD: dict[Algorithm, str] = {"secp521r1": SHA512, "ed448": SHAKE256}
DIGEST_SIZE = 64  # bytes, both families
P521_COORDINATE = 66  # bytes per r and s: ceil(521 / 8)
ED448_SIGNATURE = 114


class Canonicalizer(Protocol):
    """The part of the codec interface signatures need."""

    canonicalization_uri: str

    def canonicalize(self, fragment: object) -> bytes: ...


def digest(data: bytes, algorithm: Algorithm) -> bytes:
    """The -20 digest of canonical bytes: SHA-512, or SHAKE256 with 64 bytes of output."""
    h = hashes.Hash(hashes.SHA512() if algorithm == "secp521r1" else hashes.SHAKE256(DIGEST_SIZE))
    h.update(data)
    return h.finalize()


def _fragment_id(fragment: object) -> str:
    fid = getattr(fragment, "id", None)
    if not isinstance(fid, str) or not fid:
        raise UnknownReference(f"{type(fragment).__name__} has no Id to reference")
    return fid


def sign(fragments: Sequence[object], key: PrivateKey, codec: Canonicalizer) -> Signature:
    """A -20 ``Signature`` over ``fragments`` (each with an ``id``) made with ``key``."""
    if not fragments:
        raise UnknownReference("nothing to sign")
    algorithm = algorithm_of(key)
    ids = [_fragment_id(f) for f in fragments]
    if len(set(ids)) != len(ids):
        raise UnknownReference(f"duplicate Id among signed parts: {ids}")
    references = [
        Reference(
            uri=f"#{fid}",
            digest_method=DIGEST_METHOD[algorithm],
            digest_value=digest(codec.canonicalize(fragment), algorithm),
            transforms=[codec.canonicalization_uri],
        )
        for fid, fragment in zip(ids, fragments, strict=True)
    ]
    signed_info = SignedInfo(
        canonicalization_method=codec.canonicalization_uri,
        signature_method=SIGNATURE_METHOD[algorithm],
        references=references,
    )
    return Signature(
        signed_info=signed_info, signature_value=_sign_raw(codec.canonicalize(signed_info), key)
    )


def _sign_raw(data: bytes, key: PrivateKey) -> bytes:
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.sign(data)
    der = key.sign(data, ec.ECDSA(hashes.SHA512()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(P521_COORDINATE, "big") + s.to_bytes(P521_COORDINATE, "big")


def verify_signature_value(data: bytes, signature_value: bytes, key: PublicKey) -> None:
    """BadSignature unless ``signature_value`` is a valid -20 signature of ``data`` by ``key``."""
    try:
        if isinstance(key, ed448.Ed448PublicKey):
            if len(signature_value) != ED448_SIGNATURE:
                raise BadSignature(
                    f"Ed448 SignatureValue has {len(signature_value)} bytes, not 114"
                )
            key.verify(signature_value, data)
            return
        if len(signature_value) != 2 * P521_COORDINATE:
            raise BadSignature(
                f"ECDSA P-521 SignatureValue has {len(signature_value)} bytes, not 132 (r||s)"
            )
        r = int.from_bytes(signature_value[:P521_COORDINATE], "big")
        s = int.from_bytes(signature_value[P521_COORDINATE:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA512()))
    except InvalidSignature:
        raise BadSignature("SignatureValue does not verify over SignedInfo") from None


def _is_profile_key(key: object) -> TypeGuard[PublicKey]:
    return isinstance(key, ed448.Ed448PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP521R1)
    )


def _as_certificates(chain: Sequence[x509.Certificate | bytes]) -> list[x509.Certificate]:
    certs = []
    for item in chain:
        if isinstance(item, x509.Certificate):
            certs.append(item)
            continue
        try:
            certs.append(x509.load_der_x509_certificate(item))
        except ValueError as exc:
            raise UntrustedChain(f"unparseable certificate in the signer chain: {exc}") from None
    return certs


def _as_datetime(now: dt.datetime | float | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(now, int | float):
        return dt.datetime.fromtimestamp(now, dt.UTC)
    return now


def verify(
    signature: Signature | None,
    fragments_by_id: Mapping[str, object],
    signer_chain: Sequence[x509.Certificate | bytes],
    trust_root: x509.Certificate,
    codec: Canonicalizer,
    now: dt.datetime | float | None = None,
) -> None:
    """Check ``signature`` over the received ``fragments_by_id`` (Id -> signable part).

    ``signer_chain`` is the signer's certificate first, then its Sub-CAs (certificates or DER);
    ``trust_root`` the root it must chain to (contract -> MO root, OEM provisioning -> OEM root,
    CPS -> V2G root). ``now``: a datetime or Unix time (default: the current time).
    Returns None on success, raises a SignatureError subclass otherwise.
    """
    chain = _as_certificates(signer_chain)
    if not chain:
        raise BadSignature("no signer certificate")
    signer_key = chain[0].public_key()
    if not _is_profile_key(signer_key):
        raise WrongAlgorithm(f"signer key {type(signer_key).__name__} is not secp521r1 or Ed448")
    referenced = _check_structure(signature, fragments_by_id, signer_key, codec)
    verify_chain(chain, trust_root, _as_datetime(now))
    assert signature is not None  # _check_structure refuses None
    _check_values(signature, fragments_by_id, referenced, signer_key, codec)


def check_signature(
    signature: Signature | None,
    fragments_by_id: Mapping[str, object],
    public_key: PublicKey,
    codec: Canonicalizer,
) -> None:
    """Like :func:`verify` with a key that is already trusted (its chain checked earlier, e.g.
    the contract certificate of this session): structure, references, signature, digests."""
    if not _is_profile_key(public_key):
        raise WrongAlgorithm(f"signer key {type(public_key).__name__} is not secp521r1 or Ed448")
    referenced = _check_structure(signature, fragments_by_id, public_key, codec)
    assert signature is not None
    _check_values(signature, fragments_by_id, referenced, public_key, codec)


def _check_structure(
    signature: Signature | None,
    fragments_by_id: Mapping[str, object],
    signer_key: PublicKey,
    codec: Canonicalizer,
) -> dict[str, Reference]:
    """Algorithms (V2G20-767/771, 2473..2476) and references; returns Id -> Reference."""
    if signature is None:
        raise BadSignature("the message carries no Signature")
    algorithm = algorithm_of(signer_key)
    info = signature.signed_info
    if info.canonicalization_method != codec.canonicalization_uri:
        raise WrongAlgorithm(
            f"CanonicalizationMethod {info.canonicalization_method!r}, "
            f"expected {codec.canonicalization_uri!r}"
        )
    if info.signature_method != SIGNATURE_METHOD[algorithm]:
        raise WrongAlgorithm(
            f"SignatureMethod {info.signature_method!r} does not match the signer's "
            f"{algorithm} key (expected {SIGNATURE_METHOD[algorithm]!r})"
        )
    if not info.references:
        raise UnknownReference("SignedInfo has no Reference")
    for ref in info.references:
        if ref.digest_method != DIGEST_METHOD[algorithm]:
            raise WrongAlgorithm(
                f"DigestMethod {ref.digest_method!r} of {ref.uri!r}, "
                f"expected {DIGEST_METHOD[algorithm]!r}"
            )
        if list(ref.transforms) != [codec.canonicalization_uri]:
            raise WrongAlgorithm(
                f"Transforms {list(ref.transforms)} of {ref.uri!r}: exactly one, "
                f"{codec.canonicalization_uri!r}, is allowed"
            )
    # every signed part referenced exactly once, and nothing else
    referenced: dict[str, Reference] = {}
    for ref in info.references:
        uri = ref.uri or ""
        if not uri.startswith("#") or uri[1:] not in fragments_by_id:
            raise UnknownReference(f"Reference {uri!r} names no signed element of the message")
        if uri[1:] in referenced:
            raise UnknownReference(f"Reference {uri!r} appears twice")
        referenced[uri[1:]] = ref
    missing = set(fragments_by_id) - set(referenced)
    if missing:
        raise UnknownReference(f"signed elements without Reference: {sorted(missing)}")
    return referenced


def _check_values(
    signature: Signature,
    fragments_by_id: Mapping[str, object],
    referenced: Mapping[str, Reference],
    signer_key: PublicKey,
    codec: Canonicalizer,
) -> None:
    """The signature over SignedInfo first (so a tampered SignedInfo is BadSignature), then
    each digest against the element as received."""
    algorithm = algorithm_of(signer_key)
    verify_signature_value(
        codec.canonicalize(signature.signed_info), signature.signature_value, signer_key
    )
    for fid, ref in referenced.items():
        actual = digest(codec.canonicalize(fragments_by_id[fid]), algorithm)
        if not hmac.compare_digest(actual, ref.digest_value):
            raise DigestMismatch(f"digest of #{fid} does not match its Reference")


def signable_parts(message: object) -> dict[str, object]:
    """The parts of ``message`` that carry an ``Id`` (Id -> part), found by walking its fields.

    The message header (where the Signature lives) is skipped.
    """
    found: dict[str, object] = {}
    for part in _walk(message, top=True):
        fid = getattr(part, "id", None)
        if isinstance(fid, str) and fid and not isinstance(part, Signature | Reference):
            found[fid] = part
    return found


def _walk(obj: object, top: bool = False) -> Iterator[object]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if not top:
            yield obj
        for f in dataclasses.fields(obj):
            if f.name == "header":
                continue
            yield from _walk(getattr(obj, f.name))
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _walk(item)


def family_of(signature: Signature) -> Algorithm | None:
    """The family a Signature claims by its SignatureMethod (None if not a -20 method)."""
    for algorithm, uri in SIGNATURE_METHOD.items():
        if signature.signed_info.signature_method == uri:
            return algorithm
    return None


__all__ = [
    "DIGEST_METHOD",
    "SIGNATURE_METHOD",
    "Canonicalizer",
    "check_signature",
    "digest",
    "family_of",
    "sign",
    "signable_parts",
    "verify",
    "verify_signature_value",
]
