"""Routing with health: ordering, classification, breaker feeding, probes (tollway.routing.health)."""

from __future__ import annotations

import random

from tollway.catalog.model import Channel, ChannelType
from tollway.routing.breaker import BreakerPolicy, BreakerState
from tollway.routing.health import ChannelHealth, ChannelTransition, Outcome, classify, order_channels


def ch(cid: str, priority: int = 0, weight: int = 1) -> Channel:
    return Channel(
        id=cid,
        name=cid,
        type=ChannelType.OPENAI,
        base_url="http://x/v1",
        api_key="k",
        models=frozenset({"m"}),
        model_map={},
        groups=frozenset(),
        priority=priority,
        weight=weight,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**kw: float) -> tuple[ChannelHealth, Clock, list[ChannelTransition]]:
    clock = Clock()
    seen: list[ChannelTransition] = []
    policy = BreakerPolicy(consecutive_failures=3, open_s=10, max_open_s=40, **kw)  # type: ignore[arg-type]
    return ChannelHealth(policy, on_transition=seen.append, clock=clock), clock, seen


def test_classify() -> None:
    assert classify(200, None) is Outcome.OK
    assert classify(401, None) is Outcome.DISABLE
    assert classify(403, None) is Outcome.DISABLE
    assert classify(402, None) is Outcome.DISABLE
    assert classify(429, "insufficient_quota") is Outcome.DISABLE
    assert classify(429, "rate_limit_exceeded") is Outcome.FAILED
    assert classify(500, None) is Outcome.FAILED
    assert classify(529, None) is Outcome.FAILED
    assert classify(400, "invalid_request_error") is Outcome.NEUTRAL
    assert classify(404, None) is Outcome.NEUTRAL


def test_order_single_channel_fast_path() -> None:
    class NoRandom(random.Random):
        def random(self) -> float:
            raise AssertionError("random used for a single channel")

    a = ch("a")
    assert order_channels([a], NoRandom()) == [a]
    assert order_channels([ch("b", 1), a], NoRandom())[0].id == "b"  # one per tier: no draw either
    assert order_channels([]) == []


def test_order_priority_tiers_and_weights() -> None:
    hi1, hi2, lo = ch("hi1", 5, weight=9), ch("hi2", 5, weight=1), ch("lo", 1)
    rng = random.Random(7)
    firsts = {"hi1": 0, "hi2": 0}
    for _ in range(2000):
        order = order_channels([lo, hi2, hi1], rng)
        assert order[-1] is lo and {c.id for c in order[:2]} == {"hi1", "hi2"}
        firsts[order[0].id] += 1
    assert 1600 < firsts["hi1"] < 1990  # about 90 %


def test_open_channel_is_skipped_until_back_off_then_probed() -> None:
    health, clock, seen = make()
    a, b = ch("a", 5), ch("b", 1)
    for _ in range(3):
        health.record(a, Outcome.FAILED, "HTTP 500")
    assert health.state(a) is BreakerState.OPEN
    assert [t.transition.after for t in seen] == [BreakerState.OPEN]
    assert health.order([a, b]) == [b]
    clock.now += 11  # back-off over: a is let through again, and is the probe
    assert health.order([a, b])[0] is a
    health.before_attempt(a)
    assert health.state(a) is BreakerState.HALF_OPEN
    assert health.order([a, b]) == [b]  # one probe at a time
    health.record(a, Outcome.OK)
    assert health.state(a) is BreakerState.CLOSED
    assert [t.transition.after for t in seen][-1] is BreakerState.CLOSED


def test_all_open_falls_back_to_every_channel() -> None:
    health, _, _ = make()
    a = ch("a")
    for _ in range(3):
        health.record(a, Outcome.FAILED)
    assert health.order([a]) == [a]


def test_auth_error_disables_at_once_and_probe_reenables() -> None:
    health, clock, seen = make()
    a, b = ch("a", 5), ch("b")
    health.record(a, Outcome.DISABLE, "HTTP 401")
    assert health.state(a) is BreakerState.DISABLED
    assert health.order([a, b]) == [b]
    assert health.due_probes([a, b]) == []  # back-off not over
    clock.now += 10
    assert health.due_probes([a, b]) == [a]
    assert health.due_probes([a, b]) == []  # already probing
    health.record(a, Outcome.FAILED, "probe: HTTP 401")  # still broken: stays disabled, longer back-off
    assert health.state(a) is BreakerState.DISABLED
    clock.now += 10
    assert health.due_probes([a]) == []
    clock.now += 10
    assert health.due_probes([a]) == [a]
    health.record(a, Outcome.OK, "probe: HTTP 200")
    assert health.state(a) is BreakerState.CLOSED
    assert [(t.transition.before, t.transition.after) for t in seen] == [
        (BreakerState.CLOSED, BreakerState.DISABLED),
        (BreakerState.DISABLED, BreakerState.CLOSED),
    ]
    assert health.order([a, b])[0] is a


def test_neutral_answers_do_not_open_the_breaker() -> None:
    health, _, seen = make()
    a = ch("a")
    for _ in range(10):
        health.record(a, Outcome.NEUTRAL, "HTTP 400")
    assert health.state(a) is BreakerState.CLOSED and not seen


def test_error_rate_opens_over_window() -> None:
    health, clock, _ = make(min_calls=10, failure_rate=0.5, window_s=60)
    a = ch("a")
    for i in range(10):
        clock.now += 1
        health.record(a, Outcome.FAILED if i % 2 else Outcome.OK)
    assert health.state(a) is BreakerState.OPEN


def test_cancelled_probe_does_not_wedge_the_breaker() -> None:
    health, clock, _ = make()
    a = ch("a")
    health.record(a, Outcome.DISABLE, "HTTP 401")
    clock.now += 10
    assert health.due_probes([a]) == [a]
    health.cancel_probe(a)  # e.g. shutdown cancelled the probe
    assert health.due_probes([a]) == [a]


def test_json_log_lines_carry_the_trace_id() -> None:
    import json
    import logging

    from tollway.observability.logs import JsonFormatter, trace_id_var

    record = logging.makeLogRecord({"name": "tollway", "levelname": "WARNING", "msg": "x %s", "args": (1,)})
    record.channel_id = "c1"
    token = trace_id_var.set("req_abc")
    try:
        doc = json.loads(JsonFormatter().format(record))
    finally:
        trace_id_var.reset(token)
    assert doc["message"] == "x 1" and doc["trace_id"] == "req_abc" and doc["channel_id"] == "c1"
    assert doc["level"] == "warning"
