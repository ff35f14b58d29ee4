"""Endpoint changes asked for by the Josev interop run (docs/interop.md).

* real-time sessions stamp their messages with Unix time, virtual ones from the fixed epoch;
* a failed TLS handshake on the EVCC side is reported with a reason, never an empty one;
* the SECC's offered control modes and authorization services come from the options;
* the SECC passes the TLS client certificate to the session: a paused session resumes only from
  the certificate that paused it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mcscomm.endpoints import SeccServer, VirtualClock, run_evcc, run_pair
from mcscomm.endpoints.clock import RealClock
from mcscomm.endpoints.driver import SansIoConnection, accepts_peer_cert
from mcscomm.endpoints.setup import (
    SessionOptions,
    SetupError,
    evcc_config,
    evcc_connection,
    load_pki,
    message_renderer,
    secc_config,
    secc_factory,
    tls_contexts,
)
from mcscomm.messages.enums import AuthorizationType, ControlMode
from mcscomm.trace import SessionRecorder, TraceWriter

#: 2026-01-01T00:00:00Z, the TimeStamp base of a virtual clock (mcscomm.session.context).
VIRTUAL_EPOCH = 1_767_225_600


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[SessionOptions, Any]:
    options = SessionOptions(pki_dir=tmp_path_factory.mktemp("pki"), auth="eim", scenario=None)
    return options, load_pki(options)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _header_times(records: list[dict[str, Any]]) -> list[int]:
    return [
        int(ts)
        for r in records
        if r["kind"] == "message"
        for ts in re.findall(r"TimeStamp>(\d+)<", r["xml"])
    ]


# -- 1. TimeStamps: Unix time in real time, a fixed epoch in virtual time -------------------------
async def test_unix_real_clock_reads_unix_time_and_fires_its_timers() -> None:
    clock = RealClock(unix=True)
    loop = asyncio.get_running_loop()
    assert abs(clock.now() - time.time()) < 1.0
    # Monotonic underneath: a fixed offset from the loop's clock, whatever the wall clock does.
    assert clock.now() - loop.time() == pytest.approx(clock.offset, abs=1e-3)
    fired: list[float] = []
    done = asyncio.Event()

    def fire() -> None:
        fired.append(clock.now())
        done.set()

    clock.call_at(clock.now() + 0.02, fire)
    started = clock.now()
    await asyncio.wait_for(done.wait(), 2.0)
    assert fired[0] >= started + 0.015
    assert RealClock().offset == 0.0  # the raw loop clock is still there for who mixes both


async def test_a_real_time_pair_stamps_messages_with_unix_time(
    pki: tuple[SessionOptions, Any],
) -> None:
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    opts = dataclasses.replace(options, duration=0.5)
    cfg = evcc_config(opts, manifest)
    stream = io.StringIO()
    before = time.time()
    result = await run_pair(
        secc_factory(secc_config(opts, manifest), tls=True),
        lambda now: evcc_connection(cfg, now=now),
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        virtual=False,
        recorder=SessionRecorder(writer=TraceWriter(stream), render=message_renderer),
    )
    after = time.time()
    assert result.ok, (result.evcc, result.secc)
    stamps = _header_times(_records(stream))
    assert len(stamps) > 20  # both sides' messages
    assert all(int(before) <= ts <= after + 1 for ts in stamps), (before, stamps, after)


async def test_a_server_on_its_default_clock_sees_unix_time(
    pki: tuple[SessionOptions, Any],
) -> None:
    """``mcscomm secc`` / ``evcc`` build their endpoints on the default clocks."""
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    seen: list[float] = []
    inner = secc_factory(secc_config(options, manifest), tls=True)

    def factory(now: float) -> SansIoConnection:
        seen.append(now)
        return inner(now)

    server = SeccServer(factory, ssl_context=server_ssl)
    host, port = await server.start()
    try:
        cfg = evcc_config(dataclasses.replace(options, duration=0.25), manifest)
        result = await run_evcc(
            lambda now: evcc_connection(cfg, now=now), host=host, port=port, ssl_context=client_ssl
        )
        await asyncio.wait_for(server.wait_idle(), 10)
    finally:
        await server.close()
    assert result.ok, result.outcome
    assert seen and abs(seen[0] - time.time()) < 30


async def test_a_virtual_pair_stamps_messages_from_the_fixed_epoch(
    pki: tuple[SessionOptions, Any],
) -> None:
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    opts = dataclasses.replace(options, duration=60.0)
    stream = io.StringIO()
    result = await run_pair(
        secc_factory(secc_config(opts, manifest), tls=True),
        evcc_connection(evcc_config(opts, manifest)),
        server_ssl=server_ssl,
        client_ssl=client_ssl,
        recorder=SessionRecorder(writer=TraceWriter(stream), render=message_renderer),
    )
    assert result.ok
    stamps = _header_times(_records(stream))
    assert min(stamps) == VIRTUAL_EPOCH  # virtual time starts at 0
    assert max(stamps) <= VIRTUAL_EPOCH + result.clock_s + 1
    assert max(stamps) >= VIRTUAL_EPOCH + 60  # and it advanced with the 60 s charge loop


# -- 2. a failed EVCC handshake has a reason ------------------------------------------------------
async def test_evcc_tls_against_a_plain_tcp_secc_explains_the_failure(
    pki: tuple[SessionOptions, Any],
) -> None:
    """Josev's default is plain TCP: it resets our ClientHello (a bare ConnectionResetError)."""
    options, manifest = pki
    _server_ssl, client_ssl = tls_contexts(manifest)
    lenient = dataclasses.replace(options, profile="lenient", tls=False)
    server = SeccServer(secc_factory(secc_config(lenient, manifest), tls=False), ssl_context=None)
    host, port = await server.start()
    try:
        result = await run_evcc(
            lambda now: evcc_connection(evcc_config(options, manifest), now=now),
            host=host,
            port=port,
            ssl_context=client_ssl,
        )
    finally:
        await server.close()
    reason = result.outcome.reason
    assert not result.ok
    assert reason.startswith(f"TLS handshake with {host}:{port} failed: "), reason
    assert "peer closed the connection during the TLS handshake" in reason, reason


async def test_evcc_connect_refused_still_names_the_reason(
    pki: tuple[SessionOptions, Any],
) -> None:
    options, manifest = pki
    _server_ssl, client_ssl = tls_contexts(manifest)
    server = SeccServer(secc_factory(secc_config(options, manifest), tls=True), ssl_context=None)
    host, port = await server.start()
    await server.close()  # nobody listens on that port any more
    result = await run_evcc(
        lambda now: evcc_connection(evcc_config(options, manifest), now=now),
        host=host,
        port=port,
        ssl_context=client_ssl,
    )
    prefix = f"cannot connect to {host}:{port}: "
    assert result.outcome.reason.startswith(prefix), result.outcome.reason
    assert result.outcome.reason[len(prefix) :].strip()  # never an empty reason


async def test_a_refused_client_certificate_is_named_as_the_likely_cause(
    pki: tuple[SessionOptions, Any],
) -> None:
    """TLS 1.3: the SECC refuses the truck's (missing) certificate after the truck's handshake is
    done, so the truck only sees the connection close before any answer."""
    import ssl

    options, manifest = pki
    server_ssl, _client_ssl = tls_contexts(manifest)
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    anonymous.minimum_version = ssl.TLSVersion.TLSv1_3
    cfg = evcc_config(options, manifest)
    result = await asyncio.wait_for(
        run_pair(
            secc_factory(secc_config(options, manifest), tls=True),
            lambda now: evcc_connection(cfg, now=now),
            server_ssl=server_ssl,
            client_ssl=anonymous,
            virtual=False,  # in virtual time the truck's own message timeout may come first
        ),
        30,
    )
    assert not result.ok and result.secc is None
    assert "refuse our TLS client certificate" in result.evcc.reason, result.evcc.reason


# -- 3. what the SECC offers -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("control", "auth", "modes", "auths"),
    [
        ("both", "both", {ControlMode.SCHEDULED, ControlMode.DYNAMIC}, {"PNC", "EIM"}),
        ("scheduled", "eim", {ControlMode.SCHEDULED}, {"EIM"}),
        ("dynamic", "pnc", {ControlMode.DYNAMIC}, {"PNC"}),
    ],
)
def test_secc_offer_options_map_to_the_config(
    pki: tuple[SessionOptions, Any],
    control: str,
    auth: str,
    modes: set[ControlMode],
    auths: set[str],
) -> None:
    options, manifest = pki
    cfg = secc_config(dataclasses.replace(options, secc_control=control, secc_auth=auth), manifest)
    assert set(cfg.control_modes) == modes
    assert {a.name for a in cfg.auth_services} == auths
    assert all(isinstance(a, AuthorizationType) for a in cfg.auth_services)


def test_a_listed_offer_keeps_its_order(pki: tuple[SessionOptions, Any]) -> None:
    options, manifest = pki
    listed = dataclasses.replace(options, secc_control="dynamic,scheduled", secc_auth="eim,pnc")
    cfg = secc_config(listed, manifest)
    assert cfg.control_modes == (ControlMode.DYNAMIC, ControlMode.SCHEDULED)
    assert cfg.auth_services == (AuthorizationType.EIM, AuthorizationType.PNC)


@pytest.mark.parametrize(
    ("control", "auth"),
    [("sometimes", "both"), ("dynamic,dynamic", "both"), ("both", "cash"), ("both", "eim,")],
)
def test_unknown_secc_offers_are_setup_errors(control: str, auth: str) -> None:
    with pytest.raises(SetupError, match=r"SECC (control|authorization) offer"):
        SessionOptions(secc_control=control, secc_auth=auth).check()


async def test_a_secc_offering_only_eim_serves_an_eim_truck_and_refuses_pnc(
    pki: tuple[SessionOptions, Any],
) -> None:
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    eim_only = dataclasses.replace(options, secc_auth="eim", secc_control="dynamic")
    outcomes = []
    for truck in (
        dataclasses.replace(options, auth="eim", duration=5.0),
        dataclasses.replace(options, auth="pnc", duration=5.0, control="scheduled"),
    ):
        stream = io.StringIO()
        cfg = evcc_config(truck, manifest, auth_fallback_to_eim=False)
        result = await run_pair(
            secc_factory(secc_config(eim_only, manifest), tls=True),
            evcc_connection(cfg),
            server_ssl=server_ssl,
            client_ssl=client_ssl,
            recorder=SessionRecorder(writer=TraceWriter(stream), render=message_renderer),
        )
        outcomes.append(result)
        offer = [r["xml"] for r in _records(stream) if r.get("message") == "AuthorizationSetupRes"]
        assert offer and "PnC" not in offer[0] and "EIM" in offer[0]
    assert outcomes[0].ok, outcomes[0].evcc
    assert not outcomes[1].ok  # the truck wanted PnC (and Scheduled), neither is offered


# -- 4. the TLS client certificate reaches the session --------------------------------------------
def test_only_factories_that_ask_get_the_certificate() -> None:
    def plain(now: float) -> object:
        return now

    def aware(now: float, *, peer_cert_der: bytes | None = None) -> object:
        return now, peer_cert_der

    def anything(now: float, **kwargs: object) -> object:
        return now, kwargs

    assert not accepts_peer_cert(plain)
    assert not accepts_peer_cert(lambda now: now)
    assert accepts_peer_cert(aware) and accepts_peer_cert(anything)
    assert accepts_peer_cert(secc_factory(object(), tls=True))


def _second_oem_leaf(manifest: Any, directory: Path) -> tuple[Path, Path]:
    """Another truck: a new OEM provisioning leaf from the same OEM Sub-CA 2 (so the SECC trusts
    it), with its own key. Returns (chain PEM, key PEM)."""
    from mcscomm.security import pki as pkimod

    leaf, sub2, sub1 = manifest.chain("oem_prov_leaf")
    issuer_key = manifest.extra_key("oem_sub_ca2")
    key = pkimod.generate_key(manifest.algorithm)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(sub2.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, pkimod.signing_hash(issuer_key))
    )
    chain = directory / "truck_b.chain.pem"
    chain.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, sub2, sub1))
    )
    key_path = directory / "truck_b.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, key_path


async def test_a_paused_session_resumes_only_from_the_same_client_certificate(
    pki: tuple[SessionOptions, Any], tmp_path: Path
) -> None:
    options, manifest = pki
    server_ssl, cert_a = tls_contexts(manifest)
    _, cert_b = tls_contexts(manifest)
    chain_b, key_b = _second_oem_leaf(manifest, tmp_path)
    cert_b.load_cert_chain(chain_b, key_b)  # same truck identity, another certificate
    stream = io.StringIO()
    async with VirtualClock() as clock:
        server = SeccServer(
            secc_factory(secc_config(options, manifest), tls=True),
            ssl_context=server_ssl,
            clock=clock,
            trace=TraceWriter(stream),
        )
        host, port = await server.start()

        async def truck(ctx: Any, resume: bytes | None, stop: str = "terminate") -> Any:
            cfg = evcc_config(dataclasses.replace(options, duration=20.0, stop=stop), manifest)
            cfg.resume_session_id = resume
            return await run_evcc(
                evcc_connection(cfg), host=host, port=port, ssl_context=ctx, clock=clock
            )

        paused = await truck(cert_a, None, stop="pause")
        assert paused.outcome.result == "paused", paused.outcome
        sid = bytes.fromhex(
            next(r["session_id"] for r in _records(stream) if r.get("event") == "session_paused")
        )
        stolen = await truck(cert_b, sid)  # right SessionID and EVCCID, other certificate
        resumed = await truck(cert_a, sid)  # the owner still can
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    records = _records(stream)
    assert not stolen.ok, stolen.outcome
    assert "UnknownSession" in stolen.outcome.reason, stolen.outcome.reason
    assert resumed.ok, resumed.outcome
    joined = [r for r in records if r.get("event") == "session_established" and r["resumed"]]
    assert [r["session"] for r in joined] == ["secc#3"]  # only the owner's connection
    assert joined[0]["session_id"] == sid.hex()
