"""Bit-packed EXI streams (W3C EXI 1.0 §7.1, alignment "bit-packed").

:class:`BitWriter` accumulates into one Python int (cheap shifts for small messages);
:class:`BitReader` reads from a bytes object, bounds-checked so a hostile stream ends in
:class:`ExiTruncated` rather than an IndexError, and never reads more integer groups than a
schema value can need.
"""

from __future__ import annotations

from mcscomm.exi.errors import ExiDecodeError, ExiLimitExceeded, ExiTruncated

#: EXI unsigned integers are 7-bit groups; 10 groups hold 64 bits. xs:integer has no bound, so
#: allow a little more but refuse endless continuation bits (hostile input).
MAX_UINT_GROUPS = 20
#: Inputs up to this size are held as one int (fast reads); larger ones are read bytewise.
SMALL_INPUT = 4096


class BitWriter:
    """Collects bits MSB-first; :meth:`getvalue` pads the last byte with zero bits."""

    __slots__ = ("acc", "nbits")

    def __init__(self) -> None:
        #: the bits so far as one int (MSB first) and their count; mcscomm.exi.stream appends
        #: to them directly on its hot path (value << width | bits, like :meth:`write`)
        self.acc = 0
        self.nbits = 0

    def write(self, value: int, width: int) -> None:
        """Append ``value`` as an unsigned ``width``-bit number (EXI n-bit unsigned integer)."""
        if width:
            self.acc = (self.acc << width) | value
            self.nbits += width

    def write_uint(self, value: int) -> None:
        """EXI Unsigned Integer (§7.1.6): 7-bit groups, least significant first, high bit = more."""
        while value >= 0x80:
            self.acc = (self.acc << 8) | 0x80 | (value & 0x7F)
            self.nbits += 8
            value >>= 7
        self.acc = (self.acc << 8) | value
        self.nbits += 8

    def write_bytes(self, data: bytes) -> None:
        """Append octets (each 8 bits, bit-packed: not aligned to a byte boundary)."""
        if data:
            self.acc = (self.acc << (8 * len(data))) | int.from_bytes(data, "big")
            self.nbits += 8 * len(data)

    def getvalue(self) -> bytes:
        pad = -self.nbits % 8
        total = self.nbits + pad
        return (self.acc << pad).to_bytes(total // 8, "big")


class StringTable:
    """EXI value partitions (§7.3.3), for decoding streams of peers that use string-table hits.

    Unbounded capacity and value length (the EXI defaults). The V2G profile itself never sends
    hits, so this is opt-in (``ExiCodec(value_hits=True)``); mcscomm's encoder never emits them.
    """

    __slots__ = ("global_values", "local_values")

    def __init__(self) -> None:
        self.global_values: list[str] = []
        self.local_values: dict[str, list[str]] = {}

    def add(self, key: str, value: str) -> None:
        self.global_values.append(value)
        self.local_values.setdefault(key, []).append(value)

    def hit(self, r: BitReader, key: str, local: bool) -> str:
        """Read a compact identifier (n-bit, n = ceil(log2(partition size))) and resolve it."""
        values = self.local_values.get(key, []) if local else self.global_values
        if not values:
            raise ExiDecodeError(f"{'local' if local else 'global'} value hit on an empty table")
        index = r.read((len(values) - 1).bit_length())
        if index >= len(values):
            raise ExiDecodeError(f"value hit {index} outside the table of {len(values)}")
        return values[index]


class BitReader:
    """Reads bits MSB-first from ``data``; every read past the end raises :class:`ExiTruncated`."""

    __slots__ = ("_data", "big", "nbits", "pos", "strings")

    def __init__(self, data: bytes, strings: StringTable | None = None) -> None:
        #: value string table when decoding value hits is enabled (EXI §7.3), else None
        self.strings = strings
        self._data = data
        #: length of the stream in bits
        self.nbits = len(data) * 8
        # Messages (up to a few KB) are read from one big int: a shift and a mask per read.
        # Shifting costs O(size), so large inputs read only the bytes of each field instead.
        #: the whole stream as one int (MSB first), or -1 for large inputs; the decoder's fast
        #: path (mcscomm.exi.stream) cuts fields from it directly, advancing ``pos`` itself
        self.big = int.from_bytes(data, "big") if len(data) <= SMALL_INPUT else -1
        self.pos = 0

    @property
    def remaining(self) -> int:
        """Bits left in the stream."""
        return self.nbits - self.pos

    def read(self, width: int) -> int:
        start = self.pos
        end = start + width
        if end > self.nbits:
            raise ExiTruncated(f"stream ends at bit {self.nbits}, needed bit {end}")
        self.pos = end
        if self.big >= 0:
            return (self.big >> (self.nbits - end)) & ((1 << width) - 1)
        # Only the bytes holding the field are converted: cost O(width), not O(stream).
        last = (end + 7) >> 3
        chunk = int.from_bytes(self._data[start >> 3 : last], "big")
        return (chunk >> ((last << 3) - end)) & ((1 << width) - 1)

    def read_uint(self) -> int:
        value = 0
        shift = 0
        big = self.big
        if big >= 0:  # the common, small-input case without a method call per octet
            nbits = self.nbits
            pos = self.pos
            for _ in range(MAX_UINT_GROUPS):
                pos += 8
                if pos > nbits:
                    raise ExiTruncated(f"stream ends at bit {nbits}, needed bit {pos}")
                octet = (big >> (nbits - pos)) & 0xFF
                value |= (octet & 0x7F) << shift
                if octet < 0x80:
                    self.pos = pos
                    return value
                shift += 7
            raise ExiLimitExceeded("unsigned integer longer than any schema value")
        for _ in range(MAX_UINT_GROUPS):
            octet = self.read(8)
            value |= (octet & 0x7F) << shift
            if not octet & 0x80:
                return value
            shift += 7
        raise ExiLimitExceeded("unsigned integer longer than any schema value")

    def read_bytes(self, count: int) -> bytes:
        if count * 8 > self.remaining:
            raise ExiTruncated(f"{count} octets announced, {self.remaining // 8} left")
        if self.pos % 8 == 0:
            start = self.pos // 8
            self.pos += count * 8
            return self._data[start : start + count]
        return self.read(count * 8).to_bytes(count, "big") if count else b""

    def rest_is_padding(self) -> bool:
        """True when only zero bits up to the next byte boundary remain."""
        rest = self.nbits - self.pos
        return rest < 8 and (rest == 0 or self._data[-1] & ((1 << rest) - 1) == 0)
