"""Price book value objects and the normalised usage that prices apply to.

Prices are integer nano-credits per million tokens (``usd_per_mtok_to_nano``) or per call,
so every cost is an exact integer expression rounded once (see :mod:`tollway.pricing.cost`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class BillingMode(StrEnum):
    TOKEN = "token"
    CALL = "call"


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Nano-credits per million tokens for each category; ``None`` = the provider lists none.

    A missing cache price falls back to the input price (what the provider charges when it
    has no discount for that category), which :func:`cost.charge` records on the line.
    """

    input: int
    output: int
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    cache_read: int | None = None


@dataclass(frozen=True, slots=True)
class LongContextTier:
    """Prices that replace the base ones for a whole request whose prompt exceeds a threshold."""

    name: str  # e.g. ">200k"
    above_prompt_tokens: int  # applies when the whole prompt (incl. cache reads/writes) is > this
    prices: TokenPrices


@dataclass(frozen=True, slots=True)
class PriceEntry:
    model: str
    provider: str  # openai | anthropic | google | deepseek | ...
    mode: BillingMode
    effective_from: datetime  # timezone-aware UTC
    tokens: TokenPrices | None = None  # for BillingMode.TOKEN
    per_call_nano: int | None = None  # for BillingMode.CALL
    # per-call price variants, e.g. (("hd/1024x1792", nano), ...): the size / quality an image
    # model charges differently for; the relay prices a call at its variant (cost.with_variant)
    per_call_variants: tuple[tuple[str, int], ...] = ()
    tiers: tuple[LongContextTier, ...] = ()
    context_window: int = 128_000
    max_output_tokens: int = 16_384
    source_url: str = ""
    retrieved: str = ""  # ISO date the price was read from source_url
    version: str = "operator"  # price-book version or "operator" for overrides


@dataclass(slots=True)
class Usage:
    """Usage normalised across providers, in the categories that carry distinct prices.

    ``input_tokens`` is *uncached* input only (billed at the input rate); cache reads and
    writes are separate; ``output_tokens`` includes reasoning/thinking tokens, and
    ``reasoning_tokens`` repeats that subset for display only.
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    calls: int = 0  # units for per-call billing
    estimated: bool = False

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt, as long-context tiers measure it."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
        )


@dataclass(frozen=True, slots=True)
class ChargeLine:
    category: str  # input | cache_read | cache_write_5m | cache_write_1h | output | call
    quantity: int  # tokens or calls
    unit_price_nano: int  # per MTok (token lines) or per call
    per: str  # "mtok" | "call"


@dataclass(frozen=True, slots=True)
class Charge:
    """The priced result of one call: every line, the tier and the rounded amounts."""

    model: str
    lines: tuple[ChargeLine, ...]
    tier: str | None
    multiplier: str  # exact decimal string of the multiplier applied
    official_cost_nano: int  # list-price cost, rounded once
    deduction_nano: int  # official cost x multiplier, rounded once (not from the rounded cost)
    price_version: str
    extra: dict[str, str] = field(default_factory=dict)
