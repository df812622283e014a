"""500 concurrent calls against a balance for about 50: the account never goes below zero
when clients set ``max_tokens``, the rest are refused with 402 (and not retried by the SDK),
and the ledger audit passes — on SQLite and on PostgreSQL (``db_url``), each with a server
of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from .calls import MESSAGES, fake, tag
from .provision import CliProvisioner
from .stack import Stack

CALLS = 500
MAX_TOKENS = 100
# Hold per call (gpt-4o, multiplier 1): 9 upper-bound input tokens x $2.50/MTok + 100 output
# tokens x $10/MTok = $0.0010225 = 1_022_500 nano.
HOLD = 1_022_500
BALANCE_NANO = 50 * HOLD  # 51_125_000 nano = 0.051125 credits: 50 calls' worth of holds


async def _burst(stack: Stack, secret: str, usage: dict[str, int], t: str) -> list[Any]:
    async with stack.aclient(secret, max_retries=2, timeout=120) as client:

        async def one() -> Any:
            try:
                return await client.chat.completions.create(
                    model="gpt-4o",
                    messages=MESSAGES,
                    max_tokens=MAX_TOKENS,
                    extra_body=fake(t, usage=usage),
                )
            except openai.APIError as exc:
                return exc

        return await asyncio.gather(*(one() for _ in range(CALLS)))


async def _scenario(stack: Stack, usage: dict[str, int], cost: int) -> int:
    c = stack.customer(group="x1", credit="0.051125")
    assert stack.balance(c.account_id)["cash_nano"] == BALANCE_NANO
    t = tag()
    results = await _burst(stack, c.secret, usage, t)
    ok = [r for r in results if isinstance(r, ChatCompletion)]
    refused = [r for r in results if isinstance(r, openai.APIStatusError) and r.status_code == 402]
    other = [
        r
        for r in results
        if not isinstance(r, ChatCompletion)
        and not (isinstance(r, openai.APIStatusError) and r.status_code == 402)
    ]
    assert not other, [f"{type(r).__name__}: {r}" for r in other[:5]]
    assert ok and refused, (len(ok), len(refused))
    assert all(r.response.headers["x-should-retry"] == "false" for r in refused)
    # The SDK did not retry the 402s: upstream saw exactly the calls that succeeded.
    assert len(stack.fake_requests(t)) == len(ok)
    bal = stack.balance(c.account_id)
    assert bal["cash_nano"] >= 0
    assert bal["held_nano"] == 0
    assert bal["cash_nano"] == BALANCE_NANO - len(ok) * cost
    records = stack.p.usage_list(c.account_id)
    assert len(records) == len(ok)
    assert {r["status"] for r in records} == {"ok"}
    assert sum(r["deduction_nano"] for r in records) == len(ok) * cost
    assert {r["trace_id"] for r in records} == {r._request_id for r in ok}
    return len(ok)


async def test_500_concurrent_calls_never_overdraw_and_the_audit_passes(
    fresh_stack: Stack,
) -> None:
    stack = fresh_stack
    # 1. Each call costs exactly its hold: exactly 50 succeed and the balance ends at 0.
    exact = await _scenario(stack, {"prompt_tokens": 9, "completion_tokens": MAX_TOKENS}, HOLD)
    assert exact == 50
    # 2. Each call costs less than its hold (60 of 100 output tokens): settled calls free
    # room for more, still never below zero.
    cost = 22_500 + 600_000
    more = await _scenario(stack, {"prompt_tokens": 9, "completion_tokens": 60}, cost)
    assert 50 <= more <= BALANCE_NANO // cost
    stack.audit_ok()
    # The published command agrees: `tollway audit --json` exits 0.
    result = CliProvisioner(stack.db_url, stack.workdir / "data").audit()
    assert result.ok, result.findings
