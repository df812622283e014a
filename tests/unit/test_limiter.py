from __future__ import annotations

import pytest

from tollway.accounts.model import Account, AccountStatus, ApiKey, Group, KeyStatus, Limits, Role
from tollway.errors import RateLimited
from tollway.limits.limiter import Limiter
from tollway.money import ONE


def _key(limits: Limits = Limits()) -> ApiKey:
    return ApiKey("key", "acct", "k", "sk-abc", "g", KeyStatus.ENABLED, None, None, frozenset(), (), limits)


def _acct(limits: Limits = Limits()) -> Account:
    return Account("acct", "a@b.c", Role.CUSTOMER, AccountStatus.ACTIVE, limits)


def _group(limits: Limits = Limits(), total: int | None = None) -> Group:
    return Group("g", ONE, frozenset(), limits, total)


def test_rpm_per_key_then_429_naming_scope() -> None:
    lim = Limiter()
    for _ in range(2):
        lim.acquire(_key(Limits(rpm=2)), _acct(), _group(), 10).release(10)
    with pytest.raises(RateLimited) as info:
        lim.acquire(_key(Limits(rpm=2)), _acct(), _group(), 10)
    assert info.value.scope == "key"
    assert info.value.limit_name == "requests per minute"
    assert info.value.retry_after_s >= 1


def test_group_defaults_apply_per_account() -> None:
    lim = Limiter()
    lim.acquire(_key(), _acct(), _group(Limits(concurrency=1)), 1)
    with pytest.raises(RateLimited) as info:
        lim.acquire(_key(), _acct(), _group(Limits(concurrency=1)), 1)
    assert info.value.scope == "account"


def test_group_total_concurrency_and_release() -> None:
    lim = Limiter()
    permit = lim.acquire(_key(), _acct(), _group(total=1), 1)
    with pytest.raises(RateLimited) as info:
        lim.acquire(_key(), _acct(), _group(total=1), 1)
    assert info.value.scope == "group"
    permit.release(1)
    permit.release(1)  # releasing twice changes nothing
    lim.acquire(_key(), _acct(), _group(total=1), 1)


def test_tpm_reserves_then_corrects() -> None:
    lim = Limiter()
    permit = lim.acquire(_key(Limits(tpm=1000)), _acct(), _group(), 900)
    with pytest.raises(RateLimited):
        lim.acquire(_key(Limits(tpm=1000)), _acct(), _group(), 200)
    permit.release(100)  # the call used far less than reserved
    lim.acquire(_key(Limits(tpm=1000)), _acct(), _group(), 200)


def test_a_rejected_call_consumes_nothing() -> None:
    lim = Limiter()
    lim.acquire(_key(Limits(rpm=5)), _acct(), _group(Limits(concurrency=1)), 1)
    for _ in range(3):
        with pytest.raises(RateLimited):
            lim.acquire(_key(Limits(rpm=5)), _acct(), _group(Limits(concurrency=1)), 1)
    # the key's RPM bucket was not charged for the rejected calls
    assert lim._buckets[("r", "key", "key")].tokens == pytest.approx(4, abs=0.01)


def test_a_refunded_permit_gives_everything_back() -> None:
    """A call refused with 402 after its permit: rpm, tpm and the concurrency slot return."""
    lim = Limiter()
    key = _key(Limits(rpm=2, tpm=1000, concurrency=1))
    permit = lim.acquire(key, _acct(), _group(), 600)
    permit.refund()
    permit.refund()  # once only
    first = lim.acquire(key, _acct(), _group(), 600)
    first.release(600)
    lim.acquire(key, _acct(), _group(), 300).release(300)  # the 2nd of rpm=2: the refund did not count
    with pytest.raises(RateLimited) as third:
        lim.acquire(key, _acct(), _group(), 1)
    assert third.value.limit_name == "requests per minute"
