"""The cross-account sweep's judgement, kept apart from the app so that it can be tested on its
own (tests/unit/test_sweep_oracle.py feeds it deliberately leaking answers).

An attempt is someone's request for another account's resource. It is clean when the answer
is a refusal (401, 403 or 404; a route public by design may answer otherwise) **and** the
answer's body contains none of the owner's markers — ids, email, secrets — except those the
request itself carried (a 404 may echo the id it was asked for: that tells the caller nothing
new). Writes are judged separately, by comparing database snapshots before and after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DENIED = frozenset({401, 403, 404})

Row = tuple[object, ...]
Snapshot = Mapping[str, frozenset[Row]]


@dataclass(frozen=True)
class Attempt:
    who: str
    method: str
    route: str  # the template, e.g. GET /api/me/keys/{key_id}
    sent: str  # what went on the wire: the URL (with query) and the body, as text
    status: int
    body: str


@dataclass(frozen=True)
class Verdict:
    attempt: Attempt
    problems: tuple[str, ...]

    def __str__(self) -> str:
        a = self.attempt
        return f"{a.who}: {a.route} ({a.sent[:160]}) -> {a.status}: {', '.join(self.problems)}"


def leaked(body: str, sent: str, markers: Mapping[str, str]) -> list[str]:
    """The names of the markers found in ``body`` that the request did not carry itself."""
    low_body, low_sent = body.lower(), sent.lower()
    return [
        name
        for name, value in markers.items()
        if value and value.lower() in low_body and value.lower() not in low_sent
    ]


def judge(attempt: Attempt, markers: Mapping[str, str], *, allowed: Iterable[int] = DENIED) -> Verdict:
    problems: list[str] = []
    if attempt.status not in set(allowed):
        problems.append(f"answered {attempt.status}, not a refusal")
    problems += [f"leaks {name}" for name in leaked(attempt.body, attempt.sent, markers)]
    return Verdict(attempt, tuple(problems))


def changed_tables(before: Snapshot, after: Snapshot) -> dict[str, tuple[int, int]]:
    """Tables whose rows differ: ``{table: (rows gone, rows new)}`` (a changed row counts in both)."""
    out: dict[str, tuple[int, int]] = {}
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, frozenset()), after.get(table, frozenset())
        if old != new:
            out[table] = (len(old - new), len(new - old))
    return out


@dataclass
class SweepReport:
    tried: int = 0
    by_who: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # route -> why it takes no one's id
    allowed_by_role: int = 0  # (route, principal) pairs the role may do: not tried
    failures: list[str] = field(default_factory=list)

    def record(self, verdict: Verdict, writes: Mapping[str, tuple[int, int]]) -> None:
        self.tried += 1
        who = verdict.attempt.who
        self.by_who[who] = self.by_who.get(who, 0) + 1
        if verdict.problems:
            self.failures.append(str(verdict))
        if writes:
            self.failures.append(f"{verdict.attempt.who}: {verdict.attempt.route} wrote {dict(writes)}")
