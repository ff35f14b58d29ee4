"""Typed errors of the security layer: PKI files, TLS handshakes, XML signatures.

Every failure caused by bad input (a peer's certificate, a signature, a broken PKI directory)
is one of these, so callers can map it to a protocol reaction (e.g. ``FAILED_SignatureError``)
without catching anything broader.
"""

from __future__ import annotations


class SecurityError(Exception):
    """Base class of every error raised by :mod:`mcscomm.security`."""


class PkiError(SecurityError):
    """A PKI directory is missing, incomplete or would be overwritten."""


class PkiExists(PkiError):
    """``init_pki`` refused to overwrite an existing PKI (pass ``force=True``)."""


class TlsError(SecurityError):
    """A TLS context could not be built with the ISO 15118-20 profile."""


class TlsProfileUnavailable(TlsError):
    """The OpenSSL behind :mod:`ssl` cannot be configured with the -20 profile."""


class TlsHandshakeFailed(TlsError):
    """A TLS handshake failed; ``reason`` is a one-line explanation for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureError(SecurityError):
    """An XML signature did not verify (base of the -20 signature failure kinds)."""


class DigestMismatch(SignatureError):
    """A Reference's DigestValue does not match the referenced element as received."""


class BadSignature(SignatureError):
    """SignatureValue does not verify over SignedInfo with the signer's public key."""


class WrongAlgorithm(SignatureError):
    """A method URI or key type is not the -20 profile of the configured family."""


class UnknownReference(SignatureError):
    """A Reference URI names no element, or a signed element has no Reference."""


class UntrustedChain(SignatureError):
    """The signer's certificate chain does not lead to the expected trust root."""


class ExpiredChain(SignatureError):
    """A certificate of the signer's chain is outside its validity period at ``now``
    (expired; the subclass :class:`ChainNotYetValid` for not yet valid)."""


class ChainNotYetValid(ExpiredChain):
    """A certificate of the signer's chain is not yet valid at ``now`` (before notBefore)."""
