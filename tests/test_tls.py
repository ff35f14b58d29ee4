"""TLS 1.3 with the ISO 15118-20 profile over real loopback sockets.

What is negotiated is proven three ways: our own ``describe`` (OpenSSL via ctypes), ``openssl
s_client`` as an outside client (its summary of the server key share, signature and
CertificateRequest) and ``openssl s_server -trace`` as an outside server (the EVCC ClientHello
decoded field by field).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pki_fixtures
import pytest

from mcscomm.security import openssl, pki, tls
from mcscomm.security.errors import TlsHandshakeFailed, TlsProfileUnavailable

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
FAMILIES: tuple[pki.Algorithm, ...] = pki.ALGORITHMS
EXPECTED_GROUP = {"secp521r1": "secp521r1", "ed448": "X448"}
EXPECTED_SIG = {"secp521r1": "ecdsa_secp521r1_sha512", "ed448": "ed448"}


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> pki_fixtures.PkiFactory:
    return pki_fixtures.factory(tmp_path_factory)


@dataclass
class Server:
    port: int
    outcomes: asyncio.Queue[dict[str, Any] | str] = field(default_factory=asyncio.Queue)

    async def outcome(self) -> dict[str, Any] | str:
        return await asyncio.wait_for(self.outcomes.get(), 10)


@contextlib.asynccontextmanager
async def secc(ctx: ssl.SSLContext) -> AsyncIterator[Server]:
    """An SECC-like server: TLS via the handshake hook, then 'hello' and close."""
    server_state = Server(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            info = await tls.secc_handshake(reader, writer, ctx, handshake_timeout=5)
            server_state.outcomes.put_nowait(info)
            writer.write(b"hello\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        except TlsHandshakeFailed as exc:
            server_state.outcomes.put_nowait(exc.reason)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    try:
        yield server_state
    finally:
        server.close()
        await server.wait_closed()


async def python_client(port: int, ctx: ssl.SSLContext) -> tuple[dict[str, Any] | None, str]:
    """Connect, read one line; returns (describe() or None, line or failure reason)."""
    try:
        reader, writer, info = await tls.evcc_connect("127.0.0.1", port, ctx, handshake_timeout=5)
    except TlsHandshakeFailed as exc:
        return None, exc.reason
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
        return info, line.decode() or "EOF"
    except (OSError, EOFError) as exc:
        # TLS 1.3: the server judges our certificate after our side of the handshake is done.
        return info, tls.explain_handshake_error(exc)
    finally:
        writer.close()


def raw_client_ctx(
    manifest: pki.Manifest, *, with_cert: bool = True, verify: bool = True
) -> ssl.SSLContext:
    """A plain Python client context (not our profile) trusting the V2G root."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    ctx.load_verify_locations(manifest.roles["v2g_root"].cert)
    if with_cert:
        role = manifest.roles["oem_prov_leaf"]
        assert role.chain and role.key
        ctx.load_cert_chain(role.chain, role.key)
    return ctx


# --- the profile, negotiated between our own endpoints -------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
async def test_mutual_tls13_profile_between_our_endpoints(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm
) -> None:
    m = pkis(family, "good")
    async with secc(tls.secc_context(m)) as server:
        client_info, line = await python_client(server.port, tls.evcc_context(m))
        server_info = await server.outcome()
    assert line == "hello\n"
    assert isinstance(server_info, dict) and client_info is not None
    for info in (client_info, server_info):
        assert info["version"] == "TLSv1.3"
        assert info["cipher"] == "TLS_AES_256_GCM_SHA384"
        assert info["group"] == EXPECTED_GROUP[family]
        assert info["peer_signature"] == EXPECTED_SIG[family]
    assert "CN=DE*MCS*E0001" in client_info["peer_subject"]
    assert "CN=CPOSubCA2" in client_info["peer_issuer"]
    assert "CN=WMCSTRUCK000000001" in server_info["peer_subject"]


async def test_server_preference_keeps_aes256_first(pkis: pki_fixtures.PkiFactory) -> None:
    m = pkis("secp521r1", "good")
    client = tls.evcc_context(m)
    pointer = openssl.ssl_ctx_pointer(client)
    reversed_suites = b"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
    assert openssl.lib().SSL_CTX_set_ciphersuites(pointer, reversed_suites) == 1
    async with secc(tls.secc_context(m)) as server:
        info, _ = await python_client(server.port, client)
    assert info is not None and info["cipher"] == "TLS_AES_256_GCM_SHA384"


def test_context_pointer_is_verified_by_round_trip(
    pkis: pki_fixtures.PkiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = tls.secc_context(pkis("ed448", "good"))
    pointer = openssl.ssl_ctx_pointer(ctx)
    assert openssl.lib().SSL_CTX_get_options(pointer) == int(ctx.options)
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # different options and verify mode
    wrong = openssl._field_pointer(other, 0)
    monkeypatch.setattr(openssl, "_field_pointer", lambda obj, index: wrong)
    with pytest.raises(TlsProfileUnavailable, match="SSL_CTX"):
        openssl.ssl_ctx_pointer(ctx)


# --- refusals by the SECC, Python clients --------------------------------------------------------


def _client_aes128_only(m: pki.Manifest) -> ssl.SSLContext:
    ctx = raw_client_ctx(m)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    pointer = openssl.ssl_ctx_pointer(ctx)
    assert openssl.lib().SSL_CTX_set_ciphersuites(pointer, b"TLS_AES_128_GCM_SHA256") == 1
    return ctx


def _client_tls12(m: pki.Manifest) -> ssl.SSLContext:
    ctx = raw_client_ctx(m)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _client_unknown_root(m: pki.Manifest, other: pki.Manifest) -> ssl.SSLContext:
    ctx = raw_client_ctx(other)  # OEM chain of another PKI with the same names
    ctx.load_verify_locations(m.roles["v2g_root"].cert)
    return ctx


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("tls12", "TLS 1.3"),
        ("aes128", "no common cipher suite"),
        ("no_cert", "sent no certificate"),
        ("unknown_root", "does not lead to our trusted root"),
        ("expired", "expired"),
        ("future", "not yet valid"),
    ],
)
async def test_secc_refuses_bad_clients(
    pkis: pki_fixtures.PkiFactory,
    family: pki.Algorithm,
    case: str,
    expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = pkis(family, "good")
    server_pki = m
    if case == "tls12":
        client = _client_tls12(m)
    elif case == "aes128":
        client = _client_aes128_only(m)
    elif case == "no_cert":
        client = raw_client_ctx(m, with_cert=False)
    elif case == "unknown_root":
        client = _client_unknown_root(m, pkis(family, "other"))
    else:  # the SECC of that PKI trusts its OEM root, the client's leaf is out of date
        server_pki = pkis(family, case)
        client = raw_client_ctx(server_pki, verify=False)
    caplog.set_level(logging.WARNING, logger="mcscomm.security.tls")
    async with secc(tls.secc_context(server_pki)) as server:
        _, client_view = await python_client(server.port, client)
        reason = await server.outcome()
    assert isinstance(reason, str) and expected in reason, reason
    assert client_view != "hello\n"
    assert any("refused" in r.message and expected in r.message for r in caplog.records)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("server_variant", "expected"),
    [
        ("other", "does not lead to our trusted root"),
        ("expired", "expired"),
        ("future", "not yet valid"),
    ],
)
async def test_evcc_refuses_bad_secc_chains(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm, server_variant: str, expected: str
) -> None:
    good = pkis(family, "good")
    bad = pkis(family, server_variant)
    client_pki = good if server_variant == "other" else bad  # expired: same roots as the SECC
    async with secc(tls.secc_context(bad)) as server:
        info, reason = await python_client(server.port, tls.evcc_context(client_pki))
    assert info is None and expected in reason, reason


# --- openssl s_client as an outside client -------------------------------------------------------


async def s_client(port: int, *args: str) -> str:
    assert OPENSSL
    proc = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-ign_eof",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(b""), 15)
    return out.decode(errors="replace")


def cert_args(m: pki.Manifest, role: str = "oem_prov_leaf") -> list[str]:
    r = m.roles[role]
    assert r.key and r.chain
    return ["-cert", str(r.cert), "-key", str(r.key), "-cert_chain", str(r.chain)]


@needs_openssl
@pytest.mark.parametrize("family", FAMILIES)
async def test_openssl_client_sees_the_profile(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm
) -> None:
    m = pkis(family, "good")
    trust = ["-CAfile", str(m.roles["v2g_root"].cert), "-verify_return_error"]
    async with secc(tls.secc_context(m)) as server:
        out = await s_client(server.port, *trust, *cert_args(m))
        info = await server.outcome()
    assert isinstance(info, dict), info
    assert "hello" in out
    assert re.search(r"New, TLSv1\.3, Cipher is TLS_AES_256_GCM_SHA384", out)
    assert "Verification: OK" in out
    if family == "secp521r1":
        assert "Server Temp Key: ECDH, secp521r1, 521 bits" in out
        assert "Peer signature type: ECDSA" in out and "Peer signing digest: SHA512" in out
        requested = "ECDSA+SHA512:ed448"
    else:
        assert "Server Temp Key: X448, 448 bits" in out
        assert "Peer signature type: ed448" in out
        requested = "ed448:ECDSA+SHA512"
    # The CertificateRequest's signature_algorithms and certificate_authorities (V2G20-2401):
    assert f"Requested Signature Algorithms: {requested}\n" in out
    assert re.search(r"Acceptable client certificate CA names\n\s*CN = OEMRootCA", out)


@needs_openssl
async def test_openssl_client_may_choose_chacha20(pkis: pki_fixtures.PkiFactory) -> None:
    m = pkis("ed448", "good")
    async with secc(tls.secc_context(m)) as server:
        out = await s_client(
            server.port, "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256", *cert_args(m)
        )
        info = await server.outcome()
    assert "Cipher is TLS_CHACHA20_POLY1305_SHA256" in out
    assert isinstance(info, dict) and info["cipher"] == "TLS_CHACHA20_POLY1305_SHA256"


@needs_openssl
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        ("tls12", ["-tls1_2"], "TLS 1.3"),
        ("aes128", ["-ciphersuites", "TLS_AES_128_GCM_SHA256"], "no common cipher suite"),
        ("p256", ["-groups", "P-256:X25519"], "key-exchange group"),
        ("sigalg", ["-sigalgs", "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256"], "signature alg"),
        ("no_cert", [], "sent no certificate"),
        ("unknown_root", [], "does not lead to our trusted root"),
        ("expired", [], "expired"),
        ("future", [], "not yet valid"),
    ],
)
async def test_openssl_client_refusals(
    pkis: pki_fixtures.PkiFactory,
    family: pki.Algorithm,
    case: str,
    args: list[str],
    expected: str,
) -> None:
    m = pkis(family, "good")
    server_pki, client_pki = m, m
    if case == "unknown_root":
        client_pki = pkis(family, "other")
    elif case in ("expired", "future"):
        server_pki = client_pki = pkis(family, case)
    certs = [] if case == "no_cert" else cert_args(client_pki)
    async with secc(tls.secc_context(server_pki)) as server:
        out = await s_client(server.port, *args, *certs)
        reason = await server.outcome()
    assert isinstance(reason, str) and expected in reason, reason
    assert "hello" not in out


# --- openssl s_server as an outside server: the EVCC's ClientHello -------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def s_server(m: pki.Manifest, *args: str) -> AsyncIterator[tuple[int, list[str]]]:
    """``openssl s_server -trace`` for one connection; yields (port, output lines so far)."""
    assert OPENSSL
    port = free_port()
    role = m.roles["secc_leaf"]
    assert role.key and role.chain
    proc = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_server",
        "-accept",
        str(port),
        "-naccept",
        "1",
        "-trace",
        "-cert",
        str(role.cert),
        "-key",
        str(role.key),
        "-cert_chain",
        str(role.chain),
        "-Verify",
        "3",
        "-CAfile",
        str(m.roles["oem_root"].cert),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout and proc.stdin
    lines: list[str] = []
    try:
        while not lines or lines[-1].strip() != "ACCEPT":
            raw = await asyncio.wait_for(proc.stdout.readline(), 10)
            assert raw, "".join(lines)
            lines.append(raw.decode())
        yield port, lines
        await asyncio.sleep(0.2)
        proc.stdin.close()
        rest, _ = await asyncio.wait_for(proc.communicate(), 10)
        lines.append(rest.decode(errors="replace"))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@needs_openssl
@pytest.mark.parametrize("family", FAMILIES)
async def test_openssl_server_sees_the_evcc_client_hello(
    pkis: pki_fixtures.PkiFactory, family: pki.Algorithm
) -> None:
    m = pkis(family, "good")
    async with s_server(m) as (port, lines):
        _, writer, info = await tls.evcc_connect("127.0.0.1", port, tls.evcc_context(m))
        writer.write(b"ping\n")
        await writer.drain()
        writer.close()
    trace = "".join(lines)
    hello = trace[trace.index("ClientHello") : trace.index("ServerHello")]

    def block(name: str) -> list[str]:
        """The lines indented below the first line of ``hello`` that contains ``name``."""
        lines = hello[hello.rindex("\n", 0, hello.index(name)) + 1 :].splitlines()
        indent = len(lines[0]) - len(lines[0].lstrip())
        entries = []
        for line in lines[1:]:
            if len(line) - len(line.lstrip()) <= indent:
                break
            entries.append(line.strip())
        return entries

    suites = [e.split()[-1] for e in block("cipher_suites")]
    assert suites == [*tls.CIPHERSUITES, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"]
    groups = [e.split()[0] for e in block("supported_groups")]
    expected_groups = {"secp521r1": ["secp521r1", "ecdh_x448"], "ed448": ["ecdh_x448", "secp521r1"]}
    assert groups == expected_groups[family]
    sigalgs = [e.split()[0] for e in block("signature_algorithms")]
    assert sigalgs == list(tls.SIGALGS[family])
    assert [e for e in block("supported_versions")] == ["TLS 1.3 (772)"]
    key_share = hello[hello.index("key_share") :]
    assert re.search(r"NamedGroup: (\S+)", key_share).group(1) == expected_groups[family][0]  # type: ignore[union-attr]
    assert "V2GRootCA" in hello[hello.index("certificate_authorities") :]
    assert info["group"] == EXPECTED_GROUP[family]
    # ...and the outside server accepted our OEM provisioning chain (all four levels verified)
    for cn in ("OEMRootCA", "OEMSubCA1", "OEMSubCA2", "WMCSTRUCK000000001"):
        assert re.search(rf"depth=\d CN = {cn}.*\nverify return:1", trace), cn
    assert "verify error" not in trace


@needs_openssl
async def test_evcc_refuses_a_tls12_only_server(pkis: pki_fixtures.PkiFactory) -> None:
    m = pkis("secp521r1", "good")
    async with s_server(m, "-tls1_2") as (port, _lines):
        with pytest.raises(TlsHandshakeFailed, match=r"TLS 1\.3"):
            await tls.evcc_connect("127.0.0.1", port, tls.evcc_context(m))


# --- key logging ---------------------------------------------------------------------------------


async def test_key_log_to_file_and_udp(
    pkis: pki_fixtures.PkiFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = pkis("secp521r1", "good")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5)
    keylog = tls.KeyLog(path=tmp_path / "keys.log", udp=("127.0.0.1", sink.getsockname()[1]))
    caplog.set_level(logging.WARNING, logger="mcscomm.security.tls")
    ctx = tls.secc_context(m, keylog=keylog)
    assert any("KEY LOGGING IS ON" in r.message for r in caplog.records)
    async with secc(ctx) as server:
        _, line = await python_client(server.port, tls.evcc_context(m))
    assert line == "hello\n"
    labels = {row.split()[0] for row in (tmp_path / "keys.log").read_text().splitlines()}
    assert {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    } <= labels
    datagrams: list[bytes] = []
    with contextlib.suppress(TimeoutError):
        while len(datagrams) < 5:
            data, (_, source_port) = sink.recvfrom(4096)
            datagrams.append(data)
            assert source_port >= 49152
    sink.close()
    assert len(datagrams) == 5
    assert all(re.fullmatch(rb"[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]+\n", d) for d in datagrams)


def test_key_logging_is_off_by_default(pkis: pki_fixtures.PkiFactory) -> None:
    ctx = tls.evcc_context(pkis("ed448", "good"))
    assert not hasattr(ctx, "_mcscomm_keylog") and ctx.keylog_filename is None


def test_explain_handshake_error_is_one_line() -> None:
    assert "timed out" in tls.explain_handshake_error(TimeoutError())
    assert "closed" in tls.explain_handshake_error(ConnectionResetError())
    text = tls.explain_handshake_error(ssl.SSLError(1, "weird"))
    assert "\n" not in text


async def test_describe_degrades_without_the_ssl_pointer(
    pkis: pki_fixtures.PkiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = pkis("ed448", "good")
    async with secc(tls.secc_context(m)) as server:
        monkeypatch.setattr(openssl, "ssl_pointer", lambda obj: 0)
        info, line = await python_client(server.port, tls.evcc_context(m))
    assert line == "hello\n" and info is not None
    assert info["version"] == "TLSv1.3" and info["cipher"] == "TLS_AES_256_GCM_SHA384"
    assert info["group"] is None and info["peer_signature"] is None
    assert "CN=DE*MCS*E0001" in info["peer_subject"]


async def test_without_the_openssl_bridge_fail_or_degrade_loudly(
    pkis: pki_fixtures.PkiFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    m = pkis("secp521r1", "good")

    def unavailable() -> None:
        raise TlsProfileUnavailable("simulated: no OpenSSL access")

    monkeypatch.setattr(openssl, "lib", unavailable)
    with pytest.raises(TlsProfileUnavailable, match="simulated"):
        tls.secc_context(m)
    caplog.set_level(logging.WARNING, logger="mcscomm.security.tls")
    keylog = tls.KeyLog(path=tmp_path / "keys.log")
    server_ctx = tls.secc_context(m, allow_degraded=True, keylog=keylog)
    client_ctx = tls.evcc_context(m, allow_degraded=True)
    assert any("PROFILE NOT ENFORCED" in r.message for r in caplog.records)
    async with secc(server_ctx) as server:
        info, line = await python_client(server.port, client_ctx)
    assert line == "hello\n" and info is not None and info["version"] == "TLSv1.3"
    assert "SERVER_TRAFFIC_SECRET_0" in (tmp_path / "keys.log").read_text()
