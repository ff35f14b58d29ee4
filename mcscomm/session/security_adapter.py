"""``SignaturePort`` on top of ``mcscomm.security`` (xmldsig + PKI manifest) and a codec.

Keys and certificates are loaded once per adapter (one adapter can serve many sessions).
Certificate validity is checked at the session's ``now`` when it is Unix time; with a virtual
clock (``now`` near zero) the current wall time is used, because a virtual session has no
calendar date of its own.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mcscomm.messages.xmldsig import Signature
from mcscomm.security import xmldsig
from mcscomm.security.errors import UnknownReference
from mcscomm.security.pki import Manifest, PrivateKey
from mcscomm.security.xmldsig import Canonicalizer

_UNIX_TIME_FLOOR = 1_000_000_000.0


class ManifestSignatures:
    """Sign with the manifest's keys and verify against its roots."""

    def __init__(self, manifest: Manifest, codec: Canonicalizer) -> None:
        self.manifest = manifest
        self.codec = codec
        self._keys: dict[str, PrivateKey] = {}
        self._chains: dict[str, list[bytes]] = {}
        self._roots: dict[str, x509.Certificate] = {}

    def _key(self, role: str) -> PrivateKey:
        if role not in self._keys:
            self._keys[role] = self.manifest.private_key(role)
        return self._keys[role]

    def sign(self, fragment: object, role: str) -> Signature:
        return xmldsig.sign([fragment], self._key(role), self.codec)

    def verify(
        self,
        signature: Signature | None,
        fragment: object,
        chain: list[bytes],
        trust: str,
        now: float,
    ) -> None:
        if trust not in self._roots:
            self._roots[trust] = self.manifest.certificate(trust)
        fid = getattr(fragment, "id", None)
        if not isinstance(fid, str):
            raise UnknownReference("signed part without Id")
        when = now if now >= _UNIX_TIME_FLOOR else None
        xmldsig.verify(signature, {fid: fragment}, chain, self._roots[trust], self.codec, when)

    def chain(self, role: str) -> list[bytes]:
        if role not in self._chains:
            self._chains[role] = [c.public_bytes(Encoding.DER) for c in self.manifest.chain(role)]
        return self._chains[role]
