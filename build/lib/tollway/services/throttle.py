"""Counting attempts per key in a sliding window, in memory and per process: failed sign-ins
and two-factor codes (console and ``/api/auth/login``), sign-ups and reset mails."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class Throttle:
    """Failed sign-ins in the last ``window_s``: at most ``limit`` per email, and ``ip_limit``
    per client address (higher: many people may share one address behind a NAT)."""

    def __init__(self, limit: int = 5, ip_limit: int = 30, window_s: float = 900.0) -> None:
        self.limit, self.ip_limit, self.window_s = limit, ip_limit, window_s
        self.fails: dict[str, deque[float]] = defaultdict(deque)

    def _live(self, key: str) -> deque[float]:
        q, now = self.fails[key], time.monotonic()
        while q and q[0] < now - self.window_s:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(len(self._live(k)) >= (self.ip_limit if k.startswith("ip:") else self.limit) for k in keys)

    def fail(self, *keys: str) -> None:
        for k in keys:
            self._live(k).append(time.monotonic())

    def clear(self, *keys: str) -> None:
        for k in keys:
            self.fails.pop(k, None)
