"""What the sessions need for -20 XML signatures (facts §6.2), as a small port.

The session never touches keys or canonicalisation itself: it hands the signable fragment (a typed
message part with an ``Id``) to a :class:`SignaturePort`. The real implementation
(``security_adapter.py``) uses ``mcscomm.security.xmldsig`` with the codec's ``canonicalize``
and the PKI manifest; tests may plug a fake. Verification failures raise
``mcscomm.security.errors.SignatureError`` (or a subclass), which the handlers map to
FAILED_SignatureError / FAILED_MeteringSignatureNotValid.
"""

from __future__ import annotations

from typing import Protocol

from mcscomm.messages.xmldsig import Signature

#: Key/chain roles of the PKI manifest (issue 3 §1).
CONTRACT = "contract_leaf"
OEM_PROVISIONING = "oem_prov_leaf"
CPS = "cps_leaf"
SECC_LEAF = "secc_leaf"
#: Trust anchors of the manifest.
MO_ROOT = "mo_root"
OEM_ROOT = "oem_root"
V2G_ROOT = "v2g_root"


class SignaturePort(Protocol):
    """Sign and verify signable fragments."""

    def sign(self, fragment: object, role: str) -> Signature:
        """A Signature over ``fragment`` (which has an ``id``) with the key of ``role``."""
        ...

    def verify(
        self,
        signature: Signature | None,
        fragment: object,
        chain: list[bytes],
        trust: str,
        now: float,
    ) -> None:
        """Check ``signature`` over ``fragment`` with the leaf of ``chain`` (DER, leaf first)
        chaining to the root ``trust``. Raises SignatureError on any failure."""
        ...

    def chain(self, role: str) -> list[bytes]:
        """The DER certificates of ``role``: leaf first, then its sub-CAs."""
        ...
