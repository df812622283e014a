"""The Responses API through Anthropic and Gemini channels, with the official ``openai`` SDK:
the request is translated through the pivot, the answer comes back as a Responses object or
Responses events (``response.completed`` last, with the usage), billed from the channel's
own usage semantics."""

from __future__ import annotations

from typing import Any

import pytest

from .stack import Stack, nano
from .surfaces import Surfaces, marker, provision_surfaces

ANTHROPIC_USAGE = {"input_tokens": 10_000, "cache_read_input_tokens": 100_000, "output_tokens": 2_000}
GEMINI_USAGE = {"promptTokenCount": 11_500, "cachedContentTokenCount": 10_000, "candidatesTokenCount": 1_000}


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


def _create(s: Surfaces, secret: str, stream: bool, **kw: Any) -> tuple[str, Any, list[str]]:
    """(request id, the final response, the event types seen when streaming)."""
    with s.stack.client(secret) as client:
        if not stream:
            raw = client.responses.with_raw_response.create(**kw)
            return raw.headers["x-request-id"], raw.parse(), []
        events = client.responses.create(stream=True, **kw)
        kinds, final = [], None
        for event in events:
            kinds.append(event.type)
            if event.type in ("response.completed", "response.incomplete"):
                final = event.response
        return events.response.headers["x-request-id"], final, kinds


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("group", "model", "usage", "expected"),
    [
        ("anth", "claude-opus-4-5", ANTHROPIC_USAGE, 150_000_000),
        ("x1", "gemini-2.5-pro", GEMINI_USAGE, nano((1_500, "1.25"), (10_000, "0.125"), (1_000, "10"))),
    ],
    ids=["anthropic-channel", "gemini-channel"],
)
def test_responses_text_through_other_channels(
    surfaces: Surfaces, stream: bool, group: str, model: str, usage: dict[str, int], expected: int
) -> None:
    c = surfaces.customer(group)
    trace_id, final, kinds = _create(
        surfaces,
        c.secret,
        stream,
        model=model,
        instructions="Be brief.",
        input="Tell me a story " + marker(native_usage=usage),
    )
    assert final is not None and final.output_text == "The quick brown fox jumps over the lazy"
    assert final.status == "completed"
    assert final.usage.input_tokens == (110_000 if group == "anth" else 11_500)
    if stream:
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "response.output_text.delta" in kinds
    (rec,) = surfaces.stack.p.usage_list(c.account_id)
    assert rec["trace_id"] == trace_id
    assert (rec["endpoint"], rec["deduction_nano"]) == ("responses", expected)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_function_calls_through_an_anthropic_channel(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("anth")
    tag = f"rt-{c.key_id}-{stream}"
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    history: list[Any] = [
        {"role": "user", "content": f"find {tag}"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q":"a"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "nothing"},
        {"role": "user", "content": "again " + marker(tool_call={"name": "lookup", "arguments": {"q": "b"}})},
    ]
    _, final, _ = _create(surfaces, c.secret, stream, model="claude-opus-4-5", input=history, tools=[tool])
    (call,) = [o for o in final.output if o.type == "function_call"]
    assert (call.name, call.arguments) == ("lookup", '{"q":"b"}')
    (req,) = [r for r in surfaces.fake_requests(tag) if r["path"] == "/v1/messages"]
    sent = req["body"]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "lookup",
        "input": {"q": "a"},
    }
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"
    assert sent["tools"][0]["name"] == "lookup"
