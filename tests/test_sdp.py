"""SDP: layouts, round trips, server rules, malformed input, discovery over loopback, retries."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcscomm.commands import sdp as sdp_cmd
from mcscomm.sdp import (
    DiagStatus,
    MalformedSdp,
    SdpClient,
    SdpRequest,
    SdpRequestWireless,
    SdpResponse,
    SdpResponseWireless,
    SdpServer,
    SdpTimeout,
    Security,
    Transport,
    decode,
    discover,
    encode,
    to_ipv6,
)
from mcscomm.v2gtp import build_frame

FAST: dict[str, Any] = {"wait": 0.05, "max_requests": 20}


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback (::1)")


# ------------------------------------------------------------------------------------- layouts


def test_request_frame_is_ten_bytes() -> None:
    # facts §2.2: 01 FE 90 00 00 00 00 02 <sec> <tp>
    assert encode(SdpRequest()).hex() == "01fe9000000000020000"
    assert encode(SdpRequest(Security.NONE, Transport.UDP)).hex() == "01fe9000000000021010"


def test_response_frame_is_28_bytes() -> None:
    data = encode(SdpResponse(ipaddress.IPv6Address("fe80::1"), 0xC350, Security.TLS))
    assert len(data) == 28
    assert data[:8].hex() == "01fe900100000014"
    assert data[8:24] == ipaddress.IPv6Address("fe80::1").packed
    assert data[24:] == bytes([0xC3, 0x50, 0x00, 0x00])


def test_wireless_layout_sizes() -> None:
    assert len(SdpRequestWireless(evid="EV1").payload()) == 61
    assert len(SdpResponseWireless(ipaddress.IPv6Address("::1"), 1).payload()) == 58


def test_ipv4_is_sent_ipv4_mapped() -> None:
    assert to_ipv6("127.0.0.1") == ipaddress.IPv6Address("::ffff:127.0.0.1")
    assert to_ipv6("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    response = SdpResponse(to_ipv6("127.0.0.1"), 50000)
    assert response.host == "127.0.0.1"
    assert SdpResponse(to_ipv6("::1"), 50000).host == "::1"


# -------------------------------------------------------------------------------- round trips

securities = st.sampled_from(Security)
transports = st.sampled_from(Transport)
addresses = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
ports = st.integers(0, 0xFFFF)
ascii_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)


@given(
    st.one_of(
        st.builds(SdpRequest, securities, transports),
        st.builds(SdpResponse, addresses, ports, securities, transports),
        st.builds(
            SdpRequestWireless,
            securities,
            transports,
            p2ps_ppd=st.integers(0, 0xFFFF),
            coupling_type=st.integers(0, 0xFF),
            evid=ascii_ids,
            evseid=ascii_ids,
        ),
        st.builds(
            SdpResponseWireless,
            addresses,
            ports,
            securities,
            transports,
            diag_status=st.sampled_from(DiagStatus).map(int),
            coupling_type=st.integers(0, 0xFF),
            evseid=ascii_ids,
        ),
    )
)
def test_round_trip(message: Any) -> None:
    decoded = decode(encode(message))
    assert decoded == message
    assert type(decoded) is type(message)


# ---------------------------------------------------------------------------------- malformed

MALFORMED = [
    ("empty", b""),
    ("short header", b"\x01\xfe\x90"),
    ("wrong version", b"\x02\xfd\x90\x00\x00\x00\x00\x02\x00\x00"),
    ("not an SDP payload type", build_frame(0x8001, b"\x00\x00")),
    ("request too long", build_frame(0x9000, b"\x00\x00\x00")),
    ("response too short", build_frame(0x9001, b"\x00" * 19)),
    ("trailing bytes", build_frame(0x9000, b"\x00\x00") + b"\x00"),
    ("length lies", b"\x01\xfe\x90\x00\x00\x00\x00\x05\x00\x00"),
    ("bad security byte", build_frame(0x9000, b"\x01\x00")),
    ("bad transport byte", build_frame(0x9000, b"\x00\x20")),
    ("huge length", b"\x01\xfe\x90\x00\xff\xff\xff\xff\x00\x00"),
]


@pytest.mark.parametrize(("name", "data"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_datagrams_raise_malformed_sdp(name: str, data: bytes) -> None:
    with pytest.raises(MalformedSdp) as info:
        decode(data)
    assert info.value.data == data


@given(st.binary(max_size=80))
def test_decode_never_raises_anything_else(data: bytes) -> None:
    try:
        decode(data)
    except MalformedSdp:
        pass


# -------------------------------------------------------------------------- server, sans-IO

PEER = ("::1", 40000, 0, 0)


def test_server_answers_with_its_own_security() -> None:
    tls = SdpServer(("::1", 50000), Security.TLS)
    plain = SdpServer(("::1", 50001), Security.NONE)
    # V2G20-1238 / Josev: an SECC with TLS answers TLS even to a no-TLS request.
    for request in (SdpRequest(Security.TLS), SdpRequest(Security.NONE)):
        assert decode(tls.handle_datagram(encode(request), PEER) or b"") == SdpResponse(
            ipaddress.IPv6Address("::1"), 50000, Security.TLS, Transport.TCP
        )
        answer = decode(plain.handle_datagram(encode(request), PEER) or b"")
        assert isinstance(answer, SdpResponse) and answer.security is Security.NONE
    # Transport is always TCP: the only one a V2G session runs on.
    answer = decode(tls.handle_datagram(encode(SdpRequest(transport=Transport.UDP)), PEER) or b"")
    assert isinstance(answer, SdpResponse) and answer.transport is Transport.TCP
    assert tls.stats.answered == 3


def test_server_answers_wireless_in_kind() -> None:
    server = SdpServer(("::1", 50000), evse_id="DE*ABC*E1")
    request = SdpRequestWireless(coupling_type=0x10, evid="EV")
    answer = decode(server.handle_datagram(encode(request), PEER) or b"")
    assert isinstance(answer, SdpResponseWireless)
    assert (answer.port, answer.coupling_type, answer.evseid) == (50000, 0x10, "DE*ABC*E1")
    assert answer.diag_status == DiagStatus.FINISHED_WITH_EVSEID


def test_server_ignores_malformed_and_responses(caplog: pytest.LogCaptureFixture) -> None:
    server = SdpServer(("127.0.0.1", 50000))
    for _name, data in MALFORMED:
        assert server.handle_datagram(data, ("127.0.0.1", 1)) is None
    response = encode(SdpResponse(ipaddress.IPv6Address("::1"), 1))
    assert server.handle_datagram(response, ("127.0.0.1", 1)) is None
    assert server.stats.ignored == len(MALFORMED) + 1
    assert server.stats.answered == 0
    assert "malformed datagram" in caplog.text


def test_server_refuses_unspecified_announce_address() -> None:
    with pytest.raises(ValueError):
        SdpServer(("::", 50000))


def test_client_needs_a_destination() -> None:
    with pytest.raises(ValueError):
        SdpClient()


# ---------------------------------------------------------------------------- over loopback


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
async def test_discovery_over_loopback(host: str) -> None:
    async with SdpServer((host, 50123), listen=(host, 0)) as server:
        found = await discover(targets=[(host, server.sockname[1])], **FAST)
    assert found.host == host
    assert found.port == 50123
    assert found.response.security is Security.TLS
    assert found.response.transport is Transport.TCP
    assert found.response.address == to_ipv6(host)
    assert found.peer[0] == host


async def test_server_keeps_serving_after_malformed_datagrams() -> None:
    async with SdpServer(("127.0.0.1", 50124), listen=("127.0.0.1", 0)) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            for _name, data in MALFORMED[1:]:  # an empty datagram is legal UDP too, keep it
                junk.sendto(data, server.sockname)
            junk.sendto(b"", server.sockname)
        client = SdpClient(targets=[("127.0.0.1", server.sockname[1])], **FAST)
        found = await client.discover()
    assert found.port == 50124
    assert server.stats.ignored == len(MALFORMED)
    assert server.stats.answered >= 1


class _Recorder(asyncio.DatagramProtocol):
    """A UDP peer that records requests and answers with scripted datagrams."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = replies
        self.received: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.received.append(data)
        for reply in self.replies:
            self.transport.sendto(reply, addr)


async def _peer(replies: list[bytes]) -> tuple[_Recorder, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Recorder(replies), local_addr=("127.0.0.1", 0)
    )
    return proto, transport.get_extra_info("sockname")[1]


async def test_retries_counted_when_the_server_is_silent() -> None:
    recorder, port = await _peer([])
    try:
        client = SdpClient(targets=[("127.0.0.1", port)], max_requests=5, wait=0.02)
        with pytest.raises(SdpTimeout) as info:
            await client.discover()
        await asyncio.sleep(0.05)  # let the last datagram land
    finally:
        recorder.transport.close()
    assert info.value.requests_sent == 5 == client.requests_sent
    assert recorder.received == [encode(SdpRequest())] * 5


async def test_client_ignores_malformed_replies_and_takes_the_valid_one() -> None:
    good = encode(SdpResponse(to_ipv6("127.0.0.1"), 50125, Security.NONE))
    recorder, port = await _peer([b"\x01\xfe\x90\x01junk", encode(SdpRequest()), good])
    try:
        client = SdpClient(Security.NONE, targets=[("127.0.0.1", port)], wait=1.0, max_requests=3)
        found = await client.discover()
    finally:
        recorder.transport.close()
    assert client.requests_sent == 1
    assert (found.host, found.port, found.response.security) == ("127.0.0.1", 50125, Security.NONE)


def _lo_has_multicast() -> bool:
    flags = Path("/sys/class/net/lo/flags")
    return flags.exists() and bool(int(flags.read_text(), 16) & 0x1000)  # IFF_MULTICAST


@needs_ipv6
@pytest.mark.skipif(not _lo_has_multicast(), reason="loopback interface has no MULTICAST flag")
async def test_multicast_discovery_on_loopback_interface() -> None:
    async with SdpServer(("::1", 50126), listen=("::", 0), interface="lo") as server:
        found = await discover(interface="lo", multicast_port=server.sockname[1], **FAST)
    assert found.port == 50126


# ---------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:15118", ("127.0.0.1", 15118)),
        ("[::1]:80", ("::1", 80)),
        ("[fe80::1%eth0]:15118", ("fe80::1%eth0", 15118)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert sdp_cmd.host_port(text) == expected


@pytest.mark.parametrize("text", ["::1:80", "127.0.0.1", "[::1]80", "h:99999", "h:x", ":80"])
def test_host_port_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        sdp_cmd.host_port(text)


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sdp_cmd.configure(parser)
    return parser.parse_args(argv)


async def test_cli_discover_prints_the_secc(capsys: pytest.CaptureFixture[str]) -> None:
    async with SdpServer(("127.0.0.1", 50127), Security.NONE, listen=("127.0.0.1", 0)) as srv:
        target = f"127.0.0.1:{srv.sockname[1]}"
        args = _args(["discover", "--target", target, "--no-tls", "--wait", "0.05", "--json"])
        code = await asyncio.to_thread(sdp_cmd.run, args)
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["host"], out["port"], out["security"]) == ("127.0.0.1", 50127, "NONE")


async def test_cli_serve_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = _args(
        ["serve", "--listen", f"127.0.0.1:{port}", "--announce", "127.0.0.1:50128",
         "--duration", "1.5"]
    )  # fmt: skip
    serving = asyncio.create_task(asyncio.to_thread(sdp_cmd.run, args))
    found = await discover(targets=[("127.0.0.1", port)], wait=0.05, max_requests=25)
    assert await serving == 0
    assert found.port == 50128
    assert "announcing" in capsys.readouterr().out


def test_cli_discover_failures(capsys: pytest.CaptureFixture[str]) -> None:
    assert sdp_cmd.run(_args(["discover"])) == 2
    assert "--target" in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{silent.getsockname()[1]}"
        args = _args(["discover", "--target", target, "--requests", "2", "--wait", "0.01"])
        assert sdp_cmd.run(args) == 1
    assert "no SDP response after 2 requests" in capsys.readouterr().err
