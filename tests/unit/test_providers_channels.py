"""Channel adapters: where each upstream is called, how, and how its usage is read (streams
included) - one adapter per upstream API behind tollway.providers.base."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollway.pricing.model import Usage
from tollway.providers import adapter_for
from tollway.providers.anthropic.channel import MessagesTap
from tollway.providers.base import ClientHints, Shape
from tollway.providers.gemini.channel import GenerateTap
from tollway.providers.openai.channel import DONE, ChatTap
from tollway.providers.sse import data_of, named_event

NO_HINTS = ClientHints()


def data(doc: Any) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


# --------------------------------------------------------------------------- targets


def test_openai_target_is_bearer_on_the_sdk_base_url() -> None:
    t = adapter_for("openai").target(
        "https://api.openai.com/v1/", "sk-up", "gpt-4o", stream=True, hints=NO_HINTS
    )
    assert t.url == "https://api.openai.com/v1/chat/completions"
    assert t.headers["authorization"] == "Bearer sk-up"


def test_azure_openai_takes_the_key_in_api_key() -> None:
    base = "https://res.openai.azure.com/openai/v1"
    t = adapter_for("openai").target(base, "az", "gpt-4o", stream=False, hints=NO_HINTS)
    assert t.url == base + "/chat/completions"
    assert t.headers["api-key"] == "az" and "authorization" not in t.headers


@pytest.mark.parametrize(
    "base", ["https://api.anthropic.com", "https://api.anthropic.com/", "https://api.anthropic.com/v1"]
)
def test_anthropic_target(base: str) -> None:
    hints = ClientHints(
        headers=(("anthropic-version", "2026-01-01"), ("anthropic-beta", "b1"), ("x-other", "no"))
    )
    t = adapter_for("anthropic").target(base, "key", "claude", stream=True, hints=hints)
    assert t.url == "https://api.anthropic.com/v1/messages"
    assert t.headers["x-api-key"] == "key"
    assert (t.headers["anthropic-version"], t.headers["anthropic-beta"]) == ("2026-01-01", "b1")
    assert "x-other" not in t.headers
    default = adapter_for("anthropic").target(base, "key", "claude", stream=True, hints=NO_HINTS)
    assert default.headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("base", "version", "stream", "url"),
    [
        ("https://g.example", None, False, "https://g.example/v1beta/models/m:generateContent"),
        ("https://g.example/", "v1", True, "https://g.example/v1/models/m:streamGenerateContent?alt=sse"),
        ("https://g.example/v1beta", "v1", False, "https://g.example/v1beta/models/m:generateContent"),
    ],
)
def test_gemini_target(base: str, version: str | None, stream: bool, url: str) -> None:
    t = adapter_for("gemini").target(base, "gk", "m", stream=stream, hints=ClientHints(api_version=version))
    assert t.url == url and t.headers["x-goog-api-key"] == "gk"


def test_openai_passthrough_always_asks_for_usage_and_keeps_other_options() -> None:
    body: dict[str, Any] = {
        "model": "alias",
        "stream": True,
        "stream_options": {"include_obfuscation": False},
    }
    out = adapter_for("openai").passthrough_body(body, "real", stream=True)
    assert out["model"] == "real"
    assert out["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert adapter_for("gemini").passthrough_body({"contents": []}, "m", stream=True) == {"contents": []}


# --------------------------------------------------------------------------- whole responses


def test_whole_response_usage_in_each_providers_semantics() -> None:
    openai_doc = {
        "usage": {
            "prompt_tokens": 1486,
            "completion_tokens": 651,
            "prompt_tokens_details": {"cached_tokens": 1408},
        }
    }
    assert adapter_for("openai").usage(openai_doc) == Usage(
        input_tokens=78, cache_read_tokens=1408, output_tokens=651
    )
    anthropic_doc = {
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 30,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
            "cache_read_input_tokens": 5,
            "output_tokens": 7,
        }
    }
    assert adapter_for("anthropic").usage(anthropic_doc) == Usage(
        input_tokens=10,
        cache_read_tokens=5,
        cache_write_5m_tokens=10,
        cache_write_1h_tokens=20,
        output_tokens=7,
    )
    gemini_doc = {
        "usageMetadata": {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
        }
    }
    assert adapter_for("gemini").usage(gemini_doc) == Usage(
        input_tokens=40, cache_read_tokens=60, output_tokens=12, reasoning_tokens=7
    )
    for kind in ("openai", "anthropic", "gemini"):
        assert adapter_for(kind).usage({}) is None


def test_output_text_of_whole_responses() -> None:
    assert adapter_for("openai").output_text({"choices": [{"message": {"content": "hi"}}]}) == "hi"
    doc = {"content": [{"type": "text", "text": "a"}, {"type": "tool_use", "name": "f", "input": {"x": 1}}]}
    assert adapter_for("anthropic").output_text(doc) == 'af{"x":1}'
    gdoc = {
        "candidates": [{"content": {"parts": [{"text": "g"}, {"functionCall": {"name": "f", "args": {}}}]}}]
    }
    assert adapter_for("gemini").output_text(gdoc) == "gf{}"


# --------------------------------------------------------------------------- stream taps


def test_openai_tap_reads_usage_and_done() -> None:
    tap = ChatTap()
    assert tap.feed(b": keep-alive\n\n") is None
    tap.feed(data({"choices": [{"delta": {"content": "Hello"}}]}))
    tap.feed(data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}))
    assert tap.feed(b"data: [DONE]\n\n") is DONE
    assert (tap.done, tap.has_output, tap.has_usage) == (True, True, True)
    assert tap.usage(99) == Usage(input_tokens=3, output_tokens=2)


def test_openai_tap_without_usage_estimates() -> None:
    tap = ChatTap()
    tap.feed(data({"choices": [{"delta": {"content": "Hello world!"}}]}))
    assert tap.usage(8) == Usage(input_tokens=8, output_tokens=3, estimated=True)


def anthropic_events(*deltas: int, stop: bool = True) -> list[bytes]:
    start = {"input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 1}
    events = [
        named_event("message_start", {"type": "message_start", "message": {"usage": start}}),
        named_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        named_event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi there"}},
        ),
    ]
    for n in deltas:
        events.append(
            named_event(
                "message_delta", {"type": "message_delta", "delta": {}, "usage": {"output_tokens": n}}
            )
        )
    if stop:
        events.append(named_event("message_stop", {"type": "message_stop"}))
    return events


def test_anthropic_tap_keeps_the_last_cumulative_delta() -> None:
    tap = MessagesTap()
    for event in anthropic_events(10, 50, 200):
        tap.feed(event)
    assert (tap.done, tap.has_output, tap.has_usage) == (True, True, True)
    assert tap.usage(0) == Usage(input_tokens=100, cache_read_tokens=50, output_tokens=200)


def test_anthropic_tap_cut_before_message_delta_uses_exact_input_and_counted_output() -> None:
    tap = MessagesTap()
    for event in anthropic_events(stop=False):
        tap.feed(event)
    assert (tap.done, tap.has_usage) == (False, False)
    assert tap.usage(7) == Usage(input_tokens=100, cache_read_tokens=50, output_tokens=2, estimated=True)


def test_gemini_tap_final_chunk_usage_and_cut_stream() -> None:
    def chunk(text: str, usage: dict[str, int], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
        if finish:
            candidate["finishReason"] = finish
        return b"data: " + orjson.dumps({"candidates": [candidate], "usageMetadata": usage}) + b"\n\n"

    tap = GenerateTap()
    tap.feed(chunk("Hello", {"promptTokenCount": 10}))
    assert not tap.done and tap.usage(0) == Usage(input_tokens=10, output_tokens=2, estimated=True)
    tap.feed(
        chunk(" world", {"promptTokenCount": 10, "candidatesTokenCount": 2, "thoughtsTokenCount": 5}, "STOP")
    )
    assert (tap.done, tap.has_usage) == (True, True)
    assert tap.usage(0) == Usage(input_tokens=10, output_tokens=7, reasoning_tokens=5)


def test_sse_data_of() -> None:
    assert data_of(b"event: x\ndata: {}\n\n") == b"{}"
    assert data_of(b"data:[DONE]\n\n") == b"[DONE]"
    assert data_of(b": comment\n\n") is None
    assert data_of(b"event: ping\n\n") is None


def test_every_channel_type_has_an_adapter() -> None:
    shapes = {adapter_for(k).shape for k in ("openai", "anthropic", "gemini")}
    assert shapes == set(Shape) - {Shape.OPENAI_RESPONSES}  # Responses is a surface only
