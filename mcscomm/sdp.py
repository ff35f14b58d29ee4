"""SDP (SECC Discovery Protocol): message layouts and an asyncio UDP server and client.

Theory of operation (facts §2). The EVCC sends an SDP request -- a V2GTP message of payload type
0x9000 holding two bytes, security and transport -- to the link-local multicast group ff02::1,
UDP port 15118, and waits 0.25 s for an answer, up to 50 times (facts §2.4). The SECC answers
unicast with an SDP response (0x9001): its IPv6 address, TCP port, security and transport, where
it accepts the V2G session. The wireless variants 0x9002/0x9003 (facts §2.3) are parsed and
answered in kind, so a wireless EVCC is not left hanging, but MCS does not need them.

The :class:`SdpServer` answers with its own security (V2G20-1238: an SECC offering -20 answers a
TLS request with TLS; like Josev, an SECC with TLS answers TLS whatever was asked). The transport
is always TCP, the only one a V2G session may use. Malformed datagrams are logged and ignored; the
server keeps serving.

The :class:`SdpClient` sends each request both to ff02::1 on a named interface (with its scope
id) and unicast to any given host/port, so discovery also works on 127.0.0.1 and ::1.

Deviation: the response carries a 16-byte IPv6 address. An SECC that announces an IPv4 address
(only useful on 127.0.0.1 in tests and labs) puts the IPv4-mapped IPv6 address there
(``::ffff:127.0.0.1``, RFC 4291 §2.5.5.2); :attr:`SdpResponse.host` maps it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

from construct import Bytes, Int8ub, Int16ub, Struct

from mcscomm.v2gtp import PayloadType, V2gtpError, build_frame, decode_datagram

__all__ = [
    "REQUEST",
    "REQUEST_WIRELESS",
    "RESPONSE",
    "RESPONSE_WIRELESS",
    "SDP_MAX_REQUESTS",
    "SDP_MULTICAST_GROUP",
    "SDP_PORT",
    "SDP_WAIT",
    "DiagStatus",
    "Discovery",
    "MalformedSdp",
    "SdpClient",
    "SdpError",
    "SdpMessage",
    "SdpRequest",
    "SdpRequestWireless",
    "SdpResponse",
    "SdpResponseWireless",
    "SdpServer",
    "SdpTimeout",
    "Security",
    "Transport",
    "decode",
    "discover",
    "encode",
    "to_ipv6",
]

log = logging.getLogger(__name__)

SDP_PORT = 15118  # facts §2.1 (Josev SDP_SERVER_PORT, libiso15118 sdp.hpp)
SDP_MULTICAST_GROUP = "ff02::1"  # all-nodes link-local, facts §2.1
SDP_WAIT = 0.25  # wait for a response per request, facts §2.4 (Josev Timeouts.SDP_REQ)
SDP_MAX_REQUESTS = 50  # requests per SDP cycle, facts §2.4 (Josev SDP_MAX_REQUEST_COUNTER)

# The largest SDP payload is the wireless request (61 bytes); nothing bigger is worth reading.
_MAX_SDP_PAYLOAD = 64


class Security(IntEnum):
    """Security byte of SDP (facts §2.2)."""

    TLS = 0x00
    NONE = 0x10


class Transport(IntEnum):
    """Transport-protocol byte of SDP (facts §2.2); UDP is reserved for SDP itself."""

    TCP = 0x00
    UDP = 0x10


class DiagStatus(IntEnum):
    """DiagStatus byte of the wireless SDP response (facts §2.3, dsV2Gshark)."""

    ONGOING = 0x00
    FINISHED_WITH_EVSEID = 0x01
    FINISHED_WITHOUT_EVSEID = 0x02
    NO_SECC = 0x10


# Wire layouts (facts §2.2 and §2.3).
REQUEST = Struct("security" / Int8ub, "transport" / Int8ub)  # 2 bytes
RESPONSE = Struct(
    "address" / Bytes(16), "port" / Int16ub, "security" / Int8ub, "transport" / Int8ub
)  # 20 bytes
REQUEST_WIRELESS = Struct(
    "security" / Int8ub,
    "transport" / Int8ub,
    "p2ps_ppd" / Int16ub,
    "coupling_type" / Int8ub,
    "evid" / Bytes(20),
    "evseid" / Bytes(36),
)  # 61 bytes
RESPONSE_WIRELESS = Struct(
    "address" / Bytes(16),
    "port" / Int16ub,
    "security" / Int8ub,
    "transport" / Int8ub,
    "diag_status" / Int8ub,
    "coupling_type" / Int8ub,
    "evseid" / Bytes(36),
)  # 58 bytes


# --------------------------------------------------------------------------------------- errors


class SdpError(Exception):
    """Base of every SDP failure."""


class MalformedSdp(SdpError):
    """A datagram that is not a valid SDP message. ``data`` holds it for the log."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class SdpTimeout(SdpError):
    """No SECC answered any of ``requests_sent`` requests."""

    def __init__(self, message: str, requests_sent: int) -> None:
        super().__init__(message)
        self.requests_sent = requests_sent


# ------------------------------------------------------------------------------------- messages


def to_ipv6(host: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """The 16-byte form of an address: IPv6 as is (scope dropped), IPv4 as ``::ffff:a.b.c.d``."""
    if isinstance(host, str):
        host = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(host, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(f"::ffff:{host}")
    return ipaddress.IPv6Address(host.packed)


def _ascii_field(text: str, size: int, name: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > size:
        raise ValueError(f"{name} longer than {size} bytes: {text!r}")
    return raw.ljust(size, b"\x00")


def _ascii_text(raw: bytes) -> str:
    # Tolerant on purpose: an odd byte in an ID of a wireless request is no reason to drop it.
    return raw.rstrip(b"\x00").decode("ascii", errors="replace")


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")


@dataclass(frozen=True)
class SdpRequest:
    """Wired SDP request (0x9000): what the EVCC asks for."""

    payload_type: ClassVar[int] = PayloadType.SDP_REQUEST
    security: Security = Security.TLS
    transport: Transport = Transport.TCP

    def payload(self) -> bytes:
        """The payload bytes (without the V2GTP header)."""
        out: bytes = REQUEST.build({"security": self.security, "transport": self.transport})
        return out


@dataclass(frozen=True)
class SdpRequestWireless(SdpRequest):
    """Wireless/ACDP SDP request (0x9002, facts §2.3); tolerated, not needed for MCS."""

    payload_type: ClassVar[int] = PayloadType.SDP_REQUEST_WIRELESS
    p2ps_ppd: int = 0
    coupling_type: int = 0xFF  # "not applicable"
    evid: str = ""
    evseid: str = ""

    def payload(self) -> bytes:
        out: bytes = REQUEST_WIRELESS.build(
            {
                "security": self.security,
                "transport": self.transport,
                "p2ps_ppd": self.p2ps_ppd,
                "coupling_type": self.coupling_type,
                "evid": _ascii_field(self.evid, 20, "EVID"),
                "evseid": _ascii_field(self.evseid, 36, "EVSEID"),
            }
        )
        return out


@dataclass(frozen=True)
class SdpResponse:
    """Wired SDP response (0x9001): where the SECC accepts the V2G session."""

    payload_type: ClassVar[int] = PayloadType.SDP_RESPONSE
    address: ipaddress.IPv6Address
    port: int
    security: Security = Security.TLS
    transport: Transport = Transport.TCP

    def __post_init__(self) -> None:
        _check_port(self.port)

    @property
    def host(self) -> str:
        """The address to connect to: dotted IPv4 for an IPv4-mapped address, else IPv6."""
        mapped = self.address.ipv4_mapped
        return str(mapped) if mapped is not None else str(self.address)

    def _common(self) -> dict[str, Any]:
        return {
            "address": self.address.packed,
            "port": self.port,
            "security": self.security,
            "transport": self.transport,
        }

    def payload(self) -> bytes:
        """The payload bytes (without the V2GTP header)."""
        out: bytes = RESPONSE.build(self._common())
        return out


@dataclass(frozen=True)
class SdpResponseWireless(SdpResponse):
    """Wireless/ACDP SDP response (0x9003, facts §2.3)."""

    payload_type: ClassVar[int] = PayloadType.SDP_RESPONSE_WIRELESS
    diag_status: int = DiagStatus.FINISHED_WITHOUT_EVSEID
    coupling_type: int = 0xFF
    evseid: str = ""

    def payload(self) -> bytes:
        out: bytes = RESPONSE_WIRELESS.build(
            {
                **self._common(),
                "diag_status": self.diag_status,
                "coupling_type": self.coupling_type,
                "evseid": _ascii_field(self.evseid, 36, "EVSEID"),
            }
        )
        return out


SdpMessage = SdpRequest | SdpResponse

_LAYOUTS: dict[int, tuple[Any, int]] = {
    PayloadType.SDP_REQUEST: (REQUEST, 2),
    PayloadType.SDP_RESPONSE: (RESPONSE, 20),
    PayloadType.SDP_REQUEST_WIRELESS: (REQUEST_WIRELESS, 61),
    PayloadType.SDP_RESPONSE_WIRELESS: (RESPONSE_WIRELESS, 58),
}


def encode(message: SdpMessage) -> bytes:
    """The whole datagram: V2GTP header and SDP payload."""
    return build_frame(message.payload_type, message.payload())


def _enum(kind: type[Security] | type[Transport], value: int, data: bytes) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise MalformedSdp(f"invalid {kind.__name__.lower()} byte 0x{value:02X}", data) from None


def decode(data: bytes) -> SdpMessage:
    """Decode one SDP datagram (header included). Raises :class:`MalformedSdp`."""
    try:
        frame = decode_datagram(data, _MAX_SDP_PAYLOAD, accept=lambda t: t in _LAYOUTS)
    except V2gtpError as exc:
        raise MalformedSdp(f"bad V2GTP framing: {exc}", data) from exc
    layout, size = _LAYOUTS[frame.payload_type]
    if len(frame.payload) != size:
        raise MalformedSdp(
            f"payload type 0x{frame.payload_type:04X} needs {size} payload bytes,"
            f" got {len(frame.payload)}",
            data,
        )
    f = layout.parse(frame.payload)
    security = _enum(Security, f.security, data)
    transport = _enum(Transport, f.transport, data)
    if frame.payload_type == PayloadType.SDP_REQUEST:
        return SdpRequest(security, transport)
    if frame.payload_type == PayloadType.SDP_REQUEST_WIRELESS:
        return SdpRequestWireless(
            security,
            transport,
            p2ps_ppd=f.p2ps_ppd,
            coupling_type=f.coupling_type,
            evid=_ascii_text(f.evid),
            evseid=_ascii_text(f.evseid),
        )
    address = ipaddress.IPv6Address(bytes(f.address))
    if frame.payload_type == PayloadType.SDP_RESPONSE:
        return SdpResponse(address, f.port, security, transport)
    return SdpResponseWireless(
        address,
        f.port,
        security,
        transport,
        diag_status=f.diag_status,
        coupling_type=f.coupling_type,
        evseid=_ascii_text(f.evseid),
    )


def _describe(data: bytes) -> str:
    shown = data[:64].hex(" ")
    return shown + (" …" if len(data) > 64 else "")


def _format_addr(addr: tuple[Any, ...]) -> str:
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"


# --------------------------------------------------------------------------------------- server


class _QueueProtocol(asyncio.DatagramProtocol):
    """Hands received datagrams to a callback; logs socket errors instead of dying."""

    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram
        self._last_error = ""

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable, no route for multicast) must not stop the socket.
        # Logged once per kind: a dead multicast route would otherwise warn 50 times a cycle.
        text = str(exc)
        log.log(logging.DEBUG if text == self._last_error else logging.WARNING, "SDP: %s", text)
        self._last_error = text


def _udp_socket(host: str, port: int, interface: str | None = None) -> socket.socket:
    """A bound, non-blocking UDP socket; with ``interface``, joined to ff02::1 on it."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, _type, proto, _name, resolved = infos[0]
    sockaddr: tuple[Any, ...] = tuple(resolved)
    sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and interface is not None:
            index = socket.if_nametoindex(interface)
            if ipaddress.ip_address(sockaddr[0]).is_link_local and not sockaddr[3]:
                sockaddr = (sockaddr[0], sockaddr[1], 0, index)  # link-local needs its scope
            group = socket.inet_pton(socket.AF_INET6, SDP_MULTICAST_GROUP)
            sock.setsockopt(
                socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + struct.pack("@I", index)
            )
        sock.bind(sockaddr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class SdpServerStats:
    """What the server has seen, for logs and tests."""

    answered: int = 0
    ignored: int = 0


class SdpServer:
    """The SECC's SDP responder.

    ``announce`` is the (host, TCP port) put in every response; ``security`` is what this SECC
    offers. The sans-IO core is :meth:`handle_datagram`; :meth:`start` binds a UDP socket on
    ``listen`` (default ``[::]:15118``) and, when ``interface`` is given, joins ff02::1 there.
    """

    def __init__(
        self,
        announce: tuple[str, int],
        security: Security = Security.TLS,
        *,
        listen: tuple[str, int] = ("::", SDP_PORT),
        interface: str | None = None,
        evse_id: str = "",
    ) -> None:
        address = to_ipv6(announce[0])
        if address.is_unspecified:
            raise ValueError("the announced address must be a concrete address, not ::/0.0.0.0")
        _check_port(announce[1])
        _ascii_field(evse_id, 36, "EVSEID")
        self.address = address
        self.port = announce[1]
        self.security = security
        self.listen = listen
        self.interface = interface
        self.evse_id = evse_id
        self.stats = SdpServerStats()
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = asyncio.Event()

    def response_for(self, request: SdpRequest) -> SdpResponse:
        """The answer to ``request``: our own address, port and security, transport TCP."""
        # V2G20-1238: an SECC offering -20 answers TLS; we always answer what we offer (Josev's
        # rule), and TCP because a V2G session runs on nothing else.
        if request.security != self.security:
            log.info(
                "SDP: EVCC asked for security %s, this SECC offers %s",
                request.security.name,
                self.security.name,
            )
        if isinstance(request, SdpRequestWireless):
            return SdpResponseWireless(
                self.address,
                self.port,
                self.security,
                Transport.TCP,
                diag_status=(
                    DiagStatus.FINISHED_WITH_EVSEID
                    if self.evse_id
                    else DiagStatus.FINISHED_WITHOUT_EVSEID
                ),
                coupling_type=request.coupling_type,
                evseid=self.evse_id,
            )
        return SdpResponse(self.address, self.port, self.security, Transport.TCP)

    def handle_datagram(self, data: bytes, addr: tuple[Any, ...]) -> bytes | None:
        """The reply datagram for ``data`` from ``addr``, or None (logged) when there is none."""
        try:
            message = decode(data)
        except MalformedSdp as exc:
            self.stats.ignored += 1
            log.warning(
                "SDP: ignoring malformed datagram from %s: %s [%s]",
                _format_addr(addr),
                exc,
                _describe(data),
            )
            return None
        if not isinstance(message, SdpRequest):
            self.stats.ignored += 1
            log.info("SDP: ignoring %s from %s", type(message).__name__, _format_addr(addr))
            return None
        response = self.response_for(message)
        self.stats.answered += 1
        log.info(
            "SDP: %s from %s -> [%s]:%d %s/%s",
            type(message).__name__,
            _format_addr(addr),
            response.address,
            response.port,
            response.security.name,
            response.transport.name,
        )
        return encode(response)

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        reply = self.handle_datagram(data, addr)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    async def start(self) -> None:
        """Bind the UDP socket and start answering."""
        loop = asyncio.get_running_loop()
        sock = _udp_socket(self.listen[0], self.listen[1], self.interface)
        transport, _protocol = await loop.create_datagram_endpoint(
            lambda: _QueueProtocol(self._on_datagram), sock=sock
        )
        self._transport = transport
        log.info(
            "SDP server on %s announcing [%s]:%d %s",
            _format_addr(self.sockname),
            self.address,
            self.port,
            self.security.name,
        )

    @property
    def sockname(self) -> tuple[Any, ...]:
        """The bound address (host, port, ...) -- useful after binding port 0."""
        if self._transport is None:
            raise RuntimeError("server not started")
        name: tuple[Any, ...] = self._transport.get_extra_info("sockname")
        return name

    def close(self) -> None:
        """Stop answering and release the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._closed.set()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` (or cancellation)."""
        if self._transport is None:
            await self.start()
        await self._closed.wait()

    async def __aenter__(self) -> SdpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Discovery:
    """A found SECC: the response, where to connect (``host``, ``port``) and who answered."""

    response: SdpResponse
    host: str
    port: int
    peer: tuple[Any, ...] = field(compare=False)


class SdpClient:
    """The EVCC's SDP requester.

    Each round sends the request to ff02::1 on ``interface`` (port ``multicast_port``) and to
    every unicast ``targets`` (host, port), then waits ``wait`` seconds for a valid response;
    after ``max_requests`` rounds it raises :class:`SdpTimeout`. ``requests_sent`` counts rounds.
    The security in the answer may differ from the request; the caller decides what it accepts.
    """

    def __init__(
        self,
        security: Security = Security.TLS,
        transport: Transport = Transport.TCP,
        *,
        targets: Sequence[tuple[str, int]] = (),
        interface: str | None = None,
        multicast_port: int = SDP_PORT,
        max_requests: int = SDP_MAX_REQUESTS,
        wait: float = SDP_WAIT,
    ) -> None:
        if not targets and interface is None:
            raise ValueError("give an interface for multicast, unicast targets, or both")
        if max_requests < 1 or wait <= 0:
            raise ValueError("max_requests must be >= 1 and wait > 0")
        self.request = SdpRequest(security, transport)
        self.targets = list(targets)
        self.interface = interface
        self.multicast_port = multicast_port
        self.max_requests = max_requests
        self.wait = wait
        self.requests_sent = 0

    async def _destinations(self) -> list[tuple[int, tuple[Any, ...]]]:
        loop = asyncio.get_running_loop()
        out: list[tuple[int, tuple[Any, ...]]] = []
        if self.interface is not None:
            index = socket.if_nametoindex(self.interface)
            out.append((socket.AF_INET6, (SDP_MULTICAST_GROUP, self.multicast_port, 0, index)))
        for host, port in self.targets:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            if not infos:  # pragma: no cover - getaddrinfo raises instead
                raise SdpError(f"cannot resolve {host}")
            family, _t, _p, _n, sockaddr = infos[0]
            out.append((family, sockaddr))
        return out

    async def discover(self) -> Discovery:
        """Find an SECC. Raises :class:`SdpTimeout` when none answers, ``OSError`` on sockets."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[bytes, tuple[Any, ...]]] = asyncio.Queue()
        destinations = await self._destinations()
        transports: dict[int, asyncio.DatagramTransport] = {}
        try:
            for family in {f for f, _ in destinations}:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    if family == socket.AF_INET6 and self.interface is not None:
                        index = socket.if_nametoindex(self.interface)
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
                    sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
                    sock.setblocking(False)
                except BaseException:
                    sock.close()
                    raise
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _QueueProtocol(lambda d, a: queue.put_nowait((d, a))), sock=sock
                )
                transports[family] = transport
            datagram = encode(self.request)
            for _round in range(self.max_requests):
                for family, sockaddr in destinations:
                    transports[family].sendto(datagram, sockaddr)
                self.requests_sent += 1
                log.debug("SDP request %d/%d sent", self.requests_sent, self.max_requests)
                found = await self._await_response(queue, loop.time() + self.wait)
                if found is not None:
                    return found
        finally:
            for transport in transports.values():
                transport.close()
        raise SdpTimeout(
            f"no SDP response after {self.requests_sent} requests ({self.wait:g} s wait each)",
            self.requests_sent,
        )

    async def _await_response(
        self, queue: asyncio.Queue[tuple[bytes, tuple[Any, ...]]], deadline: float
    ) -> Discovery | None:
        loop = asyncio.get_running_loop()
        while (remaining := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    data, addr = await queue.get()
            except TimeoutError:
                return None
            try:
                message = decode(data)
            except MalformedSdp as exc:
                log.warning("SDP: ignoring malformed datagram from %s: %s", _format_addr(addr), exc)
                continue
            if not isinstance(message, SdpResponse):
                continue  # our own multicast request looped back, or another EVCC's
            return Discovery(message, self._connect_host(message, addr), message.port, addr)
        return None

    def _connect_host(self, response: SdpResponse, addr: tuple[Any, ...]) -> str:
        host = response.host
        # A link-local address is meaningless without the interface it was found on.
        if response.address.is_link_local:
            scope = addr[3] if len(addr) > 3 and addr[3] else None
            if scope is not None:
                with contextlib.suppress(OSError):
                    return f"{host}%{socket.if_indextoname(scope)}"
            if self.interface is not None:
                return f"{host}%{self.interface}"
        return host


async def discover(
    *,
    targets: Sequence[tuple[str, int]] = (),
    interface: str | None = None,
    security: Security = Security.TLS,
    max_requests: int = SDP_MAX_REQUESTS,
    wait: float = SDP_WAIT,
    multicast_port: int = SDP_PORT,
) -> Discovery:
    """One SDP cycle with :class:`SdpClient`; see there."""
    client = SdpClient(
        security,
        targets=targets,
        interface=interface,
        max_requests=max_requests,
        wait=wait,
        multicast_port=multicast_port,
    )
    return await client.discover()
