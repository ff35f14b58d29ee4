"""Physical values <-> RationalNumber, and the BPT sign convention (facts §4.4).

Maxima are rounded towards zero when encoded (``down``) so that a limit we announce is never
above the limit we hold; measured values round to nearest. Discharge limits are magnitudes on the
wire in the strict profile (EVerest/EDF default); with ``negative`` they are sent as negative
numbers (Josev). Reading accepts negative discharge values only when the profile is lenient.
"""

from __future__ import annotations

import math

from mcscomm.messages.rational import RationalNumber
from mcscomm.session.errors import WrongChargeParameter


def rn(x: float) -> RationalNumber:
    """Nearest RationalNumber (measurements). Non-finite input is a programming error."""
    if not math.isfinite(x):
        raise ValueError(f"cannot encode {x!r} as RationalNumber")
    return RationalNumber.from_number(round(x, 3))


def rn_down(x: float) -> RationalNumber:
    """RationalNumber whose magnitude is <= |x| (for limits and commanded values)."""
    r = rn(x)
    if abs(float(r)) > abs(x):
        step = -1 if r.value > 0 else 1
        r = RationalNumber(r.value + step, r.exponent)
    return r


def discharge_out(x: float, negative: bool) -> RationalNumber:
    """A discharge limit (magnitude) as sent: positive, or negative for Josev-style peers."""
    r = rn_down(abs(x))
    return RationalNumber(-r.value, r.exponent) if negative and r.value else r


def value(r: RationalNumber | None, default: float = 0.0) -> float:
    """Float value of an optional RationalNumber."""
    return default if r is None else float(r)


def magnitude_in(r: RationalNumber | None, field: str, lenient: bool) -> float:
    """Read a limit that must be a magnitude; negative only tolerated in the lenient profile."""
    if r is None:
        return 0.0
    x = float(r)
    if x < 0:
        if not lenient:
            raise WrongChargeParameter(f"{field} is negative ({x}); strict profile wants magnitudes")
        return -x
    return x
