"""Physical values <-> RationalNumber, and the BPT sign convention (facts §4.4).

RationalNumber is frozen, so results are cached (limits repeat every charge-loop cycle).
Maxima are rounded towards zero when encoded (``down``) so that a limit we announce is never
above the limit we hold; measured values round to nearest. Discharge limits are magnitudes on the
wire in the strict profile (EVerest/EDF default); with ``negative`` they are sent as negative
numbers (Josev). Reading accepts negative discharge values only when the profile is lenient.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from mcscomm.messages.rational import RationalNumber
from mcscomm.session.errors import WrongChargeParameter

_INT16_MAX = 32767
_POW10: tuple[int, ...] = tuple(10**k for k in range(129))


@lru_cache(maxsize=8192)
def rn(x: float) -> RationalNumber:
    """Nearest RationalNumber (measurements). Non-finite input is a programming error."""
    if not math.isfinite(x):
        raise ValueError(f"cannot encode {x!r} as RationalNumber")
    d = round(x, 3)
    if -1e9 < d < 1e9:
        # Fast path, same result as from_number: round(x, 3) is the float nearest a 3-place
        # decimal, whose shortest repr is that decimal, i.e. n / 1000 exactly. When n without
        # its trailing zeros fits int16 nothing needs rounding away.
        n = round(d * 1000)
        if n == 0:
            return RationalNumber(0, 0)
        e = -3
        while n % 10 == 0:
            n //= 10
            e += 1
        if -32768 <= n <= _INT16_MAX:
            return RationalNumber(n, e)
        # too many digits (energies in Wh): drop the fewest low digits, one round-half-even
        # step, as from_number does (no double rounding)
        limit = _INT16_MAX if n > 0 else 32768
        a = abs(n)
        drop = max(1, len(str(a)) - 5)
        while (q := _round_drop(a, drop)) > limit:
            drop += 1
        e += drop
        while q % 10 == 0:
            q //= 10
            e += 1
        return RationalNumber(q if n > 0 else -q, e)
    return RationalNumber.from_number(d)


def _round_drop(coeff: int, drop: int) -> int:
    """``coeff / 10**drop`` (coeff > 0) rounded half-even in one step."""
    scale = _POW10[drop]
    q, r = divmod(coeff, scale)
    half = scale // 2
    if r > half or (r == half and q % 2 == 1):
        q += 1
    return q


@lru_cache(maxsize=8192)
def rn_down(x: float) -> RationalNumber:
    """The closest RationalNumber whose magnitude is <= |x| (limits and commanded values).

    Truncates towards zero at the finest exponent (>= -3) whose significand fits int16, so
    1 000 000.9 W -> 10000 x 10^2 and 999.995 A -> 9999 x 10^-1 (never 1000).
    """
    if not math.isfinite(x):
        raise ValueError(f"cannot encode {x!r} as RationalNumber")
    d = abs(Decimal(repr(float(x))))
    if d == 0:
        return RationalNumber(0, 0)
    for exponent in range(-3, 128):
        q = (d.scaleb(-exponent)).to_integral_value(rounding=ROUND_DOWN)
        if q <= _INT16_MAX:
            break
    exact = q.scaleb(exponent)
    return RationalNumber.from_number(-exact if x < 0 else exact)


def discharge_out(x: float, negative: bool) -> RationalNumber:
    """A discharge limit (magnitude) as sent: positive, or negative for Josev-style peers."""
    r = rn_down(abs(x))
    return RationalNumber(-r.value, r.exponent) if negative and r.value else r


def to_float(r: RationalNumber) -> float:
    """``float(r)`` without the Decimal round trip (the charge loop reads ~20 per cycle).

    Same result: an int→float conversion and an int/int true division are both correctly
    rounded in Python, exactly as Decimal→float is."""
    e = r.exponent
    if 0 <= e <= 128:
        return float(r.value * _POW10[e])
    if -128 <= e < 0:
        return r.value / _POW10[-e]
    return float(r)  # out of int8: not from a validated document


def value(r: RationalNumber | None, default: float = 0.0) -> float:
    """Float value of an optional RationalNumber."""
    return default if r is None else to_float(r)


def magnitude_in(r: RationalNumber | None, field: str, lenient: bool) -> float:
    """Read a limit that must be a magnitude; negative only tolerated in the lenient profile."""
    if r is None:
        return 0.0
    x = to_float(r)
    if x < 0:
        if not lenient:
            raise WrongChargeParameter(
                f"{field} is negative ({x}); strict profile wants magnitudes"
            )
        return -x
    return x
