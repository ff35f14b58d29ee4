"""The fast paths of session/convert.py give exactly what the Decimal-based slow paths give."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcscomm.messages.rational import RationalNumber
from mcscomm.session.convert import rn, to_float, value


@given(st.integers(-32768, 32767), st.integers(-128, 127))
def test_to_float_equals_decimal_float(v: int, e: int) -> None:
    r = RationalNumber(v, e)
    assert to_float(r) == float(r)


def test_to_float_outside_int8_exponent_still_exact() -> None:
    r = RationalNumber(12, 300)
    assert to_float(r) == float(r)
    assert value(None, 7.5) == 7.5


@given(
    st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.floats(-40.0, 40.0, allow_nan=False),
        st.floats(-1e12, 1e12, allow_nan=False),
        st.integers(-2_000_000, 2_000_000).map(float),
        st.integers(-40_000_000, 40_000_000).map(lambda n: n / 1000),
    )
)
def test_rn_fast_path_equals_from_number(x: float) -> None:
    assert rn.__wrapped__(x) == RationalNumber.from_number(round(x, 3))
