"""The asyncio endpoints over real loopback TLS, driven with fake sans-IO connections.

The fakes (tests/test_endpoints_fakes.py) keep the protocol trivial so these tests exercise exactly
the adapters: framing of the byte stream, timers, virtual time, isolation, limits, connection loss.
End-to-end tests with the real sessions live in tests/test_endpoints_e2e.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import ssl

import pytest
from test_endpoints_fakes import FakeEvcc, FakeSecc, FakeSettings, make_tls

from mcscomm.endpoints import Limits, SeccServer, VirtualClock, run_evcc, run_pair
from mcscomm.endpoints.clock import RealClock
from mcscomm.trace import SessionRecorder, TraceWriter
from mcscomm.v2gtp import PayloadType, build_frame


@pytest.fixture(scope="module")
def tls():  # type: ignore[no-untyped-def]
    return make_tls()


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_pair_in_virtual_time_over_tls(tls) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    recorder = SessionRecorder(writer=TraceWriter(stream))
    result = await run_pair(
        lambda _now: FakeSecc(),
        FakeEvcc(FakeSettings(cycles=400)),
        server_ssl=tls.server,
        client_ssl=tls.client,
        recorder=recorder,
    )
    assert result.ok, result
    # 400 cadence waits of 0.25 s of virtual time, each round trip taking zero virtual time.
    assert result.clock_s == pytest.approx(100.0)
    records = _records(stream)
    messages = [r for r in records if r["kind"] == "message"]
    assert len(messages) == 2 * 401  # each request and response once (recorded on the SECC side)
    assert {m["dir"] for m in messages} == {"evcc->secc", "secc->evcc"}
    assert all(str(m["xml"]).startswith("<") for m in messages)
    power = [r for r in records if r["kind"] == "power"]
    assert len(power) == 400
    times = [float(r["t"]) for r in records]  # type: ignore[arg-type]
    assert times == sorted(times)
    tls_events = [r for r in records if r.get("event") == "tls"]
    assert tls_events and all(r["version"] == "TLSv1.3" for r in tls_events)
    summary = records[-1]
    assert summary["kind"] == "summary" and summary["result"] == "success"
    assert summary["charge_loop_cycles"] == 400
    assert float(summary["energy_charged_wh"]) > 0  # type: ignore[arg-type]
    assert float(summary["energy_discharged_wh"]) > 0  # type: ignore[arg-type]
    assert summary["peak_charge_power_w"] == 400_000.0


async def test_pair_in_real_time_over_plain_tcp() -> None:
    settings = FakeSettings(cycles=5, cycle_s=0.02)
    result = await run_pair(
        lambda _now: FakeSecc(settings),
        FakeEvcc(settings),
        server_ssl=None,
        client_ssl=None,
        virtual=False,
    )
    assert result.ok
    assert result.clock_s >= 5 * 0.02  # the cadence waits really happened on the wall clock


async def test_communication_loss_reaches_the_session(tls) -> None:  # type: ignore[no-untyped-def]
    """The truck vanishes mid-loop: the SECC's connection hears of it and reaches its safe state."""
    secc_side: list[FakeSecc] = []
    stream = io.StringIO()

    def factory(_now: float) -> FakeSecc:
        secc_side.append(FakeSecc())
        return secc_side[-1]

    async with VirtualClock() as clock:
        server = SeccServer(factory, ssl_context=tls.server, clock=clock, trace=TraceWriter(stream))
        host, port = await server.start()
        evcc = FakeEvcc(FakeSettings(cycles=1000))

        def cut(driver) -> None:  # type: ignore[no-untyped-def]
            clock.call_at(10.0, lambda: driver.transport.abort())

        result = await run_evcc(
            evcc, host=host, port=port, ssl_context=tls.client, clock=clock, on_connected=cut
        )
        await asyncio.wait_for(server.wait_idle(), 5)
        await server.close()
    assert not result.ok
    assert secc_side[0].lost_at is not None
    records = _records(stream)
    kinds = [r.get("event") for r in records]
    assert "communication_lost" in kinds and "safe_state_reached" in kinds
    assert server.stats.failed == 1


async def _good_session(host: str, port: int, ctx: ssl.SSLContext, clock: RealClock) -> bool:
    settings = FakeSettings(cycles=20, cycle_s=0.02)
    result = await run_evcc(FakeEvcc(settings), host=host, port=port, ssl_context=ctx, clock=clock)
    return result.ok


async def test_hostile_clients_do_not_disturb_a_good_session(tls) -> None:  # type: ignore[no-untyped-def]
    clock = RealClock()
    limits = Limits(idle_timeout=1.0, handshake_timeout=1.0, max_payload=1024)
    server = SeccServer(
        lambda _now: FakeSecc(FakeSettings(sequence_timeout_s=5.0)),
        ssl_context=tls.server,
        clock=clock,
        limits=limits,
    )
    host, port = await server.start()

    async def garbage_over_tls() -> None:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls.client)
        writer.write(b"\x00\xff" * 500)
        await writer.drain()
        await asyncio.wait_for(reader.read(), 3)  # the server closes on us
        writer.close()

    async def bad_header_and_oversize() -> None:
        _r, writer = await asyncio.open_connection(host, port, ssl=tls.client)
        writer.write(b"\x01\xfe\x80\x04\xff\xff\xff\xff")  # announces 4 GiB
        await writer.drain()
        await asyncio.wait_for(_r.read(), 3)
        writer.close()

    async def crash_request() -> None:
        _r, writer = await asyncio.open_connection(host, port, ssl=tls.client)
        writer.write(build_frame(PayloadType.DC, b'<CrashReq xmlns="urn:fake"/>'))
        await writer.drain()
        await asyncio.wait_for(_r.read(), 3)
        writer.close()

    async def slowloris() -> None:
        _r, writer = await asyncio.open_connection(host, port, ssl=tls.client)
        frame = build_frame(PayloadType.DC, b"<DC_ChargeLoopReq/>")
        for byte in frame[:6]:  # never completes the header; idle timeout must end it
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.3)
        await asyncio.wait_for(_r.read(), 3)
        writer.close()

    async def tcp_without_tls_handshake() -> None:
        with socket.create_connection((host, port)) as raw:
            raw.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(raw, b"GET / HTTP/1.0\r\n\r\n")
            await asyncio.wait_for(loop.sock_recv(raw, 100), 3)

    hostile = [garbage_over_tls(), bad_header_and_oversize(), crash_request(), slowloris()]
    hostile.append(tcp_without_tls_handshake())
    results = await asyncio.gather(
        _good_session(host, port, tls.client, clock), *hostile, return_exceptions=True
    )
    assert results[0] is True
    for outcome in results[1:]:
        assert not isinstance(outcome, AssertionError | TimeoutError), outcome
    await asyncio.wait_for(server.wait_idle(), 5)
    await server.close()
    assert server.stats.succeeded == 1
    assert server.stats.failed >= 4  # garbage, oversize, crash, slowloris (idle)
    assert server.stats.active == 0


async def test_connection_limit_rejects_the_extra_one() -> None:
    clock = RealClock()
    server = SeccServer(
        lambda _now: FakeSecc(FakeSettings(sequence_timeout_s=5.0)),
        ssl_context=None,
        clock=clock,
        limits=Limits(max_connections=2, idle_timeout=5.0),
    )
    host, port = await server.start()
    held = [await asyncio.open_connection(host, port) for _ in range(2)]
    await asyncio.sleep(0.05)
    reader, writer = await asyncio.open_connection(host, port)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed at once
    assert server.stats.rejected == 1 and server.active == 2
    for _r, w in held:
        w.close()
    writer.close()
    await asyncio.wait_for(server.wait_idle(), 5)
    await server.close()


async def test_idle_timeout_in_virtual_time() -> None:
    """A silent peer is dropped after idle_timeout of *clock* time (it jumps in virtual time)."""
    async with VirtualClock() as clock:
        server = SeccServer(
            lambda _now: FakeSecc(), ssl_context=None, clock=clock, limits=Limits(idle_timeout=75.0)
        )
        host, port = await server.start()
        reader, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert clock.now() == pytest.approx(75.0, abs=1.0)
        writer.close()
        await server.close()
    assert server.stats.failed == 1


async def test_connect_failure_is_an_outcome_not_an_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    result = await run_evcc(FakeEvcc(), host="127.0.0.1", port=port, ssl_context=None)
    assert not result.ok and "cannot connect" in result.outcome.reason


@pytest.mark.slow
async def test_secc_serves_200_concurrent_sessions(tls) -> None:  # type: ignore[no-untyped-def]
    """200 trucks on one SECC over TLS, in virtual time: every session completes."""
    async with VirtualClock() as clock:
        server = SeccServer(lambda _now: FakeSecc(), ssl_context=tls.server, clock=clock)
        host, port = await server.start()

        async def truck() -> bool:
            evcc = FakeEvcc(FakeSettings(cycles=40))
            result = await run_evcc(evcc, host=host, port=port, ssl_context=tls.client, clock=clock)
            return result.ok

        results = await asyncio.gather(*(truck() for _ in range(200)))
        await asyncio.wait_for(server.wait_idle(), 10)
        await server.close()
    assert all(results)
    assert server.stats.succeeded == 200 and server.stats.failed == 0
