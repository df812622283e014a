"""Static defaults of the fake upstream; a request may override them (see scenario.py)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)


@dataclass(frozen=True, slots=True)
class FakeConfig:
    """Server-wide defaults used when a request does not override them.

    ``prompt_tokens`` / ``completion_tokens`` of ``None`` mean "derive from the request":
    prompt tokens are estimated from the message text, completion tokens are the number of
    content chunks produced (plus ``reasoning_tokens``, which are a hidden subset of them).
    ``api_key`` of ``None`` accepts any key; otherwise ``Authorization: Bearer <api_key>``
    is required. ``record`` keeps the last ``record_limit`` requests for ``/_fake/requests``;
    benchmarks turn it off.
    """

    latency_ms: float = 0.0
    chunks: int = 8
    chunk_interval_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    api_key: str | None = None
    record: bool = True
    record_limit: int = 2000
    embedding_dimensions: int = 8
    models: tuple[str, ...] = DEFAULT_MODELS
