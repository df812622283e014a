"""Surfaces: what each kind of client receives. Pass-through streams hold back exactly the
final events; translated streams are well-formed in the surface's own shape; usage rendered
for a surface normalises back to the same Usage; errors use the surface's envelope."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollway.errors import (
    AuthenticationFailed,
    InsufficientBalance,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    RateLimited,
    TollwayError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.anthropic import surface as anthropic_surface
from tollway.providers.base import Shape
from tollway.providers.gemini import surface as gemini_surface
from tollway.providers.openai import surface as openai_surface
from tollway.providers.openai.channel import DONE
from tollway.providers.translate import surface_stream
from tollway.relay.envelopes import render_error, surface_of_path

USAGE = Usage(
    input_tokens=10,
    cache_read_tokens=20,
    cache_write_5m_tokens=30,
    cache_write_1h_tokens=40,
    output_tokens=50,
    reasoning_tokens=5,
)


def events(raw: bytes) -> list[tuple[str | None, Any]]:
    out = []
    for block in raw.split(b"\n\n"):
        if not block.strip():
            continue
        name = None
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
        out.append((name, sse.parse(sse.data_of(block + b"\n\n"))))
    return out


# --------------------------------------------------------------------------- usage rendering


def test_rendered_usage_normalises_back_to_itself() -> None:
    assert normalize.from_anthropic(anthropic_surface.render_usage(USAGE)) == Usage(
        input_tokens=10,
        cache_read_tokens=20,
        cache_write_5m_tokens=30,
        cache_write_1h_tokens=40,
        output_tokens=50,
    )
    openai = normalize.from_openai_chat(openai_surface.render_usage(USAGE))
    assert (openai.prompt_tokens, openai.cache_read_tokens, openai.output_tokens) == (100, 20, 50)
    assert openai.reasoning_tokens == 5
    no_writes = Usage(input_tokens=10, cache_read_tokens=20, output_tokens=50, reasoning_tokens=5)
    assert normalize.from_gemini(gemini_surface.render_usage(no_writes)) == no_writes


# --------------------------------------------------------------------------- pass-through


def test_openai_passthrough_holds_usage_chunk_and_done() -> None:
    gate = surface_stream(Shape.OPENAI_CHAT, Shape.OPENAI_CHAT, model="m", client_wants_usage=True)
    content = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":1}}\n\n'
    assert gate.push(content, orjson.loads(content[6:])) == content
    assert gate.push(usage, orjson.loads(usage[6:])) == b""
    assert gate.push(b"data: [DONE]\n\n", DONE) == b""
    assert gate.tail(USAGE) == usage + b"data: [DONE]\n\n"
    quiet = surface_stream(Shape.OPENAI_CHAT, Shape.OPENAI_CHAT, model="m", client_wants_usage=False)
    quiet.push(usage, orjson.loads(usage[6:]))
    assert quiet.tail(USAGE) == b"data: [DONE]\n\n"


def test_anthropic_passthrough_holds_the_last_message_delta_and_message_stop() -> None:
    gate = surface_stream(Shape.ANTHROPIC, Shape.ANTHROPIC, model="m", client_wants_usage=True)

    def ev(kind: str) -> tuple[bytes, dict[str, Any]]:
        doc = {"type": kind}
        return sse.named_event(kind, doc), doc

    delta1, stop = ev("message_delta"), ev("message_stop")
    ping = ev("ping")
    assert gate.push(*ev("message_start")) != b""
    assert gate.push(*delta1) == b""
    # a delta followed by another event was not the last: released with it
    assert gate.push(*ping) == delta1[0] + ping[0]
    assert gate.push(*delta1) == b"" and gate.push(*stop) == b""
    assert gate.tail(USAGE) == delta1[0] + stop[0]


def test_gemini_passthrough_holds_the_finishing_chunk() -> None:
    gate = surface_stream(Shape.GEMINI, Shape.GEMINI, model="m", client_wants_usage=True)
    part = {"candidates": [{"content": {"parts": [{"text": "a"}]}}]}
    final = {"candidates": [{"content": {"parts": []}, "finishReason": "STOP"}], "usageMetadata": {}}
    assert gate.push(sse.data_event(part), part) == sse.data_event(part)
    assert gate.push(sse.data_event(final), final) == b""
    assert gate.tail(USAGE) == sse.data_event(final)


# --------------------------------------------------------------------------- translated writers


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


PIVOT_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "think"}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
    chunk({}, "tool_calls"),
]


def test_anthropic_writer_emits_a_well_formed_message_stream() -> None:
    writer = anthropic_surface.AnthropicWriter("claude")
    body = b"".join(writer.feed(c) for c in PIVOT_STREAM)
    tail = writer.finish(USAGE)
    evs = events(body + tail)
    names = [n for n, _ in evs]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [d["content_block"]["type"] for n, d in evs if n == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert names.count("content_block_start") == names.count("content_block_stop")
    json_parts = "".join(
        d["delta"]["partial_json"]
        for n, d in evs
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert orjson.loads(json_parts) == {"a": 1}
    delta = next(d for n, d in evs if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 30,
        "ephemeral_1h_input_tokens": 40,
    }
    # only the final events are in the tail
    assert [n for n, _ in events(tail)] == ["message_delta", "message_stop"]


def test_anthropic_writer_with_no_content_still_starts_the_message() -> None:
    writer = anthropic_surface.AnthropicWriter("claude")
    names = [n for n, _ in events(writer.finish(USAGE))]
    assert names == ["message_start", "message_delta", "message_stop"]


def test_gemini_writer_sends_function_calls_and_usage_in_the_finishing_chunk() -> None:
    writer = gemini_surface.GeminiWriter("gemini")
    body = b"".join(writer.feed(c) for c in PIVOT_STREAM)
    docs = [d for _, d in events(body)]
    parts = [p for d in docs for p in d["candidates"][0]["content"]["parts"]]
    assert parts == [{"text": "think", "thought": True}, {"text": "Hel"}, {"text": "lo"}]
    assert all("finishReason" not in d["candidates"][0] for d in docs)
    (final,) = [d for _, d in events(writer.finish(USAGE))]
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert final["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "f", "args": {"a": 1}}}]
    assert final["usageMetadata"]["promptTokenCount"] == 100


def test_openai_writer_stamps_chunks_and_renders_usage_on_request() -> None:
    writer = openai_surface.OpenAIWriter("m", client_wants_usage=True)
    (doc,) = [d for _, d in events(writer.feed(chunk({"content": "x"})))]
    assert (doc["object"], doc["model"], doc["choices"][0]["delta"]) == (
        "chat.completion.chunk",
        "m",
        {"content": "x"},
    )
    tail = writer.finish(USAGE)
    assert tail.endswith(b"data: [DONE]\n\n")
    assert next(d for _, d in events(tail))["usage"]["prompt_tokens"] == 100
    assert openai_surface.OpenAIWriter("m", client_wants_usage=False).finish(USAGE) == b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- error envelopes

ERRORS: list[tuple[TollwayError, str, str]] = [
    (InvalidRequest("bad", param="x"), "invalid_request_error", "INVALID_ARGUMENT"),
    (AuthenticationFailed("no"), "authentication_error", "UNAUTHENTICATED"),
    (InsufficientBalance("poor", available_nano=1, required_nano=2), "billing_error", "FAILED_PRECONDITION"),
    (PermissionDenied("no"), "permission_error", "PERMISSION_DENIED"),
    (ModelNotFound("no"), "not_found_error", "NOT_FOUND"),
    (
        RateLimited(
            "slow", limit_name="requests per minute", scope="key", limit=1, remaining=0, retry_after_s=2
        ),
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    ),
    (UpstreamError("x"), "api_error", "UNAVAILABLE"),
    (UpstreamUnavailable("x"), "overloaded_error", "UNAVAILABLE"),
    (UpstreamTimeout("x"), "timeout_error", "DEADLINE_EXCEEDED"),
]


@pytest.mark.parametrize(
    ("exc", "anthropic_type", "gemini_status"), ERRORS, ids=[type(e[0]).__name__ for e in ERRORS]
)
def test_errors_in_each_surface_envelope(exc: TollwayError, anthropic_type: str, gemini_status: str) -> None:
    body, headers = render_error(Shape.ANTHROPIC, exc, "req_1")
    assert body["type"] == "error" and body["request_id"] == "req_1"
    assert body["error"]["type"] == anthropic_type
    assert body["error"]["message"].endswith("(request id: req_1)")
    assert (b"request-id", b"req_1") in headers and (b"x-request-id", b"req_1") in headers
    gbody, gheaders = render_error(Shape.GEMINI, exc, "req_1")
    assert (gbody["error"]["code"], gbody["error"]["status"]) == (exc.status, gemini_status)
    assert (b"x-request-id", b"req_1") in gheaders
    obody, _ = render_error(Shape.OPENAI_CHAT, exc, "req_1")
    assert obody["error"]["code"] == exc.code


def test_402_never_retried_and_429_with_retry_after_in_every_surface() -> None:
    poor = InsufficientBalance("poor", available_nano=1, required_nano=2)
    slow = RateLimited(
        "slow", limit_name="requests per minute", scope="key", limit=1, remaining=0, retry_after_s=2
    )
    for shape in Shape:
        assert (b"x-should-retry", b"false") in render_error(shape, poor, "r")[1]
        assert (b"retry-after", b"2") in render_error(shape, slow, "r")[1]


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/messages", Shape.ANTHROPIC),
        ("/v1/messages/count_tokens", Shape.ANTHROPIC),
        ("/v1beta/models/gemini-2.5-pro:generateContent", Shape.GEMINI),
        ("/v1/models/gemini-2.5-pro:streamGenerateContent", Shape.GEMINI),
        ("/v1/models", Shape.OPENAI_CHAT),
        ("/v1/chat/completions", Shape.OPENAI_CHAT),
    ],
)
def test_surface_of_path(path: str, shape: Shape) -> None:
    assert surface_of_path(path) is shape
