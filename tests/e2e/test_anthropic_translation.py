"""Translation both ways between the Anthropic and OpenAI chat shapes, with the official SDKs.

* A Claude Code-style request (Anthropic shape, streaming, tools, cached system prompt) served
  by an OpenAI-compatible channel: the client gets Anthropic events (tool_use blocks, usage)
  and is billed once, from OpenAI's usage semantics.
* An OpenAI SDK request served by an Anthropic channel: the client gets OpenAI chunks and is
  billed once, from Anthropic's usage semantics.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .stack import Stack, nano
from .surfaces import KEYS, Surfaces, marker, provision_surfaces


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


TEN = 10_000_000_000
SONNET_CACHE_READ = 90_000_000  # input 10,000 + cache read 100,000 + output 2,000 on Sonnet 4.5

TOOLS: list[dict[str, Any]] = [
    {
        "name": "Read",
        "description": "Read a file from the local filesystem.",
        "input_schema": {
            "type": "object",
            "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["file_path"],
        },
    },
    {
        "name": "Bash",
        "description": "Run a shell command.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
]


def _claude_code_request(tag: str, scenario: dict[str, Any]) -> dict[str, Any]:
    """What Claude Code sends: system blocks with cache_control, tools, a tool round trip."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32_000,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": f"Project notes {tag}", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What does setup.py do?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "setup.py\nsrc"},
                    {"type": "text", "text": marker(**scenario)},
                ],
            },
        ],
    }


OPENAI_USAGE = {
    "prompt_tokens": 110_000,
    "completion_tokens": 2_000,
    "prompt_tokens_details": {"cached_tokens": 100_000},
}


def test_claude_code_stream_with_tools_through_an_openai_channel(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")  # claude-sonnet-4-5 is served by the OpenAI-compatible "main"
    tag = f"cc-{c.key_id}"
    scenario = {
        "tool_call": {"name": "Read", "arguments": {"file_path": "/repo/setup.py"}},
        "native_usage": OPENAI_USAGE,
    }
    body = _claude_code_request(tag, scenario)
    with (
        surfaces.anthropic(c.secret) as client,
        client.messages.stream(**body, extra_headers={"anthropic-beta": "claude-code-20250219"}) as st,
    ):
        events = [e.type for e in st]
        message = st.get_final_message()
        trace_id = st.response.headers["request-id"]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    (block,) = [b for b in message.content if b.type == "tool_use"]
    assert (block.name, block.input) == ("Read", {"file_path": "/repo/setup.py"})
    assert message.stop_reason == "tool_use"
    # Usage in Anthropic's semantics, from OpenAI's: input excludes the cached prefix.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (10_000, 100_000)
    assert message.usage.output_tokens == 2_000
    # Upstream got an OpenAI chat request.
    (req,) = surfaces.fake_requests(tag)
    assert req["path"] == "/v1/chat/completions"
    sent = req["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 32_000
    assert [t["function"]["name"] for t in sent["tools"]] == ["Read", "Bash"]
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["file_path"]
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert sent["messages"][0]["content"] == [  # two system blocks, two text parts
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": f"Project notes {tag}"},
    ]
    assert sent["messages"][2]["tool_calls"][0]["function"] == {
        "name": "Bash",
        "arguments": '{"command":"ls"}',
    }
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "toolu_01", "content": "setup.py\nsrc"}
    # Billed once, from the upstream's (OpenAI) usage: cached tokens are a subset of the prompt.
    records = surfaces.stack.p.usage_list(c.account_id)
    assert [r["trace_id"] for r in records] == [trace_id]
    rec = records[0]
    assert (rec["tokens"]["input"], rec["tokens"]["cache_read"], rec["tokens"]["output"]) == (
        10_000,
        100_000,
        2_000,
    )
    assert rec["deduction_nano"] == SONNET_CACHE_READ
    assert rec["channel_id"] == surfaces.stack.channels["main"]["id"]
    assert surfaces.stack.balance(c.account_id)["cash_nano"] == TEN - SONNET_CACHE_READ


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_text_through_an_openai_channel(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("x1")
    content = "Say hello. " + marker(native_usage=OPENAI_USAGE)
    with surfaces.anthropic(c.secret) as client:
        kw: dict[str, Any] = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": content}],
        }
        if stream:
            with client.messages.stream(**kw) as st:
                text = "".join(st.text_stream)
                message = st.get_final_message()
                trace_id = st.response.headers["request-id"]
        else:
            raw = client.messages.with_raw_response.create(**kw)
            message, trace_id = raw.parse(), raw.headers["request-id"]
            text = message.content[0].text
    assert text == "The quick brown fox jumps over the lazy"
    assert message.stop_reason == "end_turn"
    assert message.usage.cache_read_input_tokens == 100_000
    assert surfaces.usage(trace_id)["deduction_nano"] == SONNET_CACHE_READ


ANTHROPIC_USAGE = {"input_tokens": 10_000, "cache_read_input_tokens": 100_000, "output_tokens": 2_000}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_openai_sdk_through_an_anthropic_channel(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("anth")  # claude-sonnet-4-5 goes to the Anthropic channel
    tag = f"oa-{c.key_id}-{stream}"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Hello {tag} " + marker(native_usage=ANTHROPIC_USAGE)},
    ]
    async with surfaces.stack.aclient(c.secret) as client:
        if stream:
            s = await client.chat.completions.create(
                model="claude-sonnet-4-5",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            trace_id = s.response.headers["x-request-id"]
            chunks = [chunk async for chunk in s]
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            finish = [
                ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason
            ]
            usage = chunks[-1].usage
            assert chunks[-1].choices == []
        else:
            raw = await client.chat.completions.with_raw_response.create(
                model="claude-sonnet-4-5", messages=messages
            )
            resp, trace_id = raw.parse(), raw.headers["x-request-id"]
            text, finish, usage = resp.choices[0].message.content, [resp.choices[0].finish_reason], resp.usage
    assert text == "The quick brown fox jumps over the lazy"
    assert finish == ["stop"]
    # OpenAI's semantics, from Anthropic's: the prompt includes the cached tokens.
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens) == (
        110_000,
        100_000,
        2_000,
    )
    (req,) = surfaces.fake_requests(tag)
    assert req["path"] == "/v1/messages"
    assert {k.lower(): v for k, v in req["headers"].items()}["x-api-key"] == KEYS["anth-native"]
    sent = req["body"]
    assert sent["system"] == "Be brief."
    assert sent["max_tokens"] == 64_000  # no cap from the client: the model's maximum
    assert sent.get("stream", False) is stream
    records = surfaces.stack.p.usage_list(c.account_id)
    assert [r["trace_id"] for r in records] == [trace_id]
    assert records[0]["deduction_nano"] == SONNET_CACHE_READ
    assert records[0]["tokens"]["cache_read"] == 100_000


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_tool_calls_through_an_anthropic_channel(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("anth")
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
    scenario = {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    messages = [{"role": "user", "content": "Weather in Paris? " + marker(**scenario)}]
    with surfaces.stack.client(c.secret) as client:
        kw: dict[str, Any] = {
            "model": "claude-sonnet-4-5",
            "messages": messages,
            "tools": tools,
            "max_tokens": 500,
        }
        if stream:
            name, args, finish = "", "", None
            for chunk in client.chat.completions.create(**kw, stream=True):
                for choice in chunk.choices:
                    for call in choice.delta.tool_calls or ():
                        name += call.function.name or ""
                        args += call.function.arguments or ""
                    finish = choice.finish_reason or finish
        else:
            resp = client.chat.completions.create(**kw)
            call = resp.choices[0].message.tool_calls[0]
            name, args, finish = call.function.name, call.function.arguments, resp.choices[0].finish_reason
    assert (name, json.loads(args), finish) == ("get_weather", {"city": "Paris"}, "tool_calls")
    bal = surfaces.stack.balance(c.account_id)
    assert bal["held_nano"] == 0 and bal["cash_nano"] < TEN
    assert len(surfaces.stack.p.usage_list(c.account_id)) == 1


def test_translated_cut_stream_is_billed_once_as_estimated(surfaces: Surfaces) -> None:
    """An Anthropic client on an OpenAI channel whose stream is cut: the client gets the text
    received and an error event; the call is billed once, estimated."""
    import anthropic

    c = surfaces.customer("x1")
    content = "Hi " + marker(cut_after=3, chunk_interval_ms=20)
    text = ""
    messages = [{"role": "user", "content": content}]
    with (
        surfaces.anthropic(c.secret) as client,
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=messages) as st,
    ):
        trace_id = st.response.headers["request-id"]
        for piece in st.text_stream:
            text += piece
    assert text == "The quick brown"
    assert trace_id in str(info.value)
    rec = surfaces.usage(trace_id)
    assert (rec["status"], rec["estimated"]) == ("upstream_cut", True)
    assert rec["tokens"]["output"] == 4  # ceil(15 ASCII characters / 4)
    assert rec["deduction_nano"] == nano((rec["tokens"]["input"], "3"), (4, "15"))
    surfaces.stack.audit_ok()
