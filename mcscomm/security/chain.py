"""Certificate path validation for signers: contract → MO root, OEM → OEM root, CPS → V2G root.

Two layers:

1. our own minimal RFC 5280 checks, always run. They are needed because ``cryptography``'s
   verifier (``cryptography.x509.verification``, a Web PKI profile) forbids Ed448 keys
   ("Forbidden public key algorithm") and cannot validate the Ed448 family at all. Checked:
   validity of every certificate at ``now``, issuer/subject name chaining, basicConstraints
   CA:TRUE and keyCertSign on every issuer, path length limits, the chain ending in exactly the
   trusted root, and (unless layer 2 runs) each signature made by the next certificate's key;
2. for secp521r1 leaf signers additionally ``cryptography``'s ``PolicyBuilder`` /
   ``ClientVerifier`` with the Web PKI CA policy (critical basicConstraints, key identifiers,
   signature algorithm rules, path building, signatures) and a relaxed end-entity policy, since
   -20 leaves carry no subjectAltName and not every leaf has a TLS extended key usage.

Validity failures raise :class:`ExpiredChain` (:class:`ChainNotYetValid` before notBefore); every
other failure :class:`UntrustedChain`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification

from mcscomm.security.errors import ChainNotYetValid, ExpiredChain, UntrustedChain
from mcscomm.security.pki import algorithm_of


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def check_validity(certs: Sequence[x509.Certificate], now: dt.datetime) -> None:
    """ExpiredChain if any certificate is outside its validity period at ``now``."""
    for cert in certs:
        if now < cert.not_valid_before_utc:
            raise ChainNotYetValid(
                f"{_describe(cert)} not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z"
            )
        if now > cert.not_valid_after_utc:
            raise ExpiredChain(
                f"{_describe(cert)} expired {cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z"
            )


def verify_chain(
    chain: Sequence[x509.Certificate],
    trust_root: x509.Certificate,
    now: dt.datetime | None = None,
) -> None:
    """Check that ``chain`` (signer first, then its Sub-CAs, root optional) leads to ``trust_root``.

    The signer may be a leaf (CA:FALSE, digitalSignature) or, for price schedules signed with
    the eMSP Sub-CA 2 key (facts §6.2 Table 17), a CA certificate.
    """
    if not chain:
        raise UntrustedChain("empty signer certificate chain")
    now = now or dt.datetime.now(dt.UTC)
    certs = list(chain)
    if certs[-1] == trust_root:
        certs.pop()
    if trust_root in certs:
        raise UntrustedChain("trust root in the middle of the chain")
    check_validity([*certs, trust_root], now)
    try:
        algorithm_of(certs[0].public_key())
    except Exception as exc:
        raise UntrustedChain(f"signer key: {exc}") from None
    signer_is_ca = _is_ca(certs[0])
    # P-521 leaf chains: signatures are checked once, by cryptography's verifier (see module doc).
    webpki = algorithm_of(trust_root.public_key()) == "secp521r1" and not signer_is_ca
    path = [*certs, trust_root]
    for depth, (child, issuer) in enumerate(itertools.pairwise(path)):
        if child.issuer != issuer.subject:
            raise UntrustedChain(
                f"{_describe(child)} is issued by {child.issuer.rfc4514_string()}, "
                f"not by {_describe(issuer)}"
            )
        if not webpki:  # otherwise cryptography's verifier below checks the signature
            try:
                child.verify_directly_issued_by(issuer)
            except (InvalidSignature, ValueError, TypeError) as exc:
                raise UntrustedChain(
                    f"{_describe(child)}: signature does not verify with {_describe(issuer)} "
                    f"({exc.__class__.__name__})"
                ) from None
        _check_ca(issuer, intermediates_below=depth)
    if not signer_is_ca:
        ku = _key_usage(certs[0])
        if ku is not None and not ku.digital_signature:
            raise UntrustedChain(f"{_describe(certs[0])} lacks keyUsage digitalSignature")
    if webpki:
        _webpki_verify(certs, trust_root, now)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _check_ca(issuer: x509.Certificate, intermediates_below: int) -> None:
    try:
        bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise UntrustedChain(f"{_describe(issuer)} issues certificates but is no CA") from None
    if not bc.ca:
        raise UntrustedChain(f"{_describe(issuer)} issues certificates but has CA:FALSE")
    # pathLenConstraint counts the CA certificates below this one, excluding the end entity.
    if bc.path_length is not None and intermediates_below > bc.path_length:
        raise UntrustedChain(f"{_describe(issuer)}: path length {bc.path_length} exceeded")
    ku = _key_usage(issuer)
    if ku is not None and not ku.key_cert_sign:
        raise UntrustedChain(f"{_describe(issuer)} lacks keyUsage keyCertSign")


def _webpki_verify(
    certs: Sequence[x509.Certificate], trust_root: x509.Certificate, now: dt.datetime
) -> None:
    policy = verification.ExtensionPolicy
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store([trust_root]))
        .time(now)
        .extension_policies(ca_policy=policy.webpki_defaults_ca(), ee_policy=policy.permit_all())
    )
    try:
        builder.build_client_verifier().verify(certs[0], list(certs[1:]))
    except verification.VerificationError as exc:
        raise UntrustedChain(f"chain rejected by X.509 path validation: {exc}") from None
