"""OpenAI Responses <-> the pivot (OpenAI chat), for Responses clients of Anthropic and Gemini
channels: requests, whole responses and the Responses event stream."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.pricing.model import Usage
from tollway.providers import sse, translate
from tollway.providers.base import Shape
from tollway.providers.openai.responses_pivot import request_to_openai
from tollway.providers.openai.responses_surface import ResponsesWriter


def test_responses_request_to_chat() -> None:
    body = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "see"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                ],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r1"},
            {"type": "function_call_output", "call_id": "c2", "output": {"ok": True}},
            {"type": "reasoning", "summary": []},
            {"role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
        ],
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "f"},
        "max_output_tokens": 99,
        "text": {
            "format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}
        },
    }
    out = request_to_openai(body)
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert out["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AA"},
    }
    assert [c["id"] for c in out["messages"][2]["tool_calls"]] == ["c1", "c2"]  # one assistant turn
    assert out["messages"][4]["content"] == '{"ok":true}'
    assert out["messages"][5]["content"] == "done"
    assert [t["function"]["name"] for t in out["tools"]] == ["f"]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert out["max_tokens"] == 99
    assert out["response_format"]["json_schema"]["name"] == "x"
    assert request_to_openai({"model": "m", "input": "hi"})["messages"] == [{"role": "user", "content": "hi"}]


def test_pivot_to_a_whole_response() -> None:
    pivot = {
        "choices": [
            {
                "message": {
                    "content": "Hi",
                    "reasoning_content": "r",
                    "tool_calls": [{"id": "c9", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "length",
            }
        ]
    }
    usage = Usage(input_tokens=5, cache_read_tokens=5, output_tokens=3, reasoning_tokens=1)
    doc = orjson.loads(translate.response_from_pivot(Shape.OPENAI_RESPONSES, pivot, usage, "m"))
    assert doc["object"] == "response" and doc["status"] == "incomplete"
    assert [o["type"] for o in doc["output"]] == ["reasoning", "message", "function_call"]
    assert doc["output"][2]["call_id"] == "c9"
    assert doc["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 5},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 13,
    }


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [sse.parse(sse.data_of(b + b"\n\n")) for b in raw.split(b"\n\n") if b.strip()]


def test_responses_writer_emits_a_consistent_event_stream() -> None:
    writer = ResponsesWriter("m")
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    body = b"".join(writer.feed(c) for c in chunks)
    tail = writer.finish(Usage(input_tokens=2, output_tokens=4))
    events = _events(body + tail)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 2
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["content"][0]["text"] == "Hello"
    assert (done[1]["call_id"], done[1]["arguments"]) == ("c1", '{"a":1}')
    final = events[-1]
    assert (
        final["type"] == "response.completed"
        and [e["type"] for e in _events(tail)][-1] == "response.completed"
    )
    assert final["response"]["id"] == events[0]["response"]["id"]
    assert [o["type"] for o in final["response"]["output"]] == ["message", "function_call"]
    assert final["response"]["usage"]["output_tokens"] == 4


def test_a_responses_client_of_an_anthropic_channel_stream() -> None:
    stream = translate.surface_stream(
        Shape.OPENAI_RESPONSES, Shape.ANTHROPIC, model="m", client_wants_usage=True
    )
    out = stream.push(b"", {"type": "message_start", "message": {"usage": {}}})
    out += stream.push(
        b"", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Yo"}}
    )
    out += stream.push(b"", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}})
    tail = stream.tail(Usage(input_tokens=1, output_tokens=1))
    assert b"response.output_text.delta" in out and b"response.completed" not in out
    assert _events(tail)[-1]["type"] == "response.incomplete"
