"""Payment-currency amounts, prices and credits: exact, rounded down, never float."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tollway.errors import InvalidRequest, ServiceUnavailable
from tollway.payments.amounts import (
    credits_for,
    currency_code,
    format_minor,
    fx_price,
    parse_amount,
    price_text,
    refund_minor_for,
)
from tollway.payments.prices import CurrencyPrice, rates_from_document

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("10.00", "USD", 1000),
        ("10", "usd", 1000),
        ("0.01", "CNY", 1),
        ("1234.5", "EUR", 123450),
        ("500", "JPY", 500),
    ],
)
def test_parse_amount(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [("10.001", "USD"), ("1.5", "JPY"), ("0", "USD"), ("-1", "USD"), ("abc", "USD"), ("NaN", "USD"),
     ("2000000", "USD")],
)  # fmt: skip
def test_parse_amount_refuses(text: str, currency: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_amount(text, currency)
    assert info.value.param == "amount"


def test_currency_codes_and_formatting() -> None:
    assert currency_code(" cny ") == "CNY"
    with pytest.raises(InvalidRequest):
        currency_code("XYZ")
    assert [format_minor(m, c) for m, c in ((1000, "USD"), (5, "CNY"), (0, "USD"), (500, "JPY"))] == [
        "10.00", "0.05", "0.00", "500",
    ]  # fmt: skip


def test_credits_are_rounded_down_to_the_nano_credit() -> None:
    assert credits_for(1000, "USD", Decimal(1)) == 10_000_000_000
    assert credits_for(1000, "CNY", Decimal("7.2")) == 1_388_888_888  # 1.3888888888… → down
    assert credits_for(1, "CNY", Decimal("7.2")) == 1_388_888  # ¥0.01
    assert credits_for(100, "JPY", Decimal("150")) == 666_666_666
    assert credits_for(7596, "CNY", fx_price(Decimal("7.2345"), Decimal("0.05"))) == 9_999_703_800


def test_fx_price_is_exact() -> None:
    assert fx_price(Decimal("7.1"), Decimal("0.05")) == Decimal("7.455")
    assert price_text(fx_price(Decimal("7.2345"), Decimal("0.05"))) == "7.596225"
    assert price_text(Decimal("1.000")) == "1" and price_text(Decimal("10")) == "10"


def test_refund_money_at_the_order_rate() -> None:
    # ¥10.00 bought 1.388888888 credits: all of them return all the money; a part rounds down.
    assert refund_minor_for(1_388_888_888, order_credits_nano=1_388_888_888, order_amount_minor=1000) == 1000
    assert refund_minor_for(1_000_000_000, order_credits_nano=1_388_888_888, order_amount_minor=1000) == 720
    assert refund_minor_for(1, order_credits_nano=1_388_888_888, order_amount_minor=1000) == 0


def test_currency_price_quotes() -> None:
    fixed = CurrencyPrice("CNY", "fixed", price_per_credit=Decimal("7.2"), min_minor=500, presets=(1000,))
    quote = fixed.quote(1000, now=NOW)
    assert (quote.credits_nano, quote.amount, quote.fx_rate) == (1_388_888_888, "10.00", None)
    with pytest.raises(InvalidRequest, match=r"minimum top-up is 5\.00 CNY"):
        fixed.quote(499, now=NOW)
    assert fixed.to_json(now=NOW)["presets"] == [{"amount": "10.00", "credits": "1.388888888"}]

    fx = CurrencyPrice(
        "CNY", "fx", fx_rate=Decimal("7"), margin=Decimal("0.1"), fx_source="url", fx_updated_at=NOW
    )
    assert fx.quote(770, now=NOW).credits_nano == 1_000_000_000
    assert fx.quote(770, now=NOW).fx_rate == Decimal("7")
    with pytest.raises(ServiceUnavailable, match="out of date"):
        fx.quote(770, now=NOW + timedelta(hours=4), max_age=timedelta(hours=3))
    with pytest.raises(ServiceUnavailable, match="no exchange rate"):
        CurrencyPrice("EUR", "fx").quote(100, now=NOW)
    with pytest.raises(InvalidRequest, match="not enabled"):
        CurrencyPrice("USD", "fixed", price_per_credit=Decimal(1), enabled=False).quote(1000, now=NOW)


def test_rates_documents() -> None:
    doc = {"base": "USD", "rates": {"CNY": Decimal("7.2345"), "usd": 1, "BAD": "x", "ZERO": Decimal(0)}}
    assert rates_from_document(doc) == {"CNY": Decimal("7.2345"), "USD": Decimal(1)}
    eur = {"base_code": "EUR", "rates": {"USD": Decimal("1.25"), "CNY": Decimal("9")}}
    assert rates_from_document(eur) == {"USD": Decimal(1), "CNY": Decimal("7.2")}
    with pytest.raises(InvalidRequest):
        rates_from_document({"rates": []})
    with pytest.raises(InvalidRequest, match="no USD rate"):
        rates_from_document({"base": "EUR", "rates": {"CNY": Decimal(9)}})
