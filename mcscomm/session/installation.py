"""CertificateInstallation (facts §4.3 row 2a, §6.2 Table 17): a truck without a contract gets one.

EVCC: ``CertificateInstallationReq`` with its OEM provisioning chain (the signed part, OEM
provisioning key) and the roots it trusts. SECC (standing in for the CPS / secondary actor, as
test benches do): verifies the request to the OEM root, then returns the contract chain of the
PKI manifest and its private key encrypted for the truck, in ``SignedInstallationData`` signed
with the CPS key. EVCC: verifies that signature to the V2G root, decrypts the key and checks it
belongs to the delivered contract certificate.

Key transport (V2G20-2491..2502 as far as the text was at hand; the rest is our choice and
documented in docs/session.md): ephemeral ECDH with the OEM provisioning leaf's public key, whose
key-agreement parameters are derived from its signature key (V2G20-2491), ConcatKDF-SHA-512 to a
256-bit session key, AES-256-GCM with AAD = PCID || SKI of the contract certificate in upper-case
hex (V2G20-2492), ``IV(12) || ciphertext || tag(16)`` (V2G20-2499/2502).

* secp521r1 family: ECDH on P-521; the 66-byte big-endian scalar gives the 94-byte
  SECP521_EncryptedPrivateKey; DHPublicKey is the 133-byte uncompressed point.
* Ed448 family: X448 (V2G20-2319). The OEM provisioning Ed448 public key maps to its X448 public
  key by the Edwards-to-Montgomery map u = y^2/x^2 (RFC 7748 §4.2); the truck's X448 private key
  is its Ed448 secret scalar (RFC 8032 §5.2.5: SHAKE256 of the seed, clamped), so both ends agree
  without a second key pair. The transported "448-bit private key" (V2G20-2500) is the contract
  key's 56-byte secret scalar, giving the 84-byte X448_EncryptedPrivateKey. The 56-byte X448
  DHPublicKey is zero-padded at the end to the XSD's fixed 133 bytes (little-endian, so the value
  is unchanged; the padding is checked to be zero on receipt).
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding

from mcscomm.messages import CertificateInstallationReq, CertificateInstallationRes
from mcscomm.messages.common_messages import (
    CertificateChain,
    ContractCertificateChain,
    SignedCertificateChain,
    SignedInstallationData,
    SubCertificates,
)
from mcscomm.messages.common_types import ListOfRootCertificateIDs, MessageHeader
from mcscomm.messages.enums import EcdhCurve, Processing, ResponseCode
from mcscomm.messages.xmldsig import X509IssuerSerial
from mcscomm.security.errors import SignatureError
from mcscomm.security.pki import Manifest
from mcscomm.session import errors
from mcscomm.session.context import timestamp
from mcscomm.session.signing import CONTRACT, CPS, OEM_PROVISIONING, OEM_ROOT, V2G_ROOT

if TYPE_CHECKING:
    from mcscomm.session.context import SeccContext
    from mcscomm.session.evcc import EvccSession

_OTHER_INFO = b"mcscomm ISO 15118-20 contract key transport"
_P521_SCALAR = 66
_X448_LEN = 56
_DH_PUBLIC_LEN = 133  # XSD dhPublicKeyType (fixed length)

# Curve448 field and Edwards constant (RFC 7748 §4.2, RFC 8032 §5.2)
_P448 = 2**448 - 2**224 - 1
_D448 = -39081 % _P448


def _kdf(shared: bytes) -> bytes:
    return ConcatKDFHash(hashes.SHA512(), 32, _OTHER_INFO).derive(shared)


def ed448_public_to_x448(public: ed448.Ed448PublicKey) -> x448.X448PublicKey:
    """The X448 public key of an Ed448 key pair: u = y^2/x^2 with x^2 = (y^2-1)/(d*y^2-1)
    (RFC 7748 §4.2 map; the Ed448 scalar then works as the X448 private key)."""
    raw = bytearray(public.public_bytes(Encoding.Raw, serialization.PublicFormat.Raw))
    raw[56] &= 0x7F  # the top bit is the sign of x; u depends on x^2 only
    y = int.from_bytes(bytes(raw[:56]), "little") + (raw[56] << 448)
    p = _P448
    y2 = y * y % p
    den = (_D448 * y2 - 1) % p
    x2 = (y2 - 1) * pow(den, p - 2, p) % p
    if x2 == 0 or den == 0:
        raise ValueError("Ed448 public key has no X448 counterpart (x = 0)")
    u = y2 * pow(x2, p - 2, p) % p
    return x448.X448PublicKey.from_public_bytes(u.to_bytes(_X448_LEN, "little"))


def ed448_secret_scalar(key: ed448.Ed448PrivateKey) -> bytes:
    """The clamped secret scalar of an Ed448 key (RFC 8032 §5.2.5), 56 bytes little-endian:
    also a valid X448 private key for :func:`ed448_public_to_x448` of its public key."""
    seed = key.private_bytes(
        Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    h = bytearray(hashlib.shake_256(seed).digest(114)[:57])
    h[0] &= 0xFC
    h[55] |= 0x80
    return bytes(h[:_X448_LEN])  # h[56] is cleared by the clamping: never part of the scalar


def _raw_private(key: Any) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes(_P521_SCALAR, "big")
    if isinstance(key, ed448.Ed448PrivateKey):
        return ed448_secret_scalar(key)
    raise TypeError(f"unsupported contract key {type(key).__name__}")


def installation_aad(pcid: str, contract: x509.Certificate) -> bytes:
    """V2G20-2492: PCID (upper-case, no separators) followed by the contract certificate's
    SubjectKeyIdentifier as upper-case hex."""
    try:
        ski = contract.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(contract.public_key()).digest
    clean = "".join(c for c in pcid.upper() if c.isalnum())
    return clean.encode("ascii", "replace") + ski.hex().upper().encode("ascii")


def pcid_of(oem_provisioning: x509.Certificate) -> str:
    """The PCID: the OEM provisioning certificate's CommonName (as our PKI issues it)."""
    names = oem_provisioning.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def encrypt_for(
    recipient: x509.Certificate, secret: bytes, aad: bytes | None = None
) -> tuple[EcdhCurve, bytes, bytes]:
    """(curve, DHPublicKey 133 B, IV||ciphertext||tag) for ``recipient``'s public key."""
    pub = recipient.public_key()
    iv = os.urandom(12)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        eph = ec.generate_private_key(ec.SECP521R1())
        shared = eph.exchange(ec.ECDH(), pub)
        dh = eph.public_key().public_bytes(
            Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        curve = EcdhCurve.SECP521
    elif isinstance(pub, ed448.Ed448PublicKey):
        try:
            peer = ed448_public_to_x448(pub)
        except ValueError as exc:
            raise errors.InvalidRequest(f"OEM provisioning key unusable for X448: {exc}") from exc
        eph_x = x448.X448PrivateKey.generate()
        shared = eph_x.exchange(peer)
        raw = eph_x.public_key().public_bytes(Encoding.Raw, serialization.PublicFormat.Raw)
        dh = raw + bytes(_DH_PUBLIC_LEN - len(raw))
        curve = EcdhCurve.X448
    else:
        raise errors.InvalidRequest(
            f"contract key transport supports secp521r1 and Ed448/X448, not {type(pub).__name__}"
        )
    sealed = iv + AESGCM(_kdf(shared)).encrypt(iv, secret, aad)
    return curve, dh, sealed


def decrypt_with(
    key: Any, curve: EcdhCurve, dh_public: bytes, sealed: bytes, aad: bytes | None = None
) -> bytes:
    """Inverse of :func:`encrypt_for` with the recipient's private key."""
    try:
        if curve is EcdhCurve.SECP521 and isinstance(key, ec.EllipticCurvePrivateKey):
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), dh_public)
            shared = key.exchange(ec.ECDH(), peer)
        elif curve is EcdhCurve.X448 and isinstance(key, ed448.Ed448PrivateKey):
            if any(dh_public[_X448_LEN:]):
                raise SignatureError("X448 DHPublicKey padding is not zero")
            mine = x448.X448PrivateKey.from_private_bytes(ed448_secret_scalar(key))
            shared = mine.exchange(x448.X448PublicKey.from_public_bytes(dh_public[:_X448_LEN]))
        else:
            raise SignatureError(f"cannot decrypt a {curve.value} key transport")
    except SignatureError:
        raise
    except Exception as exc:  # an off-curve or low-order point from the peer
        raise SignatureError(f"bad DHPublicKey: {type(exc).__name__}: {exc}") from exc
    iv, body = sealed[:12], sealed[12:]
    try:
        return AESGCM(_kdf(shared)).decrypt(iv, body, aad)
    except Exception as exc:  # InvalidTag: the key was not for us or was tampered with
        raise SignatureError("contract key does not decrypt (InvalidTag)") from exc


def _issuer_serial(cert: x509.Certificate) -> X509IssuerSerial:
    return X509IssuerSerial(
        x509_issuer_name=cert.issuer.rfc4514_string(), x509_serial_number=cert.serial_number
    )


# -- EVCC ------------------------------------------------------------------------------------------
def build_installation_request(session: EvccSession, now: float) -> CertificateInstallationReq:
    """The truck's CertificateInstallationReq, signed with its OEM provisioning key."""
    sig = session.signatures
    manifest = session.config.pki
    if sig is None or not isinstance(manifest, Manifest):
        raise RuntimeError("CertificateInstallation needs the PKI manifest (EvccConfig.pki)")
    chain = sig.chain(OEM_PROVISIONING)
    part = SignedCertificateChain(
        id="oem-prov-chain",
        certificate=chain[0],
        sub_certificates=SubCertificates(certificate=chain[1:]) if chain[1:] else None,
    )
    header = MessageHeader(session_id=session.ctx.session_id, timestamp=timestamp(now))
    header.signature = session.signed(part, OEM_PROVISIONING)
    roots = [manifest.certificate(r) for r in ("mo_root", "v2g_root")]
    return CertificateInstallationReq(
        header=header,
        oem_provisioning_certificate_chain=part,
        list_of_root_certificate_ids=ListOfRootCertificateIDs(
            root_certificate_id=[_issuer_serial(c) for c in roots]
        ),
        maximum_contract_certificate_chains=1,
    )


def accept_installation(session: EvccSession, res: CertificateInstallationRes, now: float) -> None:
    """Verify the CPS signature, decrypt the contract key and check it fits the certificate.
    Raises SignatureError on any failure."""
    sig = session.signatures
    manifest = session.config.pki
    if sig is None or not isinstance(manifest, Manifest):
        raise SignatureError("no PKI to verify the installation")
    cps = res.cps_certificate_chain
    cps_chain = [
        cps.certificate,
        *(cps.sub_certificates.certificate if cps.sub_certificates else []),
    ]
    data = res.signed_installation_data
    sig.verify(res.header.signature, data, cps_chain, V2G_ROOT, now)
    key_bytes = data.secp521_encrypted_private_key or data.x448_encrypted_private_key
    if key_bytes is None:
        raise SignatureError("no encrypted contract key for our curve")
    cert = x509.load_der_x509_certificate(data.contract_certificate_chain.certificate)
    oem = x509.load_der_x509_certificate(sig.chain(OEM_PROVISIONING)[0])
    aad = installation_aad(pcid_of(oem), cert)
    secret = decrypt_with(
        manifest.private_key(OEM_PROVISIONING), data.ecdh_curve, data.dh_public_key, key_bytes, aad
    )
    pub = cert.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        derived = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP521R1()).public_key()
        ok = derived.public_numbers() == pub.public_numbers()
    elif isinstance(pub, ed448.Ed448PublicKey):
        # the scalar's X448 public key must be the contract key's Montgomery image
        raw = Encoding.Raw, serialization.PublicFormat.Raw
        mine = x448.X448PrivateKey.from_private_bytes(secret).public_key().public_bytes(*raw)
        ok = mine == ed448_public_to_x448(pub).public_bytes(*raw)
    else:
        raise SignatureError(f"unsupported contract certificate key {type(pub).__name__}")
    if not ok:
        raise SignatureError("decrypted key does not belong to the contract certificate")


# -- SECC ------------------------------------------------------------------------------------------
def certificate_installation(
    req: CertificateInstallationReq, ctx: SeccContext, header: MessageHeader
) -> CertificateInstallationRes:
    """Serve a CertificateInstallationReq (the SECC stands in for the CPS)."""
    manifest = ctx.config.pki
    sig = ctx.signatures
    if sig is None or not isinstance(manifest, Manifest):
        raise errors.InvalidRequest("no PKI to install contract certificates from")
    part = req.oem_provisioning_certificate_chain
    oem_chain = [
        part.certificate,
        *(part.sub_certificates.certificate if part.sub_certificates else []),
    ]
    if not ctx.config.faults.accept_bad_signature:
        try:
            sig.verify(req.header.signature, part, oem_chain, OEM_ROOT, ctx.now)
        except SignatureError as exc:
            raise errors.SignatureFailure(f"CertificateInstallationReq: {exc}") from exc
    contract = sig.chain(CONTRACT)
    secret = _raw_private(manifest.private_key(CONTRACT))
    oem = x509.load_der_x509_certificate(part.certificate)
    aad = installation_aad(pcid_of(oem), x509.load_der_x509_certificate(contract[0]))
    curve, dh, sealed = encrypt_for(oem, secret, aad)
    x448_family = curve is EcdhCurve.X448
    data = SignedInstallationData(
        id="installation",
        contract_certificate_chain=ContractCertificateChain(
            certificate=contract[0], sub_certificates=SubCertificates(certificate=contract[1:])
        ),
        ecdh_curve=curve,
        dh_public_key=dh,
        secp521_encrypted_private_key=None if x448_family else sealed,
        x448_encrypted_private_key=sealed if x448_family else None,
    )
    header.signature = sig.sign(data, CPS)
    cps = sig.chain(CPS)
    ctx.contract_installed = True
    return CertificateInstallationRes(
        header=header,
        response_code=ResponseCode.OK,
        evse_processing=Processing.FINISHED,
        cps_certificate_chain=CertificateChain(
            certificate=cps[0], sub_certificates=SubCertificates(certificate=cps[1:])
        ),
        signed_installation_data=data,
        remaining_contract_certificate_chains=0,
    )
