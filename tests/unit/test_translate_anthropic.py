"""Anthropic Messages <-> OpenAI chat (the pivot): requests, whole responses, stream events."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.pricing.model import Usage
from tollway.providers import translate
from tollway.providers.anthropic.from_pivot import request_from_openai
from tollway.providers.anthropic.to_pivot import StreamToOpenAI, request_to_openai, response_to_openai
from tollway.providers.base import Shape

CLAUDE_CODE: dict[str, Any] = {
    "model": "claude-opus-4-5",
    "max_tokens": 1000,
    "system": [
        {"type": "text", "text": "You are helpful."},
        {"type": "text", "text": " Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ],
    "messages": [
        {"role": "user", "content": "Look at this"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Running."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {"path": "a"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "a b"}],
                },
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                {"type": "text", "text": "and this image"},
            ],
        },
    ],
    "tools": [
        {"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {}}},
        {"type": "web_search_20250305", "name": "web_search"},
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.2,
    "metadata": {"user_id": "u-1"},
    "stream": True,
}


def test_anthropic_request_to_openai() -> None:
    out = request_to_openai(CLAUDE_CODE)
    msgs = out["messages"]
    assert msgs[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You are helpful."}, {"type": "text", "text": " Be brief."}],
    }
    assert msgs[1] == {"role": "user", "content": "Look at this"}
    assert msgs[2]["content"] == "Running."
    assert [c["function"]["name"] for c in msgs[2]["tool_calls"]] == ["Bash", "Read"]
    assert msgs[2]["tool_calls"][0]["function"]["arguments"] == '{"command":"ls"}'
    assert msgs[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a b"}
    assert msgs[4] == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"}
    assert msgs[5]["role"] == "user"
    assert msgs[5]["content"][0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
    # custom tools only: a server tool has no OpenAI equivalent
    assert [t["function"]["name"] for t in out["tools"]] == ["Bash"]
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert (out["stop"], out["temperature"], out["user"], out["max_tokens"]) == (["END"], 0.2, "u-1", 1000)


def test_openai_request_to_anthropic() -> None:
    pivot = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "S1"},
            {"role": "developer", "content": [{"type": "text", "text": "S2"}]},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "r1"},
            {"role": "tool", "tool_call_id": "c2", "content": "r2"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "temperature": 1.7,
        "stop": "END",
        "max_completion_tokens": 50,
    }
    out = translate.request_from_pivot(Shape.ANTHROPIC, pivot, model="claude", stream=True, max_output=999)
    assert out["system"] == [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}]
    assert out["max_tokens"] == 50 and out["stream"] is True and out["model"] == "claude"
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "user"]  # consecutive turns merged
    assert out["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "url", "url": "https://x/y.png"},
    }
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}}]
    assert [b["tool_use_id"] for b in out["messages"][2]["content"]] == ["c1", "c2"]
    assert out["tools"] == [{"name": "f", "description": "", "input_schema": {"type": "object"}}]
    assert out["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}
    assert (out["temperature"], out["stop_sequences"]) == (1, ["END"])


def test_anthropic_max_tokens_defaults_to_the_hold_maximum() -> None:
    out = request_from_openai(
        {"messages": [{"role": "user", "content": "x"}]}, model="m", stream=False, max_tokens=64000
    )
    assert out["max_tokens"] == 64000 and "stream" not in out


def test_round_trip_keeps_the_conversation() -> None:
    pivot = request_to_openai(CLAUDE_CODE)
    back = request_from_openai(pivot, model="claude-opus-4-5", stream=True, max_tokens=1000)
    assert back["system"] == [
        {"type": "text", "text": "You are helpful."},
        {"type": "text", "text": " Be brief."},
    ]
    kinds = [[b["type"] for b in m["content"]] for m in back["messages"]]
    assert kinds == [
        ["text"],
        ["text", "tool_use", "tool_use"],
        ["tool_result", "tool_result", "image", "text"],
    ]
    assert back["messages"][1]["content"][1]["input"] == {"command": "ls"}


def test_anthropic_response_to_openai_and_back() -> None:
    doc = {
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"x": [1]}},
        ],
        "stop_reason": "tool_use",
    }
    pivot = response_to_openai(doc)
    message = pivot["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("Calling.", "hmm")
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x":[1]}'}
    assert pivot["choices"][0]["finish_reason"] == "tool_calls"
    usage = Usage(input_tokens=1, output_tokens=2)
    back = orjson.loads(translate.response_from_pivot(Shape.ANTHROPIC, pivot, usage, "claude"))
    assert [b["type"] for b in back["content"]] == ["thinking", "text", "tool_use"]
    assert back["content"][2]["input"] == {"x": [1]} and back["stop_reason"] == "tool_use"
    assert back["usage"]["output_tokens"] == 2
    as_openai = orjson.loads(translate.response_from_pivot(Shape.OPENAI_CHAT, pivot, usage, "claude"))
    assert as_openai["object"] == "chat.completion" and as_openai["usage"]["total_tokens"] == 3


def test_anthropic_stream_events_to_openai_chunks() -> None:
    reader = StreamToOpenAI()
    evs: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "t1", "name": "f"},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]
    deltas = [c["choices"][0] for e in evs for c in reader.read(e)]
    assert deltas[0]["delta"] == {"role": "assistant", "content": ""}
    assert deltas[1]["delta"] == {"reasoning_content": "hm"}
    assert deltas[2]["delta"] == {"content": "Hi"}
    assert deltas[3]["delta"]["tool_calls"][0] == {
        "index": 0,
        "id": "t1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    args = "".join(d["delta"]["tool_calls"][0]["function"]["arguments"] for d in deltas[4:6])
    assert args == '{"a":1}'
    assert deltas[-1]["finish_reason"] == "tool_calls"


def test_translated_stream_composes_reader_and_writer() -> None:
    stream = translate.surface_stream(
        Shape.OPENAI_CHAT, Shape.ANTHROPIC, model="claude", client_wants_usage=True
    )
    start = {"type": "message_start", "message": {"usage": {}}}
    text = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Yo"}}
    out = stream.push(b"", start) + stream.push(b"", text)
    assert b'"content":"Yo"' in out and b"chat.completion.chunk" in out
    assert stream.push(b"", {"type": "ping"}) == b""
    assert stream.tail(Usage(input_tokens=1)).endswith(b"data: [DONE]\n\n")
