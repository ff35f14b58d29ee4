"""EXI datatype representations of simple-type values (W3C EXI 1.0 §7.1 and §7.2).

Each :class:`Datatype` turns the lexical XML value into bits and back. Representations, as the V2G
profile uses them (shared/exi-vectors/README §5):

* boolean: 1 bit;
* integer: n-bit unsigned offset from the minimum when the range has at most 4096 values,
  else Unsigned Integer when the minimum is >= 0, else Integer (sign bit + magnitude);
* enumeration: n-bit index into the facet values in schema order;
* hexBinary / base64Binary: Unsigned Integer length, then the octets;
* string (and everything string-like): always a literal, ``length + 2`` then one Unsigned Integer
  per code point, because the profile never uses string-table hits (value partition capacity 0).

Decoding caps every length by the bits left in the stream and by the schema's length facets, so
a hostile length cannot allocate memory the input does not back.
"""

from __future__ import annotations

import base64
import binascii

from mcscomm.exi.bits import BitReader, BitWriter
from mcscomm.exi.errors import (
    ExiEncodeError,
    ExiLimitExceeded,
    ExiSchemaError,
    ExiUnsupported,
)
from mcscomm.exi.xsd import SimpleType

#: EXI §7.1.5: bounded integers with a range of at most 4096 values use the n-bit encoding.
NBIT_MAX_RANGE = 4096
_WS = " \t\r\n"


def _xml_char_ok(cp: int) -> bool:
    # XML 1.0 Char production: what lxml will accept as element text.
    return (
        cp in (0x9, 0xA, 0xD)
        or 0x20 <= cp <= 0xD7FF
        or 0xE000 <= cp <= 0xFFFD
        or 0x10000 <= cp <= 0x10FFFF
    )


class Datatype:
    """Encoder/decoder of one simple type's values.

    Fast paths used by :mod:`mcscomm.exi.stream` (they give the same bits as ``encode`` /
    ``decode``; tests/test_exi_fastpath.py checks it): when ``packs`` is true, ``bits(text)``
    returns the whole representation as one ``(value, width)`` so the codec writes a
    simple-typed element in one go; when ``fixed_width >= 0`` the representation always has that
    many bits and ``from_bits(value)`` gives the text the codec would get from ``decode``.
    """

    name = "datatype"
    packs = False
    fixed_width = -1
    #: an :class:`IntegerType` (sign bit first; the decoder reads it with the CH code)
    signed = False

    def encode(self, w: BitWriter, text: str) -> None:
        raise NotImplementedError

    def bits(self, text: str) -> tuple[int, int]:
        """The representation of ``text`` as (value, width); only when ``packs``."""
        raise NotImplementedError

    def from_bits(self, value: int) -> str:
        """The text of a ``fixed_width``-bit representation; only when ``fixed_width >= 0``."""
        raise NotImplementedError

    def from_sign(self, negative: int, magnitude: int) -> str:
        """The text of a sign bit and Unsigned Integer magnitude; only when ``signed``."""
        raise NotImplementedError

    def decode(self, r: BitReader, key: str = "") -> str:
        raise NotImplementedError


class StringType(Datatype):
    """String literal: length + 2, then code points (§7.1.10, string table misses only).

    ``key`` is the qname (Clark notation) the value belongs to: the local value partition of
    EXI §7.3. It only matters when the reader carries a :class:`StringTable` (opt-in decoding of
    value hits from peers using the EXI default value partitions).
    """

    name = "string"

    def __init__(self, max_length: int | None = None) -> None:
        self.max_length = max_length

    def encode(self, w: BitWriter, text: str) -> None:
        w.write_uint(len(text) + 2)
        for ch in text:
            cp = ord(ch)
            if cp < 0x80:
                w.write(cp, 8)
            else:
                w.write_uint(cp)

    def decode(self, r: BitReader, key: str = "") -> str:
        n = r.read_uint()
        table = r.strings
        if n < 2:
            # 0 = local value hit, 1 = global value hit; the V2G profile never sends them.
            if table is None:
                raise ExiUnsupported("string table hit (value partitions are not used in V2G EXI)")
            return table.hit(r, key, local=n == 0)
        length = n - 2
        if length * 8 > r.remaining:
            raise ExiLimitExceeded(f"string length {length} exceeds the remaining input")
        if self.max_length is not None and length > self.max_length:
            raise ExiLimitExceeded(f"string length {length} exceeds the schema limit")
        chars = []
        for _ in range(length):
            cp = r.read_uint()
            if not _xml_char_ok(cp):
                raise ExiLimitExceeded(f"code point {cp:#x} is not an XML character")
            chars.append(chr(cp))
        value = "".join(chars)
        if table is not None and value:
            table.add(key, value)
        return value


class BooleanType(Datatype):
    name = "boolean"
    packs = True
    fixed_width = 1

    def bits(self, text: str) -> tuple[int, int]:
        value = text.strip(_WS)
        if value in ("true", "1"):
            return 1, 1
        if value in ("false", "0"):
            return 0, 1
        raise ExiEncodeError(f"not a boolean: {text!r}")

    def from_bits(self, value: int) -> str:
        return "true" if value else "false"

    def encode(self, w: BitWriter, text: str) -> None:
        value = text.strip(_WS)
        if value in ("true", "1"):
            w.write(1, 1)
        elif value in ("false", "0"):
            w.write(0, 1)
        else:
            raise ExiEncodeError(f"not a boolean: {text!r}")

    def decode(self, r: BitReader, key: str = "") -> str:
        return "true" if r.read(1) else "false"


def _parse_int(text: str) -> int:
    # int() accepts the XSD lexical form (optional sign, surrounding whitespace) but also "_"
    # digit separators and non-ASCII digits, which XSD does not.
    try:
        if "_" in text or not text.isascii():
            raise ValueError
        return int(text, 10)
    except ValueError:
        raise ExiEncodeError(f"not an integer: {text!r}") from None


def _uint_bits(value: int) -> tuple[int, int]:
    # The octets BitWriter.write_uint appends, as one (value, width).
    if value < 0x80:
        return value, 8
    acc = 0
    width = 0
    while value >= 0x80:
        acc = (acc << 8) | 0x80 | (value & 0x7F)
        width += 8
        value >>= 7
    return (acc << 8) | value, width + 8


class NBitIntegerType(Datatype):
    """Bounded integer: value - minimum in ceil(log2(range)) bits (§7.1.9)."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.width = (hi - lo).bit_length()
        self.name = f"integer[{lo}..{hi}] {self.width}-bit"
        self.fixed_width = self.width

    packs = True

    def bits(self, text: str) -> tuple[int, int]:
        value = _parse_int(text)
        if not self.lo <= value <= self.hi:
            raise ExiEncodeError(f"{value} outside [{self.lo}, {self.hi}]")
        return value - self.lo, self.width

    def from_bits(self, value: int) -> str:
        if value > self.hi - self.lo:
            raise ExiLimitExceeded(f"bounded integer offset {value} outside the range")
        return str(self.lo + value)

    def encode(self, w: BitWriter, text: str) -> None:
        value = _parse_int(text)
        if not self.lo <= value <= self.hi:
            raise ExiEncodeError(f"{value} outside [{self.lo}, {self.hi}]")
        w.write(value - self.lo, self.width)

    def decode(self, r: BitReader, key: str = "") -> str:
        value = r.read(self.width)
        if value > self.hi - self.lo:
            raise ExiLimitExceeded(f"bounded integer offset {value} outside the range")
        return str(self.lo + value)


class UnsignedIntegerType(Datatype):
    """Integer with a minimum >= 0: EXI Unsigned Integer (§7.1.6)."""

    def __init__(self, lo: int, hi: int | None) -> None:
        self.lo, self.hi = lo, hi
        self.name = "unsignedInteger"

    packs = True

    def bits(self, text: str) -> tuple[int, int]:
        value = _parse_int(text)
        if value < 0:
            raise ExiEncodeError(f"negative value {value} for an unsigned type")
        return _uint_bits(value)

    def encode(self, w: BitWriter, text: str) -> None:
        value = _parse_int(text)
        if value < 0:
            raise ExiEncodeError(f"negative value {value} for an unsigned type")
        w.write_uint(value)

    def decode(self, r: BitReader, key: str = "") -> str:
        value = r.read_uint()
        if self.hi is not None and value > self.hi:
            raise ExiLimitExceeded(f"{value} exceeds the type maximum {self.hi}")
        return str(value)


class IntegerType(Datatype):
    """EXI Integer (§7.1.5): sign bit, then the magnitude (minus one when negative)."""

    name = "integer"
    packs = True
    signed = True

    def __init__(self, lo: int | None, hi: int | None) -> None:
        self.lo, self.hi = lo, hi

    def bits(self, text: str) -> tuple[int, int]:
        value = _parse_int(text)
        if value < 0:
            v, w = _uint_bits(-value - 1)
            return (1 << w) | v, w + 1
        v, w = _uint_bits(value)
        return v, w + 1

    def encode(self, w: BitWriter, text: str) -> None:
        value = _parse_int(text)
        if value < 0:
            w.write(1, 1)
            w.write_uint(-value - 1)
        else:
            w.write(0, 1)
            w.write_uint(value)

    def decode(self, r: BitReader, key: str = "") -> str:
        negative = r.read(1)
        return self.from_sign(negative, r.read_uint())

    def from_sign(self, negative: int, magnitude: int) -> str:
        """The text of a sign bit (already read) and magnitude: the rest of :meth:`decode`."""
        value = -magnitude - 1 if negative else magnitude
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ExiLimitExceeded(f"{value} outside the type range")
        return str(value)


class EnumerationType(Datatype):
    """Enumeration: index of the value in schema order, ceil(log2(n)) bits (§7.2)."""

    def __init__(self, values: list[str], base: str) -> None:
        self.values = values
        self.index = {v: i for i, v in enumerate(values)}
        self.width = (len(values) - 1).bit_length()
        self.collapse = base != "string"
        self.name = f"enumeration({len(values)}) {self.width}-bit"
        self.fixed_width = self.width

    packs = True

    def bits(self, text: str) -> tuple[int, int]:
        key = text.strip(_WS) if self.collapse else text
        try:
            return self.index[key], self.width
        except KeyError:
            raise ExiEncodeError(f"{text!r} is not one of the enumerated values") from None

    def from_bits(self, value: int) -> str:
        if value >= len(self.values):
            raise ExiLimitExceeded(f"enumeration index {value} out of range")
        return self.values[value]

    def encode(self, w: BitWriter, text: str) -> None:
        key = text.strip(_WS) if self.collapse else text
        try:
            w.write(self.index[key], self.width)
        except KeyError:
            raise ExiEncodeError(f"{text!r} is not one of the enumerated values") from None

    def decode(self, r: BitReader, key: str = "") -> str:
        i = r.read(self.width)
        if i >= len(self.values):
            raise ExiLimitExceeded(f"enumeration index {i} out of range")
        return self.values[i]


class BinaryType(Datatype):
    """hexBinary / base64Binary: length, then the octets (§7.1.1)."""

    def __init__(self, hex_: bool, max_length: int | None) -> None:
        self.hex = hex_
        self.max_length = max_length
        self.name = "hexBinary" if hex_ else "base64Binary"

    def encode(self, w: BitWriter, text: str) -> None:
        try:
            if self.hex:
                data = bytes.fromhex(text.strip(_WS))
            else:
                data = base64.b64decode("".join(text.split()), validate=True)
        except (ValueError, binascii.Error):
            raise ExiEncodeError(f"not valid {self.name}: {text[:40]!r}") from None
        w.write_uint(len(data))
        w.write_bytes(data)

    def decode(self, r: BitReader, key: str = "") -> str:
        n = r.read_uint()
        if self.max_length is not None and n > self.max_length:
            raise ExiLimitExceeded(f"{self.name} length {n} exceeds the schema limit")
        data = r.read_bytes(n)
        return data.hex().upper() if self.hex else base64.b64encode(data).decode("ascii")


_UNTYPED = StringType()
_UNTYPED.name = "untyped"


def untyped() -> Datatype:
    """The string representation of untyped character content (mixed content, §8.5.4.4.1)."""
    return _UNTYPED


_CACHE: dict[int, tuple[SimpleType, Datatype]] = {}


def datatype_for(st: SimpleType) -> Datatype:
    """The EXI representation of a simple type (cached per type object)."""
    hit = _CACHE.get(id(st))
    if hit is not None and hit[0] is st:
        return hit[1]
    dt = _build(st)
    _CACHE[id(st)] = (st, dt)
    return dt


def _upper_length(st: SimpleType) -> int | None:
    bounds = [b for b in (st.length, st.max_length) if b is not None]
    return max(bounds) if bounds else None


def _build(st: SimpleType) -> Datatype:
    if st.enumeration is not None and st.kind in ("string", "integer"):
        return EnumerationType(st.enumeration, st.kind)
    if st.kind == "boolean":
        return BooleanType()
    if st.kind == "integer":
        lo, hi = st.min_value, st.max_value
        if lo is not None and hi is not None and hi - lo + 1 <= NBIT_MAX_RANGE:
            return NBitIntegerType(lo, hi)
        if lo is not None and lo >= 0:
            return UnsignedIntegerType(lo, hi)
        return IntegerType(lo, hi)
    if st.kind in ("hexBinary", "base64Binary"):
        return BinaryType(st.kind == "hexBinary", _upper_length(st))
    if st.kind == "string":
        if st.has_pattern:
            # EXI §7.1.10.1 would use a restricted character set; no V2G schema has patterns.
            raise ExiSchemaError(f"pattern facets are not supported ({st.name})")
        dt = StringType(_upper_length(st))
        if st.name is not None:
            dt.name = st.name[1]
        return dt
    raise ExiSchemaError(f"no EXI representation implemented for {st.kind} ({st.name})")
