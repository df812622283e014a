"""The fake upstream's Anthropic, Gemini, Responses and media shapes, in-process: each reports
usage in its own provider's semantics, obeys the scenario (body ``fake``, header, or a
``<fake>`` marker in the prompt) and checks the key the way the real API does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tollway.fake_upstream import FakeConfig, start
from tollway.providers import sse


@pytest.fixture
async def base() -> AsyncIterator[str]:
    runner, port = await start("127.0.0.1", 0, FakeConfig(chunks=3, api_key="up-key"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.post(url, data=orjson.dumps(body), headers=headers) as r:
        return r.status, await r.read(), {k.lower(): v for k, v in r.headers.items()}


def docs(raw: bytes) -> list[Any]:
    blocks = raw.replace(b"\r\n", b"\n").split(b"\n\n")
    return [sse.parse(sse.data_of(b + b"\n\n")) for b in blocks if b.strip()]


ANTHROPIC = {"x-api-key": "up-key", "anthropic-version": "2023-06-01"}
MESSAGES = {"model": "claude-opus-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


async def test_anthropic_native_usage_and_tool_call(base: str) -> None:
    usage = {"input_tokens": 10, "cache_creation": {"ephemeral_1h_input_tokens": 5}, "output_tokens": 7}
    fake = {"native_usage": usage, "tool_call": {"name": "f", "arguments": {"a": 1}}, "thinking": "t"}
    status, raw, headers = await post(f"{base}/v1/messages", {**MESSAGES, "fake": fake}, ANTHROPIC)
    doc = orjson.loads(raw)
    assert status == 200 and headers["request-id"].startswith("req_fake")
    assert doc["usage"] == usage and doc["stop_reason"] == "tool_use"
    assert [b["type"] for b in doc["content"]] == ["thinking", "tool_use"]
    assert doc["content"][1]["input"] == {"a": 1}


async def test_anthropic_stream_with_cumulative_usage_steps(base: str) -> None:
    steps = [{"output_tokens": 10}, {"output_tokens": 50}, {"output_tokens": 200}]
    body = {**MESSAGES, "stream": True, "fake": {"usage_steps": steps}}
    _, raw, _ = await post(f"{base}/v1/messages", body, ANTHROPIC)
    events = docs(raw)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    deltas = [e for e in events if e["type"] == "message_delta"]
    assert [d["usage"]["output_tokens"] for d in deltas] == [10, 50, 200]
    assert [d["delta"]["stop_reason"] for d in deltas] == [None, None, "end_turn"]


async def test_anthropic_auth_and_errors_use_anthropic_envelope(base: str) -> None:
    status, raw, _ = await post(f"{base}/v1/messages", MESSAGES, {"x-api-key": "wrong"})
    assert status == 401 and orjson.loads(raw)["error"]["type"] == "authentication_error"
    status, raw, headers = await post(f"{base}/v1/messages", {**MESSAGES, "fake": {"status": 529}}, ANTHROPIC)
    assert status == 529 and orjson.loads(raw)["error"]["type"] == "overloaded_error"
    assert headers["retry-after"] == "1"


async def test_scenario_from_a_marker_in_the_prompt(base: str) -> None:
    content = 'hello <fake>{"native_usage": {"input_tokens": 4242, "output_tokens": 1}}</fake>'
    body = {**MESSAGES, "messages": [{"role": "user", "content": content}]}
    _, raw, _ = await post(f"{base}/v1/messages", body, ANTHROPIC)
    assert orjson.loads(raw)["usage"]["input_tokens"] == 4242


async def test_gemini_stream_has_crlf_events_and_a_finishing_chunk(base: str) -> None:
    usage = {"promptTokenCount": 9, "cachedContentTokenCount": 4, "thoughtsTokenCount": 2}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "fake": {"native_usage": usage}}
    url = f"{base}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    status, raw, _ = await post(url, body, {"x-goog-api-key": "up-key"})
    assert status == 200 and b"\r\n\r\n" in raw
    chunks = docs(raw)
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, None, "STOP"]
    assert chunks[-1]["usageMetadata"] == usage


async def test_gemini_key_in_query_and_envelope(base: str) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    status, raw, _ = await post(f"{base}/v1/models/gemini-2.5-flash:generateContent?key=up-key", body, {})
    assert (
        status == 200
        and orjson.loads(raw)["candidates"][0]["content"]["parts"][0]["text"] == "The quick brown"
    )
    status, raw, _ = await post(f"{base}/v1/models/gemini-2.5-flash:generateContent", body, {})
    assert status == 401 and orjson.loads(raw)["error"]["status"] == "UNAUTHENTICATED"


async def test_responses_stream_ends_with_response_completed(base: str) -> None:
    body = {"model": "gpt-4o", "input": "hi", "stream": True}
    _, raw, _ = await post(f"{base}/v1/responses", body, {"Authorization": "Bearer up-key"})
    events = docs(raw)
    assert events[0]["type"] == "response.created"
    assert (
        events[-1]["type"] == "response.completed" and events[-1]["response"]["usage"]["output_tokens"] == 3
    )
    assert b"[DONE]" not in raw


async def test_media_endpoints(base: str) -> None:
    auth = {"Authorization": "Bearer up-key"}
    _, raw, _ = await post(
        f"{base}/v1/images/generations", {"model": "dall-e-3", "prompt": "x", "n": 2}, auth
    )
    assert len(orjson.loads(raw)["data"]) == 2
    _, raw, headers = await post(
        f"{base}/v1/audio/speech", {"model": "tts-1", "input": "hi", "voice": "a"}, auth
    )
    assert headers["content-type"] == "audio/mpeg" and raw.startswith(b"ID3")
    body = {"model": "rerank-v3.5", "query": "q", "documents": ["a"] * 101}
    _, raw, _ = await post(f"{base}/v1/rerank", body, auth)
    assert orjson.loads(raw)["meta"]["billed_units"]["search_units"] == 2
