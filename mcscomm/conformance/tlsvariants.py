"""TLS contexts the TLS cases need: the -20 profile, and deliberately wrong variants.

The tester probes an SUT with a context that breaks exactly one rule (TLS 1.2 only, an
AES-128 suite, a P-256 group, no client certificate, a chain from an unknown root, an expired
leaf under the right root) and judges whether the SUT refuses. The same helpers build the
broken in-process SUT variants of :mod:`mcscomm.conformance.faults`.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mcscomm.security import openssl, pki, tls
from mcscomm.security.pki import Manifest


def _set(ctx: ssl.SSLContext, *, suites: str | None = None, groups: str | None = None) -> None:
    libssl = openssl.lib()
    pointer = openssl.ssl_ctx_pointer(ctx)
    if suites is not None and libssl.SSL_CTX_set_ciphersuites(pointer, suites.encode()) != 1:
        raise ssl.SSLError(f"OpenSSL refused suites {suites}")
    if (
        groups is not None
        and libssl.SSL_CTX_ctrl(pointer, openssl.SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) != 1
    ):
        raise ssl.SSLError(f"OpenSSL refused groups {groups}")


def _client(
    manifest: Manifest | None, *, cert_role: str | None = "oem_prov_leaf"
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if manifest is not None and cert_role is not None:
        role = manifest.roles[cert_role]
        assert role.chain is not None and role.key is not None
        ctx.load_cert_chain(role.chain, role.key)
    return ctx


def client_context(manifest: Manifest, variant: str = "good") -> ssl.SSLContext:
    """A tester EVCC context: ``good`` (-20 profile), ``tls12``, ``aes128``, ``p256``,
    ``no_cert``; other PKIs are passed as ``manifest`` (unknown root, expired leaf)."""
    if variant == "good":
        return tls.evcc_context(manifest)
    if variant == "noverify":
        # the -20 profile with this manifest's client chain, not judging the server (the case
        # tests the server's judgement of *our* chain)
        ctx = tls.evcc_context(manifest)
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if variant == "tls12":
        ctx = _client(manifest)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    if variant == "aes128":
        ctx = _client(manifest)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        _set(ctx, suites="TLS_AES_128_GCM_SHA256")
        return ctx
    if variant == "p256":
        ctx = _client(manifest)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        _set(ctx, groups="prime256v1")
        return ctx
    if variant == "no_cert":
        ctx = tls.evcc_context(manifest)
        fresh = _client(None, cert_role=None)
        fresh.minimum_version = fresh.maximum_version = ssl.TLSVersion.TLSv1_3
        tls.apply_profile(fresh, manifest.algorithm, None, server=False)
        del ctx
        return fresh
    raise ValueError(f"unknown client variant {variant!r}")


def server_context(
    manifest: Manifest, variant: str = "good", client_root: Manifest | None = None
) -> ssl.SSLContext:
    """A tester SECC context: ``good``, ``tls12`` (TLS 1.2 only), ``permissive`` (TLS 1.2 and
    1.3, every suite and group: shows what the EVCC picks by itself). The server certificate
    comes from ``manifest``; client certificates are checked against ``client_root`` (default
    the same manifest) when presented."""
    if variant == "good":
        return tls.secc_context(manifest)
    role = manifest.roles["secc_leaf"]
    assert role.chain is not None and role.key is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(role.chain, role.key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=(client_root or manifest).roles["oem_root"].cert)
    if variant == "tls12":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    if variant == "permissive":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    if variant == "aes128":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        _set(ctx, suites="TLS_AES_128_GCM_SHA256")
        return ctx
    if variant == "p256":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        _set(ctx, groups="prime256v1")
        return ctx
    raise ValueError(f"unknown server variant {variant!r}")


def broken_secc_context(manifest: Manifest, defect: str) -> ssl.SSLContext:
    """An SUT SECC context with one defect (faults ``secc_tls*``)."""
    ctx = tls.secc_context(manifest)
    if defect == "tls12":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    elif defect == "any_suite":
        _set(
            ctx,
            suites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
            groups="secp521r1:X448:prime256v1:X25519",
        )
    elif defect == "no_client_auth":
        ctx.verify_mode = ssl.CERT_NONE
    else:
        raise ValueError(f"unknown SECC TLS defect {defect!r}")
    return ctx


def broken_evcc_context(manifest: Manifest, defect: str) -> ssl.SSLContext:
    """An SUT EVCC context with one defect (faults ``evcc_tls*``)."""
    if defect == "tls12":
        ctx = tls.evcc_context(manifest)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    if defect == "any_suite":
        ctx = tls.evcc_context(manifest)
        _set(
            ctx,
            suites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
            groups="secp521r1:X448:prime256v1:X25519",
        )
        return ctx
    if defect == "trust_any":
        ctx = tls.evcc_context(manifest)
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if defect == "no_client_cert":
        return client_context(manifest, "no_cert")
    raise ValueError(f"unknown EVCC TLS defect {defect!r}")


class PkiSet:
    """The PKIs the TLS and signature cases need, made once per run under ``base``:
    ``good`` (shared with the SUT), ``other`` (same names, unknown roots) and ``expired``
    (the good roots and Sub-CAs, leaves that expired yesterday)."""

    def __init__(self, good: Manifest, base: Path | None = None) -> None:
        self.good = good
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="mcscomm-tc-"))
        self._other: Manifest | None = None
        self._expired: Manifest | None = None

    @property
    def other(self) -> Manifest:
        if self._other is None:
            self._other = pki.ensure_pki(
                self.base / f"other-{self.good.algorithm}", self.good.algorithm
            )
        return self._other

    @property
    def expired(self) -> Manifest:
        if self._expired is None:
            self._expired = expired_copy(self.good, self.base / f"expired-{self.good.algorithm}")
        return self._expired


_LEAF_ISSUERS = {
    "secc_leaf": "cpo_sub_ca2",
    "oem_prov_leaf": "oem_sub_ca2",
    "contract_leaf": "mo_sub_ca2",
    "cps_leaf": "cps_sub_ca2",
}


def expired_copy(good: Manifest, directory: Path) -> Manifest:
    """A copy of ``good`` whose leaves expired yesterday, signed by the same Sub-CAs (so only
    the validity period is wrong). Reused when it exists."""
    import json
    import shutil

    if (directory / "manifest.json").exists():
        return pki.load_manifest(directory)
    staging = Path(
        tempfile.mkdtemp(
            prefix=".expired-", dir=directory.parent if directory.parent.exists() else None
        )
    )
    directory.parent.mkdir(parents=True, exist_ok=True)
    for f in good.directory.iterdir():
        shutil.copy2(f, staging / f.name)
    now = dt.datetime.now(dt.UTC)
    for leaf, issuer_name in _LEAF_ISSUERS.items():
        if leaf not in good.roles:
            continue
        old = good.certificate(leaf)
        issuer_key = good.extra_key(issuer_name)
        issuer = x509.load_pem_x509_certificate(
            (good.directory / f"{issuer_name}.pem").read_bytes()
        )
        key = good.private_key(leaf)
        builder = (
            x509.CertificateBuilder()
            .subject_name(old.subject)
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now - dt.timedelta(days=1))
        )
        for ext in old.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        cert = builder.sign(issuer_key, pki.signing_hash(issuer_key))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        (staging / f"{leaf}.pem").write_bytes(pem)
        rest = [c.public_bytes(serialization.Encoding.PEM) for c in good.chain(leaf)[1:]]
        (staging / f"{leaf}.chain.pem").write_bytes(pem + b"".join(rest))
    manifest = json.loads((staging / "manifest.json").read_text())
    (staging / "manifest.json").write_text(json.dumps(manifest))
    try:
        staging.rename(directory)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return pki.load_manifest(directory)
