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
from tollway.routing.sticky import sticky_order, sticky_start


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


def order_channels(
    channels: Sequence[Channel], rng: random.Random | None = None, sticky: str | None = None
) -> list[Channel]:
    """Highest priority first, weighted random inside a tier (or, with a ``sticky`` key, the
    key's own weighted rendezvous order: see :mod:`.sticky`)."""
    n = len(channels)
    if n == 0:
        return []
    if n == 1:
        return [channels[0]]
    if sticky is not None:
        return sticky_order(channels, sticky)
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


CredKey = tuple[str, int]


def cred_key(channel: Channel) -> CredKey:
    """Breakers are per credential: (channel id, credential index)."""
    return (channel.id, channel.key_index)


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
        self._breakers: dict[CredKey, Breaker] = {}
        self._degraded: set[CredKey] = set()  # credentials whose breaker is not closed
        self._rr: dict[str, int] = {}  # round-robin position per channel id

    def breaker(self, channel: Channel) -> Breaker:
        k = cred_key(channel)
        b = self._breakers.get(k)
        if b is None:
            b = self._breakers[k] = Breaker(channel.label, self.policy)
        return b

    def state(self, channel: Channel) -> BreakerState:
        """State of the credential ``channel`` stands for."""
        b = self._breakers.get(cred_key(channel))
        return BreakerState.CLOSED if b is None else b.state

    def order(
        self, channels: Sequence[Channel], rng: random.Random | None = None, sticky: str | None = None
    ) -> list[Channel]:
        """Credentials to try, best first: channels in priority/weight order, and inside a
        channel its credentials whose breaker lets a call through, rotated round-robin from call
        to call; when no credential of any channel is usable, all of them (a last resort beats
        a certain error). A ``sticky`` key (account and model) replaces both random choices
        with the key's own stable order, so its calls keep one upstream while it is usable."""
        now = self.clock()
        usable: list[tuple[Channel, list[Channel]]] = []
        for c in channels:
            creds = c.credentials()
            if self._degraded:
                creds = [x for x in creds if (b := self._breakers.get(cred_key(x))) is None or b.allows(now)]
            if creds:
                usable.append((c, creds))
        if not usable:
            return [x for c in order_channels(channels, rng, sticky) for x in c.credentials()]
        by_id = {c.id: creds for c, creds in usable}
        out: list[Channel] = []
        for c in order_channels([c for c, _ in usable], rng, sticky):
            creds = by_id[c.id]
            if len(creds) > 1 and sticky is not None:
                n_all = len(c.keys)
                start = sticky_start(sticky, c.id, n_all)
                creds = sorted(creds, key=lambda x: (x.key_index - start) % n_all)
            elif len(creds) > 1:
                n = self._rr.get(c.id, 0)
                self._rr[c.id] = n + 1
                i = n % len(creds)
                creds = creds[i:] + creds[:i]
            out.extend(creds)
        return out

    def before_attempt(self, channel: Channel) -> None:
        """A call is about to go to ``channel``: if its breaker is not closed, it is the probe."""
        b = self._breakers.get(cred_key(channel))
        if b is None or b.state is BreakerState.CLOSED:
            return
        now = self.clock()
        if b.allows(now):
            self._emit(channel, b.begin_probe(now))

    def record(self, channel: Channel, outcome: Outcome, reason: str = "") -> None:
        if outcome is Outcome.NEUTRAL:
            b = self._breakers.get(cred_key(channel))
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
        b = self._breakers.get(cred_key(channel))
        if b is not None:
            b.probing = False

    def due_probes(self, channels: Sequence[Channel]) -> list[Channel]:
        """Credentials (per-credential channel views) whose breaker is open or disabled and
        whose back-off has elapsed; each is marked as probing (so the data plane does not probe
        it at the same time)."""
        now = self.clock()
        due: list[Channel] = []
        for c in (x for ch in channels for x in ch.credentials()):
            b = self._breakers.get(cred_key(c))
            if b is None or b.state is BreakerState.CLOSED or not b.allows(now):
                continue
            self._emit(c, b.begin_probe(now))
            due.append(c)
        return due

    def adopt(
        self, key: CredKey, name: str, state: BreakerState, open_until: float, backoff_s: float
    ) -> bool:
        """Apply a state another node decided (its breaker opened, the credential was
        disabled, a probe closed it). Never calls ``on_transition``: nothing is announced
        again, so nodes do not echo each other. False when nothing changed."""
        b = self._breakers.get(key)
        if b is None:
            if state is BreakerState.CLOSED:
                return False
            b = self._breakers[key] = Breaker(name, self.policy)
        changed = b.state is not state or b.open_until != open_until
        b.adopt(state, open_until, backoff_s)
        if state is BreakerState.CLOSED:
            self._degraded.discard(key)
        else:
            self._degraded.add(key)
        return changed

    def states(self, channels: Sequence[Channel]) -> dict[str, BreakerState]:
        return {x.label: self.state(x) for c in channels for x in c.credentials()}

    def _emit(self, channel: Channel, transition: Transition | None) -> None:
        if transition is None or transition.before is transition.after:
            return  # a failure while already open only lengthens the back-off
        if transition.after is BreakerState.CLOSED:
            self._degraded.discard(cred_key(channel))
        else:
            self._degraded.add(cred_key(channel))
        if transition is not None and self.on_transition is not None:
            self.on_transition(ChannelTransition(channel, transition))
