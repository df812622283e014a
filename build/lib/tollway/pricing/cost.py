"""Exact charges, hold sizing and affordability; integers only, one rounding per amount.

Token prices are nano-credits per million tokens, per-call prices nano-credits per call. The
whole request is put over the common denominator ``1_000_000`` (per-call terms are scaled up
by it), so

    N           = sum(tokens_i * price_i) + calls * per_call * 1_000_000
    official    = round_half_up(N / 1_000_000)
    deduction   = round_half_up(N * mult.num / (mult.den * 1_000_000))
    hold        = ceil(N_hold * mult.num / (mult.den * 1_000_000))

The deduction is never derived from the rounded official cost. Everything here is plain
``int`` arithmetic, cheap enough for every request.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from tollway.money import TOKENS_PER_MTOK, Ratio, div_round_half_up
from tollway.pricing.model import (
    BillingMode,
    Charge,
    ChargeLine,
    LongContextTier,
    PriceEntry,
    TokenPrices,
    Usage,
)


def select_tier(entry: PriceEntry, prompt_tokens: int) -> LongContextTier | None:
    """The long-context tier a prompt of ``prompt_tokens`` falls in (strictly above the
    threshold; the highest matching threshold wins), or None for the base prices."""
    chosen: LongContextTier | None = None
    for tier in entry.tiers:
        if prompt_tokens > tier.above_prompt_tokens and (
            chosen is None or tier.above_prompt_tokens > chosen.above_prompt_tokens
        ):
            chosen = tier
    return chosen


@lru_cache(maxsize=1024)
def with_variant(entry: PriceEntry, *keys: str) -> PriceEntry:
    """``entry`` priced at the first of ``keys`` it lists in ``per_call_variants`` (e.g.
    ``"hd/1024x1792"``, then ``"1024x1792"``); unchanged when it lists none of them. The
    usage record's price snapshot then shows the price the call was charged at."""
    prices = dict(entry.per_call_variants)
    for key in keys:
        if key in prices:
            return replace(entry, per_call_nano=prices[key])
    return entry


def _token_prices(entry: PriceEntry, prompt_tokens: int) -> tuple[TokenPrices | None, str | None]:
    tier = select_tier(entry, prompt_tokens)
    if tier is not None:
        return tier.prices, tier.name
    return entry.tokens, None


@lru_cache(maxsize=256)
def _ratio_text(num: int, den: int) -> str:
    """Exact decimal text of num/den without Decimal (den is 2^a*5^b for parsed ratios)."""
    whole, rest = divmod(num, den)
    if rest == 0:
        return str(whole)
    digits = 0
    scale = 1
    while (rest * scale) % den and digits < 60:
        digits += 1
        scale *= 10
    if (rest * scale) % den:
        return f"{num}/{den}"  # not a terminating decimal; still exact
    frac = str(rest * scale // den).rjust(digits, "0").rstrip("0")
    return f"{whole}.{frac}"


def _multiplier_text(multiplier: Ratio) -> str:
    return _ratio_text(multiplier.num, multiplier.den)


def charge(entry: PriceEntry, usage: Usage, multiplier: Ratio) -> Charge:
    """Price one call exactly; the official cost and the deduction are each rounded once."""
    lines: list[ChargeLine] = []
    numerator = 0  # over the common denominator TOKENS_PER_MTOK
    fallbacks: list[str] = []
    prices, tier_name = _token_prices(entry, usage.prompt_tokens)
    if prices is not None:
        base = prices.input
        for category, quantity, unit in (
            ("input", usage.input_tokens, base),
            ("cache_read", usage.cache_read_tokens, prices.cache_read),
            ("cache_write_5m", usage.cache_write_5m_tokens, prices.cache_write_5m),
            ("cache_write_1h", usage.cache_write_1h_tokens, prices.cache_write_1h),
            ("output", usage.output_tokens, prices.output),
        ):
            if not quantity:
                continue
            if unit is None:
                unit = base
                fallbacks.append(category)
            numerator += quantity * unit
            lines.append(ChargeLine(category, quantity, unit, "mtok"))
    if entry.per_call_nano is not None and usage.calls:
        numerator += usage.calls * entry.per_call_nano * TOKENS_PER_MTOK
        lines.append(ChargeLine("call", usage.calls, entry.per_call_nano, "call"))
    if not lines:  # nothing used: still one (zero) line, so the record shows the unit price
        if entry.mode is BillingMode.CALL or prices is None:
            lines.append(ChargeLine("call", 0, entry.per_call_nano or 0, "call"))
        else:
            lines.append(ChargeLine("input", 0, prices.input, "mtok"))
    extra = {"price_fallback_to_input": ",".join(fallbacks)} if fallbacks else {}
    if usage.estimated:
        extra["estimated"] = "true"
    return Charge(
        model=entry.model,
        lines=tuple(lines),
        tier=tier_name,
        multiplier=_multiplier_text(multiplier),
        official_cost_nano=div_round_half_up(numerator, TOKENS_PER_MTOK),
        deduction_nano=div_round_half_up(numerator * multiplier.num, multiplier.den * TOKENS_PER_MTOK),
        price_version=entry.version,
        extra=extra,
    )


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _hold_parts(entry: PriceEntry, input_tokens: int, calls: int) -> tuple[int, int]:
    """(fixed numerator, numerator per output token), both over TOKENS_PER_MTOK."""
    fixed = 0
    per_output = 0
    prices, _ = _token_prices(entry, input_tokens)
    if prices is not None:
        fixed += max(input_tokens, 0) * prices.input
        per_output = prices.output
    if entry.per_call_nano is not None:
        fixed += max(calls, 0) * entry.per_call_nano * TOKENS_PER_MTOK
    return fixed, per_output


def hold_cost_nano(
    entry: PriceEntry,
    input_tokens: int,
    output_tokens: int,
    multiplier: Ratio,
    *,
    calls: int = 1,
) -> int:
    """The reservation for ``input_tokens`` uncached input and ``output_tokens`` output at
    the tier those input tokens select, times the multiplier, rounded UP (never
    under-reserve). Per-call entries add ``per_call x calls``."""
    fixed, per_output = _hold_parts(entry, input_tokens, calls)
    numerator = (fixed + max(output_tokens, 0) * per_output) * multiplier.num
    return _ceil_div(numerator, multiplier.den * TOKENS_PER_MTOK)


def affordable_output_tokens(
    entry: PriceEntry,
    input_tokens: int,
    available_nano: int,
    multiplier: Ratio,
    *,
    calls: int = 1,
) -> int:
    """The largest output-token count whose :func:`hold_cost_nano` fits ``available_nano``.

    ceil(x / D) <= A  <=>  x <= A * D for integers, so this is one integer division.
    Returns 0 when not even the input fits, and ``entry.max_output_tokens`` when output is
    free (zero output price or multiplier) and the rest fits.
    """
    fixed, per_output = _hold_parts(entry, input_tokens, calls)
    budget = available_nano * multiplier.den * TOKENS_PER_MTOK - fixed * multiplier.num
    if budget < 0:
        return 0
    step = per_output * multiplier.num
    if step == 0:
        return entry.max_output_tokens
    return budget // step
