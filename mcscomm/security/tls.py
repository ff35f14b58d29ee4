"""TLS 1.3 contexts with the ISO 15118-20 profile and mutual authentication (facts §6.1).

Profile, enforced on both sides:

* TLS 1.3 only (V2G20-1235/1237/2356); the SECC is the server (V2G20-2374);
* cipher suites ``TLS_AES_256_GCM_SHA384`` then ``TLS_CHACHA20_POLY1305_SHA256`` (Table 6), the
  server's order wins; ``TLS_AES_128_GCM_SHA256`` is not offered or accepted;
* named groups secp521r1 and x448 (Table 7), the configured family first (V2G20-2320);
* signature algorithms ecdsa_secp521r1_sha512 and ed448 (Table 8), also in the SECC's
  CertificateRequest, the configured family first;
* the SECC always requests the client certificate (V2G20-2400), lists the OEM root DN in
  ``certificate_authorities`` (V2G20-2401) and verifies the OEM provisioning chain to the OEM root;
* the EVCC verifies the SECC chain to the V2G root, signals that root in ``certificate_authorities``
  and presents its OEM provisioning chain. There is **no hostname check**: ISO 15118 has no host
  names (the SECC is found by SDP by IP address), trust comes from the V2G root alone.

Python's ``ssl`` sets the version, the verify mode and the certificates; the suites, groups,
sigalgs and CA lists are set through :mod:`mcscomm.security.openssl` (see there for why and how).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from mcscomm.security import openssl
from mcscomm.security.errors import PkiError, TlsError, TlsHandshakeFailed, TlsProfileUnavailable
from mcscomm.security.pki import Algorithm, Manifest, load_manifest

log = logging.getLogger(__name__)

#: Table 6, in the order the SECC prefers them.
CIPHERSUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
#: Table 7 (OpenSSL names), configured family first.
GROUPS: dict[Algorithm, tuple[str, ...]] = {
    "secp521r1": ("secp521r1", "X448"),
    "ed448": ("X448", "secp521r1"),
}
#: Table 8 (OpenSSL names), configured family first.
SIGALGS: dict[Algorithm, tuple[str, ...]] = {
    "secp521r1": ("ecdsa_secp521r1_sha512", "ed448"),
    "ed448": ("ed448", "ecdsa_secp521r1_sha512"),
}


@dataclass(frozen=True)
class KeyLog:
    """Where to disclose TLS secrets for Wireshark; both off by default.

    ``path``: NSS key-log lines appended to a file. ``udp``: each line sent as one UDP datagram
    to ``(host, port)`` from the first free source port from 49152 up, as ISO 15118-20 testers
    and EVerest do (facts §1.2; dsV2Gshark decodes them). For testing only: anyone who sees the
    datagrams can decrypt the session.
    """

    path: Path | None = None
    udp: tuple[str, int] | None = None


class _KeyLogSink:
    """The OpenSSL keylog callback target (called with the GIL held by ctypes)."""

    def __init__(self, config: KeyLog) -> None:
        self.config = config
        self.sock: socket.socket | None = None
        if config.udp is not None:
            host, port = config.udp
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            self.address = address
            self.sock = _bind_from(family, 49152)
        self.callback = openssl.KEYLOG_CALLBACK(self._on_line)

    def _on_line(self, _ssl: int | None, line: bytes | None) -> None:
        if not line:
            return
        try:
            if self.config.path is not None:
                with open(self.config.path, "ab") as fh:
                    fh.write(line + b"\n")
            if self.sock is not None:
                self.sock.sendto(line + b"\n", self.address)
        except OSError as exc:  # never let a logging problem break a handshake
            log.error("TLS key log: %s", exc)


def _bind_from(family: int, first_port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for port in range(first_port, 65536):
        try:
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
            return sock
        except OSError:
            continue
    sock.close()
    raise TlsError(f"no free UDP source port from {first_port} up for TLS key logging")


def _manifest(pki: Manifest | Path | str) -> Manifest:
    return pki if isinstance(pki, Manifest) else load_manifest(pki)


def apply_profile(
    ctx: ssl.SSLContext, algorithm: Algorithm, ca_file: Path | None = None, *, server: bool
) -> None:
    """Restrict ``ctx`` to the -20 profile of ``algorithm``; TlsProfileUnavailable if impossible.

    ``ca_file`` is the trust root whose DN goes into ``certificate_authorities``.
    """
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    libssl = openssl.lib()
    pointer = openssl.ssl_ctx_pointer(ctx)
    groups = ":".join(GROUPS[algorithm]).encode()
    sigalgs = ":".join(SIGALGS[algorithm]).encode()
    steps = [
        (
            "cipher suites",
            libssl.SSL_CTX_set_ciphersuites(pointer, ":".join(CIPHERSUITES).encode()),
        ),
        ("groups", libssl.SSL_CTX_ctrl(pointer, openssl.SSL_CTRL_SET_GROUPS_LIST, 0, groups)),
        ("sigalgs", libssl.SSL_CTX_ctrl(pointer, openssl.SSL_CTRL_SET_SIGALGS_LIST, 0, sigalgs)),
        # The client sigalgs list is what a server puts into its CertificateRequest.
        (
            "client sigalgs",
            libssl.SSL_CTX_ctrl(pointer, openssl.SSL_CTRL_SET_CLIENT_SIGALGS_LIST, 0, sigalgs),
        ),
    ]
    for what, result in steps:
        if result != 1:
            raise TlsProfileUnavailable(f"{ssl.OPENSSL_VERSION} refused the -20 {what}")
    if ca_file is not None:
        names = libssl.SSL_load_client_CA_file(str(ca_file).encode())
        if not names:
            raise TlsProfileUnavailable(f"cannot read CA names from {ca_file}")
        # Server: CertificateRequest.certificate_authorities (V2G20-2401). Client: the
        # ClientHello extension that tells the SECC which root to chain to (V2G20-2399).
        if server:
            libssl.SSL_CTX_set_client_CA_list(pointer, names)
        else:
            libssl.SSL_CTX_set0_CA_list(pointer, names)
    level = ctx.minimum_version
    if libssl.SSL_CTX_ctrl(pointer, openssl.SSL_CTRL_GET_MIN_PROTO_VERSION, 0, None) != int(level):
        raise TlsProfileUnavailable("TLS 1.3-only setting did not reach OpenSSL")


def _apply_or_degrade(
    ctx: ssl.SSLContext,
    algorithm: Algorithm,
    ca_file: Path,
    *,
    server: bool,
    allow_degraded: bool,
) -> None:
    try:
        apply_profile(ctx, algorithm, ca_file, server=server)
    except TlsProfileUnavailable as exc:
        if not allow_degraded:
            raise
        # What plain Python can still do: TLS 1.3 only and one ECDHE group.
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        with contextlib.suppress(ValueError, ssl.SSLError):
            ctx.set_ecdh_curve("secp521r1")
        ctx._mcscomm_degraded = str(exc)  # type: ignore[attr-defined]
        log.error(
            "ISO 15118-20 TLS PROFILE NOT ENFORCED (%s): TLS 1.3 with group secp521r1 only; "
            "cipher suites and signature algorithms are OpenSSL's defaults",
            exc,
        )


def _install_keylog(ctx: ssl.SSLContext, keylog: KeyLog | None) -> None:
    if keylog is None or (keylog.path is None and keylog.udp is None):
        return
    if getattr(ctx, "_mcscomm_degraded", None):
        if keylog.path is not None:
            ctx.keylog_filename = str(keylog.path)  # Python's own NSS key-log file writer
            log.warning("TLS KEY LOGGING IS ON (file %s): testing only", keylog.path)
        if keylog.udp is not None:
            log.error("TLS key log over UDP needs the OpenSSL bridge; not sending datagrams")
        return
    sink = _KeyLogSink(keylog)
    openssl.lib().SSL_CTX_set_keylog_callback(openssl.ssl_ctx_pointer(ctx), sink.callback)
    ctx._mcscomm_keylog = sink  # type: ignore[attr-defined]  # keeps the callback alive
    log.warning(
        "TLS KEY LOGGING IS ON (%s%s): these secrets decrypt the session; testing only",
        f"file {keylog.path}" if keylog.path else "",
        f" udp {keylog.udp[0]}:{keylog.udp[1]}" if keylog.udp else "",
    )


def secc_context(
    pki: Manifest | Path | str, *, keylog: KeyLog | None = None, allow_degraded: bool = False
) -> ssl.SSLContext:
    """Server context: SECC leaf chain, client certificate required and verified to the OEM root.

    TlsProfileUnavailable if the -20 profile cannot be set, unless ``allow_degraded`` (then one
    ERROR line and a TLS 1.3 context with OpenSSL's default suites and sigalgs).
    """
    manifest = _manifest(pki)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    oem_root = _load_files(ctx, manifest, "secc_leaf", "oem_root")
    ctx.verify_mode = ssl.CERT_REQUIRED  # V2G20-2400: always send CertificateRequest
    _apply_or_degrade(ctx, manifest.algorithm, oem_root, server=True, allow_degraded=allow_degraded)
    _install_keylog(ctx, keylog)
    return ctx


def _load_files(ctx: ssl.SSLContext, manifest: Manifest, leaf: str, trust: str) -> Path:
    """Load our ``leaf`` chain and key and the ``trust`` root into ``ctx``; returns the root's
    file. PkiError naming the role when OpenSSL rejects a file (its own message says nothing
    of which)."""
    role = manifest.roles[leaf]
    assert role.chain is not None and role.key is not None  # guaranteed by load_manifest
    try:
        ctx.load_cert_chain(role.chain, role.key)
    except (ssl.SSLError, OSError) as exc:
        raise PkiError(f"cannot load {leaf} chain/key from {manifest.directory}: {exc}") from None
    root = manifest.roles[trust].cert
    try:
        ctx.load_verify_locations(cafile=root)
    except (ssl.SSLError, OSError) as exc:
        raise PkiError(f"cannot load {trust} from {root}: {exc}") from None
    return root


def evcc_context(
    pki: Manifest | Path | str, *, keylog: KeyLog | None = None, allow_degraded: bool = False
) -> ssl.SSLContext:
    """Client context: verifies the SECC chain to the V2G root (no hostname), presents OEM chain.

    ``allow_degraded`` as for :func:`secc_context`.
    """
    manifest = _manifest(pki)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # ISO 15118 has no host names; trust is the V2G root only
    ctx.verify_mode = ssl.CERT_REQUIRED
    v2g_root = _load_files(ctx, manifest, "oem_prov_leaf", "v2g_root")
    _apply_or_degrade(
        ctx, manifest.algorithm, v2g_root, server=False, allow_degraded=allow_degraded
    )
    _install_keylog(ctx, keylog)
    return ctx


_SIG_NAMES = {("id-ecPublicKey", "SHA512"): "ecdsa_secp521r1_sha512", ("ED448", None): "ed448"}


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """What was negotiated, for the session trace: version, cipher, group, peer signature, peer.

    ``group`` and ``peer_signature`` come from OpenSSL via ctypes and are None if unavailable.
    """
    cipher = ssl_object.cipher()
    info: dict[str, Any] = {
        "version": ssl_object.version(),
        "cipher": cipher[0] if cipher else None,
        "group": None,
        "peer_signature": None,
        "peer_subject": None,
        "peer_issuer": None,
    }
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        cert = x509.load_der_x509_certificate(der)
        info["peer_subject"] = cert.subject.rfc4514_string()
        info["peer_issuer"] = cert.issuer.rfc4514_string()
    pointer = openssl.ssl_pointer(ssl_object)
    if pointer:
        libssl = openssl.lib()
        group = libssl.SSL_ctrl(pointer, openssl.SSL_CTRL_GET_NEGOTIATED_GROUP, 0, None)
        info["group"] = openssl.nid_name(int(group))
        kind, digest = ctypes.c_int(0), ctypes.c_int(0)
        if libssl.SSL_get_peer_signature_type_nid(pointer, ctypes.byref(kind)) == 1:
            libssl.SSL_ctrl(
                pointer, openssl.SSL_CTRL_GET_PEER_SIGNATURE_NID, 0, ctypes.addressof(digest)
            )
            kind_name = openssl.nid_name(kind.value) or str(kind.value)
            digest_name = None if kind_name == "ED448" else openssl.nid_name(digest.value)
            info["peer_signature"] = _SIG_NAMES.get(
                (kind_name, digest_name), f"{kind_name}/{digest_name}"
            )
    return info


_REASONS = {
    "UNSUPPORTED_PROTOCOL": "peer offered no TLS 1.3 (ISO 15118-20 requires TLS 1.3 only)",
    "WRONG_VERSION_NUMBER": "peer offered no TLS 1.3 (ISO 15118-20 requires TLS 1.3 only)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "peer refused TLS 1.3 (ISO 15118-20 requires TLS 1.3 only)",
    "NO_SHARED_CIPHER": "no common cipher suite: -20 allows only " + " and ".join(CIPHERSUITES),
    "NO_SHARED_SIGNATURE_ALGORITHMS": "no common signature algorithm: -20 allows "
    "ecdsa_secp521r1_sha512 and ed448 only",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "peer aborted the handshake (no common suite, group or "
    "signature algorithm of the -20 profile)",
    "NO_SUITABLE_KEY_SHARE": "no common key-exchange group: -20 allows secp521r1 and x448 only",
    "NO_SHARED_GROUPS": "no common key-exchange group: -20 allows secp521r1 and x448 only",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "no common signature algorithm: -20 allows "
    "ecdsa_secp521r1_sha512 and ed448 only",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "peer sent no certificate (mutual authentication is "
    "mandatory, V2G20-2400)",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "peer requires our certificate and we sent none",
    "SSLV3_ALERT_BAD_CERTIFICATE": "peer rejected our certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "peer does not trust our certificate chain (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "peer rejected our certificate as expired",
}

_VERIFY_REASONS = {
    10: "peer certificate chain expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    9: "peer certificate chain not yet valid",  # X509_V_ERR_CERT_NOT_YET_VALID
    2: "peer chain does not lead to our trusted root (unknown issuer)",
    20: "peer chain does not lead to our trusted root (unknown issuer)",
    7: "peer chain does not lead to our trusted root (signature does not match our root)",
    19: "peer chain ends in a root we do not trust",
    18: "peer certificate is self-signed and not trusted",
}


def explain_handshake_error(exc: BaseException) -> str:
    """A one-line, human reason for a failed TLS handshake (for the log and the trace)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = int(getattr(exc, "verify_code", 0) or 0)
        detail = getattr(exc, "verify_message", "") or str(exc)
        return f"{_VERIFY_REASONS.get(code, 'peer certificate rejected')}: {detail}"
    if isinstance(exc, ssl.SSLError):
        reason = str(getattr(exc, "reason", None) or "")
        text = _REASONS.get(reason)
        if text:
            return f"{text} [{reason}]"
        return f"TLS error {reason or exc.__class__.__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return "TLS handshake timed out"
    if isinstance(exc, ConnectionError | EOFError):
        return f"peer closed the connection during the TLS handshake ({exc.__class__.__name__})"
    return f"TLS handshake failed: {exc!r}"


async def secc_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    handshake_timeout: float = 10.0,
) -> dict[str, Any]:
    """Upgrade an accepted TCP connection to TLS; returns :func:`describe` of it.

    Use with ``asyncio.start_server`` *without* ``ssl=``: asyncio drops server-side handshake
    errors silently (they are OSErrors), this hook logs one WARNING line with the reason and
    raises :class:`TlsHandshakeFailed`; the caller closes the writer.
    """
    peer = writer.get_extra_info("peername")
    try:
        await writer.start_tls(context, ssl_handshake_timeout=handshake_timeout)
    except (OSError, EOFError, TimeoutError) as exc:
        reason = explain_handshake_error(exc)
        log.warning("TLS handshake with %s refused: %s", _peer(peer), reason)
        raise TlsHandshakeFailed(reason) from exc
    ssl_object = writer.get_extra_info("ssl_object")
    info = describe(ssl_object)
    log.info("TLS with %s: %s", _peer(peer), info)
    return info


async def evcc_connect(
    host: str, port: int, context: ssl.SSLContext, handshake_timeout: float = 10.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
    """Open a TLS connection to an SECC; TlsHandshakeFailed (logged) with the reason on failure.

    In TLS 1.3 the SECC judges our certificate after our handshake completes; a rejection then
    shows up as an error on the first read, which callers should pass to
    :func:`explain_handshake_error`.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=context, server_hostname="", ssl_handshake_timeout=handshake_timeout
            ),
            handshake_timeout + 1.0,
        )
    except (OSError, EOFError, TimeoutError) as exc:
        reason = explain_handshake_error(exc)
        log.warning("TLS handshake with %s refused: %s", _peer((host, port)), reason)
        raise TlsHandshakeFailed(reason) from exc
    info = describe(writer.get_extra_info("ssl_object"))
    log.info("TLS with %s: %s", _peer((host, port)), info)
    return reader, writer, info


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
