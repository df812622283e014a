"""Payment-currency amounts and their conversion to credits. Pure and exact: no floats.

An amount in a payment currency is an integer of minor units (cents, fen; yen are their own
minor unit). A price per credit is an exact decimal in that currency. Credits bought =
amount ÷ price per credit, rounded *down* to the ledger unit (a nano-credit), so a customer
is never credited a fraction the platform was not paid for.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from tollway.errors import InvalidRequest
from tollway.money import NANO_PER_CREDIT, MoneyFormatError, parse_decimal

# ISO 4217 minor-unit exponents of the currencies Tollway takes payments in.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "CNY": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
}
MAX_AMOUNT_UNITS = 1_000_000  # one order: at most a million units of its currency

_EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_FLOOR)


def currency_code(text: str) -> str:
    code = text.strip().upper()
    if code not in CURRENCY_EXPONENTS:
        known = ", ".join(sorted(CURRENCY_EXPONENTS))
        raise InvalidRequest(f"currency {text!r} is not supported (supported: {known})", param="currency")
    return code


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency_code(currency)]


def parse_amount(text: str, currency: str, *, param: str = "amount") -> int:
    """``"10.00"`` USD → 1000 minor units. More decimals than the currency has is refused."""
    exp = exponent(currency)
    try:
        value = parse_decimal(text, field=param)
    except MoneyFormatError as exc:
        raise InvalidRequest(str(exc), param=param) from exc
    if value <= 0:
        raise InvalidRequest(f"{param}: must be positive", param=param)
    if value > MAX_AMOUNT_UNITS:
        raise InvalidRequest(f"{param}: at most {MAX_AMOUNT_UNITS} {currency} per order", param=param)
    minor = value.scaleb(exp, context=_EXACT)
    if minor != minor.to_integral_value():
        raise InvalidRequest(
            f"{param}: {currency_code(currency)} has {exp} decimal places, {text!r} has more",
            param=param,
        )
    return int(minor)


def format_minor(minor: int, currency: str) -> str:
    """1000 USD minor units → ``"10.00"``; providers take amounts as these strings."""
    exp = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


def parse_price(text: str | Decimal, *, param: str = "price_per_credit") -> Decimal:
    try:
        value = parse_decimal(text, field=param)
    except MoneyFormatError as exc:
        raise InvalidRequest(str(exc), param=param) from exc
    if value <= 0:
        raise InvalidRequest(f"{param}: must be positive", param=param)
    return value


def price_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def fx_price(fx_rate: Decimal, margin: Decimal) -> Decimal:
    """Price of a credit at the exchange rate (currency per USD) plus a margin (0.05 = 5%)."""
    return _EXACT.multiply(fx_rate, _EXACT.add(Decimal(1), margin))


def credits_for(amount_minor: int, currency: str, price_per_credit: Decimal) -> int:
    """Nano-credits bought by ``amount_minor`` at ``price_per_credit``, rounded down."""
    num, den = price_per_credit.as_integer_ratio()
    if num <= 0:
        raise InvalidRequest("the price per credit must be positive", param="price_per_credit")
    scale: int = 10 ** exponent(currency)
    return (amount_minor * NANO_PER_CREDIT * den) // (scale * num)


def refund_minor_for(credits_nano: int, *, order_credits_nano: int, order_amount_minor: int) -> int:
    """Money to return for ``credits_nano`` of an order, at that order's own rate, rounded down.

    Returning every credit of an order returns its whole amount; anything less is
    proportional and rounded down, so a refund never returns more than was paid.
    """
    if credits_nano >= order_credits_nano:
        return order_amount_minor
    return (credits_nano * order_amount_minor) // order_credits_nano


def credits_for_minor(amount_minor: int, *, order_credits_nano: int, order_amount_minor: int) -> int:
    """The credits that ``amount_minor`` of an order stands for, rounded down."""
    if amount_minor >= order_amount_minor:
        return order_credits_nano
    return (amount_minor * order_credits_nano) // order_amount_minor


@dataclass(frozen=True, slots=True)
class Quote:
    """What a customer is shown before paying, and what the order stores."""

    currency: str
    amount_minor: int
    price_per_credit: Decimal
    fx_rate: Decimal | None
    credits_nano: int

    @property
    def amount(self) -> str:
        return format_minor(self.amount_minor, self.currency)
