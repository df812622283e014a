"""Failover and stream faults: a failing channel, a stall after the first byte, a reset
mid-stream, a slow-loris upstream, a per-channel timeout."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import openai
import pytest
from sqlalchemy import select

from tollway.store.tables import usage_records

from .calls import fake
from .faults_support import (
    MODEL,
    Chaos,
    MidStreamReset,
    _billed_once,
    _estimated_output_tokens,
    db_rows,
    metrics,
    one_call,
    sample,
    stream_until_error,
)
from .provision import CliProvisioner
from .stack import Stack


def test_failing_channel_is_invisible_to_clients(fstack: Stack) -> None:
    chaos = Chaos()
    try:
        fstack.p.create_group("chaos", multiplier="1")
        fstack.p.create_channel(
            "chaos-bad", base_url=chaos.url, api_key="k", models=MODEL, priority=20, groups="chaos"
        )
        fstack.p.create_channel(
            "chaos-good",
            base_url=f"{fstack.fake_url}/v1",
            api_key="k",
            models=MODEL,
            priority=1,
            groups="chaos",
        )
        cust = fstack.customer(group="chaos", credit="10")
        time.sleep(0.6)  # the server picks the new configuration up (refresh every 0.2 s)
        before = int(fstack.balance(cust.account_id)["cash_nano"])

        async def load() -> list[tuple[str, str, str, bool]]:
            client = fstack.aclient(cust.secret)
            sem = asyncio.Semaphore(6)

            async def go(i: int) -> tuple[str, str, str, bool]:
                tag = f"chaos-{uuid.uuid4().hex[:10]}"
                async with sem:
                    trace, text = await one_call(client, stream=i % 2 == 1, tag=tag)
                    await asyncio.sleep(0.1)
                    return trace, text, tag, i % 2 == 1

            try:
                return await asyncio.gather(*(go(i) for i in range(24)))
            finally:
                await client.close()

        results = asyncio.run(load())
        assert {"500", "429", "reset", "hang"} <= set(chaos.served), chaos.served
        for trace, text, tag, _stream in results:
            assert text, trace
            assert len(fstack.fake_requests(tag)) == 1, tag  # served once upstream
            record = fstack.usage(trace)
            assert record["status"] == "ok", record
        traces = [r[0] for r in results]
        rows = db_rows(fstack.db_url, select(usage_records).where(usage_records.c.trace_id.in_(traces)))
        assert len(rows) == len(traces)  # one record per call, never two
        assert sum(1 for r in rows if r["attempts"] and '"chaos-bad"' in r["attempts"]) >= 4
        failed = [json.loads(r["attempts"]) for r in rows if r["attempts"] and '"failed"' in r["attempts"]]
        assert failed and all(a[-1]["outcome"] == "ok" and a[-1]["name"] == "chaos-good" for a in failed)
        deducted = sum(int(r["deduction_nano"]) for r in rows)
        assert deducted > 0
        assert before - int(fstack.balance(cust.account_id)["cash_nano"]) == deducted
        text = metrics(fstack)
        assert (
            sample(text, "tollway_upstream_attempts_total", channel="chaos-bad", outcome="failed") or 0
        ) >= 4
        assert (sample(text, "tollway_channel_transitions_total", channel="chaos-bad", to="open") or 0) >= 1
        fstack.audit_ok()
    finally:
        chaos.close()


def test_timeout_after_first_byte_bills_what_was_sent(fstack: Stack) -> None:
    """Upstream sends 3 content chunks, then stalls 3 s (idle timeout 1 s): the client gets the
    chunks, then an error event; the call is billed once, estimated, for what was sent."""
    cust = fstack.customer(group="x1", credit="10")
    before = int(fstack.balance(cust.account_id)["cash_nano"])
    tag = f"stall-{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    trace, text, exc, _ = asyncio.run(
        stream_until_error(fstack, cust.secret, fake(tag, chunks=6, stall_after=3, stall_ms=3000))
    )
    assert time.monotonic() - t0 < 2.8, "the idle timeout did not fire"
    assert text == "The quick brown"
    assert exc is not None, "the stream ended as if nothing had gone wrong"
    assert str(exc.message).rstrip(" .)").endswith(trace)
    rec = _billed_once(fstack, cust.account_id, trace, before)
    assert (rec["status"], rec["estimated"], rec["stream"]) == ("upstream_cut", True, True)
    assert rec["tokens"]["output"] == _estimated_output_tokens(text) and rec["deduction_nano"] > 0
    assert len(fstack.fake_requests(tag)) == 1  # never retried after a byte reached the client
    fstack.audit_ok()


def test_connection_reset_mid_stream_on_one_of_two_channels(fstack: Stack) -> None:
    """The stream already started on the failing channel is billed for what upstream sent, once;
    the next calls fail over to the good channel and succeed."""
    reset = MidStreamReset()
    fstack.p.create_group("reset", multiplier="1")
    fstack.p.create_channel(
        "reset-bad", base_url=reset.url, api_key="k", models=MODEL, priority=20, groups="reset"
    )
    fstack.p.create_channel(
        "reset-good", base_url=f"{fstack.fake_url}/v1", api_key="k", models=MODEL, priority=1, groups="reset"
    )
    cust = fstack.customer(group="reset", credit="10")
    time.sleep(0.6)  # the server picks the new configuration up
    before = int(fstack.balance(cust.account_id)["cash_nano"])
    trace, text, exc, _ = asyncio.run(stream_until_error(fstack, cust.secret, fake()))
    assert reset.served == 1
    assert text == "".join(MidStreamReset.PIECES)
    assert exc is not None and str(exc.message).rstrip(" .)").endswith(trace)
    rec = _billed_once(fstack, cust.account_id, trace, before)
    assert (rec["status"], rec["estimated"]) == ("upstream_cut", True)
    assert rec["tokens"]["output"] == _estimated_output_tokens(text) and rec["deduction_nano"] > 0
    attempts = json.loads(
        db_rows(fstack.db_url, select(usage_records.c.attempts).where(usage_records.c.trace_id == trace))[0][
            "attempts"
        ]
    )
    assert [a["name"] for a in attempts] == ["reset-bad"]

    async def next_calls() -> list[tuple[str, str, str]]:
        client = fstack.aclient(cust.secret)
        try:
            out = []
            for i in range(4):
                tag = f"after-reset-{uuid.uuid4().hex[:10]}"
                out.append((*await one_call(client, stream=i % 2 == 0, tag=tag), tag))
            return out
        finally:
            await client.close()

    for trace2, text2, tag in asyncio.run(next_calls()):
        assert text2, trace2
        assert fstack.usage(trace2)["status"] == "ok"
        assert len(fstack.fake_requests(tag)) == 1
    rows = db_rows(fstack.db_url, select(usage_records).where(usage_records.c.owner_id == cust.account_id))
    assert len(rows) == 5  # one record per call
    spent = before - int(fstack.balance(cust.account_id)["cash_nano"])
    assert spent == sum(int(r["deduction_nano"]) for r in rows)
    fstack.audit_ok()


def test_slow_loris_upstream_completes_billed_once(fstack: Stack) -> None:
    """Chunks spaced just under the idle timeout (0.6 s vs 1 s): no timeout, the stream
    completes with its usage, and is billed exactly once from upstream's usage."""
    cust = fstack.customer(group="x1", credit="10")
    before = int(fstack.balance(cust.account_id)["cash_nano"])
    tag = f"loris-{uuid.uuid4().hex[:10]}"
    trace, text, exc, saw_usage = asyncio.run(
        stream_until_error(
            fstack, cust.secret, fake(tag, chunks=3, chunk_interval_ms=600), include_usage=True
        )
    )
    assert exc is None and saw_usage
    assert text == "The quick brown"
    rec = _billed_once(fstack, cust.account_id, trace, before)
    assert (rec["status"], rec["estimated"]) == ("ok", False)
    assert rec["tokens"]["output"] == 3 and rec["deduction_nano"] > 0
    assert len(fstack.fake_requests(tag)) == 1
    fstack.audit_ok()


def test_channel_first_byte_timeout_overrides_global(fstack: Stack) -> None:
    """Global first-byte timeout 1 s; the channel's own is 0.3 s: an upstream that holds its
    headers for 0.7 s gets a 504 at once instead of being waited for."""
    alone = "gpt-4.1-nano"
    fstack.p.create_group("quickto", multiplier="1")
    # a model no other channel serves, so that nothing fails over
    fstack.p.create_channel(
        "quick-timeout", base_url=f"{fstack.fake_url}/v1", api_key="k", models=alone, groups="quickto"
    )
    cli = CliProvisioner(fstack.db_url, fstack.data_dir or fstack.workdir / "data")
    _, doc = cli.cli("admin", "channel", "update", "quick-timeout", "--first-byte-timeout", "0.3")
    assert doc["timeouts"] == {"first_byte_timeout_s": 0.3}, doc
    cust = fstack.customer(group="quickto", credit="10")
    time.sleep(2.5)  # the server picks up the CLI's change
    client = fstack.client(cust.secret)
    # without hanging, the channel serves
    assert (
        client.chat.completions.create(
            model=alone, messages=[{"role": "user", "content": "hi"}], extra_body=fake()
        )
        .choices[0]
        .message.content
    )
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model=alone, messages=[{"role": "user", "content": "hi"}], extra_body=fake(hang_ms=700)
        )
    assert err.value.status_code == 504
    assert time.monotonic() - t0 < 0.65
