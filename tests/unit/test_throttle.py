"""Sign-in throttles (issue 11): limits per email and per address in a sliding window, a
success clears only the email's count, expired keys are removed and memory stays bounded."""

from __future__ import annotations

from tollway.services.throttle import MemoryAttempts, Throttle, Throttles


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def throttle(clock: Clock, **kw: int) -> tuple[Throttle, MemoryAttempts]:
    store = MemoryAttempts(clock=clock, **kw)
    return Throttle("login", store, limit=2, ip_limit=3, window_s=60.0), store


async def test_per_email_and_per_address() -> None:
    t, _ = throttle(Clock())
    await t.fail("email:a", "ip:1")
    assert not await t.blocked("email:a", "ip:1")
    await t.fail("email:a", "ip:1")
    assert await t.blocked("email:a", "ip:1")
    assert not await t.blocked("email:b", "ip:1")
    await t.fail("email:b", "ip:1")
    assert await t.blocked("email:c", "ip:1")  # the address is out of attempts
    assert not await t.blocked("email:c", "ip:2")


async def test_a_success_clears_the_email_never_the_address() -> None:
    """An attacker who owns one account must not reset the address's limit by signing in."""
    t, _ = throttle(Clock())
    await t.fail("email:victim1", "ip:1")
    await t.fail("email:victim2", "ip:1")
    await t.clear("email:mine")  # what a successful sign-in of the attacker's account clears
    await t.fail("email:victim3", "ip:1")
    assert await t.blocked("email:victim4", "ip:1")
    await t.clear("email:victim1")
    assert not await t.blocked("email:victim1", "ip:2")


async def test_window_slides() -> None:
    clock = Clock()
    t, _ = throttle(clock)
    await t.fail("email:a")
    clock.t += 30
    await t.fail("email:a")
    assert await t.blocked("email:a")
    clock.t += 31  # the first attempt left the window
    assert not await t.blocked("email:a")
    clock.t += 30
    assert not await t.blocked("email:a")


async def test_expired_keys_are_removed() -> None:
    clock = Clock()
    t, store = throttle(clock)
    store.sweep_s = 10.0
    for i in range(1000):
        await t.fail(f"email:{i}@random.test")
    assert len(store) == 1000
    clock.t += 61
    await t.fail("email:last")  # the periodic sweep drops every expired key
    assert len(store) == 1
    clock.t += 61
    assert not await t.blocked("email:last")
    assert len(store) == 0  # a key touched after its attempts expired goes at once


async def test_memory_is_bounded_under_a_flood() -> None:
    clock = Clock()
    t, store = throttle(clock, max_keys=100)
    for i in range(10_000):
        await t.fail(f"email:{i}@random.test", "ip:9")
        clock.t += 0.001
    assert len(store) <= 100
    assert await t.blocked("ip:9")  # the flooding address is still counted


async def test_throttles_keep_their_counts_apart() -> None:
    th = Throttles.in_memory()
    for _ in range(5):
        await th.login.fail("email:a")
    assert await th.login.blocked("email:a")
    assert not await th.reset.blocked("email:a")
    assert th.login.store is th.reset.store  # one store: one budget wherever it is used
