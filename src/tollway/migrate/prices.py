"""Their model prices (options ``ModelRatio``, ``CompletionRatio``, ``CacheRatio``,
``ModelPrice``) as exact prices per million tokens or per call, compared with Tollway's.

new-api and one-api bill ``(prompt + completion x CompletionRatio) x ModelRatio x GroupRatio``
quota for a token model, where ``ModelRatio`` 1 = $0.002 / 1K tokens = $2 / 1M tokens, cached
prompt tokens at ``CacheRatio`` of the prompt price, and ``ModelPrice`` (when a model has one,
it wins) as USD per call x GroupRatio. The group ratio is the Tollway group multiplier, so
here only the list price is compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from tollway.migrate.convert import parse_decimal_map
from tollway.migrate.source_schema import USD_PER_MTOK_AT_RATIO_ONE
from tollway.money import NANO_PER_CREDIT, nano_to_credits
from tollway.pricing.book import PriceBook
from tollway.pricing.model import BillingMode, PriceEntry


@dataclass(frozen=True, slots=True)
class Price:
    """Nano-credits per million tokens (token models) or per call."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    per_call: int | None = None

    def usd(self) -> dict[str, str | None]:
        return {
            "input": _usd(self.input),
            "output": _usd(self.output),
            "cache_read": _usd(self.cache_read),
            "per_call": _usd(self.per_call),
        }


def _usd(nano: int | None) -> str | None:
    return None if nano is None else nano_to_credits(nano)


@dataclass(slots=True)
class ModelPriceRow:
    model: str
    theirs: Price
    tollway: Price | None  # the price Tollway bills today (bundled list + operator overrides)
    notes: list[str] = field(default_factory=list)
    action: str = ""  # set | same | report-only | not-served

    def difference_usd(self) -> dict[str, str | None]:
        """Theirs minus Tollway's, per category both price (USD per MTok or per call)."""
        out: dict[str, str | None] = {}
        for name in ("input", "output", "cache_read", "per_call"):
            theirs = getattr(self.theirs, name)
            ours = getattr(self.tollway, name) if self.tollway is not None else None
            out[name] = None if theirs is None or ours is None else nano_to_credits(theirs - ours)
        return out

    @property
    def output_unknown(self) -> bool:
        """Their output price is a guess: the completion ratio was not stored."""
        return NO_COMPLETION_RATIO in self.notes

    @property
    def differs(self) -> bool:
        if self.tollway is None:
            return True
        t, o = self.theirs, self.tollway
        if t.per_call is not None:
            return t.per_call != o.per_call
        if (t.input, t.output) != (o.input, o.output):
            return True
        return t.cache_read is not None and t.cache_read != o.cache_read


NO_COMPLETION_RATIO = "no CompletionRatio stored: their built-in default applied there; 1 assumed"


def usd_to_nano(value: Decimal) -> tuple[int, bool]:
    """USD (per MTok or per call) in nano-credits, rounded half-up once when it has more than
    nine decimals; the flag says whether it was rounded."""
    exact = value * NANO_PER_CREDIT
    rounded = exact.to_integral_value(rounding=ROUND_HALF_UP)
    return int(rounded), rounded != exact


def their_prices(options: dict[str, str]) -> dict[str, tuple[Price, list[str]]]:
    ratios = parse_decimal_map(options.get("ModelRatio"), option="ModelRatio")
    completion = parse_decimal_map(options.get("CompletionRatio"), option="CompletionRatio")
    cache = parse_decimal_map(options.get("CacheRatio"), option="CacheRatio")
    per_call = parse_decimal_map(options.get("ModelPrice"), option="ModelPrice")
    out: dict[str, tuple[Price, list[str]]] = {}
    for model, usd in per_call.items():
        nano, rounded = usd_to_nano(usd)
        out[model] = (Price(per_call=nano), ["per-call price rounded to the nano-credit"] if rounded else [])
    for model, ratio in ratios.items():
        if model in out:
            continue
        notes: list[str] = []
        input_usd = ratio * USD_PER_MTOK_AT_RATIO_ONE
        if model in completion:
            output_usd = input_usd * completion[model]
        else:
            output_usd = input_usd
            notes.append(NO_COMPLETION_RATIO)
        cache_usd = input_usd * cache[model] if model in cache else None
        inp, r1 = usd_to_nano(input_usd)
        outp, r2 = usd_to_nano(output_usd)
        cached, r3 = usd_to_nano(cache_usd) if cache_usd is not None else (None, False)
        if r1 or r2 or r3:
            notes.append("a price had more than 9 decimals per MTok and was rounded half-up")
        out[model] = (Price(input=inp, output=outp, cache_read=cached), notes)
    return out


def tollway_price(entry: PriceEntry | None) -> Price | None:
    if entry is None:
        return None
    if entry.mode is BillingMode.CALL:
        return Price(per_call=entry.per_call_nano)
    assert entry.tokens is not None
    t = entry.tokens
    return Price(input=t.input, output=t.output, cache_read=t.cache_read)


def compare(options: dict[str, str], book: PriceBook, at: datetime) -> list[ModelPriceRow]:
    """Every model they price, with Tollway's current price beside it."""
    rows = []
    for model, (price, notes) in sorted(their_prices(options).items()):
        rows.append(ModelPriceRow(model, price, tollway_price(book.lookup(model, at)), notes))
    return rows
