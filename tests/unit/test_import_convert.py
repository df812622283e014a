"""Conversions of the new-api / one-api import: exact integer arithmetic, one rounding point."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tollway.migrate import convert as cv
from tollway.migrate.prices import Price, their_prices, usd_to_nano
from tollway.money import MoneyFormatError


def test_default_quota_unit_is_exact() -> None:
    unit = cv.QuotaUnit.parse(None, 500_000)
    assert cv.quota_to_nano(500_000, unit) == cv.Converted(1_000_000_000, 0, 500_000)
    assert cv.quota_to_nano(1, unit).nano == 2_000
    assert cv.quota_to_nano(2**40, unit).nano == 2**40 * 2_000  # no overflow, no float


def test_other_quota_unit_rounds_down_once_and_keeps_the_remainder() -> None:
    unit = cv.QuotaUnit.parse("300000", 500_000)
    got = cv.quota_to_nano(5_000_000, unit)
    assert (got.nano, got.remainder) == (16_666_666_666, "200000/300000")
    # the remainder is exact: nano * unit + remainder == quota * 1e9
    assert got.nano * 300_000 + got.remainder_num == 5_000_000 * 10**9
    fractional = cv.QuotaUnit.parse("333333.5", 500_000)  # a decimal unit stays exact too
    assert (fractional.num, fractional.den) == (666_667, 2)
    got = cv.quota_to_nano(7, fractional)
    assert got.nano * 666_667 + got.remainder_num == 7 * 10**9 * 2


@pytest.mark.parametrize("bad", ["0", "-5", "abc", "1e999999999999"])
def test_bad_quota_unit_is_refused(bad: str) -> None:
    with pytest.raises((MoneyFormatError, ValueError)):
        cv.quota_to_nano(1, cv.QuotaUnit.parse(bad, 500_000))


def test_negative_quota_is_not_converted() -> None:
    with pytest.raises(ValueError):
        cv.quota_to_nano(-1, cv.QuotaUnit.parse(None, 500_000))


def test_ratio_json_is_read_as_exact_decimals() -> None:
    got = cv.parse_decimal_map('{"vip": 0.3, "a": 1, "b": "0.1", "c": 1e-7}', option="GroupRatio")
    assert got == {"vip": Decimal("0.3"), "a": Decimal(1), "b": Decimal("0.1"), "c": Decimal("1E-7")}
    assert cv.decimal_text(got["vip"]) == "0.3" and cv.decimal_text(got["c"]) == "0.0000001"
    for bad in ('["x"]', '{"x": true}', "not json", '{"x": [1]}'):
        with pytest.raises(MoneyFormatError):
            cv.parse_decimal_map(bad, option="GroupRatio")
    assert cv.parse_decimal_map("", option="GroupRatio") == {}


def test_prices_from_ratios() -> None:
    options = {
        "ModelRatio": '{"gpt-4o": 1.25, "tiny": 0.0000000003, "plain": 2}',
        "CompletionRatio": '{"gpt-4o": 4, "tiny": 1}',
        "CacheRatio": '{"gpt-4o": 0.5}',
        "ModelPrice": '{"img": 0.04, "plain": 0.5}',
    }
    got = their_prices(options)
    assert got["gpt-4o"][0] == Price(input=2_500_000_000, output=10_000_000_000, cache_read=1_250_000_000)
    assert got["img"][0] == Price(per_call=40_000_000)
    assert got["plain"][0] == Price(per_call=500_000_000)  # a fixed price wins over the ratio
    tiny, notes = got["tiny"]
    assert tiny.input == 1 and any("rounded" in n for n in notes)  # $6e-10/MTok -> 1 nano (half-up)
    assert usd_to_nano(Decimal("0.0000000005")) == (1, True)
    assert usd_to_nano(Decimal("0.0000000004")) == (0, True)
    assert usd_to_nano(Decimal("2.5")) == (2_500_000_000, False)


def test_emails_names_and_allow_lists() -> None:
    taken = {"alice@example.com"}
    assert cv.account_email("Bob@Example.com ", "new-api", 2, taken) == ("bob@example.com", False)
    placeholder = ("new-api-user-3@import.invalid", True)
    assert cv.account_email("ALICE@example.com", "new-api", 3, taken) == placeholder
    assert cv.account_email("", "one-api", 4, taken) == ("one-api-user-4@import.invalid", True)
    names = {"main"}
    assert cv.unique_name("main", "x", "(new-api #7)", names, 128) == "main (new-api #7)"
    assert cv.unique_name("", "new-api channel 8", "(new-api #8)", names, 128) == "new-api channel 8"
    assert len(cv.unique_name("\U0001f680" * 200, "x", "(s)", names, 128)) == 128
    good, bad = cv.allow_list("10.0.0.0/8\n 192.168.1.5 ,\nnope\n::1")
    assert good == ["10.0.0.0/8", "192.168.1.5/32", "::1/128"] and bad == ["nope"]


def test_stable_ids_are_stable_and_distinct() -> None:
    a = cv.stable_id("new-api", "user", 1)
    assert a == cv.stable_id("new-api", "user", 1)
    assert len({a, cv.stable_id("one-api", "user", 1), cv.stable_id("new-api", "token", 1)}) == 3
    assert cv.import_key("new-api", "user", 42) == "import:new-api:user:42"
