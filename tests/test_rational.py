"""RationalNumber: exact conversions, normalisation into int16 × 10^int8, range errors."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcscomm.messages import RationalNumber
from mcscomm.messages.rational import RationalRangeError

in_range = st.builds(
    RationalNumber, value=st.integers(-32768, 32767), exponent=st.integers(-128, 127)
)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0, (0, 0)),
        (1250, (125, 1)),
        (3000, (3, 3)),
        (3.75e6, (375, 4)),
        ("3750000", (375, 4)),
        (0.1, (1, -1)),
        (-0.25, (-25, -2)),
        (Decimal("32767"), (32767, 0)),
        (Decimal("-32768"), (-32768, 0)),
        (32768, (3277, 1)),  # drops a digit, round half even on 32768 -> 3276.8 -> 3277
        (123456, (12346, 1)),  # 12345.6 -> 12346
        (Fraction(1, 4), (25, -2)),
        ("1e127", (1, 127)),
        ("1e-128", (1, -128)),
        ("5e128", (50, 127)),  # re-grows the significand to keep the exponent in int8
        ("1.2345e-126", (123, -128)),  # digits below 10^-128 are rounded away
    ],
)
def test_from_number_known_values(x: object, expected: tuple[int, int]) -> None:
    r = RationalNumber.from_number(x)  # type: ignore[arg-type]
    assert (r.value, r.exponent) == expected
    assert r.in_range()


def test_float_goes_through_shortest_repr_not_binary_expansion() -> None:
    # 0.1 is 0.1000000000000000055511151231257827... in binary; we must not see that
    assert RationalNumber.from_number(0.1).to_decimal() == Decimal("0.1")
    assert RationalNumber.from_number(2.675).to_decimal() == Decimal("2.675")


@pytest.mark.parametrize(
    "x", ["1e200", "-1e200", "1e-200", float("inf"), float("nan"), "abc", True, "32768e127"]
)
def test_from_number_out_of_range_raises_value_error(x: object) -> None:
    with pytest.raises(RationalRangeError) as info:
        RationalNumber.from_number(x)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_rounding_is_deterministic_half_even() -> None:
    # 32767.5 -> value must shrink: 327675 e-1 -> 32768 (half-even, 7 odd) -> 3277 e1
    r = RationalNumber.from_number("32767.5")
    assert (r.value, r.exponent) == (3277, 1)
    r = RationalNumber.from_number("12344.5")  # half to even -> 12344
    assert (r.value, r.exponent) == (12344, 0)


@given(in_range)
def test_to_decimal_from_number_round_trip_is_exact(r: RationalNumber) -> None:
    back = RationalNumber.from_number(r.to_decimal())
    assert back.to_decimal() == r.to_decimal()
    assert back.to_fraction() == r.to_fraction()


@given(in_range)
def test_from_number_is_normalised(r: RationalNumber) -> None:
    n = RationalNumber.from_number(r.to_decimal())
    assert n.in_range()
    if n.value == 0:
        assert n.exponent == 0
    elif n.exponent < 127:
        assert n.value % 10 != 0  # no trailing zeros left in the significand


@given(st.integers(-(10**40), 10**40))
def test_integers_are_exact_when_they_fit_and_close_otherwise(x: int) -> None:
    r = RationalNumber.from_number(x)
    assert r.in_range()
    d = r.to_decimal()
    if abs(x) <= 32767:
        assert d == x
    else:
        # at most half a unit in the last kept place away
        assert abs(d - x) <= Decimal(5).scaleb(r.exponent - 1)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-32, max_value=32))
def test_small_decimals_are_exact(d: Decimal) -> None:
    assert RationalNumber.from_number(d).to_decimal() == d


def test_float_and_str_conversions() -> None:
    r = RationalNumber(375, 4)
    assert float(r) == 3_750_000.0
    assert str(r) == "3.75E+6"
    assert r.to_decimal() == Decimal(3_750_000)
    assert not RationalNumber(40000, 0).in_range()
    assert not RationalNumber(1, 128).in_range()
