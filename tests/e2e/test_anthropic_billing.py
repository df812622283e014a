"""The Anthropic surface through an Anthropic channel, with the official ``anthropic`` SDK:
DESIGN.md §5's worked cases (there on Opus 4.5, here on Sonnet 4.5, a model the installed SDK
does not call deprecated) to the nano-credit, streaming and not.

Sonnet 4.5: $3 input, $3.75 5m cache write, $6 1h cache write, $0.30 cache read, $15 output
per MTok. Anthropic's ``input_tokens`` excludes cache reads and writes, and streamed
``message_delta`` usage is cumulative (the last value wins).
"""

from __future__ import annotations

from typing import Any

import pytest

from .stack import Stack, nano
from .surfaces import KEYS, Surfaces, provision_surfaces


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


TEN = 10_000_000_000
MODEL = "claude-sonnet-4-5"
MESSAGES: list[Any] = [{"role": "user", "content": "Summarise the attached document."}]


def _usage(inp: int, out: int, *, w5: int = 0, w1: int = 0, read: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": w5 + w1,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
        "output_tokens": out,
    }


CASES = {
    "5m-write": (_usage(10_000, 2_000, w5=100_000), 435_000_000),
    "1h-write": (_usage(10_000, 2_000, w1=100_000), 660_000_000),
    "cache-read": (_usage(10_000, 2_000, read=100_000), 90_000_000),
}


def _call(s: Surfaces, secret: str, stream: bool, fake: dict[str, Any], **kw: Any) -> tuple[str, Any]:
    """One Messages call; returns (request id, the final message the SDK assembled)."""
    kw.setdefault("messages", MESSAGES)
    with s.anthropic(secret) as client:
        if not stream:
            raw = client.messages.with_raw_response.create(
                model=kw.pop("model", MODEL), max_tokens=4096, extra_body={"fake": fake}, **kw
            )
            assert raw.headers["request-id"] == raw.headers["x-request-id"]
            return raw.headers["request-id"], raw.parse()
        with client.messages.stream(
            model=kw.pop("model", MODEL), max_tokens=4096, extra_body={"fake": fake}, **kw
        ) as st:
            message = st.get_final_message()
            return st.response.headers["request-id"], message


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", list(CASES))
def test_sonnet_worked_cases_bill_to_the_nano_credit(surfaces: Surfaces, case: str, stream: bool) -> None:
    usage, expected = CASES[case]
    c = surfaces.customer("anth")
    trace_id, message = _call(surfaces, c.secret, stream, {"native_usage": usage})
    assert message.content[0].text == "The quick brown fox jumps over the lazy"
    # The client sees Anthropic's own usage, as upstream reported it.
    assert message.usage.input_tokens == 10_000
    assert message.usage.output_tokens == 2_000
    rec = surfaces.usage(trace_id)
    assert rec["deduction_nano"] == expected
    assert rec["tokens"]["input"] == 10_000
    assert rec["tokens"]["output"] == 2_000
    assert rec["tokens"]["cache_write_5m"] == usage["cache_creation"]["ephemeral_5m_input_tokens"]
    assert rec["tokens"]["cache_write_1h"] == usage["cache_creation"]["ephemeral_1h_input_tokens"]
    assert rec["tokens"]["cache_read"] == usage["cache_read_input_tokens"]
    assert (rec["endpoint"], rec["stream"], rec["estimated"]) == ("messages", stream, False)
    assert surfaces.stack.balance(c.account_id)["cash_nano"] == TEN - expected


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_group_multiplier_applies_to_the_anthropic_surface(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("ax03")
    trace_id, _ = _call(surfaces, c.secret, stream, {"native_usage": CASES["5m-write"][0]})
    assert surfaces.usage(trace_id)["deduction_nano"] == 130_500_000  # $0.435 x 0.3


def test_cumulative_message_delta_usage_bills_the_last_value(surfaces: Surfaces) -> None:
    """message_delta events carry output 10, 50, 200 (cumulative): 200 tokens, never 260."""
    c = surfaces.customer("anth")
    start = _usage(1_000, 1)
    steps = [{"output_tokens": 10}, {"output_tokens": 50}, {"output_tokens": 200}]
    trace_id, message = _call(surfaces, c.secret, True, {"native_usage": start, "usage_steps": steps})
    assert message.usage.output_tokens == 200
    rec = surfaces.usage(trace_id)
    assert (rec["tokens"]["input"], rec["tokens"]["output"]) == (1_000, 200)
    assert rec["deduction_nano"] == nano((1_000, "3"), (200, "15")) == 6_000_000


def test_raw_stream_relays_every_event_type_with_the_final_events_last(surfaces: Surfaces) -> None:
    """Pass-through: the client gets upstream's events unchanged (ping, thinking and text
    blocks), with the cumulative message_deltas and message_stop at the end."""
    c = surfaces.customer("anth")
    steps = [{"output_tokens": 10}, {"output_tokens": 50}]
    fake = {"native_usage": _usage(100, 1), "usage_steps": steps, "thinking": "Let me think.", "chunks": 3}
    with (
        surfaces.anthropic(c.secret) as client,
        client.messages.with_streaming_response.create(
            model=MODEL, max_tokens=100, messages=MESSAGES, stream=True, extra_body={"fake": fake}
        ) as resp,
    ):
        raw = resp.read().decode()
    kinds = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
    assert kinds[:2] == ["message_start", "ping"]
    assert "thinking_delta" in raw and "Let me think." in raw
    assert kinds[-3:] == ["message_delta", "message_delta", "message_stop"]
    assert raw.count("text_delta") == 3


def test_upstream_gets_the_channel_key_and_the_client_anthropic_headers(surfaces: Surfaces) -> None:
    c = surfaces.customer("anth")
    tag = f"tag-{c.key_id}"
    with surfaces.anthropic(
        c.secret, default_headers={"anthropic-beta": "extended-cache-ttl-2025-04-11"}
    ) as client:
        client.messages.create(
            model=MODEL, max_tokens=64, messages=MESSAGES, extra_body={"fake": {"tag": tag}}
        )
    (req,) = surfaces.fake_requests(tag)
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert req["path"] == "/v1/messages"
    assert headers["x-api-key"] == KEYS["anth-native"]
    assert headers["anthropic-version"] == client.default_headers["anthropic-version"]  # forwarded
    assert headers["anthropic-beta"] == "extended-cache-ttl-2025-04-11"
    assert "authorization" not in headers
    assert req["body"]["max_tokens"] == 64


def test_count_tokens_is_answered_and_not_billed(surfaces: Surfaces) -> None:
    c = surfaces.customer("anth")
    with surfaces.anthropic(c.secret) as client:
        counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens > 0
    bal = surfaces.stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (TEN, 0)
    assert surfaces.stack.p.usage_list(c.account_id) == []
