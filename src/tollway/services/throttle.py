"""Counting attempts per key in a sliding window: failed sign-ins and two-factor codes (one
budget for the console and ``/api/auth/login``), sign-ups and reset mails.

A :class:`Throttle` is a policy (limits, window) over an :class:`AttemptStore`: in memory and
per process (:class:`MemoryAttempts`, bounded: expired keys are swept and the number of keys is
capped), or in Redis and shared by every node (:mod:`tollway.cluster.shared_throttle`). The
app builds one :class:`Throttles` and hands it to both the API and the console.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


class AttemptStore(Protocol):
    async def counts(self, keys: Sequence[str], window_s: float) -> list[int]:
        """Attempts of each key in the last ``window_s`` seconds."""
        ...

    async def add(self, keys: Sequence[str], window_s: float) -> None:
        """Count one attempt now for each key."""
        ...

    async def clear(self, keys: Sequence[str]) -> None: ...


class MemoryAttempts:
    """Attempt times per key in this process. Keys whose attempts have all expired are removed
    (the key touched at once, every key at least once a ``sweep_s``); past ``max_keys`` the
    least recently tried keys go first, so memory stays bounded under a flood of random emails
    (and the flooding address, tried last, is the one kept)."""

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        sweep_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_keys = max_keys
        self.sweep_s = sweep_s
        self.clock = clock
        self._times: dict[str, tuple[float, deque[float]]] = {}  # key -> (window, attempt times)
        self._last_sweep = clock()

    def __len__(self) -> int:
        return len(self._times)

    def _live(self, key: str, now: float) -> deque[float] | None:
        entry = self._times.get(key)
        if entry is None:
            return None
        window, q = entry
        while q and q[0] <= now - window:
            q.popleft()
        if not q:
            del self._times[key]
            return None
        return q

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for key in list(self._times):
            self._live(key, now)

    async def counts(self, keys: Sequence[str], window_s: float) -> list[int]:
        now = self.clock()
        return [len(q) if (q := self._live(k, now)) is not None else 0 for k in keys]

    async def add(self, keys: Sequence[str], window_s: float) -> None:
        now = self.clock()
        if now - self._last_sweep >= self.sweep_s:
            self._sweep(now)
        for k in keys:
            q = self._live(k, now)
            if q is None:
                while len(self._times) >= self.max_keys:  # forget the least recently tried key
                    del self._times[next(iter(self._times))]
                q = deque()
            else:
                del self._times[k]  # re-inserted below: the dict stays in order of last attempt
            self._times[k] = (window_s, q)
            q.append(now)

    async def clear(self, keys: Sequence[str]) -> None:
        for k in keys:
            self._times.pop(k, None)


@dataclass(frozen=True, slots=True)
class Throttle:
    """At most ``limit`` attempts per key in the last ``window_s``, ``ip_limit`` for ``ip:``
    keys (higher: many people may share one address behind a NAT). ``name`` keeps the counts
    of different throttles apart in a shared store."""

    name: str
    store: AttemptStore
    limit: int = 5
    ip_limit: int = 30
    window_s: float = 900.0

    def _k(self, keys: Sequence[str]) -> list[str]:
        return [f"{self.name}:{k}" for k in keys]

    async def blocked(self, *keys: str) -> bool:
        counts = await self.store.counts(self._k(keys), self.window_s)
        return any(
            n >= (self.ip_limit if k.startswith("ip:") else self.limit)
            for k, n in zip(keys, counts, strict=True)
        )

    async def fail(self, *keys: str) -> None:
        await self.store.add(self._k(keys), self.window_s)

    async def clear(self, *keys: str) -> None:
        """Forget the attempts of ``keys`` (a successful sign-in clears its email or account,
        never the address: one owned account must not reset the limit of an address)."""
        await self.store.clear(self._k(keys))


@dataclass(frozen=True, slots=True)
class Throttles:
    """The throttles of one app, shared by the API and the console."""

    login: Throttle  # failed passwords and two-factor codes: 5 per email or account, 30 per address
    signup: Throttle  # counted per request: 10 sign-ups per address an hour
    reset: Throttle  # reset mails: 3 per email, 20 per address an hour

    @classmethod
    def on(cls, store: AttemptStore) -> Throttles:
        return cls(
            login=Throttle("login", store, limit=5, ip_limit=30, window_s=900.0),
            signup=Throttle("signup", store, limit=10, ip_limit=10, window_s=3600.0),
            reset=Throttle("reset", store, limit=3, ip_limit=20, window_s=3600.0),
        )

    @classmethod
    def in_memory(cls) -> Throttles:
        return cls.on(MemoryAttempts())
