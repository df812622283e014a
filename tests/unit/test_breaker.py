from __future__ import annotations

from tollway.routing.breaker import Breaker, BreakerPolicy, BreakerState

POLICY = BreakerPolicy(
    consecutive_failures=3, failure_rate=0.5, min_calls=10, window_s=60, open_s=30, max_open_s=100
)


def test_opens_after_consecutive_failures_and_probes_after_backoff() -> None:
    b = Breaker("ch/1", POLICY)
    assert b.failure(0, "500") is None
    assert b.failure(1, "500") is None
    t = b.failure(2, "500")
    assert t is not None and t.after is BreakerState.OPEN
    assert not b.allows(10)
    assert b.allows(32)
    assert b.begin_probe(32) is not None and b.state is BreakerState.HALF_OPEN
    assert not b.allows(32)  # one probe at a time
    t = b.success(33)
    assert t is not None and t.after is BreakerState.CLOSED
    assert b.allows(33)


def test_failed_probe_doubles_backoff_up_to_the_cap() -> None:
    b = Breaker("ch/1", POLICY)
    for i in range(3):
        b.failure(i, "timeout")
    waits = []
    now = 2.0
    for _ in range(4):
        now = b.open_until
        assert b.allows(now)
        b.begin_probe(now)
        b.failure(now, "still down")
        waits.append(b.open_until - now)
    assert waits == [60, 100, 100, 100]


def test_error_rate_opens_without_a_streak() -> None:
    b = Breaker("ch/1", POLICY)
    for i in range(11):
        if i % 2:
            b.success(i)
        else:
            b.failure(i, "500")
    assert b.state is BreakerState.OPEN


def test_old_calls_leave_the_window() -> None:
    b = Breaker("ch/1", POLICY)
    for i in range(9):
        if i % 2:
            b.success(i)
        else:
            b.failure(i, "500")
    b.success(200)  # the earlier calls are older than the window
    assert b.state is BreakerState.CLOSED


def test_disable_then_probe_re_enables() -> None:
    b = Breaker("ch/1", POLICY)
    t = b.disable(0, "upstream 401: invalid key")
    assert t is not None and t.after is BreakerState.DISABLED
    assert not b.allows(5)
    assert b.allows(31)
    b.begin_probe(31)
    t = b.success(31)
    assert t is not None and t.before is BreakerState.DISABLED and t.after is BreakerState.CLOSED
