"""Provider usage JSON -> :class:`Usage`, the categories prices apply to.

The providers disagree on what their counters mean, and every mistake here is a billing
error (see docs/pricing.md):

* OpenAI (Chat and Responses): ``cached_tokens`` and ``cache_write_tokens`` are subsets of the
  prompt count, ``reasoning_tokens`` a subset of the completion count.
* Anthropic: ``input_tokens`` excludes cache reads and writes; streamed ``message_delta``
  usage is cumulative, so the latest value of each field wins and nothing is summed.
* Gemini: ``promptTokenCount`` includes ``cachedContentTokenCount``; thinking tokens are
  reported beside ``candidatesTokenCount`` and billed at the output rate.

Every function tolerates missing keys, ``null`` values and non-dict inputs (they count 0);
a counter is never negative, and uncached input clamps at zero if a provider ever reports
more cached tokens than prompt tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollway.pricing.model import Usage

UsageDict = Mapping[str, Any]


def _n(d: Any, *keys: str) -> int:
    """The first present counter among ``keys`` as a non-negative int (0 if absent/invalid)."""
    if not isinstance(d, Mapping):
        return 0
    for key in keys:
        value = d.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            return 0
        if isinstance(value, int):
            return max(value, 0)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return 0
    return 0


def _sub(d: Any, key: str) -> Any:
    return d.get(key) if isinstance(d, Mapping) else None


def from_openai_chat(u: UsageDict | None) -> Usage:
    """Chat Completions ``usage`` (also OpenRouter and DeepSeek, which speak the same shape).

    prompt_tokens includes cached_tokens (read) and cache_write_tokens (written), so input =
    prompt - cached - written. DeepSeek reports its cache hits as top-level
    ``prompt_cache_hit_tokens`` instead; that is used when ``cached_tokens`` is absent.
    """
    details = _sub(u, "prompt_tokens_details")
    prompt = _n(u, "prompt_tokens")
    cached = _n(details, "cached_tokens") or _n(u, "prompt_cache_hit_tokens")
    written = _n(details, "cache_write_tokens")
    return Usage(
        input_tokens=max(prompt - cached - written, 0),
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        output_tokens=_n(u, "completion_tokens"),
        reasoning_tokens=_n(_sub(u, "completion_tokens_details"), "reasoning_tokens"),
    )


def from_openai_responses(u: UsageDict | None) -> Usage:
    """Responses API ``usage`` (``response.completed`` carries it when streaming)."""
    details = _sub(u, "input_tokens_details")
    total_input = _n(u, "input_tokens")
    cached = _n(details, "cached_tokens")
    written = _n(details, "cache_write_tokens")
    return Usage(
        input_tokens=max(total_input - cached - written, 0),
        cache_read_tokens=cached,
        cache_write_5m_tokens=written,
        output_tokens=_n(u, "output_tokens"),
        reasoning_tokens=_n(_sub(u, "output_tokens_details"), "reasoning_tokens"),
    )


def from_anthropic(u: UsageDict | None) -> Usage:
    """Messages API ``usage``: input_tokens excludes the cache; output_tokens is inclusive.

    Cache writes are split by TTL from ``cache_creation`` when present; any part of
    ``cache_creation_input_tokens`` the split does not account for is billed as 5-minute
    writes (the default TTL).
    """
    creation = _sub(u, "cache_creation")
    written_total = _n(u, "cache_creation_input_tokens")
    if isinstance(creation, Mapping):
        write_5m = _n(creation, "ephemeral_5m_input_tokens")
        write_1h = _n(creation, "ephemeral_1h_input_tokens")
        write_5m += max(written_total - write_5m - write_1h, 0)
    else:
        write_5m, write_1h = written_total, 0
    details = _sub(u, "output_tokens_details")
    return Usage(
        input_tokens=_n(u, "input_tokens"),
        cache_read_tokens=_n(u, "cache_read_input_tokens"),
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=_n(u, "output_tokens"),
        reasoning_tokens=_n(details, "thinking_tokens", "reasoning_tokens"),
    )


def merge_anthropic_usage(current: UsageDict | None, update: UsageDict | None) -> dict[str, Any]:
    """Fold one streamed usage object into the running one: latest non-null value per field.

    ``message_delta.usage`` is cumulative (it restates totals so far), so values replace,
    never add. Nested objects (``cache_creation``, ``server_tool_use`` ...) merge the same way.
    """
    merged: dict[str, Any] = dict(current) if isinstance(current, Mapping) else {}
    if not isinstance(update, Mapping):
        return merged
    for key, value in update.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            merged[key] = merge_anthropic_usage(merged.get(key), value)
        else:
            merged[key] = value
    return merged


def merge_anthropic_stream(start_usage: UsageDict | None, *delta_usages: UsageDict | None) -> Usage:
    """Usage of a streamed message: ``message_start.message.usage`` then every
    ``message_delta.usage`` in arrival order (cumulative: the last value of a field wins)."""
    merged = merge_anthropic_usage(None, start_usage)
    for delta in delta_usages:
        merged = merge_anthropic_usage(merged, delta)
    return from_anthropic(merged)


def from_gemini(m: UsageDict | None) -> Usage:
    """Gemini ``usageMetadata`` (camelCase from REST, snake_case from the Python SDK).

    input = promptTokenCount - cachedContentTokenCount + toolUsePromptTokenCount;
    output = candidatesTokenCount + thoughtsTokenCount (thinking bills as output).
    """
    prompt = _n(m, "promptTokenCount", "prompt_token_count")
    cached = _n(m, "cachedContentTokenCount", "cached_content_token_count")
    tool_prompt = _n(m, "toolUsePromptTokenCount", "tool_use_prompt_token_count")
    thoughts = _n(m, "thoughtsTokenCount", "thoughts_token_count")
    candidates = _n(m, "candidatesTokenCount", "candidates_token_count")
    return Usage(
        input_tokens=max(prompt - cached, 0) + tool_prompt,
        cache_read_tokens=cached,
        output_tokens=candidates + thoughts,
        reasoning_tokens=thoughts,
    )
