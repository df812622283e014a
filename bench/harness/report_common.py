"""What the report's sections share: the targets in table order, their labels, formatting."""

from __future__ import annotations

import statistics
from typing import Any

ORDER = ("direct", "tollway", "litellm", "portkey")
LABEL = {
    "direct": "direct (fake upstream)",
    "tollway": "Tollway",
    "litellm": "LiteLLM Proxy",
    "portkey": "Portkey gateway",
}


def _med(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _f(v: float | None, fmt: str = "{:.2f}", none: str = "–") -> str:
    return none if v is None else fmt.format(v)
