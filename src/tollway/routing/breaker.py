"""Circuit breakers, one per channel credential (DESIGN.md §7).

States: closed (calls flow) → open (no calls) → half-open (one probe) → closed or open again.
A breaker opens after ``consecutive_failures`` failures in a row, or when at least
``min_calls`` calls in the last ``window_s`` seconds failed at ``failure_rate`` or more. It stays
open for ``open_s`` seconds, doubling on every failed probe up to ``max_open_s``. An upstream
authentication or quota error disables the credential outright (``disabled``) until a probe
succeeds: retrying a revoked key only burns time.

Pure domain: the clock is passed in, nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    min_calls: int = 20
    window_s: float = 60.0
    open_s: float = 30.0
    max_open_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change, for the audit log, the metrics and alerts."""

    breaker: str
    before: BreakerState
    after: BreakerState
    reason: str
    at: float


@dataclass(slots=True)
class Breaker:
    name: str
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    state: BreakerState = BreakerState.CLOSED
    consecutive: int = 0
    open_until: float = 0.0
    backoff_s: float = 0.0
    probing: bool = False
    _calls: deque[tuple[float, bool]] = field(default_factory=deque)

    def allows(self, now: float) -> bool:
        """May a call go to this credential now? Half-open admits exactly one probe."""
        if self.state is BreakerState.CLOSED:
            return True
        return (
            self.state in (BreakerState.OPEN, BreakerState.DISABLED)
            and now >= self.open_until
            and not self.probing
        )

    def begin_probe(self, now: float) -> Transition | None:
        """Mark the call that :meth:`allows` let through while open as the single probe."""
        if self.state is BreakerState.CLOSED or self.probing:
            return None
        self.probing = True
        if self.state is BreakerState.OPEN:
            return self._move(BreakerState.HALF_OPEN, "probe after back-off", now)
        return None

    def success(self, now: float) -> Transition | None:
        self._record(now, ok=True)
        self.consecutive = 0
        self.probing = False
        if self.state is not BreakerState.CLOSED:
            self.backoff_s = 0.0
            return self._move(BreakerState.CLOSED, "a call succeeded", now)
        return None

    def failure(self, now: float, reason: str) -> Transition | None:
        self._record(now, ok=False)
        self.consecutive += 1
        was_probe = self.probing
        self.probing = False
        if self.state in (BreakerState.HALF_OPEN, BreakerState.OPEN) or was_probe:
            self.backoff_s = min(max(self.backoff_s * 2, self.policy.open_s), self.policy.max_open_s)
            self.open_until = now + self.backoff_s
            if self.state is BreakerState.DISABLED:
                return None
            return self._move(BreakerState.OPEN, f"probe failed: {reason}", now)
        if self.state is BreakerState.CLOSED and self._should_open(now):
            self.backoff_s = self.policy.open_s
            self.open_until = now + self.backoff_s
            return self._move(BreakerState.OPEN, reason, now)
        return None

    def disable(self, now: float, reason: str) -> Transition | None:
        """Upstream said the credential is invalid or out of quota: stop using it until a probe works."""
        self.probing = False
        self.backoff_s = self.policy.open_s
        self.open_until = now + self.backoff_s
        if self.state is BreakerState.DISABLED:
            return None
        return self._move(BreakerState.DISABLED, reason, now)

    def adopt(self, state: BreakerState, open_until: float, backoff_s: float) -> None:
        """Take the state another node decided (shared health): no transition of our own."""
        self.probing = False
        self.state = state
        self.open_until = open_until
        self.backoff_s = backoff_s
        if state is BreakerState.CLOSED:
            self.consecutive = 0
            self._calls.clear()

    def _should_open(self, now: float) -> bool:
        if self.consecutive >= self.policy.consecutive_failures:
            return True
        calls = len(self._calls)
        if calls < self.policy.min_calls:
            return False
        failures = sum(1 for _, ok in self._calls if not ok)
        return failures >= self.policy.failure_rate * calls

    def _record(self, now: float, *, ok: bool) -> None:
        self._calls.append((now, ok))
        horizon = now - self.policy.window_s
        while self._calls and self._calls[0][0] < horizon:
            self._calls.popleft()

    def _move(self, after: BreakerState, reason: str, now: float) -> Transition:
        before, self.state = self.state, after
        return Transition(self.name, before, after, reason, now)
