"""Sticky routing: the same account and model keep one channel (and credential) while it is
healthy, keys spread by weight, and changing the pool moves only the keys it must."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from test_routing_health import ch, make

from tollway.routing.breaker import BreakerState
from tollway.routing.health import Outcome
from tollway.routing.sticky import sticky_order, sticky_start

KEYS = [f"acct-{i}/claude-opus-4-5" for i in range(4000)]


def first(channels: list, key: str) -> str:  # type: ignore[type-arg]
    return str(sticky_order(channels, key)[0].id)


def test_same_key_same_order_every_time() -> None:
    pool = [ch("a"), ch("b"), ch("c")]
    for key in KEYS[:50]:
        orders = {tuple(c.id for c in sticky_order(pool, key)) for _ in range(5)}
        assert len(orders) == 1
    # and not everyone on one channel
    assert len({first(pool, k) for k in KEYS[:50]}) == 3


def test_keys_spread_in_proportion_to_weight_within_a_tier() -> None:
    pool = [ch("light", weight=1), ch("heavy", weight=3), ch("backup", priority=-1, weight=50)]
    share = Counter(first(pool, k) for k in KEYS)
    assert share["backup"] == 0  # a lower tier only when the higher one is unusable
    assert 0.70 < share["heavy"] / len(KEYS) < 0.80, share


def test_adding_a_channel_moves_only_keys_to_it() -> None:
    pool = [ch("a"), ch("b"), ch("c")]
    before = {k: first(pool, k) for k in KEYS}
    after = {k: first([*pool, ch("d")], k) for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(after[k] == "d" for k in moved)
    assert 0.18 < len(moved) / len(KEYS) < 0.32  # about a quarter


def test_open_breaker_fails_over_then_the_key_comes_back() -> None:
    health, clock, _ = make()
    a, b = ch("a"), ch("b")
    key = next(k for k in KEYS if first([a, b], k) == "a")
    assert health.order([a, b], sticky=key)[0] is a
    for _ in range(3):
        health.record(a, Outcome.FAILED, "HTTP 500")
    assert health.state(a) is BreakerState.OPEN
    assert [c.id for c in health.order([a, b], sticky=key)] == ["b"]
    clock.now += 11
    health.before_attempt(a)
    health.record(a, Outcome.OK)  # the probe passed
    assert health.order([a, b], sticky=key)[0] is a


def test_sticky_credential_inside_a_channel() -> None:
    health, _, _ = make()
    multi = replace(ch("m"), api_keys=("k1", "k2", "k3"))
    key = KEYS[7]
    picks = {health.order([multi], sticky=key)[0].key_index for _ in range(6)}
    assert picks == {sticky_start(key, "m", 3)}
    # without a sticky key the credentials rotate
    assert len({health.order([multi])[0].key_index for _ in range(6)}) == 3
    assert len({sticky_start(k, "m", 3) for k in KEYS[:100]}) == 3
