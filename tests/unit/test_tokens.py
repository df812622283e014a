"""Tokenizer-free bounds and estimates used to size holds."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from tollway.tokens import (
    IMAGE_TOKENS_MAX,
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    TOOLS_OVERHEAD_TOKENS,
    chat_input_bounds,
    count_output_tokens,
    embedding_input_bounds,
    estimate_text_tokens,
    image_tokens_for,
    utf8_len,
)

SAMPLES = [
    "",
    "hello",
    "The quick brown fox jumps over the lazy dog. " * 20,
    "日本語のテキストです。漢字とかなが混ざっています。",
    "Привет, как дела? Ελληνικά. Ünïcödé àccents.",
    "emoji 🎉🚀👩‍👩‍👧‍👦 and flags 🇯🇵",
    "def f(x):\n    return {'a': [1, 2, 3]}  # code\n\t\r\n",
    "e\u0301 combining marks a\u0308",
    "\U0001f600" * 50,
]


@pytest.mark.parametrize("text", SAMPLES)
def test_utf8_len_is_the_encoded_length(text: str) -> None:
    assert utf8_len(text) == len(text.encode("utf-8"))


def test_estimate_text_tokens_heuristic() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("abcd") == 1
    assert estimate_text_tokens("abcde") == 2
    assert estimate_text_tokens("日本語") == 3
    assert estimate_text_tokens("ab日本") == 1 + 2
    assert count_output_tokens("hello world!") == estimate_text_tokens("hello world!") == 3


@pytest.mark.parametrize("text", SAMPLES)
def test_estimate_never_exceeds_the_byte_upper_bound(text: str) -> None:
    assert estimate_text_tokens(text) <= utf8_len(text)


def _body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages), **extra}


@pytest.mark.parametrize("text", SAMPLES)
def test_chat_upper_bound_covers_text_bytes_and_expected(text: str) -> None:
    body = _body({"role": "user", "content": text, "name": "alice"})
    upper, expected = chat_input_bounds(body)
    assert upper >= expected
    assert upper >= utf8_len(text) + utf8_len("alice")
    overhead = MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMING_TOKENS
    assert upper == utf8_len(text) + 5 + overhead
    assert expected == estimate_text_tokens(text + "alice") + overhead


def test_chat_counts_text_parts_images_and_names() -> None:
    body = _body(
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "name": "bob",
            "content": [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9999}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        },
    )
    upper, expected = chat_input_bounds(body)
    text = "Be brief." + "bob" + "What is in these images?"
    fixed = 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMING_TOKENS + 2 * IMAGE_TOKENS_MAX
    assert upper == utf8_len(text) + fixed  # the data URL itself is not text
    assert expected == estimate_text_tokens(text) + fixed
    assert chat_input_bounds(body, image_tokens=50_000)[0] == upper + 2 * (50_000 - 1_600)


def test_chat_counts_tool_definitions_and_tool_calls() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    plain = chat_input_bounds(_body(call, result))
    with_defs = chat_input_bounds(_body(call, result, tools=tools, response_format=response_format))
    allowance = len(orjson.dumps(tools)) + TOOLS_OVERHEAD_TOKENS + len(orjson.dumps(response_format))
    assert with_defs[0] - plain[0] == allowance
    assert with_defs[1] - plain[1] == allowance
    tool_text = "call_1" + "function" + "get_weather" + '{"city":"Paris"}' + "call_1" + "sunny"
    assert plain[0] >= utf8_len(tool_text)


def test_chat_tolerates_odd_bodies() -> None:
    assert chat_input_bounds({}) == (REPLY_PRIMING_TOKENS, REPLY_PRIMING_TOKENS)
    upper, expected = chat_input_bounds(
        {"messages": [None, "x", {"role": "user", "content": [{"type": "mystery", "v": "abc"}]}]}
    )
    assert upper >= expected >= 3 * MESSAGE_OVERHEAD_TOKENS


def test_chat_accepts_anthropic_style_system_and_audio() -> None:
    audio = "QUJD" * 1000  # 3,000 decoded bytes
    body = {
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": audio}}]}],
    }
    upper, expected = chat_input_bounds(body)
    assert upper >= utf8_len("You are terse.") + 150
    assert upper >= expected


def test_chat_bounds_are_fast_on_large_bodies() -> None:
    big = "Lorem ipsum dolor sit amet, 日本語 " * 40_000  # ~1.3 MB
    body = _body(*({"role": "user", "content": big} for _ in range(4)))
    start = time.perf_counter()
    upper, expected = chat_input_bounds(body)
    elapsed = time.perf_counter() - start
    assert upper >= 4 * utf8_len(big)
    assert expected < upper
    assert elapsed < 0.5


def test_image_allowance_per_model() -> None:
    assert image_tokens_for("gpt-4o") == IMAGE_TOKENS_MAX
    assert image_tokens_for("gpt-4o-mini-2024-07-18") == 48_169
    assert image_tokens_for("claude-opus-4-5") == IMAGE_TOKENS_MAX


def test_embedding_bounds() -> None:
    assert embedding_input_bounds({"input": "hello world!"}) == (12, 3)
    assert embedding_input_bounds({"input": ["abcd", "日本"]}) == (4 + 6, 1 + 2)
    assert embedding_input_bounds({"input": [1, 2, 3, 4]}) == (4, 4)
    assert embedding_input_bounds({"input": [[1, 2], [3, 4, 5]]}) == (5, 5)
    assert embedding_input_bounds({}) == (0, 0)
    assert embedding_input_bounds({"input": []}) == (0, 0)


def test_lone_surrogates_do_not_crash() -> None:
    text = "a\ud800b"  # possible from a lenient JSON parser
    assert utf8_len(text) == 5
    assert chat_input_bounds(_body({"role": "user", "content": text}))[0] >= 5
