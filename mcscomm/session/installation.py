"""CertificateInstallation (facts §4.3 row 2a, §6.2 Table 17): a truck without a contract gets one.

EVCC: ``CertificateInstallationReq`` with its OEM provisioning chain (the signed part, OEM
provisioning key) and the roots it trusts. SECC (standing in for the CPS / secondary actor, as
test benches do): verifies the request to the OEM root, then returns the contract chain of the
PKI manifest and its private key encrypted for the truck, in ``SignedInstallationData`` signed
with the CPS key. EVCC: verifies that signature to the V2G root, decrypts the key and checks it
belongs to the delivered contract certificate.

Key transport (our choice, the -20 text was not at hand; documented in docs/session.md):
ephemeral ECDH (secp521r1) with the OEM provisioning leaf's public key, ConcatKDF-SHA-512 to a
256-bit key, AES-256-GCM. The encrypted key is ``IV(12) || ciphertext || tag(16)`` = 94 bytes for
the 66-byte P-521 scalar (the XSD length of SECP521_EncryptedPrivateKey); DHPublicKey is the
133-byte uncompressed P-521 point. The Ed448/X448 family is not supported here yet (the SECC
answers FAILED).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
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


def _kdf(shared: bytes) -> bytes:
    return ConcatKDFHash(hashes.SHA512(), 32, _OTHER_INFO).derive(shared)


def _raw_private(key: Any) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes(_P521_SCALAR, "big")
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.private_bytes(
            Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
    raise TypeError(f"unsupported contract key {type(key).__name__}")


def encrypt_for(recipient: x509.Certificate, secret: bytes) -> tuple[EcdhCurve, bytes, bytes]:
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
    else:
        raise errors.InvalidRequest(
            f"contract key transport supports secp521r1 only, not {type(pub).__name__}"
        )
    sealed = iv + AESGCM(_kdf(shared)).encrypt(iv, secret, None)
    return curve, dh, sealed


def decrypt_with(key: Any, curve: EcdhCurve, dh_public: bytes, sealed: bytes) -> bytes:
    """Inverse of :func:`encrypt_for` with the recipient's private key."""
    if curve is not EcdhCurve.SECP521 or not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError(f"cannot decrypt a {curve.value} key transport")
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), dh_public)
    shared = key.exchange(ec.ECDH(), peer)
    iv, body = sealed[:12], sealed[12:]
    try:
        return AESGCM(_kdf(shared)).decrypt(iv, body, None)
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
    secret = decrypt_with(
        manifest.private_key(OEM_PROVISIONING), data.ecdh_curve, data.dh_public_key, key_bytes
    )
    cert = x509.load_der_x509_certificate(data.contract_certificate_chain.certificate)
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise SignatureError("contract certificate is not secp521r1")
    derived = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP521R1()).public_key()
    if derived.public_numbers() != pub.public_numbers():
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
    curve, dh, sealed = encrypt_for(x509.load_der_x509_certificate(part.certificate), secret)
    data = SignedInstallationData(
        id="installation",
        contract_certificate_chain=ContractCertificateChain(
            certificate=contract[0], sub_certificates=SubCertificates(certificate=contract[1:])
        ),
        ecdh_curve=curve,
        dh_public_key=dh,
        secp521_encrypted_private_key=sealed,
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
