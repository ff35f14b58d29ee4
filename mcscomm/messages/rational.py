"""RationalNumber: ISO 15118-20 physical values as value × 10^exponent, exactly.

``RationalNumberType`` is ``Exponent`` (xs:byte, int8) then ``Value`` (xs:short, int16) [XSD
CommonTypes; facts §4.1]. Conversions go through :class:`decimal.Decimal` so a float such as 0.1
is taken at its shortest repr ("0.1"), never as its binary expansion, and results are exact.
"""

# Field defaults are metadata-carrying dataclasses.field() calls made by meta.el/attr/choice.

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from mcscomm.messages.meta import BYTE, NS_CT, SHORT, el, xmltype

VALUE_MIN, VALUE_MAX = -32768, 32767
EXPONENT_MIN, EXPONENT_MAX = -128, 127


class RationalRangeError(ValueError):
    """A number cannot be represented as int16 × 10^int8 (too large, or not a finite number)."""


@xmltype(NS_CT, "RationalNumber", order=("exponent", "value"))
@dataclass(slots=True, frozen=True)
class RationalNumber:
    """value × 10^exponent with value in int16 and exponent in int8.

    Equality is structural: ``RationalNumber(10, 0) != RationalNumber(1, 1)`` although both are
    10; compare ``to_decimal()`` for numeric equality.
    """

    value: int = el("Value", NS_CT, SHORT)
    exponent: int = el("Exponent", NS_CT, BYTE)

    # Construction does not range-check on purpose: fuzzers must be able to build out-of-range
    # values; the codec refuses them with SchemaViolation (see ``in_range``).

    @classmethod
    def from_number(cls, x: int | float | Decimal | str | Fraction) -> RationalNumber:
        """The exact (or, when needed, shortest-rounded) RationalNumber for ``x``.

        Normalisation: trailing zeros move into the exponent (3.75e6 -> (375, 4)); if the
        significand exceeds int16, low-order digits are dropped with one round-half-even step
        (deterministic; e.g. 123456 -> (12346, 1)); digits below 10^-128 are dropped the same
        way. Raises :class:`RationalRangeError` when ``x`` is not a finite number, is too large
        for 32767 × 10^127, or is non-zero but would round to zero.
        """
        d = _to_decimal(x)
        if d.is_zero():
            return cls(0, 0)
        sign, digits, exp = d.as_tuple()
        assert isinstance(exp, int)
        coeff = int("".join(map(str, digits)))
        limit = VALUE_MAX if not sign else -VALUE_MIN
        coeff, exp = _strip_zeros(coeff, exp)
        if coeff > limit:
            drop = 1
            while _round_drop(coeff, drop) > limit:
                drop += 1
            coeff, exp = _strip_zeros(_round_drop(coeff, drop), exp + drop)
        if exp < EXPONENT_MIN:
            coeff = _round_drop(coeff, EXPONENT_MIN - exp)
            if coeff == 0:
                raise RationalRangeError(f"{x!r} is too small for int16 × 10^int8")
            coeff, exp = _strip_zeros(coeff, EXPONENT_MIN)
        # a large exponent may be pulled back into int8 by re-growing the significand
        while exp > EXPONENT_MAX and coeff * 10 <= limit:
            coeff *= 10
            exp -= 1
        if exp > EXPONENT_MAX:
            raise RationalRangeError(f"{x!r} is too large for int16 × 10^int8")
        return cls(-coeff if sign else coeff, exp)

    def to_decimal(self) -> Decimal:
        """The exact value as a Decimal."""
        return Decimal(self.value).scaleb(self.exponent)

    def to_fraction(self) -> Fraction:
        """The exact value as a Fraction."""
        if self.exponent >= 0:
            return Fraction(self.value * 10**self.exponent)
        return Fraction(self.value, 10**-self.exponent)

    def in_range(self) -> bool:
        """True when value and exponent fit their XSD types (int16, int8)."""
        return (
            VALUE_MIN <= self.value <= VALUE_MAX and EXPONENT_MIN <= self.exponent <= EXPONENT_MAX
        )

    def __float__(self) -> float:
        return float(self.to_decimal())

    def __str__(self) -> str:
        return str(self.to_decimal())


def _strip_zeros(coeff: int, exp: int) -> tuple[int, int]:
    while coeff and coeff % 10 == 0:
        coeff //= 10
        exp += 1
    return coeff, exp


def _round_drop(coeff: int, drop: int) -> int:
    """``coeff / 10**drop`` rounded half-even, in one step (no double rounding)."""
    scale: int = 10**drop
    q, r = divmod(coeff, scale)
    half = scale // 2
    if r > half or (r == half and q % 2 == 1):
        q += 1
    return q


def _to_decimal(x: int | float | Decimal | str | Fraction) -> Decimal:
    if isinstance(x, bool):
        raise RationalRangeError(f"{x!r} is not a number")
    try:
        if isinstance(x, float):
            d = Decimal(repr(x))  # shortest repr: 0.1 -> Decimal("0.1"), not its binary value
        elif isinstance(x, Fraction):
            d = Decimal(x.numerator) / Decimal(x.denominator)
        else:
            d = Decimal(x)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise RationalRangeError(f"{x!r} is not a number") from exc
    if not d.is_finite():
        raise RationalRangeError(f"{x!r} is not a finite number")
    return d
