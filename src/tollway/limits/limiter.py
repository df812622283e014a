"""In-process rate limits: requests per minute, tokens per minute, concurrent requests.

Scopes: the key, the account (its own limits, else its group's per-account defaults), and the
group as a whole (total concurrency). Over a limit the answer is an immediate
:class:`RateLimited` naming the limit and its scope: never a hidden queue.

RPM and TPM are token buckets that refill continuously (capacity = the per-minute limit), so a
burst of a full minute's allowance is admitted and then paced. TPM reserves the estimated
tokens at admission and is corrected with the real count at settlement.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from tollway.accounts.model import Account, ApiKey, Group
from tollway.errors import RateLimited


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


@dataclass(slots=True)
class Gate:
    limit: int
    in_use: int = 0


@dataclass(slots=True)
class Permit:
    """What one admitted call holds; ``release`` once when it ends."""

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
            correction = self.reserved_tokens - actual_tokens
            for bucket in self.tpm_buckets:
                bucket.tokens = min(bucket.capacity, bucket.tokens + correction)


@dataclass(frozen=True, slots=True)
class _Check:
    name: str  # "requests per minute" ...
    scope: str  # "key" | "account" | "group"
    limit: int


class Limiter:
    def __init__(self) -> None:
        self._rpm: dict[tuple[str, str], Bucket] = {}
        self._tpm: dict[tuple[str, str], Bucket] = {}
        self._gates: dict[tuple[str, str], Gate] = {}
        self._now = time.monotonic

    def _bucket(
        self, table: dict[tuple[str, str], Bucket], ident: tuple[str, str], limit: int, now: float
    ) -> Bucket:
        bucket = table.get(ident)
        if bucket is None or bucket.capacity != limit:
            bucket = Bucket(limit, float(limit), now)
            table[ident] = bucket
        else:
            bucket.refill(now)
        return bucket

    def _gate(self, ident: tuple[str, str], limit: int) -> Gate:
        gate = self._gates.get(ident)
        if gate is None:
            gate = Gate(limit)
            self._gates[ident] = gate
        gate.limit = limit
        return gate

    def acquire(self, key: ApiKey, account: Account, group: Group, tokens: int) -> Permit:
        now = self._now()
        acct = account.limits
        dflt = group.account_limits
        scopes = (
            ("key", key.id, key.limits.rpm, key.limits.tpm, key.limits.concurrency),
            (
                "account",
                account.id,
                acct.rpm if acct.rpm is not None else dflt.rpm,
                acct.tpm if acct.tpm is not None else dflt.tpm,
                acct.concurrency if acct.concurrency is not None else dflt.concurrency,
            ),
            ("group", group.name, None, None, group.total_concurrency),
        )
        rpm_take: list[Bucket] = []
        tpm_take: list[Bucket] = []
        gates: list[Gate] = []
        for scope, ident, rpm, tpm, conc in scopes:
            if rpm:
                b = self._bucket(self._rpm, (scope, ident), rpm, now)
                wait = b.wait_for(1)
                if wait > 0:
                    raise _limited("requests per minute", scope, rpm, int(b.tokens), wait)
                rpm_take.append(b)
            if tpm:
                b = self._bucket(self._tpm, (scope, ident), tpm, now)
                if tokens > tpm:
                    raise RateLimited(
                        f"this request needs about {tokens} tokens, more than the {scope}'s limit of "
                        f"{tpm} tokens per minute; send a smaller request or ask for a higher limit",
                        limit_name="tokens per minute",
                        scope=scope,
                        limit=tpm,
                        remaining=int(max(b.tokens, 0)),
                        retry_after_s=60.0,
                    )
                wait = b.wait_for(tokens)
                if wait > 0:
                    raise _limited("tokens per minute", scope, tpm, int(max(b.tokens, 0)), wait)
                tpm_take.append(b)
            if conc:
                g = self._gate((scope, ident), conc)
                if g.in_use >= conc:
                    raise _limited("concurrent requests", scope, conc, 0, 1.0)
                gates.append(g)
        for b in rpm_take:
            b.tokens -= 1
        for b in tpm_take:
            b.tokens -= tokens
        for g in gates:
            g.in_use += 1
        return Permit(tpm_take, gates, tokens)


def _limited(name: str, scope: str, limit: int, remaining: int, wait: float) -> RateLimited:
    retry = max(1, math.ceil(wait))
    return RateLimited(
        f"Rate limit reached: {limit} {name} per {scope}; retry after {retry}s",
        limit_name=name,
        scope=scope,
        limit=limit,
        remaining=max(remaining, 0),
        retry_after_s=float(retry),
    )
