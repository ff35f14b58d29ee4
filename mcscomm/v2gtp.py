"""V2GTP (V2G Transfer Protocol): the 8-byte header and the framing of a byte stream.

Theory of operation. Every V2G message travels in one V2GTP message (V2G20-1229): an 8-byte
header -- protocol version 0x01, its inverse 0xFE, a uint16 payload type and a uint32 payload
length, all big-endian (facts §1.1, V2G20-082…085) -- followed by exactly ``length`` payload bytes.
A receiver checks the header in the order the standard gives (facts §1.3): version and inverse
version first (V2G20-090), then the payload type (V2G20-092), then the payload length (V2G20-094),
and processes the payload only when all checks pass (V2G20-096).

The standard says a receiver *ignores* a message with a bad header. On a byte stream (TCP/TLS)
there is no way to find the next header after a bad one, so ignoring it means **closing the
connection**; that is the caller's job. Every error here is a :class:`V2gtpError` carrying the
offending header values, and :attr:`V2gtpError.close_reason` is the line to log when closing.

Two readers share the same checks:

* :class:`FrameDecoder` is sans-IO: ``feed(bytes) -> list[Frame]``; it copes with frames split
  across reads and with several frames glued in one read.
* :func:`read_frame` reads one frame from an :class:`asyncio.StreamReader` with ``readexactly``:
  first the header, then exactly ``length`` bytes -- never a blind ``read(n)``.

Both refuse a payload longer than ``max_payload`` as soon as the header is seen, before reading or
buffering any of it, so a peer announcing 4 GiB costs nothing.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

from construct import Bytes, Int8ub, Int16ub, Int32ub, Struct, this

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "FRAME",
    "HEADER",
    "HEADER_LENGTH",
    "INVERSE_PROTOCOL_VERSION",
    "MANUFACTURER_PAYLOAD_TYPES",
    "PROTOCOL_VERSION",
    "ConnectionClosed",
    "Frame",
    "FrameDecoder",
    "Header",
    "InverseMismatch",
    "Oversize",
    "PayloadType",
    "TrailingData",
    "Truncated",
    "UnknownPayloadType",
    "V2gtpError",
    "WrongVersion",
    "build_frame",
    "decode_datagram",
    "is_known_payload_type",
    "parse_header",
    "payload_type_name",
    "read_frame",
]

PROTOCOL_VERSION = 0x01  # facts §1.1, V2G20-083; all other values are reserved
INVERSE_PROTOCOL_VERSION = 0xFE  # version XOR 0xFF, V2G20-084
HEADER_LENGTH = 8

#: The largest payload accepted unless the caller says otherwise: 64 KiB.
#: Why this number: the protocol allows 2^32-1 bytes (facts §1.3, Table 13), which a receiver
#: must not believe; reference stacks cap their buffers at 2 KiB (libiso15118) and 8 KiB
#: (EVerest EvseV2G). The biggest message of a DC/MCS session in practice is a
#: CertificateInstallationRes: a contract chain of up to 3 sub-certificates of <= 1600 bytes each
#: (XSD), keys and signatures -- about 8 KB in EXI and ~16 KB as XML with base64. 64 KiB holds that
#: four times over, and realistic schedules (96 entries for a day in 15-minute slots) in XML, while
#: bounding what one connection can make us buffer. A ScheduleExchangeRes that fills every XSD
#: maximum (3 tuples x 1024 entries, charge and discharge, price tables) is larger when sent as
#: XML; a user who needs that raises ``max_payload``.
DEFAULT_MAX_PAYLOAD = 64 * 1024


class PayloadType(IntEnum):
    """Payload types of ISO 15118-20 (facts §1.2, -20 Table 14)."""

    SAP = 0x8001  # SupportedAppProtocol (and every EXI message in DIN / -2)
    COMMON = 0x8002  # -20 CommonMessages main stream
    AC = 0x8003
    DC = 0x8004  # also carries MCS (facts §7)
    ACDP = 0x8005
    WPT = 0x8006
    SCHEDULE_RENEGOTIATION = 0x8101  # side streams, -20 §8.6.5
    METERING_CONFIRMATION = 0x8102  # V2G20-1084/1085
    ACDP_SYSTEM_STATUS = 0x8103
    PARKING_STATUS = 0x8104
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002  # facts §2.3
    SDP_RESPONSE_WIRELESS = 0x9003


#: Manufacturer-specific payload types (facts §1.2): accepted, but not enum members because
#: their meaning (and uniqueness) is up to each manufacturer.
MANUFACTURER_PAYLOAD_TYPES = range(0xA000, 0x10000)

_KNOWN: frozenset[int] = frozenset(int(p) for p in PayloadType)


def is_known_payload_type(payload_type: int) -> bool:
    """True for a payload type of ISO 15118-20, including the manufacturer range 0xA000–0xFFFF."""
    return payload_type in _KNOWN or payload_type in MANUFACTURER_PAYLOAD_TYPES


def payload_type_name(payload_type: int) -> str:
    """A readable name for logs: ``DC (0x8004)``, ``manufacturer (0xA001)``, ``0x1234``."""
    if payload_type in _KNOWN:
        return f"{PayloadType(payload_type).name} (0x{payload_type:04X})"
    if payload_type in MANUFACTURER_PAYLOAD_TYPES:
        return f"manufacturer (0x{payload_type:04X})"
    return f"0x{payload_type:04X}"


#: The wire layout of the header (facts §1.1).
HEADER = Struct(
    "version" / Int8ub,
    "inverse_version" / Int8ub,
    "payload_type" / Int16ub,
    "payload_length" / Int32ub,
)
#: Header followed by its payload: the layout of one whole V2GTP message.
FRAME = Struct(
    "version" / Int8ub,
    "inverse_version" / Int8ub,
    "payload_type" / Int16ub,
    "payload_length" / Int32ub,
    "payload" / Bytes(this.payload_length),
)
# HEADER/FRAME (construct) are the declared layout: documentation, diagnostics and the reference
# the tests hold the fast path to. Framing is on every hot path (4 header operations per
# charge-loop cycle, fuzzing), where even construct's compiled form costs ~8 us per operation;
# struct does the same ">BBHI" in a fraction of a microsecond. tests/test_v2gtp.py checks with
# hypothesis that both agree on every header.
_HEADER_STRUCT = struct.Struct(">BBHI")
_pack_header = _HEADER_STRUCT.pack
_unpack_header = _HEADER_STRUCT.unpack_from
_MAX_LENGTH = 0xFFFF_FFFF  # uint32 payload length (facts §1.1)


class Header(NamedTuple):
    """A parsed V2GTP header (values as received, not yet trusted)."""

    version: int
    inverse_version: int
    payload_type: int
    payload_length: int


class Frame(NamedTuple):
    """One V2GTP message: its payload type and payload bytes."""

    payload_type: int
    payload: bytes


# --------------------------------------------------------------------------------------- errors


class V2gtpError(Exception):
    """Bad V2GTP input from the peer. On TCP the caller closes the connection and logs
    :attr:`close_reason`.

    ``header`` holds the offending header when one was read; ``frames`` holds the good frames a
    :meth:`FrameDecoder.feed` call decoded before it hit the error (they stay valid).
    """

    def __init__(self, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header
        self.frames: list[Frame] = []

    @property
    def close_reason(self) -> str:
        """One log line: why the connection is being closed, with the header bytes as seen."""
        text = f"closing connection: invalid V2GTP message: {self}"
        if self.header is not None:
            h = self.header
            text += (
                f" [header version=0x{h.version:02X} inverse=0x{h.inverse_version:02X}"
                f" payload_type=0x{h.payload_type:04X} length={h.payload_length}]"
            )
        return text


class WrongVersion(V2gtpError):
    """Protocol version byte is not 0x01 (V2G20-090)."""


class InverseMismatch(V2gtpError):
    """Inverse protocol version byte is not the version XOR 0xFF (V2G20-090)."""


class UnknownPayloadType(V2gtpError):
    """Payload type is reserved or not accepted by this receiver (V2G20-092)."""


class Oversize(V2gtpError):
    """Announced payload length exceeds the receiver's maximum (V2G20-094)."""

    def __init__(self, message: str, header: Header, max_payload: int) -> None:
        super().__init__(message, header)
        self.max_payload = max_payload


class Truncated(V2gtpError):
    """The stream ended inside a header or a payload."""

    def __init__(
        self, message: str, header: Header | None = None, *, received: int = 0, expected: int = 0
    ) -> None:
        super().__init__(message, header)
        self.received = received
        self.expected = expected


class ConnectionClosed(Truncated):
    """The stream ended cleanly between two messages: the peer closed, nothing was lost.

    A subclass of :class:`Truncated` so that ``except V2gtpError`` still covers it; catch it first
    to log a normal close at a lower level.
    """

    @property
    def close_reason(self) -> str:
        return "connection closed by peer between messages"


class TrailingData(V2gtpError):
    """A datagram (SDP) holds more bytes than its header announces."""


# -------------------------------------------------------------------------------------- helpers


def build_frame(payload_type: int, payload: bytes) -> bytes:
    """Header + payload as bytes. Raises ``ValueError`` for a payload type outside 0…0xFFFF."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type out of range: {payload_type!r}")
    n = len(payload)
    if n > _MAX_LENGTH:
        raise ValueError(f"payload of {n} bytes does not fit a V2GTP frame")
    return _pack_header(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, payload_type, n) + payload


def parse_header(
    data: bytes | bytearray | memoryview,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    accept: Callable[[int], bool] = is_known_payload_type,
) -> Header:
    """Parse and check the first 8 bytes of ``data`` in the standard's order (facts §1.3).

    ``accept`` decides which payload types this receiver supports (default: every -20 type and
    the manufacturer range). Raises :class:`WrongVersion`, :class:`InverseMismatch`,
    :class:`UnknownPayloadType` or :class:`Oversize`; ``data`` must hold at least 8 bytes.
    """
    version, inverse, payload_type, length = _unpack_header(data)
    return _checked(version, inverse, payload_type, length, max_payload, accept)


def _checked(
    version: int,
    inverse: int,
    payload_type: int,
    length: int,
    max_payload: int,
    accept: Callable[[int], bool],
) -> Header:
    """The header if every check passes, else the error of the first failing check."""
    if (
        version == PROTOCOL_VERSION
        and inverse == INVERSE_PROTOCOL_VERSION
        and accept(payload_type)
        and length <= max_payload
    ):
        return Header(version, inverse, payload_type, length)
    header = Header(version, inverse, payload_type, length)
    # V2G20-090: version and inverse version first.
    if version != PROTOCOL_VERSION:
        raise WrongVersion(
            f"protocol version 0x{version:02X}, expected 0x{PROTOCOL_VERSION:02X}", header
        )
    if inverse != version ^ 0xFF:
        raise InverseMismatch(
            f"inverse protocol version 0x{inverse:02X}, expected 0x{INVERSE_PROTOCOL_VERSION:02X}",
            header,
        )
    # V2G20-092: then the payload type.
    if not accept(payload_type):
        raise UnknownPayloadType(
            f"unsupported payload type {payload_type_name(payload_type)}", header
        )
    # V2G20-094: then the payload length -- checked before anything is read or allocated.
    raise Oversize(
        f"payload length {length} exceeds the maximum of {max_payload}", header, max_payload
    )


def decode_datagram(
    data: bytes,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    accept: Callable[[int], bool] = is_known_payload_type,
) -> Frame:
    """Decode a datagram that must hold exactly one V2GTP message (SDP over UDP).

    Raises :class:`Truncated` when it is shorter than its header says, :class:`TrailingData`
    when longer, and the header errors of :func:`parse_header`.
    """
    if len(data) < HEADER_LENGTH:
        raise Truncated(
            f"datagram of {len(data)} bytes is shorter than a V2GTP header",
            received=len(data),
            expected=HEADER_LENGTH,
        )
    header = parse_header(data, max_payload, accept)
    total = HEADER_LENGTH + header.payload_length
    if len(data) < total:
        raise Truncated(
            f"datagram holds {len(data) - HEADER_LENGTH} payload bytes,"
            f" header announces {header.payload_length}",
            header,
            received=len(data) - HEADER_LENGTH,
            expected=header.payload_length,
        )
    if len(data) > total:
        raise TrailingData(
            f"datagram has {len(data) - total} bytes after the announced payload", header
        )
    return Frame(header.payload_type, bytes(data[HEADER_LENGTH:]))


# ---------------------------------------------------------------------------------- the readers


class FrameDecoder:
    """Sans-IO framing of a V2GTP byte stream.

    Feed it whatever the transport delivered; get back every complete frame, in order. A frame
    split across feeds is kept until complete; several frames in one feed all come out. At most
    one header plus ``max_payload`` bytes of an incomplete frame is ever waited for; the payload
    length is checked as soon as the header is complete.

    After an error the stream cannot be resynchronised: the decoder stays failed and every later
    :meth:`feed` raises the same error. Frames decoded in the failing call before the bad header
    are on the exception's ``frames`` attribute. Call :meth:`eof` when the transport closes to
    learn whether it ended inside a frame.
    """

    def __init__(
        self,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        *,
        accept: Callable[[int], bool] = is_known_payload_type,
    ) -> None:
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self.max_payload = max_payload
        self._accept = accept
        self._buffer = bytearray()
        self._header: Header | None = None  # checked header of the frame being collected
        self.error: V2gtpError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they complete. Raises :class:`V2gtpError`."""
        if self.error is not None:
            raise self.error
        # Usually nothing is pending and ``data`` holds whole frames: decode straight from it
        # (bytes slices need no further copy) and keep only an incomplete tail.
        pending = self._buffer
        buf: bytes | bytearray | memoryview
        if pending:
            pending += data
            buf = pending
        else:
            buf = data
        size = len(buf)
        frames: list[Frame] = []
        header = self._header
        pos = 0
        max_payload, accept = self.max_payload, self._accept
        try:
            while True:
                if header is None:
                    if size - pos < HEADER_LENGTH:
                        break
                    version, inverse, ptype, length = _unpack_header(buf, pos)
                    header = _checked(version, inverse, ptype, length, max_payload, accept)
                    pos += HEADER_LENGTH
                end = pos + header.payload_length
                if size < end:
                    break
                frames.append(Frame(header.payload_type, bytes(buf[pos:end])))
                header = None
                pos = end
        except V2gtpError as exc:
            exc.frames = frames
            self.error = exc
            self._buffer = bytearray()
            raise
        self._header = header
        if buf is pending:
            if pos:
                del pending[:pos]
        elif pos < size:
            pending += memoryview(buf)[pos:]
        return frames

    def eof(self) -> None:
        """The transport closed. Raises :class:`Truncated` if it ended inside a frame."""
        if self.error is not None:
            raise self.error
        if self._header is not None:
            self.error = Truncated(
                f"stream ended after {len(self._buffer)} of"
                f" {self._header.payload_length} payload bytes",
                self._header,
                received=len(self._buffer),
                expected=self._header.payload_length,
            )
            raise self.error
        if self._buffer:
            self.error = Truncated(
                f"stream ended inside a header ({len(self._buffer)} of {HEADER_LENGTH} bytes)",
                received=len(self._buffer),
                expected=HEADER_LENGTH,
            )
            raise self.error


async def read_frame(
    reader: asyncio.StreamReader,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    *,
    accept: Callable[[int], bool] = is_known_payload_type,
) -> Frame:
    """Read exactly one V2GTP message from ``reader``.

    Reads the 8-byte header with ``readexactly``, checks it (facts §1.3), then reads exactly the
    announced payload. Raises :class:`ConnectionClosed` on a clean end of stream before a header,
    :class:`Truncated` on an end inside a frame, and the header errors of :func:`parse_header`.
    Timeouts are the caller's (``asyncio.timeout``).
    """
    try:
        raw = await reader.readexactly(HEADER_LENGTH)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionClosed("stream ended between messages") from None
        raise Truncated(
            f"stream ended inside a header ({len(exc.partial)} of {HEADER_LENGTH} bytes)",
            received=len(exc.partial),
            expected=HEADER_LENGTH,
        ) from None
    header = parse_header(raw, max_payload, accept)
    try:
        payload = await reader.readexactly(header.payload_length)
    except asyncio.IncompleteReadError as exc:
        raise Truncated(
            f"stream ended after {len(exc.partial)} of {header.payload_length} payload bytes",
            header,
            received=len(exc.partial),
            expected=header.payload_length,
        ) from None
    return Frame(header.payload_type, payload)
