"""Provider usage semantics (facts section 2) normalised into Usage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tollway.money import ONE
from tollway.pricing.book import PriceBook
from tollway.pricing.cost import charge
from tollway.pricing.model import Usage
from tollway.pricing.normalize import (
    from_anthropic,
    from_gemini,
    from_openai_chat,
    from_openai_responses,
    merge_anthropic_stream,
    merge_anthropic_usage,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)

# ----------------------------------------------------------------- OpenAI chat


def test_openai_chat_cached_and_reasoning_are_subsets() -> None:
    usage = from_openai_chat(
        {
            "prompt_tokens": 1486,
            "completion_tokens": 651,
            "total_tokens": 2137,
            "prompt_tokens_details": {"cached_tokens": 1408, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 512},
        }
    )
    assert usage.input_tokens == 78
    assert usage.cache_read_tokens == 1408
    assert usage.prompt_tokens == 1486
    assert usage.output_tokens == 651  # reasoning is inside, not added
    assert usage.reasoning_tokens == 512


def test_openai_chat_cache_writes_are_subtracted_from_input() -> None:
    usage = from_openai_chat(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 600},
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_5m_tokens) == (
        100,
        300,
        600,
    )
    assert usage.prompt_tokens == 1000


def test_openai_chat_tolerates_missing_and_null_fields() -> None:
    assert from_openai_chat(None) == Usage()
    assert from_openai_chat({}) == Usage()
    usage = from_openai_chat(
        {
            "prompt_tokens": 12,
            "completion_tokens": None,
            "prompt_tokens_details": None,
            "completion_tokens_details": {"reasoning_tokens": None},
        }
    )
    assert usage == Usage(input_tokens=12)


def test_openai_chat_deepseek_cache_hit_field() -> None:
    usage = from_openai_chat(
        {
            "prompt_tokens": 1000,
            "prompt_cache_hit_tokens": 800,
            "prompt_cache_miss_tokens": 200,
            "completion_tokens": 5,
        }
    )
    assert (usage.input_tokens, usage.cache_read_tokens) == (200, 800)


def test_openai_chat_never_goes_negative() -> None:
    usage = from_openai_chat({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 20}})
    assert usage.input_tokens == 0
    assert from_openai_chat({"prompt_tokens": -5, "completion_tokens": True}) == Usage()


# ----------------------------------------------------------------- OpenAI responses


def test_openai_responses_usage() -> None:
    usage = from_openai_responses(
        {
            "input_tokens": 2000,
            "input_tokens_details": {"cached_tokens": 1500},
            "output_tokens": 900,
            "output_tokens_details": {"reasoning_tokens": 700},
            "total_tokens": 2900,
        }
    )
    assert usage == Usage(input_tokens=500, cache_read_tokens=1500, output_tokens=900, reasoning_tokens=700)
    assert from_openai_responses({"input_tokens_details": None}) == Usage()


# ----------------------------------------------------------------- Anthropic


def test_anthropic_input_excludes_cache() -> None:
    usage = from_anthropic(
        {
            "input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 10,
            "output_tokens": 7,
        }
    )
    assert usage.input_tokens == 100
    assert usage.cache_write_5m_tokens == 20
    assert usage.cache_read_tokens == 10
    assert usage.prompt_tokens == 130


def test_anthropic_cache_creation_split_by_ttl() -> None:
    usage = from_anthropic(
        {
            "input_tokens": 10_000,
            "cache_creation_input_tokens": 100_000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 0,
                "ephemeral_1h_input_tokens": 100_000,
            },
            "cache_read_input_tokens": 0,
            "output_tokens": 2_000,
            "output_tokens_details": {"thinking_tokens": 500},
        }
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (0, 100_000)
    assert usage.output_tokens == 2_000
    assert usage.reasoning_tokens == 500


def test_anthropic_unsplit_remainder_counts_as_5m() -> None:
    usage = from_anthropic(
        {
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_1h_input_tokens": 100},
        }
    )
    assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (200, 100)


def test_anthropic_null_cache_fields() -> None:
    usage = from_anthropic(
        {
            "input_tokens": 5,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "cache_creation": None,
            "output_tokens": 3,
        }
    )
    assert usage == Usage(input_tokens=5, output_tokens=3)


def test_anthropic_stream_deltas_are_cumulative_latest_wins() -> None:
    start = {
        "input_tokens": 10_000,
        "cache_read_input_tokens": 100_000,
        "cache_creation_input_tokens": 0,
        "output_tokens": 1,
    }
    deltas: list[dict[str, Any]] = [
        {"output_tokens": 10},
        {"output_tokens": 50},
        {"output_tokens": 200, "input_tokens": None},
    ]
    usage = merge_anthropic_stream(start, *deltas)
    assert usage.output_tokens == 200  # not 1 + 10 + 50 + 200
    assert usage.input_tokens == 10_000  # a null in a delta does not erase the start value
    assert usage.cache_read_tokens == 100_000


def test_anthropic_stream_delta_restating_input_replaces_it() -> None:
    usage = merge_anthropic_stream(
        {"input_tokens": 10, "output_tokens": 1},
        {"input_tokens": 12, "output_tokens": 40, "server_tool_use": {"web_search_requests": 1}},
        {"output_tokens": 90, "server_tool_use": {"web_search_requests": 2}},
    )
    assert (usage.input_tokens, usage.output_tokens) == (12, 90)


def test_merge_anthropic_usage_does_not_mutate_and_merges_nested() -> None:
    current = {"cache_creation": {"ephemeral_5m_input_tokens": 5}, "output_tokens": 1}
    update = {"cache_creation": {"ephemeral_1h_input_tokens": 7}, "output_tokens": 3}
    merged = merge_anthropic_usage(current, update)
    assert merged == {
        "cache_creation": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 7},
        "output_tokens": 3,
    }
    assert current == {"cache_creation": {"ephemeral_5m_input_tokens": 5}, "output_tokens": 1}
    assert merge_anthropic_usage(None, None) == {}


def test_anthropic_usage_priced_on_opus_4_5_matches_the_worked_example() -> None:
    entry = PriceBook.bundled().lookup("claude-opus-4-5", NOW)
    assert entry is not None
    usage = from_anthropic(
        {
            "input_tokens": 10_000,
            "cache_creation_input_tokens": 100_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 100_000},
            "output_tokens": 2_000,
        }
    )
    assert charge(entry, usage, ONE).official_cost_nano == 725_000_000


# ----------------------------------------------------------------- Gemini


def test_gemini_prompt_includes_cache_and_thoughts_bill_as_output() -> None:
    usage = from_gemini(
        {
            "promptTokenCount": 11_500,
            "cachedContentTokenCount": 10_000,
            "candidatesTokenCount": 1_000,
            "thoughtsTokenCount": 10_000,
            "totalTokenCount": 22_500,
        }
    )
    assert usage.input_tokens == 1_500
    assert usage.cache_read_tokens == 10_000
    assert usage.output_tokens == 11_000
    assert usage.reasoning_tokens == 10_000
    assert usage.prompt_tokens == 11_500


def test_gemini_tool_use_prompt_counts_as_input() -> None:
    usage = from_gemini({"promptTokenCount": 100, "toolUsePromptTokenCount": 40, "candidatesTokenCount": 5})
    assert (usage.input_tokens, usage.output_tokens) == (140, 5)


def test_gemini_snake_case_and_missing_fields() -> None:
    usage = from_gemini(
        {"prompt_token_count": 50, "cached_content_token_count": 20, "thoughts_token_count": None}
    )
    assert usage == Usage(input_tokens=30, cache_read_tokens=20)
    assert from_gemini(None) == Usage()
    assert from_gemini({"promptTokenCount": "12"}) == Usage(input_tokens=12)


def test_gemini_cached_tokens_priced_at_cache_rate() -> None:
    entry = PriceBook.bundled().lookup("gemini-2.5-pro", NOW)
    assert entry is not None
    usage = from_gemini(
        {
            "promptTokenCount": 11_500,
            "cachedContentTokenCount": 10_000,
            "candidatesTokenCount": 1_000,
            "thoughtsTokenCount": 10_000,
        }
    )
    # 1,500 x $1.25/M + 10,000 x $0.125/M + 11,000 x $10/M
    assert charge(entry, usage, ONE).official_cost_nano == 1_875_000 + 1_250_000 + 110_000_000
