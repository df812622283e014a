"""In-process rate limits: requests per minute, tokens per minute, concurrent requests.

The limits that apply come from :func:`tollway.limits.specs.limit_specs` (the same list Redis
checks when several nodes share the load). Over a limit the answer is an immediate
:class:`RateLimited` naming the limit and its scope: never a hidden queue.

RPM and TPM are token buckets that refill continuously (capacity = the per-minute limit), so a
burst of a full minute's allowance is admitted and then paced. TPM reserves the estimated
tokens at admission and is corrected with the real count at settlement. A call refused after
its permit was taken (402: the balance cannot cover it) gives the permit back with
:meth:`Permit.refund`, so refused calls never use up a budget (docs/limits.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tollway.accounts.model import Account, ApiKey, Group
from tollway.limits.specs import LimitSpec, limit_specs, limited, too_big


@dataclass(slots=True)
class Bucket:
    capacity: int
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        rate = self.capacity / 60.0
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def wait_for(self, n: int) -> float:
        """Seconds until ``n`` tokens are there (0 when they are)."""
        if self.tokens >= n:
            return 0.0
        return (n - self.tokens) / (self.capacity / 60.0)

    def give_back(self, n: float) -> None:
        self.tokens = min(self.capacity, self.tokens + n)


@dataclass(slots=True)
class Gate:
    limit: int
    in_use: int = 0


@dataclass(slots=True)
class Permit:
    """What one admitted call holds; ``release`` once when it ends, or ``refund`` when the call
    is refused after all (nothing was served)."""

    rpm_buckets: list[Bucket] = field(default_factory=list)
    tpm_buckets: list[Bucket] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    reserved_tokens: int = 0
    released: bool = False

    def release(self, actual_tokens: int | None = None) -> None:
        if self.released:
            return
        self.released = True
        for gate in self.gates:
            gate.in_use -= 1
        if actual_tokens is not None:
            for bucket in self.tpm_buckets:
                bucket.give_back(self.reserved_tokens - actual_tokens)

    def refund(self) -> None:
        """Undo the whole admission: the request, its tokens and its concurrency slot."""
        if self.released:
            return
        self.release(0)
        for bucket in self.rpm_buckets:
            bucket.give_back(1)


NO_PERMIT = Permit(released=True)


class Limiter:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self._gates: dict[tuple[str, str], Gate] = {}
        self._now = time.monotonic

    def _bucket(self, spec: LimitSpec, now: float) -> Bucket:
        ident = (spec.kind, spec.scope, spec.ident)
        bucket = self._buckets.get(ident)
        if bucket is None or bucket.capacity != spec.limit:
            bucket = Bucket(spec.limit, float(spec.limit), now)
            self._buckets[ident] = bucket
        else:
            bucket.refill(now)
        return bucket

    def _gate(self, spec: LimitSpec) -> Gate:
        gate = self._gates.get((spec.scope, spec.ident))
        if gate is None:
            gate = Gate(spec.limit)
            self._gates[(spec.scope, spec.ident)] = gate
        gate.limit = spec.limit
        return gate

    def acquire(self, key: ApiKey, account: Account, group: Group, tokens: int) -> Permit:
        """Check every limit, then take them all (or none)."""
        now = self._now()
        permit = Permit(reserved_tokens=tokens)
        for spec in limit_specs(key, account, group):
            if spec.kind == "c":
                g = self._gate(spec)
                if g.in_use >= spec.limit:
                    raise limited(spec, 0, 1.0)
                permit.gates.append(g)
                continue
            b = self._bucket(spec, now)
            need = 1 if spec.kind == "r" else tokens
            if spec.kind == "t" and tokens > spec.limit:
                raise too_big(spec, tokens, int(max(b.tokens, 0)))
            wait = b.wait_for(need)
            if wait > 0:
                raise limited(spec, int(max(b.tokens, 0)), wait)
            (permit.rpm_buckets if spec.kind == "r" else permit.tpm_buckets).append(b)
        for b in permit.rpm_buckets:
            b.tokens -= 1
        for b in permit.tpm_buckets:
            b.tokens -= tokens
        for g in permit.gates:
            g.in_use += 1
        return permit
