"""The OpenAI Responses API (``/v1/responses``) with the official ``openai`` SDK, streaming and
not: passed through to an OpenAI-compatible channel and billed from the Responses usage
(cached tokens a subset of ``input_tokens``, reasoning a subset of ``output_tokens``)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from .calls import tag
from .stack import Stack, assert_request_id_error, http_json, nano

TEN = 10_000_000_000
USAGE = {
    "input_tokens": 12_000,
    "input_tokens_details": {"cached_tokens": 10_000},
    "output_tokens": 3_000,
    "output_tokens_details": {"reasoning_tokens": 2_000},
    "total_tokens": 15_000,
}
# gpt-4o: $2.50 input, $1.25 cached input, $10 output per MTok
EXPECTED = nano((2_000, "2.50"), (10_000, "1.25"), (3_000, "10"))


def _fake(t: str, **kw: Any) -> dict[str, Any]:
    return {"fake": {"tag": t, **kw}}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_are_billed_from_their_usage(stack: Stack, stream: bool) -> None:
    c = stack.customer(group="x1")
    t = tag()
    with stack.client(c.secret) as client:
        if stream:
            events = client.responses.create(
                model="gpt-4o", input="Tell me a story", stream=True, extra_body=_fake(t, native_usage=USAGE)
            )
            trace_id = events.response.headers["x-request-id"]
            deltas, final = [], None
            for event in events:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
                elif event.type == "response.completed":
                    final = event.response
            assert final is not None and "".join(deltas) == final.output_text
        else:
            raw = client.responses.with_raw_response.create(
                model="gpt-4o", input="Tell me a story", extra_body=_fake(t, native_usage=USAGE)
            )
            final, trace_id = raw.parse(), raw.headers["x-request-id"]
    assert final.output_text == "The quick brown fox jumps over the lazy"
    assert final.usage is not None and final.usage.input_tokens == 12_000
    (req,) = stack.fake_requests(t)
    assert req["path"] == "/v1/responses"
    rec = stack.usage(trace_id)
    assert (rec["tokens"]["input"], rec["tokens"]["cache_read"], rec["tokens"]["output"]) == (
        2_000,
        10_000,
        3_000,
    )
    assert rec["tokens"]["reasoning"] == 2_000
    assert (rec["endpoint"], rec["stream"], rec["deduction_nano"]) == ("responses", stream, EXPECTED)
    assert stack.balance(c.account_id)["cash_nano"] == TEN - EXPECTED


def test_responses_stream_ends_with_response_completed_after_settlement(stack: Stack) -> None:
    c = stack.customer(group="x1")
    with stack.client(c.secret) as client:
        events = list(
            client.responses.create(model="gpt-4o", input="hi", stream=True, extra_body=_fake(tag()))
        )
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage is not None


def test_responses_function_call(stack: Stack) -> None:
    c = stack.customer(group="x1")
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    scenario = {"tool_call": {"name": "lookup", "arguments": {"q": "tollway"}}}
    with stack.client(c.secret) as client:
        resp = client.responses.create(
            model="gpt-4o", input="find it", tools=[tool], extra_body=_fake(tag(), **scenario)
        )  # type: ignore[list-item]
    (call,) = [o for o in resp.output if o.type == "function_call"]
    assert (call.name, call.arguments) == ("lookup", '{"q":"tollway"}')


def test_responses_cut_stream_is_billed_once_as_estimated(stack: Stack) -> None:
    c = stack.customer(group="x1")
    text = ""
    with stack.client(c.secret) as client, pytest.raises(openai.APIError):
        s = client.responses.create(
            model="gpt-4o",
            input="hi",
            stream=True,
            extra_body=_fake(tag(), cut_after=3, chunk_interval_ms=20),
        )
        for event in s:
            if event.type == "response.output_text.delta":
                text += event.delta
    assert text == "The quick brown"
    (rec,) = stack.p.usage_list(c.account_id)
    assert (rec["status"], rec["estimated"], rec["tokens"]["output"]) == ("upstream_cut", True, 4)
    stack.audit_ok()


def test_responses_errors_in_the_openai_envelope(stack: Stack) -> None:
    poor = stack.customer(group="x1", credit="0.0001")
    with stack.client(poor.secret) as client, pytest.raises(openai.APIStatusError) as info:
        client.responses.create(model="gpt-4o", input="hi", max_output_tokens=4000)
    assert_request_id_error(info.value, 402)
    assert info.value.code == "insufficient_balance"
    c = stack.customer(group="x1")
    status, _, doc = http_json(
        "POST",
        f"{stack.url}/v1/responses",
        {"model": "gpt-4o"},
        headers={"authorization": f"Bearer {c.secret}"},
    )
    assert status == 400 and doc["error"]["param"] == "input"
