from __future__ import annotations

import pytest

from tollway.money import (
    MoneyFormatError,
    Ratio,
    credits_to_nano,
    div_round_half_up,
    nano_to_credits,
)


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("0.15", 150_000_000),
        ("10.5", 10_500_000_000),
        ("0.000000001", 1),
        ("-2", -2_000_000_000),
        ("7", 7_000_000_000),
    ],
)
def test_credits_round_trip(text: str, nano: int) -> None:
    assert credits_to_nano(text) == nano
    assert nano_to_credits(nano) == text


@pytest.mark.parametrize("bad", ["abc", "1e400000", "0.0000000001", "NaN", "Infinity", ""])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(MoneyFormatError):
        credits_to_nano(bad)


def test_rounding_is_half_up_away_from_zero() -> None:
    assert div_round_half_up(5, 10) == 1
    assert div_round_half_up(4, 10) == 0
    assert div_round_half_up(-5, 10) == -1
    assert div_round_half_up(15, 10) == 2
    assert div_round_half_up(25, 10) == 3


def test_ratio_is_exact() -> None:
    r = Ratio.parse("0.3")
    assert (r.num, r.den) == (3, 10)
    assert str(r) == "0.3"
    assert str(Ratio.parse("1")) == "1"
    with pytest.raises(MoneyFormatError):
        Ratio.parse("-0.1")
