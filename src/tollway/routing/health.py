"""Channel health: one :class:`Breaker` per channel credential, held by the app.

The data plane asks :meth:`ChannelHealth.order` for the channels of a call (healthy ones
first, in priority tiers, weighted random inside a tier; open or disabled credentials are
skipped unless nothing else is left, and one whose back-off has elapsed is let through as
the probe), tells it about each attempt (:meth:`before_attempt`, :meth:`record`), and the
prober asks :meth:`due_probes` for credentials to test. Every state change is handed to
``on_transition`` (audit log, metrics, webhook: the app's business, never awaited here).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tollway.catalog.model import Channel
from tollway.routing.breaker import Breaker, BreakerPolicy, BreakerState, Transition


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # connect error, timeout, 429, 5xx: counts towards opening the breaker
    DISABLE = "disable"  # upstream refused the credential (401/403) or its quota is gone
    NEUTRAL = "neutral"  # the request itself was refused (4xx): says nothing about the channel


QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded", "billing_hard_limit_reached"})


def classify(status: int, code: str | None) -> Outcome:
    """What an upstream HTTP answer says about the credential that got it."""
    if status < 400:
        return Outcome.OK
    if status in (401, 403, 402):
        return Outcome.DISABLE
    if status == 429:
        return Outcome.DISABLE if code in QUOTA_CODES else Outcome.FAILED
    if status >= 500:
        return Outcome.FAILED
    return Outcome.NEUTRAL


@dataclass(frozen=True, slots=True)
class ChannelTransition:
    channel: Channel
    transition: Transition


def order_channels(channels: Sequence[Channel], rng: random.Random | None = None) -> list[Channel]:
    """Highest priority first, weighted random inside a tier."""
    n = len(channels)
    if n == 0:
        return []
    if n == 1:
        return [channels[0]]
    rand = (rng or _RNG).random
    tiers: dict[int, list[Channel]] = {}
    for c in channels:
        tiers.setdefault(c.priority, []).append(c)
    ordered: list[Channel] = []
    for prio in sorted(tiers, reverse=True):
        pool = tiers[prio]
        if len(pool) == 1:
            ordered.append(pool[0])
            continue
        pool = list(pool)
        weights = [max(c.weight, 1) for c in pool]
        while pool:
            if len(pool) == 1:
                ordered.append(pool[0])
                break
            i = _weighted_index(rand(), weights)
            ordered.append(pool.pop(i))
            weights.pop(i)
    return ordered


_RNG = random.Random()


def _weighted_index(u: float, weights: list[int]) -> int:
    r = u * sum(weights)
    for i, w in enumerate(weights):
        r -= w
        if r < 0:
            return i
    return len(weights) - 1


class ChannelHealth:
    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        on_transition: Callable[[ChannelTransition], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self.on_transition = on_transition
        self.clock = clock
        self._breakers: dict[str, Breaker] = {}
        self._degraded: set[str] = set()  # channel ids whose breaker is not closed

    def breaker(self, channel: Channel) -> Breaker:
        b = self._breakers.get(channel.id)
        if b is None:
            b = self._breakers[channel.id] = Breaker(channel.name, self.policy)
        return b

    def state(self, channel: Channel) -> BreakerState:
        b = self._breakers.get(channel.id)
        return BreakerState.CLOSED if b is None else b.state

    def order(self, channels: Sequence[Channel], rng: random.Random | None = None) -> list[Channel]:
        """Channels to try, best first: the ones whose breaker lets a call through; when none
        does, all of them (a last resort beats a certain error)."""
        if not self._degraded:  # every credential healthy: the fast path
            return order_channels(channels, rng)
        now = self.clock()
        usable = [c for c in channels if (b := self._breakers.get(c.id)) is None or b.allows(now)]
        return order_channels(usable or channels, rng)

    def before_attempt(self, channel: Channel) -> None:
        """A call is about to go to ``channel``: if its breaker is not closed, it is the probe."""
        b = self._breakers.get(channel.id)
        if b is None or b.state is BreakerState.CLOSED:
            return
        now = self.clock()
        if b.allows(now):
            self._emit(channel, b.begin_probe(now))

    def record(self, channel: Channel, outcome: Outcome, reason: str = "") -> None:
        if outcome is Outcome.NEUTRAL:
            b = self._breakers.get(channel.id)
            if b is not None:
                b.probing = False  # the probe got an answer; the credential works
                self._emit(channel, b.success(self.clock()))
            return
        if outcome is Outcome.OK:
            self._emit(channel, self.breaker(channel).success(self.clock()))
            return
        b = self.breaker(channel)
        now = self.clock()
        if outcome is Outcome.DISABLE:
            self._emit(channel, b.disable(now, reason or "upstream refused the credential"))
        else:
            self._emit(channel, b.failure(now, reason or "upstream failed"))

    def cancel_probe(self, channel: Channel) -> None:
        """The attempt ended without an answer either way (the client left, shutdown): let the
        next call or probe try again instead of waiting for an outcome that never comes."""
        b = self._breakers.get(channel.id)
        if b is not None:
            b.probing = False

    def due_probes(self, channels: Sequence[Channel]) -> list[Channel]:
        """Channels whose breaker is open or disabled and whose back-off has elapsed; each is
        marked as probing (so the data plane does not probe it at the same time)."""
        now = self.clock()
        due: list[Channel] = []
        for c in channels:
            b = self._breakers.get(c.id)
            if b is None or b.state is BreakerState.CLOSED or not b.allows(now):
                continue
            self._emit(c, b.begin_probe(now))
            due.append(c)
        return due

    def states(self, channels: Sequence[Channel]) -> dict[str, BreakerState]:
        return {c.name: self.state(c) for c in channels}

    def _emit(self, channel: Channel, transition: Transition | None) -> None:
        if transition is None or transition.before is transition.after:
            return  # a failure while already open only lengthens the back-off
        if transition.after is BreakerState.CLOSED:
            self._degraded.discard(channel.id)
        else:
            self._degraded.add(channel.id)
        if transition is not None and self.on_transition is not None:
            self.on_transition(ChannelTransition(channel, transition))
