"""Dropped streams, upstream failures and failover, with the ledger audit as the oracle.

* upstream cuts a stream: billed once, for the input estimate plus the output received,
  marked estimated with status ``upstream_cut``; the client sees the chunks, then an error;
* the client leaves a stream: Tollway stops the upstream call and bills what was produced;
* upstream fails before any output (5xx, overload, first-byte timeout): nothing is charged;
* the preferred channel fails: the next one serves the call, billed once.
"""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from .calls import MESSAGES, MESSAGES_EXPECTED_TOKENS, chat, fake, tag
from .provision import CHANNEL_KEYS, FAILOVER_MODEL
from .stack import Stack, assert_request_id_error, nano, poll

TEN_CREDITS = 10_000_000_000


# ------------------------------------------------------------------ upstream cuts the stream


async def _stream_until_error(
    stack: Stack, secret: str, mode: str, extra: dict[str, Any]
) -> tuple[str, list[str], openai.APIError | None]:
    """Stream a chat; returns (trace id, content pieces received, the error that ended the
    stream, or None if it ended normally). An error before the stream started counts too."""
    received: list[str] = []
    trace_id = ""
    kw: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    try:
        if mode == "sync":
            with stack.client(secret) as client:
                s = client.chat.completions.create(**kw, extra_body=extra)
                trace_id = s.response.headers["x-request-id"]
                for chunk in s:
                    received += [ch.delta.content for ch in chunk.choices if ch.delta.content]
        else:
            async with stack.aclient(secret) as aclient:
                a = await aclient.chat.completions.create(**kw, extra_body=extra)
                trace_id = a.response.headers["x-request-id"]
                async for chunk in a:
                    received += [ch.delta.content for ch in chunk.choices if ch.delta.content]
    except openai.APIStatusError as exc:
        return exc.response.headers["x-request-id"], received, exc
    except openai.APIError as exc:
        return trace_id, received, exc
    return trace_id, received, None


def _estimated_output_tokens(text: str) -> int:
    """Tollway's documented count for output whose usage never arrived: ceil(ASCII / 4)."""
    return -(-len(text) // 4)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_upstream_cut_is_billed_once_for_what_was_received(stack: Stack, mode: str) -> None:
    c = stack.customer(group="x1")
    # The role chunk and 3 content chunks 100 ms apart, then upstream closes the socket.
    extra = fake(cut_after=3, chunk_interval_ms=100)
    trace_id, received, exc = await _stream_until_error(stack, c.secret, mode, extra)
    # The client got the chunks (at least the two that arrived well before the cut; the
    # third races the close: see test_upstream_cut_loses_no_output_sent_before_the_cut),
    # then an error event naming the request.
    assert received in (["The", " quick"], ["The", " quick", " brown"]), received
    assert exc is not None, "the stream ended as if nothing had gone wrong"
    assert str(exc.message).rstrip(" .)").endswith(trace_id)
    # Billed once, estimated: 8 input tokens (the documented prompt heuristic) + the output
    # counted from the text received.
    out = _estimated_output_tokens("".join(received))
    expected = nano((MESSAGES_EXPECTED_TOKENS, "2.50"), (out, "10.00"))
    bal = stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (TEN_CREDITS - expected, 0)
    rec = stack.usage(trace_id)
    assert (rec["status"], rec["estimated"], rec["stream"]) == ("upstream_cut", True, True)
    assert (rec["tokens"]["input"], rec["tokens"]["output"]) == (MESSAGES_EXPECTED_TOKENS, out)
    assert rec["deduction_nano"] == expected > 0
    assert [r["trace_id"] for r in stack.p.usage_list(c.account_id)] == [trace_id]
    stack.audit_ok()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_upstream_cut_loses_no_output_sent_before_the_cut(stack: Stack, mode: str) -> None:
    """Upstream writes the role chunk and 3 content chunks and closes at once. Everything it
    sent must reach the client and the bill (4 output tokens for "The quick brown"), not be
    dropped because the close arrived in the same read as the data."""
    outcomes = []
    for _ in range(8):
        c = stack.customer(group="x1")
        trace_id, received, exc = await _stream_until_error(stack, c.secret, mode, fake(cut_after=3))
        rec = stack.usage(trace_id, wait=5)
        outcomes.append(
            (
                "".join(received),
                getattr(exc, "status_code", 200),
                rec["tokens"]["output"],
                rec["deduction_nano"],
                rec["status"],
            )
        )
    expected = ("The quick brown", 200, 4, nano((8, "2.50"), (4, "10.00")), "upstream_cut")
    assert all(o == expected for o in outcomes), outcomes


async def test_stream_cut_before_any_content_charges_nothing_and_says_so(stack: Stack) -> None:
    """Upstream sends its first (role-only) chunk and dies: no output, so no charge; the
    client must learn that the call failed (a 502, or an error event if the stream had
    started) rather than see an empty, normal-looking end. Repeated: the outcome depends
    on whether the role chunk reached Tollway before the close."""
    for _ in range(6):
        c = stack.customer(group="x1")
        trace_id, seen, exc = await _stream_until_error(stack, c.secret, "async", fake(cut_after=0))
        assert seen == []
        assert exc is not None, "the stream ended as if the (empty) completion had succeeded"
        assert str(exc.message).rstrip(" .)").endswith(trace_id)
        # A void is committed after the response; its record appears with it.
        rec = stack.usage(trace_id, wait=5)
        assert (rec["deduction_nano"], rec["status"]) == (0, "upstream_failed")
        bal = stack.balance(c.account_id)
        assert (bal["cash_nano"], bal["held_nano"]) == (TEN_CREDITS, 0)
    stack.audit_ok()


# ------------------------------------------------------------------ the client leaves


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_client_disconnect_stops_upstream_and_bills_what_was_produced(stack: Stack, mode: str) -> None:
    c = stack.customer(group="x1")
    before = stack.fake_stats()
    extra = fake(chunks=50, chunk_interval_ms=100)
    got = 0
    t0 = time.monotonic()
    if mode == "sync":
        with stack.client(c.secret) as client:
            s = client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, extra_body=extra
            )
            trace_id = s.response.headers["x-request-id"]
            for _chunk in s:
                got += 1
                if got == 2:
                    break
            s.close()
    else:
        async with stack.aclient(c.secret) as aclient:
            a = await aclient.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True, extra_body=extra
            )
            trace_id = a.response.headers["x-request-id"]
            async for _chunk in a:
                got += 1
                if got == 2:
                    break
            await a.close()
    assert got == 2
    # Tollway stopped the upstream call: the fake saw its client (Tollway) go away, long
    # before the 5 s the whole stream would take.
    poll(
        lambda: (
            stack.fake_stats()["streams_aborted_by_client"] == before["streams_aborted_by_client"] + 1 or None
        ),
        timeout=3,
        what="the fake to see the upstream call aborted",
    )
    assert time.monotonic() - t0 < 4.0
    stats = stack.fake_stats()
    assert stats["streams_completed"] == before["streams_completed"]
    rec = stack.usage(trace_id, wait=5)
    assert (rec["status"], rec["estimated"], rec["stream"]) == ("client_disconnected", True, True)
    out = rec["tokens"]["output"]
    # One or a few 100 ms chunks were produced before Tollway stopped upstream (the whole
    # stream would be ~63 tokens).
    assert 1 <= out <= 10, rec["tokens"]
    assert rec["tokens"]["input"] == MESSAGES_EXPECTED_TOKENS
    expected = nano((MESSAGES_EXPECTED_TOKENS, "2.50"), (out, "10.00"))
    assert rec["deduction_nano"] == expected > 0
    bal = stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (TEN_CREDITS - expected, 0)
    assert [r["trace_id"] for r in stack.p.usage_list(c.account_id)] == [trace_id]
    stack.audit_ok()


# ------------------------------------------------------------------ failures before output


@pytest.mark.parametrize(
    ("scenario", "stream", "status"),
    [
        ({"status": 500}, False, 502),
        ({"status": 500}, True, 502),
        ({"status": 503}, False, 503),
        ({"status": 429}, True, 503),
        ({"hang_ms": 3000}, True, 504),
    ],
    ids=["500", "500-stream", "503", "429-stream", "first-byte-timeout"],
)
async def test_upstream_failure_before_output_charges_nothing(
    stack: Stack, scenario: dict[str, int], stream: bool, status: int
) -> None:
    c = stack.customer(group="x1")
    t = tag()
    async with stack.aclient(c.secret) as aclient:
        with pytest.raises(openai.InternalServerError) as info:
            await aclient.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=stream, extra_body=fake(t, **scenario)
            )
    trace_id = assert_request_id_error(info.value, status)
    assert info.value.code in ("upstream_error", "overloaded_error", "upstream_timeout")
    assert len(stack.fake_requests(t)) == 1  # one channel serves gpt-4o: one attempt
    rec = stack.usage(trace_id, wait=5)  # a void commits after the response: poll for it
    assert (rec["deduction_nano"], rec["status"]) == (0, "upstream_failed")
    bal = stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (TEN_CREDITS, 0)
    stack.audit_ok()


# ------------------------------------------------------------------ failover


@pytest.mark.parametrize(
    ("stream", "fail_status"),
    [(False, 500), (True, 500), (False, 429)],
    ids=["500", "500-stream", "429"],
)
async def test_failover_to_the_next_channel_is_invisible_and_billed_once(
    stack: Stack, stream: bool, fail_status: int
) -> None:
    c = stack.customer(group="fo")
    t = tag()
    usage = {"prompt_tokens": 100_000, "completion_tokens": 10_000}
    extra = fake(t, usage=usage, fail_first={"key": t, "times": 1, "status": fail_status})
    r = await chat(stack, c.secret, "async", stream, model=FAILOVER_MODEL, extra_body=extra)
    assert r.text == "The quick brown fox jumps over the lazy"
    # The priority-10 channel was tried first and failed; the priority-5 one answered.
    auth = [req["headers"]["Authorization"] for req in stack.fake_requests(t)]
    assert auth == [f"Bearer {CHANNEL_KEYS['fo-primary']}", f"Bearer {CHANNEL_KEYS['fo-backup']}"]
    expected = nano((100_000, "2.00"), (10_000, "8.00"))  # gpt-4.1: $0.28
    assert expected == 280_000_000
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS - expected
    records = stack.p.usage_list(c.account_id)
    assert [r_["trace_id"] for r_ in records] == [r.trace_id]
    assert records[0]["channel_id"] == stack.channels["fo-backup"]["id"]
    assert records[0]["deduction_nano"] == expected
    stack.audit_ok()


async def test_every_channel_failing_is_a_502_and_charges_nothing(stack: Stack) -> None:
    c = stack.customer(group="fo")
    t = tag()
    extra = fake(t, fail_first={"key": t, "times": 2, "status": 500})
    async with stack.aclient(c.secret) as aclient:
        with pytest.raises(openai.InternalServerError) as info:
            await aclient.chat.completions.create(model=FAILOVER_MODEL, messages=MESSAGES, extra_body=extra)
    trace_id = assert_request_id_error(info.value, 502)
    assert len(stack.fake_requests(t)) == 2
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS
    assert stack.usage(trace_id, wait=5)["deduction_nano"] == 0


async def test_sdk_retry_after_a_502_is_a_new_call_billed_once(stack: Stack) -> None:
    """The SDK retries a 502 by itself; the retry is a new call with a new trace id, and
    only the call that produced output is charged."""
    c = stack.customer(group="x1")
    t = tag()
    extra = fake(
        t,
        usage={"prompt_tokens": 1_000, "completion_tokens": 0},
        fail_first={"key": t, "times": 1, "status": 500},
    )
    async with stack.aclient(c.secret, max_retries=2) as aclient:
        resp = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_body=extra)
    assert len(stack.fake_requests(t)) == 2
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS - 2_500_000
    # The failed attempt's record is written after its 502 went out: poll for it.
    records = poll(
        lambda: recs if len(recs := stack.p.usage_list(c.account_id)) == 2 else None,
        timeout=5,
        what="both usage records",
    )
    by_status = sorted((r["status"], r["deduction_nano"]) for r in records)
    assert by_status == [("ok", 2_500_000), ("upstream_failed", 0)]
    assert resp._request_id in {r["trace_id"] for r in records}


async def test_client_leaving_a_non_stream_call_stops_upstream_and_charges_nothing(
    stack: Stack,
) -> None:
    """DESIGN.md §7: a client that disconnects stops the upstream call and is billed for what
    was produced. The client gives up on a non-streamed call before upstream has answered:
    nothing was produced, so nothing may be charged."""
    c = stack.customer(group="x1")
    t = tag()
    usage = {"prompt_tokens": 100_000, "completion_tokens": 1_000}
    async with stack.aclient(c.secret, timeout=0.5) as aclient:
        with pytest.raises(openai.APITimeoutError):
            await aclient.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, extra_body=fake(t, usage=usage, latency_ms=1500)
            )
    assert len(stack.fake_requests(t)) == 1

    def record() -> dict[str, Any] | None:
        records = stack.p.usage_list(c.account_id)
        return records[0] if records else None

    rec = poll(record, timeout=5, what="the abandoned call's usage record")
    assert (rec["status"], rec["deduction_nano"]) == ("client_disconnected", 0), rec
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS
