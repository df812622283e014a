"""Exact charges: worked checks from DESIGN.md section 5, tiers, single rounding, holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tollway.money import ONE, Ratio
from tollway.pricing.book import PriceBook
from tollway.pricing.cost import (
    affordable_output_tokens,
    charge,
    hold_cost_nano,
    select_tier,
)
from tollway.pricing.model import BillingMode, LongContextTier, PriceEntry, TokenPrices, Usage

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _token_entry(
    *,
    input: int,
    output: int,
    cache_read: int | None = None,
    cache_write_5m: int | None = None,
    cache_write_1h: int | None = None,
    tiers: tuple[LongContextTier, ...] = (),
    per_call: int | None = None,
) -> PriceEntry:
    return PriceEntry(
        model="test-model",
        provider="test",
        mode=BillingMode.TOKEN,
        effective_from=datetime(2025, 1, 1, tzinfo=UTC),
        tokens=TokenPrices(input, output, cache_write_5m, cache_write_1h, cache_read),
        per_call_nano=per_call,
        tiers=tiers,
        max_output_tokens=1000,
        version="test-v",
    )


def _call_entry(per_call_nano: int) -> PriceEntry:
    return PriceEntry(
        model="image-model",
        provider="test",
        mode=BillingMode.CALL,
        effective_from=datetime(2025, 1, 1, tzinfo=UTC),
        per_call_nano=per_call_nano,
        max_output_tokens=0,
    )


def _bundled(model: str) -> PriceEntry:
    entry = PriceBook.bundled().lookup(model, NOW)
    assert entry is not None, model
    return entry


# ----------------------------------------------------------------- worked checks


def test_call_officially_half_a_dollar_at_0_3_deducts_exactly_0_15_credits() -> None:
    result = charge(_call_entry(500_000_000), Usage(calls=1), Ratio.parse("0.3"))
    assert result.official_cost_nano == 500_000_000
    assert result.deduction_nano == 150_000_000
    assert result.multiplier == "0.3"
    assert [(line.category, line.quantity, line.per) for line in result.lines] == [("call", 1, "call")]


def test_opus_4_5_uncached_110k_input_is_0_55() -> None:
    result = charge(_bundled("claude-opus-4-5"), Usage(input_tokens=110_000), ONE)
    assert result.official_cost_nano == 550_000_000
    assert result.deduction_nano == 550_000_000


def test_opus_4_5_turn_writing_a_5m_cache_prefix_is_0_725() -> None:
    usage = Usage(input_tokens=10_000, cache_write_5m_tokens=100_000, output_tokens=2_000)
    result = charge(_bundled("claude-opus-4-5"), usage, ONE)
    assert result.official_cost_nano == 725_000_000
    assert result.deduction_nano == 725_000_000
    assert [line.category for line in result.lines] == ["input", "cache_write_5m", "output"]


def test_opus_4_5_turn_writing_a_1h_cache_prefix_is_1_10() -> None:
    usage = Usage(input_tokens=10_000, cache_write_1h_tokens=100_000, output_tokens=2_000)
    assert charge(_bundled("claude-opus-4-5"), usage, ONE).official_cost_nano == 1_100_000_000


def test_opus_4_5_turn_reading_the_cache_is_0_15() -> None:
    usage = Usage(input_tokens=10_000, cache_read_tokens=100_000, output_tokens=2_000)
    result = charge(_bundled("claude-opus-4-5"), usage, ONE)
    assert result.official_cost_nano == 150_000_000
    assert result.tier is None
    assert result.price_version == PriceBook.bundled().version


def test_multiplier_applies_to_exact_cost_at_0_3() -> None:
    usage = Usage(input_tokens=10_000, cache_write_5m_tokens=100_000, output_tokens=2_000)
    result = charge(_bundled("claude-opus-4-5"), usage, Ratio.parse("0.3"))
    assert result.deduction_nano == 217_500_000


# ----------------------------------------------------------------- long-context tiers


def test_gemini_2_5_pro_250k_prompt_is_priced_wholly_at_the_long_context_tier() -> None:
    usage = Usage(input_tokens=250_000, output_tokens=1_000)
    result = charge(_bundled("gemini-2.5-pro"), usage, ONE)
    assert result.tier == ">200k"
    # 250,000 x $2.50/M + 1,000 x $15/M = 0.625 + 0.015
    assert result.official_cost_nano == 640_000_000
    assert {line.category: line.unit_price_nano for line in result.lines} == {
        "input": 2_500_000_000,
        "output": 15_000_000_000,
    }


def test_gemini_2_5_pro_exactly_200k_stays_at_base_prices() -> None:
    result = charge(_bundled("gemini-2.5-pro"), Usage(input_tokens=200_000), ONE)
    assert result.tier is None
    assert result.official_cost_nano == 250_000_000  # 200,000 x $1.25/M


def test_tier_threshold_counts_cache_reads_and_writes() -> None:
    usage = Usage(input_tokens=50_000, cache_read_tokens=160_000)
    result = charge(_bundled("gemini-2.5-pro"), usage, ONE)
    assert result.tier == ">200k"
    # 50,000 x $2.50/M + 160,000 x $0.25/M
    assert result.official_cost_nano == 125_000_000 + 40_000_000


def test_highest_matching_threshold_wins_regardless_of_order() -> None:
    low = LongContextTier(">100k", 100_000, TokenPrices(2, 2))
    high = LongContextTier(">200k", 200_000, TokenPrices(3, 3))
    entry = _token_entry(input=1, output=1, tiers=(high, low))
    assert select_tier(entry, 250_000) is high
    assert select_tier(entry, 150_000) is low
    assert select_tier(entry, 100_000) is None


# ----------------------------------------------------------------- rounding


def test_three_half_nano_lines_are_rounded_once_not_three_times() -> None:
    entry = _token_entry(input=500_000, output=500_000, cache_read=500_000)
    usage = Usage(input_tokens=1, cache_read_tokens=1, output_tokens=1)
    result = charge(entry, usage, ONE)
    # exact total 1.5 nano -> 2 (rounding each line would give 1 + 1 + 1 = 3)
    assert result.official_cost_nano == 2
    assert result.deduction_nano == 2


@pytest.mark.parametrize(
    ("price", "expected"),
    [(500_000, 1), (1_500_000, 2), (2_500_000, 3), (2_499_999, 2), (499_999, 0)],
)
def test_half_up_at_exactly_one_half(price: int, expected: int) -> None:
    result = charge(_token_entry(input=price, output=1), Usage(input_tokens=1), ONE)
    assert result.official_cost_nano == expected


def test_deduction_is_not_derived_from_the_rounded_official_cost() -> None:
    entry = _token_entry(input=1_400_000, output=1)  # 1 token = 1.4 nano
    result = charge(entry, Usage(input_tokens=1), Ratio.parse("2"))
    assert result.official_cost_nano == 1  # round(1.4)
    assert result.deduction_nano == 3  # round(2.8), not 2 x round(1.4) = 2


def test_per_call_and_token_lines_share_one_rounding() -> None:
    entry = _token_entry(input=500_000, output=1, per_call=1)  # 0.5 nano + 1 nano per call
    result = charge(entry, Usage(input_tokens=1, calls=1), Ratio.parse("0.5"))
    assert result.official_cost_nano == 2  # 1.5 -> 2
    assert result.deduction_nano == 1  # 0.75 -> 1
    assert [line.category for line in result.lines] == ["input", "call"]


# ----------------------------------------------------------------- lines and fallbacks


def test_missing_cache_price_falls_back_to_input_price_and_is_recorded() -> None:
    entry = _bundled("gpt-4o")  # OpenAI lists no cache-write price
    result = charge(entry, Usage(input_tokens=1_000, cache_write_5m_tokens=1_000), ONE)
    assert entry.tokens is not None
    line = next(line for line in result.lines if line.category == "cache_write_5m")
    assert line.unit_price_nano == entry.tokens.input
    assert result.extra["price_fallback_to_input"] == "cache_write_5m"


def test_lines_only_for_non_zero_quantities_but_never_empty() -> None:
    entry = _bundled("claude-haiku-4-5")
    assert [line.category for line in charge(entry, Usage(output_tokens=5), ONE).lines] == ["output"]
    empty = charge(entry, Usage(), ONE)
    assert len(empty.lines) == 1
    assert empty.official_cost_nano == 0
    assert empty.deduction_nano == 0
    call_empty = charge(_call_entry(40_000_000), Usage(), ONE)
    assert [line.category for line in call_empty.lines] == ["call"]


def test_estimated_usage_is_marked_on_the_charge() -> None:
    result = charge(_bundled("gpt-4o"), Usage(input_tokens=10, estimated=True), ONE)
    assert result.extra["estimated"] == "true"


def test_multiplier_text_is_exact() -> None:
    entry = _bundled("gpt-4o")
    assert charge(entry, Usage(), Ratio.parse("1.10")).multiplier == "1.1"
    assert charge(entry, Usage(), Ratio.parse("0.3").times(Ratio.parse("0.85"))).multiplier == ("0.255")
    assert charge(entry, Usage(), Ratio.parse("3")).multiplier == "3"


# ----------------------------------------------------------------- holds


def test_hold_rounds_up_and_never_under_reserves() -> None:
    entry = _token_entry(input=1_400_000, output=1_000_000)
    assert hold_cost_nano(entry, 1, 0, ONE) == 2  # 1.4 -> 2
    assert hold_cost_nano(entry, 0, 3, Ratio.parse("0.5")) == 2  # 1.5 -> 2
    assert hold_cost_nano(entry, 0, 0, ONE) == 0


def test_hold_uses_the_tier_the_input_selects() -> None:
    entry = _bundled("gemini-2.5-pro")
    assert hold_cost_nano(entry, 250_000, 1_000, ONE) == 640_000_000
    assert hold_cost_nano(entry, 200_000, 0, ONE) == 250_000_000


def test_hold_for_per_call_entries_is_per_call_times_calls() -> None:
    entry = _call_entry(40_000_000)
    assert hold_cost_nano(entry, 0, 0, ONE) == 40_000_000
    assert hold_cost_nano(entry, 500, 9_999, ONE, calls=3) == 120_000_000
    assert hold_cost_nano(entry, 0, 0, Ratio.parse("0.3"), calls=3) == 36_000_000


@pytest.mark.parametrize("model", ["claude-opus-4-5", "gemini-2.5-pro", "gpt-5-nano"])
@pytest.mark.parametrize("multiplier", ["1", "0.3", "1.37", "0.001"])
@pytest.mark.parametrize("available", [1, 999, 12_345_678, 550_000_001, 7_000_000_000])
def test_affordable_output_tokens_is_the_maximum_that_fits(
    model: str, multiplier: str, available: int
) -> None:
    entry = _bundled(model)
    ratio = Ratio.parse(multiplier)
    input_tokens = 1_000
    n = affordable_output_tokens(entry, input_tokens, available, ratio)
    if hold_cost_nano(entry, input_tokens, 0, ratio) > available:
        assert n == 0
        return
    assert hold_cost_nano(entry, input_tokens, n, ratio) <= available
    assert hold_cost_nano(entry, input_tokens, n + 1, ratio) > available


def test_affordable_output_tokens_zero_when_input_alone_does_not_fit() -> None:
    entry = _bundled("claude-opus-4-5")
    assert affordable_output_tokens(entry, 110_000, 549_999_999, ONE) == 0
    assert affordable_output_tokens(entry, 110_000, 550_000_000, ONE) == 0
    assert affordable_output_tokens(entry, 110_000, 550_025_000, ONE) == 1
    assert affordable_output_tokens(entry, 0, -5, ONE) == 0


def test_affordable_output_tokens_at_the_long_context_tier() -> None:
    entry = _bundled("gemini-2.5-pro")
    available = 640_000_000
    n = affordable_output_tokens(entry, 250_000, available, ONE)
    assert n == 1_000
    assert hold_cost_nano(entry, 250_000, n, ONE) == available


def test_affordable_output_tokens_when_output_is_free() -> None:
    entry = _token_entry(input=1_000_000, output=0)  # 1 nano per input token
    assert affordable_output_tokens(entry, 10, 10, ONE) == entry.max_output_tokens
    assert affordable_output_tokens(entry, 10, 9, ONE) == 0
    paid = _bundled("gpt-4o")
    assert affordable_output_tokens(paid, 10, 0, Ratio.parse("0")) == paid.max_output_tokens
