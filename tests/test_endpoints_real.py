"""The endpoints with the real sessions: isolation, hostile peers, loss, timeouts, 200 trucks.

All over loopback TLS 1.3 with the -20 profile and mutual authentication (test PKI), in virtual
time unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
from typing import Any

import pytest

from mcscomm.endpoints import Limits, SeccServer, VirtualClock, run_evcc
from mcscomm.endpoints.setup import (
    SessionOptions,
    evcc_config,
    evcc_connection,
    load_pki,
    secc_config,
    secc_factory,
    tls_contexts,
)
from mcscomm.trace import SessionRecorder, TraceWriter
from mcscomm.v2gtp import PayloadType, build_frame


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[SessionOptions, Any]:
    options = SessionOptions(pki_dir=tmp_path_factory.mktemp("pki"), auth="eim", scenario=None)
    return options, load_pki(options)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_communication_loss_drives_the_secc_to_its_safe_state(
    pki: tuple[SessionOptions, Any],
) -> None:
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    stream = io.StringIO()
    async with VirtualClock() as clock:
        server = SeccServer(
            secc_factory(secc_config(options, manifest), tls=True),
            ssl_context=server_ssl,
            clock=clock,
            trace=TraceWriter(stream),
        )
        host, port = await server.start()

        def cut_at_60s(driver: Any) -> None:
            clock.call_at(60.0, lambda: driver.transport.abort())  # the cable is pulled

        evcc = evcc_connection(evcc_config(dataclasses.replace(options, duration=600.0), manifest))
        result = await run_evcc(
            evcc, host=host, port=port, ssl_context=client_ssl, clock=clock, on_connected=cut_at_60s
        )
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    assert not result.ok
    records = _records(stream)
    events = [r.get("event") for r in records]
    assert "communication_lost" in events and "safe_state_reached" in events
    safe = next(r for r in records if r.get("event") == "safe_state_reached")
    assert safe["t"] == pytest.approx(60.0, abs=0.5)
    power_after = [r for r in records if r["kind"] == "power" and r["t"] > safe["t"]]
    assert all(abs(r["power_w"]) < 1e-6 for r in power_after)
    assert records[-1]["kind"] == "summary" and records[-1]["result"] == "failed"


async def test_a_silent_truck_times_out_in_virtual_time(pki: tuple[SessionOptions, Any]) -> None:
    """The truck stops sending mid-loop: the SECC's 0.5 s sequence timeout fires (facts §5.2)."""
    from mcscomm.session.config import EvccFaults

    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    stream = io.StringIO()
    async with VirtualClock() as clock:
        server = SeccServer(
            secc_factory(secc_config(options, manifest), tls=True),
            ssl_context=server_ssl,
            clock=clock,
            trace=TraceWriter(stream),
        )
        host, port = await server.start()
        cfg = evcc_config(dataclasses.replace(options, duration=600.0), manifest)
        cfg.faults = EvccFaults(stop_answering_after=40)
        result = await run_evcc(
            evcc_connection(cfg), host=host, port=port, ssl_context=client_ssl, clock=clock
        )
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    assert not result.ok
    timeouts = [r for r in _records(stream) if r.get("event") == "timeout_occurred"]
    assert timeouts and timeouts[0]["timer"].startswith("V2G_SECC_Sequence_Timeout")
    assert server.stats.failed == 1


async def test_hostile_peers_do_not_disturb_a_real_session(
    pki: tuple[SessionOptions, Any],
) -> None:
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    async with VirtualClock() as clock:
        server = SeccServer(
            secc_factory(secc_config(options, manifest), tls=True, max_payload=4096),
            ssl_context=server_ssl,
            clock=clock,
            limits=Limits(max_payload=4096, handshake_timeout=2.0),
        )
        host, port = await server.start()

        async def good() -> bool:
            cfg = evcc_config(dataclasses.replace(options, duration=120.0), manifest)
            result = await run_evcc(
                evcc_connection(cfg), host=host, port=port, ssl_context=client_ssl, clock=clock
            )
            return result.ok

        async def hostile(data: bytes) -> bytes:
            # An authenticated (it has a valid OEM chain) but hostile peer.
            reader, writer = await asyncio.open_connection(
                host, port, ssl=client_ssl, server_hostname=""
            )
            writer.write(data)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

        async def no_tls() -> bytes:
            loop = asyncio.get_running_loop()
            with socket.create_connection((host, port)) as raw:
                raw.setblocking(False)
                await loop.sock_sendall(raw, b"\x01\xfe\x80\x01\x00\x00\x00\x10" + b"x" * 16)
                return await asyncio.wait_for(loop.sock_recv(raw, 100), 10)

        garbage = b"\xde\xad\xbe\xef" * 64
        oversize = b"\x01\xfe\x80\x02\x00\x10\x00\x00"  # announces 1 MiB > max_payload
        not_xml = build_frame(PayloadType.SAP, b"\x00\x01 not a document")
        results = await asyncio.gather(
            good(),
            hostile(garbage),
            hostile(oversize),
            hostile(not_xml),
            no_tls(),
            return_exceptions=True,
        )
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    assert results[0] is True, results
    for answer in results[1:]:
        # Every hostile peer was disconnected (EOF or reset), none hung until the timeout.
        assert not isinstance(answer, TimeoutError | AssertionError), answer
    assert server.stats.succeeded == 1
    assert server.stats.failed == 3 and server.stats.tls_failed == 1


@pytest.mark.slow
async def test_secc_serves_200_concurrent_real_sessions(pki: tuple[SessionOptions, Any]) -> None:
    """200 trucks at once on one SECC, full -20 sessions over TLS 1.3, virtual time."""
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    async with VirtualClock() as clock:
        server = SeccServer(
            secc_factory(secc_config(options, manifest), tls=True),
            ssl_context=server_ssl,
            clock=clock,
        )
        host, port = await server.start()

        async def truck() -> SessionRecorder:
            cfg = evcc_config(dataclasses.replace(options, duration=10.0), manifest)
            recorder = SessionRecorder()
            await run_evcc(
                evcc_connection(cfg),
                host=host,
                port=port,
                ssl_context=client_ssl,
                clock=clock,
                recorder=recorder,
                connect_timeout=60.0,
            )
            return recorder

        recorders = await asyncio.gather(*(truck() for _ in range(200)))
        await asyncio.wait_for(server.wait_idle(), 30)
        await server.close()
    assert [r.summary.result for r in recorders] == ["success"] * 200
    assert server.stats.succeeded == 200 and server.stats.failed == 0
    assert server.stats.accepted == 200


async def test_pause_then_resume_on_a_new_connection(pki: tuple[SessionOptions, Any]) -> None:
    """SessionStop(Pause), then a new TLS connection resumes it (OK_OldSessionJoined)."""
    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    stream = io.StringIO()
    async with VirtualClock() as clock:
        server = SeccServer(
            secc_factory(secc_config(options, manifest), tls=True),
            ssl_context=server_ssl,
            clock=clock,
            trace=TraceWriter(stream),
        )
        host, port = await server.start()
        first = evcc_config(dataclasses.replace(options, duration=30.0, stop="pause"), manifest)
        paused = await run_evcc(
            evcc_connection(first), host=host, port=port, ssl_context=client_ssl, clock=clock
        )
        assert paused.outcome.result == "paused", paused.outcome
        session_id = next(
            r["session_id"] for r in _records(stream) if r.get("event") == "session_paused"
        )
        second = evcc_config(dataclasses.replace(options, duration=30.0), manifest)
        second.resume_session_id = bytes.fromhex(session_id)
        resumed = await run_evcc(
            evcc_connection(second), host=host, port=port, ssl_context=client_ssl, clock=clock
        )
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    assert resumed.ok, resumed.outcome
    records = _records(stream)
    joined = [r for r in records if r.get("event") == "session_established" and r["resumed"]]
    assert joined and joined[0]["session_id"] == session_id
    assert {r["session"] for r in records} == {"secc#1", "secc#2"}  # two connections


async def test_a_crashing_session_closes_only_its_own_socket(
    pki: tuple[SessionOptions, Any],
) -> None:
    """A defect raised inside one session (planted crash) is caught, logged and isolated."""
    from mcscomm.session.config import SeccFaults

    options, manifest = pki
    server_ssl, client_ssl = tls_contexts(manifest)
    good_cfg = secc_config(options, manifest)
    bad_cfg = dataclasses.replace(good_cfg, faults=SeccFaults(crash_on="DC_CableCheckReq"))
    factories = [secc_factory(bad_cfg, tls=True), secc_factory(good_cfg, tls=True)]
    stream = io.StringIO()
    async with VirtualClock() as clock:
        server = SeccServer(
            lambda now: factories.pop(0)(now),
            ssl_context=server_ssl,
            clock=clock,
            trace=TraceWriter(stream),
        )
        host, port = await server.start()

        async def truck() -> bool:
            cfg = evcc_config(dataclasses.replace(options, duration=60.0), manifest)
            result = await run_evcc(
                evcc_connection(cfg), host=host, port=port, ssl_context=client_ssl, clock=clock
            )
            return result.ok

        outcomes = await asyncio.gather(truck(), truck())  # whichever comes first crashes
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    assert sorted(outcomes) == [False, True]
    errors = [r for r in _records(stream) if r.get("event") == "error"]
    assert len(errors) == 1 and errors[0]["error"] == "InjectedCrash"
    assert server.stats.succeeded == 1 and server.stats.failed == 1


async def test_a_refused_client_certificate_ends_the_pair_in_virtual_time(
    pki: tuple[SessionOptions, Any],
) -> None:
    """TLS 1.3: the SECC refuses the truck's (missing) certificate after the truck's handshake is
    done and it has sent its first request; the virtual clock must not wait for those bytes."""
    import ssl

    from mcscomm.endpoints import run_pair

    options, manifest = pki
    server_ssl, _client_ssl = tls_contexts(manifest)
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    anonymous.minimum_version = ssl.TLSVersion.TLSv1_3
    result = await asyncio.wait_for(
        run_pair(
            secc_factory(secc_config(options, manifest), tls=True),
            evcc_connection(evcc_config(options, manifest)),
            server_ssl=server_ssl,
            client_ssl=anonymous,
        ),
        30,
    )
    assert not result.ok and result.secc is None  # no SECC session was ever created
