"""The cross-account sweep: every route that takes an id, tried with another account's ids.

The routes come from ``/api/openapi.json`` and the console's route table
(:mod:`cross_account`); B owns one of everything (:mod:`sweep_world`). Tried as: customer A's
session (API bearer and console cookie), A's API key, a support session, an admin session
and the admin token — each where its role must be refused (an account's own routes refuse
everyone but the owner; staff routes refuse customers and keys; admin routes also refuse
support). Routes public by design (the payment return) are tried anonymously and as A.

Asserted: every answer is 401/403/404 (public routes: anything but a 5xx); no answer carries
any of B's ids, email or secrets beyond what the request itself sent; no attempt changed any
row of any table (a snapshot of the whole database after every attempt). Then the positive
control: the same GET routes as B (own routes) or the admin token (staff routes) answer 200
with B's data, so the ids tried were live and the oracle would have seen them.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
from cross_account import (
    Target,
    api_roles,
    api_targets,
    console_query_targets,
    console_targets,
    denied,
    snapshot,
)
from sweep_world import Who, World, sweep_world

from sweep_oracle import DENIED, Attempt, SweepReport, changed_tables, judge, leaked
from tollway.payments.views import PUBLIC_ORDER_FIELDS
from tollway.relay.app import POST_ROUTES

ANONYMOUS = Who("anonymous", "anonymous")
PUBLIC_ANSWERS = frozenset({200, 303, 400, 404})
OWN_PAGE = frozenset({200})  # one's own page, filtered by another account's id: empty, not refused


async def send(w: World, who: Who, t: Target) -> tuple[httpx2.Response, Attempt]:
    headers: dict[str, str] = {}
    if t.surface == "api":
        headers.update(who.api_headers())
        headers["accept"] = "application/json"  # the payment return answers JSON then
    else:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in who.console_cookies().items())
    if t.content_type:
        headers["content-type"] = t.content_type
    r = await w.client.request(t.method, t.url, headers=headers, content=t.body)
    sent = f"{t.url} {t.body.decode()}"
    return r, Attempt(who.name, t.method, t.route, sent, r.status_code, r.text)


def principals(w: World, t: Target) -> list[Who]:
    if t.role == "public":
        return [ANONYMOUS, w.a]
    if t.surface == "api":
        return [w.a, w.a_key, w.support, w.admin, w.token]
    return [w.a, w.support, w.admin]


async def sweep(w: World) -> tuple[SweepReport, list[Target]]:
    doc = (await w.client.get("/api/openapi.json")).json()
    api = list(api_targets(doc, api_roles(w.rig.app.control), w.owned))
    unfilled = [t for t in api if isinstance(t, str)]
    assert not unfilled, unfilled  # a parameter the sweep has no value for: add one
    report = SweepReport()
    console: list[Target] = []
    for t in console_targets(w.rig.app.control, w.owned):
        if isinstance(t, tuple):
            report.skipped[t[0]] = t[1]
        else:
            console.append(t)
    targets = [t for t in api if isinstance(t, Target)] + console + list(console_query_targets(w.owned))
    markers = w.owned.markers()
    await w.rig.app.write_holds()
    before = await snapshot(w.rig.app.engine)
    for t in targets:
        for who in principals(w, t):
            if t.role != "public" and not denied(t.role, who.role):
                report.allowed_by_role += 1
                continue
            _, attempt = await send(w, who, t)
            after = await snapshot(w.rig.app.engine)
            allowed = {"public": PUBLIC_ANSWERS, "filter": OWN_PAGE}.get(t.role, DENIED)
            report.record(judge(attempt, markers, allowed=allowed), changed_tables(before, after))
            before = after
    return report, targets


async def positive_control(w: World, targets: list[Target]) -> int:
    """The GET routes swept, as someone who may: 200, with B's data in the answer."""
    shown = 0
    for t in targets:
        if t.method != "GET" or t.role in ("public", "filter"):
            continue
        owner = t.role == "session"
        who = (w.b if owner else w.token) if t.surface == "api" else (w.b if owner else w.admin)
        r, attempt = await send(w, who, t)
        shows = r.headers.get("location", "") if r.status_code == 303 else attempt.body  # search
        assert r.status_code in (200, 303), (who.name, t.url, r.status_code, r.text[:300])
        found = leaked(shows, "", w.owned.markers())
        assert found, (who.name, t.url, "B's data is not in the answer: the sweep tried a dead id")
        shown += 1
    return shown


async def test_no_account_reaches_another_accounts_resources(tmp_path: Path) -> None:
    assert not [p for p in POST_ROUTES if "{" in p]  # no data-plane route takes an id
    async with sweep_world(tmp_path) as w:
        report, targets = await sweep(w)
        routes = {(t.surface, t.route) for t in targets}
        print(
            f"\nsweep: {len({r for r in routes if r[0] == 'api'})} API operations and "
            f"{len({r for r in routes if r[0] == 'console'})} console routes with ids, "
            f"{len(targets)} filled requests; {report.tried} attempts ({report.by_who}), "
            f"{report.allowed_by_role} (route, principal) pairs allowed by role and not tried; "
            f"{len(report.failures)} failures"
        )
        for route, why in report.skipped.items():
            print(f"  not swept: {route}: {why}")
        assert not report.failures, "\n".join(report.failures)
        assert report.tried >= 150, report.tried
        shown = await positive_control(w, targets)
        print(f"positive control: {shown} GET routes show B's data to B or staff")
        assert shown >= 15

        # Regression (finding of this sweep): the return page's JSON, which needs no session,
        # named the order's account and its provider reference.
        number = w.owned.order_number
        r = await w.call(None, "GET", f"/pay/return/{number}", headers={"accept": "application/json"})
        assert r.status_code == 200 and tuple(r.json()) == PUBLIC_ORDER_FIELDS
        assert r.json()["state"] == "partially_refunded" and "account_id" not in r.json()
