"""Deductions to the nano-credit, driven with the official openai SDK (sync and async,
streaming and not) against a running Tollway, checked against the bundled price book.

Balances are read after the response returns, without waiting: the settlement commits
before the response (or the stream's last event) is sent (DESIGN.md §10).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from .calls import (
    MESSAGES,
    MODE_IDS,
    MODES,
    chat,
    fake,
    tag,
)
from .provision import MAIN_MODELS, CliProvisioner
from .stack import Stack, http_json, nano, price_book

TEN_CREDITS = 10_000_000_000
BOOK = price_book()


def test_price_book_has_the_worked_example_prices() -> None:
    # The numbers below are chosen from these list prices; if the book changes, so must they.
    assert Decimal(BOOK["gpt-4o"]["input"]) == Decimal("2.50")
    assert Decimal(BOOK["claude-opus-4-5"]["input"]) == Decimal("5")
    assert Decimal(BOOK["o4-mini"]["cache_read"]) == Decimal("0.275")
    assert nano((200_000, BOOK["gpt-4o"]["input"])) == 500_000_000  # $0.50
    assert nano((110_000, BOOK["claude-opus-4-5"]["input"])) == 550_000_000  # $0.55


@pytest.mark.parametrize(("mode", "stream"), MODES, ids=MODE_IDS)
async def test_half_dollar_call_in_a_03x_group_deducts_exactly_0_15_credits(
    stack: Stack, mode: str, stream: bool
) -> None:
    c = stack.customer(group="x03")
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS
    usage = {"prompt_tokens": 200_000, "completion_tokens": 0}
    r = await chat(
        stack,
        c.secret,
        mode,
        stream,
        model="gpt-4o",
        include_usage=True,
        extra_body=fake(usage=usage),
    )
    bal = stack.balance(c.account_id)
    assert bal["cash_nano"] == TEN_CREDITS - 150_000_000
    assert bal["held_nano"] == 0
    assert bal["available_nano"] == TEN_CREDITS - 150_000_000
    # The client saw upstream's usage (it asked for it when streaming).
    assert r.usage is not None and r.usage.prompt_tokens == 200_000
    rec = stack.usage(r.trace_id)
    assert rec["deduction_nano"] == 150_000_000
    assert rec["official_cost_nano"] == 500_000_000
    assert rec["multiplier"] == "0.3"
    assert rec["stream"] is stream


@pytest.mark.parametrize(("mode", "stream"), MODES, ids=MODE_IDS)
async def test_claude_opus_4_5_110k_uncached_input_costs_exactly_0_55(
    stack: Stack, mode: str, stream: bool
) -> None:
    c = stack.customer(group="x1")
    usage = {"prompt_tokens": 110_000, "completion_tokens": 0}
    r = await chat(stack, c.secret, mode, stream, model="claude-opus-4-5", extra_body=fake(usage=usage))
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS - 550_000_000
    rec = stack.usage(r.trace_id)
    assert (rec["official_cost_nano"], rec["deduction_nano"]) == (550_000_000, 550_000_000)
    assert rec["model_billed"] == "claude-opus-4-5"


@pytest.mark.parametrize(("mode", "stream"), [MODES[0], MODES[3]], ids=[MODE_IDS[0], MODE_IDS[3]])
async def test_cached_and_reasoning_tokens_priced_as_subsets(stack: Stack, mode: str, stream: bool) -> None:
    """OpenAI cached_tokens ⊆ prompt_tokens (billed at cache read), reasoning_tokens ⊆
    completion_tokens (billed once, at the output rate)."""
    c = stack.customer(group="x03")
    usage = {
        "prompt_tokens": 100_000,
        "cached_tokens": 40_000,
        "completion_tokens": 20_000,
        "reasoning_tokens": 15_000,
    }
    r = await chat(
        stack,
        c.secret,
        mode,
        stream,
        model="o4-mini",
        include_usage=True,
        extra_body=fake(usage=usage),
    )
    p = BOOK["o4-mini"]
    official = nano((60_000, p["input"]), (40_000, p["cache_read"]), (20_000, p["output"]))
    expected = nano((60_000, p["input"]), (40_000, p["cache_read"]), (20_000, p["output"]), multiplier="0.3")
    assert (official, expected) == (165_000_000, 49_500_000)  # $0.066 + $0.011 + $0.088
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS - expected
    rec = stack.usage(r.trace_id)
    assert rec["tokens"] == {
        "input": 60_000,
        "cache_read": 40_000,
        "cache_write_5m": 0,
        "cache_write_1h": 0,
        "output": 20_000,
        "reasoning": 15_000,
    }
    assert (rec["official_cost_nano"], rec["deduction_nano"]) == (official, expected)
    lines = {ln["category"]: (ln["quantity"], ln["unit_price_nano"]) for ln in rec["lines"]}
    assert lines == {
        "input": (60_000, 1_100_000_000),
        "cache_read": (40_000, 275_000_000),
        "output": (20_000, 4_400_000_000),
    }


async def test_gpt_4o_cache_read_is_half_the_input_price(stack: Stack) -> None:
    c = stack.customer(group="x1")
    usage = {"prompt_tokens": 200_000, "cached_tokens": 200_000, "completion_tokens": 1_000}
    r = await chat(stack, c.secret, "async", False, extra_body=fake(usage=usage))
    # 200k cached at $1.25 + 1k output at $10 = $0.26
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS - 260_000_000
    assert stack.usage(r.trace_id)["tokens"]["input"] == 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_usage_record_explains_the_charge(stack: Stack, stream: bool) -> None:
    c = stack.customer(group="x03")
    usage = {"prompt_tokens": 200_000, "completion_tokens": 3_000}
    r = await chat(stack, c.secret, "sync", stream, extra_body=fake(usage=usage))
    bal = stack.balance(c.account_id)
    expected = nano((200_000, "2.50"), (3_000, "10.00"), multiplier="0.3")  # $0.53 x 0.3
    assert expected == 159_000_000
    rec = stack.usage(r.trace_id)
    # who, what, how
    assert rec["trace_id"] == r.trace_id
    assert rec["account_id"] == c.account_id
    assert rec["key_id"] == c.key_id
    assert (rec["model_requested"], rec["model_billed"]) == ("gpt-4o", "gpt-4o")
    assert (rec["group"], rec["multiplier"]) == ("x03", "0.3")
    assert rec["stream"] is stream
    assert (rec["status"], rec["http_status"], rec["estimated"]) == ("ok", 200, False)
    assert rec["endpoint"] == "chat.completions"
    assert rec["client_ip"] == "127.0.0.1"
    assert rec["channel_id"] == stack.channels["main"]["id"]
    # the price snapshot used
    snap = rec["price_snapshot"]
    assert snap["model"] == "gpt-4o"
    assert {k: Decimal(v) for k, v in snap["prices"].items()} == {
        "input": Decimal("2.50"),
        "output": Decimal("10.00"),
        "cache_read": Decimal("1.25"),
    }
    # the arithmetic: tokens x price = official cost; x multiplier = deduction
    assert [(ln["category"], ln["quantity"], ln["unit_price_nano"], ln["per"]) for ln in rec["lines"]] == [
        ("input", 200_000, 2_500_000_000, "mtok"),
        ("output", 3_000, 10_000_000_000, "mtok"),
    ]
    total = sum(ln["quantity"] * ln["unit_price_nano"] for ln in rec["lines"])
    assert total == rec["official_cost_nano"] * 1_000_000 == 530_000_000 * 1_000_000
    assert rec["deduction_nano"] == expected
    assert rec["deduction"] == "0.159"
    assert rec["balance_after_nano"] == bal["cash_nano"] == TEN_CREDITS - expected
    assert rec["hold_nano"] > 0
    assert rec["latency_ms"] >= 0


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_without_include_usage_is_billed_but_hides_the_usage_chunk(
    stack: Stack, mode: str
) -> None:
    c = stack.customer(group="x1")
    t = tag()
    usage = {"prompt_tokens": 40_000, "completion_tokens": 1_000}
    r = await chat(stack, c.secret, mode, True, extra_body=fake(t, usage=usage))
    # The client never sees a usage chunk, nor a chunk without choices.
    assert r.chunks, "no chunks at all"
    assert all(ch.usage is None for ch in r.chunks)
    assert all(ch.choices for ch in r.chunks)
    assert r.text == "The quick brown fox jumps over the lazy"
    # Yet upstream was asked for usage, and the call is billed from it exactly.
    [seen] = stack.fake_requests(t)
    assert seen["body"]["stream"] is True
    assert seen["body"]["stream_options"] == {"include_usage": True}
    assert (
        stack.balance(c.account_id)["cash_nano"]
        == TEN_CREDITS - nano((40_000, "2.50"), (1_000, "10.00"))
        == TEN_CREDITS - 110_000_000
    )
    rec = stack.usage(r.trace_id)
    assert (rec["estimated"], rec["status"], rec["stream"]) == (False, "ok", True)


async def test_stream_with_include_usage_shows_exactly_one_usage_chunk(stack: Stack) -> None:
    c = stack.customer(group="x1")
    usage = {"prompt_tokens": 40_000, "completion_tokens": 1_000}
    r = await chat(stack, c.secret, "async", True, include_usage=True, extra_body=fake(usage=usage))
    with_usage = [ch for ch in r.chunks if ch.usage is not None]
    assert len(with_usage) == 1 and with_usage[0].choices == []
    assert r.chunks[-1] is with_usage[0]
    assert (with_usage[0].usage.prompt_tokens, with_usage[0].usage.completion_tokens) == (
        40_000,
        1_000,
    )


async def test_body_is_passed_through_except_model_and_stream_options(stack: Stack) -> None:
    c = stack.customer(group="x1")
    t = tag()
    await chat(stack, c.secret, "async", False, temperature=0.25, max_tokens=7, seed=3, extra_body=fake(t))
    [seen] = stack.fake_requests(t)
    body = seen["body"]
    assert (body["model"], body["messages"], body["temperature"], body["max_tokens"]) == (
        "gpt-4o",
        MESSAGES,
        0.25,
        7,
    )
    assert body["seed"] == 3 and "stream_options" not in body
    # Tollway sends the channel's credential upstream, never the customer's key.
    assert seen["headers"]["Authorization"] == "Bearer upstream-main"


async def test_embeddings_are_billed_from_upstream_usage(stack: Stack) -> None:
    c = stack.customer(group="x1")
    async with stack.aclient(c.secret) as client:
        resp = await client.embeddings.create(
            model="text-embedding-3-small",
            input=["hello", "world"],
            extra_body=fake(usage={"prompt_tokens": 1_000_000}),
        )
    assert len(resp.data) == 2
    assert stack.balance(c.account_id)["cash_nano"] == TEN_CREDITS - 20_000_000  # $0.02/MTok
    rec = stack.usage(str(resp._request_id))
    assert (rec["endpoint"], rec["deduction_nano"]) == ("embeddings", 20_000_000)


async def test_vouchers_are_spent_before_cash(stack: Stack) -> None:
    c = stack.customer(group="x1", credit="1")
    stack.p.credit(c.account_id, "0.1", kind="voucher")
    usage = {"prompt_tokens": 60_000, "completion_tokens": 0}  # $0.15
    await chat(stack, c.secret, "sync", False, extra_body=fake(usage=usage))
    bal = stack.balance(c.account_id)
    assert (bal["voucher_nano"], bal["cash_nano"]) == (0, 1_000_000_000 - 50_000_000)


def test_models_and_subscription_show_what_the_key_may_use_and_spend(stack: Stack) -> None:
    full = stack.customer(group="x1", credit="2.5")
    mini = stack.customer(group="mini", credit="1")
    with stack.client(full.secret) as client:
        assert sorted(m.id for m in client.models.list()) == sorted(MAIN_MODELS.split(","))
    with stack.client(mini.secret) as client:
        assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    status, headers, doc = http_json(
        "GET",
        f"{stack.url}/v1/dashboard/billing/subscription",
        headers={"Authorization": f"Bearer {full.secret}"},
    )
    assert status == 200 and headers["x-request-id"].startswith("req_")
    assert doc["available_nano"] == 2_500_000_000 and doc["hard_limit_usd"] == 2.5


async def test_provisioned_and_read_through_the_cli(stack: Stack) -> None:
    """The published command line against the same database: account, credit, key, balance,
    usage by trace id."""
    cli = CliProvisioner(stack.db_url, stack.workdir / "data")
    account_id = cli.create_account(f"cli-{tag()[:10]}@example.test")
    credited: dict[str, Any] = cli.credit(account_id, "3.5")
    assert credited["cash_nano"] == 3_500_000_000
    key = cli.create_key(account_id, name="cli", group="x03")
    assert str(key["secret"]).startswith("sk-")
    usage = {"prompt_tokens": 200_000, "completion_tokens": 0}
    r = await chat(stack, str(key["secret"]), "async", True, extra_body=fake(usage=usage))
    bal = cli.balance(account_id)
    assert (bal["cash_nano"], bal["held_nano"], bal["available_nano"]) == (
        3_350_000_000,
        0,
        3_350_000_000,
    )
    assert bal["available"] in ("3.35", "3.350000000")
    rec = cli.usage(r.trace_id)
    assert rec is not None and rec["deduction_nano"] == 150_000_000


async def test_billing_endpoints_report_spend_and_remaining_like_chat_clients_expect(stack: Stack) -> None:
    c = stack.customer(group="x1", credit="2.5")
    usage = {"prompt_tokens": 200_000, "completion_tokens": 0}  # gpt-4o: exactly $0.50
    await chat(stack, c.secret, "async", False, extra_body=fake(usage=usage))
    auth = {"Authorization": f"Bearer {c.secret}"}
    _, _, sub = http_json("GET", f"{stack.url}/v1/dashboard/billing/subscription", headers=auth)
    _, _, used = http_json("GET", f"{stack.url}/v1/dashboard/billing/usage", headers=auth)
    assert sub["available_nano"] == 2_000_000_000
    assert sub["hard_limit_usd"] == 2.5 and used["total_usage"] == 50
    # what the clients show as remaining: hard limit - usage / 100
    assert Decimal(str(sub["hard_limit_usd"])) - Decimal(str(used["total_usage"])) / 100 == Decimal("2")
