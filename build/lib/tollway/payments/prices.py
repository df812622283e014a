"""What a credit costs in each payment currency: fixed, or the exchange rate plus a margin.

Pure domain. 1 credit pays for 1 USD of official list price, so in FX mode a credit costs
``fx_rate × (1 + margin)`` units of the currency, where ``fx_rate`` is units per USD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tollway.errors import InvalidRequest, ServiceUnavailable
from tollway.money import nano_to_credits
from tollway.payments.amounts import Quote, credits_for, format_minor, fx_price, price_text


@dataclass(frozen=True, slots=True)
class CurrencyPrice:
    currency: str
    mode: str  # fixed | fx
    price_per_credit: Decimal | None = None
    fx_rate: Decimal | None = None
    margin: Decimal = Decimal(0)
    fx_source: str = "operator"  # operator | url
    fx_updated_at: datetime | None = None
    min_minor: int = 100
    presets: tuple[int, ...] = field(default_factory=tuple)  # minor units
    enabled: bool = True

    def price(self, *, now: datetime, max_age: timedelta | None = None) -> Decimal:
        if self.mode == "fixed":
            if self.price_per_credit is None:
                raise InvalidRequest(f"{self.currency} has no price per credit set", param="currency")
            return self.price_per_credit
        if self.fx_rate is None:
            raise ServiceUnavailable(f"no exchange rate for {self.currency} yet; try again later")
        stale = (
            self.fx_source == "url"
            and max_age is not None
            and (self.fx_updated_at is None or now - self.fx_updated_at > max_age)
        )
        if stale:
            raise ServiceUnavailable(f"the {self.currency} exchange rate is out of date; try again later")
        return fx_price(self.fx_rate, self.margin)

    def quote(self, amount_minor: int, *, now: datetime, max_age: timedelta | None = None) -> Quote:
        if not self.enabled:
            raise InvalidRequest(f"payments in {self.currency} are not enabled", param="currency")
        if amount_minor < self.min_minor:
            raise InvalidRequest(
                f"the minimum top-up is {format_minor(self.min_minor, self.currency)} {self.currency}",
                param="amount",
            )
        price = self.price(now=now, max_age=max_age)
        credits = credits_for(amount_minor, self.currency, price)
        if credits <= 0:
            raise InvalidRequest("the amount buys no credit", param="amount")
        fx = self.fx_rate if self.mode == "fx" else None
        return Quote(self.currency, amount_minor, price, fx, credits)

    def to_json(self, *, now: datetime, max_age: timedelta | None = None) -> dict[str, Any]:
        try:
            price: str | None = price_text(self.price(now=now, max_age=max_age))
        except (InvalidRequest, ServiceUnavailable):
            price = None
        presets = []
        for minor in self.presets:
            credits = credits_for(minor, self.currency, Decimal(price)) if price else None
            presets.append(
                {
                    "amount": format_minor(minor, self.currency),
                    "credits": None if credits is None else nano_to_credits(credits),
                }
            )
        return {
            "currency": self.currency,
            "mode": self.mode,
            "price_per_credit": price,
            "fx_rate": None if self.fx_rate is None else price_text(self.fx_rate),
            "margin": price_text(self.margin),
            "fx_source": self.fx_source,
            "fx_updated_at": self.fx_updated_at.isoformat() if self.fx_updated_at else None,
            "min_amount": format_minor(self.min_minor, self.currency),
            "presets": presets,
            "enabled": self.enabled,
        }


RATE_QUANTUM = Decimal("1e-12")

DEFAULT_PRICES = {
    "USD": CurrencyPrice("USD", "fixed", price_per_credit=Decimal(1), presets=(500, 1000, 2000, 5000, 10000)),
}


def rates_from_document(doc: Any) -> dict[str, Decimal]:
    """Currency units per USD from ``{"base": "USD", "rates": {...}}`` (or ``base_code``).

    Numbers must have been parsed as :class:`Decimal` (``json.loads(parse_float=Decimal)``).
    Another base is converted through its USD rate.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("rates"), dict):
        raise InvalidRequest("the FX document has no 'rates' object", param="fx_url")
    base = str(doc.get("base") or doc.get("base_code") or "USD").upper()
    rates: dict[str, Decimal] = {}
    for code, value in doc["rates"].items():
        if isinstance(value, Decimal | int) and not isinstance(value, bool) and value > 0:
            rates[str(code).upper()] = Decimal(value)
    if base != "USD":
        usd = rates.get("USD")
        if usd is None:
            raise InvalidRequest(f"the FX document is based on {base} and has no USD rate", param="fx_url")
        rates = {code: (value / usd).quantize(RATE_QUANTUM) for code, value in rates.items()}
        rates["USD"] = Decimal(1)
    return rates
