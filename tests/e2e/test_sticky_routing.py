"""Sticky routing through the running server: in a group with ``sticky`` set, each account's
calls for a model keep to one of two equal channels (so the upstream's prompt cache keeps
hitting); in a group without it, calls spread over both."""

from __future__ import annotations

import time

from sqlalchemy import select

from tollway.store.tables import usage_records

from .calls import fake
from .faults_support import db_rows
from .stack import Stack

MODEL = "gpt-4o-mini"


def _channels_used(stack: Stack, secret: str, calls: int) -> list[str]:
    traces = []
    with stack.client(secret) as client:
        for _ in range(calls):
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=fake()
            )
            traces.append(raw.headers["x-request-id"])
    q = select(usage_records.c.trace_id, usage_records.c.channel_id).where(
        usage_records.c.trace_id.in_(traces)
    )
    rows = db_rows(stack.db_url, q)
    assert len(rows) == calls
    return [str(r["channel_id"]) for r in rows]


def test_sticky_group_keeps_each_account_on_one_channel(stack: Stack) -> None:
    stack.p.create_group("sticky", multiplier="1", sticky=True)
    stack.p.create_group("spread", multiplier="1")
    for name in ("twin-a", "twin-b"):
        stack.p.create_channel(
            name, base_url=f"{stack.fake_url}/v1", api_key="k", models=MODEL, priority=50,
            groups="sticky,spread",
        )  # fmt: skip
    customers = [stack.customer(group="sticky", credit="5") for _ in range(4)]
    roamer = stack.customer(group="spread", credit="5")
    time.sleep(0.6)  # the server picks the new configuration up

    homes = set()
    for cust in customers:
        used = set(_channels_used(stack, cust.secret, 6))
        assert len(used) == 1, used  # one account, one model: one channel every time
        homes |= used
    spread = set(_channels_used(stack, roamer.secret, 16))
    assert len(spread) == 2, spread  # without sticky: weighted random over both (1 in 30,000 not)
    assert homes <= spread
    stack.audit_ok()
