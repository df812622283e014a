"""Pricing: the effective-dated price book, exact charges and usage normalisation."""

from tollway.pricing.book import PriceBook, entry_from_dict, entry_to_dict
from tollway.pricing.cost import affordable_output_tokens, charge, hold_cost_nano, select_tier
from tollway.pricing.model import (
    BillingMode,
    Charge,
    ChargeLine,
    LongContextTier,
    PriceEntry,
    TokenPrices,
    Usage,
)

__all__ = [
    "BillingMode",
    "Charge",
    "ChargeLine",
    "LongContextTier",
    "PriceBook",
    "PriceEntry",
    "TokenPrices",
    "Usage",
    "affordable_output_tokens",
    "charge",
    "entry_from_dict",
    "entry_to_dict",
    "hold_cost_nano",
    "select_tier",
]
