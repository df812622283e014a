"""Credits arithmetic: integer nano-credits, exact decimals in, one rounding point.

1 credit = 1_000_000_000 nano-credits. A credit pays for 1 USD of official list price at
multiplier 1.0, so USD amounts in the price book convert to nano-credits at the same scale.

Nothing here uses binary floating point: decimal strings are parsed with :class:`decimal.Decimal`
and turned into exact integer ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

NANO_PER_CREDIT = 1_000_000_000
TOKENS_PER_MTOK = 1_000_000
# Ledger columns are signed 64-bit: keep any single amount far below 2**63 nano.
MAX_CREDITS = 1_000_000_000


class MoneyFormatError(ValueError):
    """A decimal string that cannot be an amount (not a number, too precise, negative...)."""


def parse_decimal(text: str | int | Decimal, *, field: str = "amount") -> Decimal:
    if isinstance(text, bool):
        raise MoneyFormatError(f"{field}: expected a decimal string, got a boolean")
    if isinstance(text, float):  # pragma: no cover - guarded by typing, kept for callers from JSON
        raise MoneyFormatError(f"{field}: floats are not accepted for money; send a decimal string")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise MoneyFormatError(f"{field}: {text!r} is not a decimal number") from exc
    if not value.is_finite():
        raise MoneyFormatError(f"{field}: {text!r} is not a finite number")
    return value


def credits_to_nano(text: str | int | Decimal, *, field: str = "amount") -> int:
    """Exact conversion of a credit amount (decimal string) to nano-credits.

    More than nine decimal places cannot be represented in the ledger and is refused rather
    than silently rounded: this is an input, not a computed charge.
    """
    value = parse_decimal(text, field=field)
    if abs(value) >= MAX_CREDITS:
        raise MoneyFormatError(f"{field}: {text!r} is too large (at most {MAX_CREDITS - 1} credits)")
    nano = value * NANO_PER_CREDIT
    if nano != nano.to_integral_value():
        raise MoneyFormatError(f"{field}: {text!r} has more than 9 decimal places")
    return int(nano)


def nano_to_credits(nano: int) -> str:
    """Render nano-credits as an exact decimal string ("0.15", "-1.000000001", "0")."""
    sign = "-" if nano < 0 else ""
    whole, frac = divmod(abs(nano), NANO_PER_CREDIT)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:09d}".rstrip("0")


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero: the single rounding point of a charge."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def div_floor(numerator: int, denominator: int) -> int:
    return numerator // denominator


@dataclass(frozen=True, slots=True)
class Ratio:
    """An exact non-negative decimal factor (group multiplier, key discount) as num/den."""

    num: int
    den: int
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        value = format(Decimal(self.num) / Decimal(self.den), "f")
        object.__setattr__(self, "text", value.rstrip("0").rstrip(".") if "." in value else value)

    @classmethod
    def parse(cls, text: str | int | Decimal, *, field: str = "multiplier") -> Ratio:
        value = parse_decimal(text, field=field)
        if value < 0:
            raise MoneyFormatError(f"{field}: must not be negative")
        num, den = value.as_integer_ratio()
        return cls(num, den)

    def __str__(self) -> str:
        return self.text

    def times(self, other: Ratio) -> Ratio:
        return Ratio(self.num * other.num, self.den * other.den)


ONE = Ratio(1, 1)


def usd_per_mtok_to_nano(text: str | int | Decimal, *, field: str = "price") -> int:
    """A price in USD per million tokens (or per call) as integer nano-credits per MTok.

    Official prices never need more than 9 decimal places per MTok, so this is exact; a more
    precise price is refused with a clear error instead of being rounded.
    """
    value = credits_to_nano(text, field=field)
    if value < 0:
        raise MoneyFormatError(f"{field}: must not be negative")
    return value
