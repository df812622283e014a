"""Which limits apply to a call: one list for the in-process limiter and for Redis.

Scopes: the key, the account (its own limits, else its group's per-account defaults), and the
group as a whole (total concurrency). Kinds: ``r`` requests per minute, ``t`` tokens per
minute, ``c`` concurrent requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tollway.accounts.model import Account, ApiKey, Group
from tollway.errors import RateLimited

NAMES = {"r": "requests per minute", "t": "tokens per minute", "c": "concurrent requests"}


@dataclass(frozen=True, slots=True)
class LimitSpec:
    kind: str  # "r" | "t" | "c"
    scope: str  # "key" | "account" | "group"
    ident: str
    limit: int

    @property
    def name(self) -> str:
        return NAMES[self.kind]


def limit_specs(key: ApiKey, account: Account, group: Group) -> tuple[LimitSpec, ...]:
    acct, dflt = account.limits, group.account_limits
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
    out: list[LimitSpec] = []
    for scope, ident, rpm, tpm, conc in scopes:
        if rpm:
            out.append(LimitSpec("r", scope, ident, rpm))
        if tpm:
            out.append(LimitSpec("t", scope, ident, tpm))
        if conc:
            out.append(LimitSpec("c", scope, ident, conc))
    return tuple(out)


def limited(spec: LimitSpec, remaining: int, wait_s: float) -> RateLimited:
    """The 429 for ``spec``: names the limit and its scope, with when to retry."""
    retry = max(1, math.ceil(wait_s))
    return RateLimited(
        f"Rate limit reached: {spec.limit} {spec.name} per {spec.scope}; retry after {retry}s",
        limit_name=spec.name,
        scope=spec.scope,
        limit=spec.limit,
        remaining=max(remaining, 0),
        retry_after_s=float(retry),
    )


def too_big(spec: LimitSpec, tokens: int, remaining: int) -> RateLimited:
    return RateLimited(
        f"this request needs about {tokens} tokens, more than the {spec.scope}'s limit of "
        f"{spec.limit} tokens per minute; send a smaller request or ask for a higher limit",
        limit_name=spec.name,
        scope=spec.scope,
        limit=spec.limit,
        remaining=max(remaining, 0),
        retry_after_s=60.0,
    )
