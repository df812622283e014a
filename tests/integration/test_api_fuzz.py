"""Schemathesis fuzzing of the control API (``/api/openapi.json``) against the whole running app.

Every operation in the document, positive and negative data, once with the admin token and
once with a customer's session. Checks: no 5xx, status codes, content types, headers and
bodies as documented (the error envelope is documented for 400/401/403/404/409/422/429). The
counts are printed (``-s``) and recorded in docs/security.md. ``TOLLWAY_FUZZ_EXAMPLES`` raises
the examples per operation and mode (default 5); ``scripts/fuzz`` runs a long, random one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from api_fuzz import FuzzReport, fuzz, loop_sender
from sweep_world import BASE, CSRF, Who, World, sweep_world


async def run_fuzz(w: World, who: Who, *, skip: frozenset[str] = frozenset()) -> FuzzReport:
    doc = (await w.client.get("/api/openapi.json")).json()
    send = loop_sender(w.client, asyncio.get_running_loop())
    o = w.owned
    known = {  # real ids: bodies and queries fuzzed against resources that exist
        "account_id": o.account_id,
        "key_id": o.key_id,
        "trace_id": o.trace_id,
        "order_number": o.order_number,
        "request_id": o.open_request_id,
        "refund_id": o.refund_id,
        "batch_id": o.batch_id,
        "name": "g",
        "currency": "USD",
    }
    report = await asyncio.to_thread(
        fuzz, doc, send, who.api_headers(), base_url=BASE, skip=lambda label: label in skip, known=known
    )
    print(f"\nfuzz as {who.name}: {report.summary()}")
    for line in report.not_generated:
        print(f"  not generated: {line}")
    return report


def assert_clean(report: FuzzReport) -> None:
    assert report.requests >= 5 * len(report.operations), report.summary()
    # Only operations without any input may lack negative data; anything else is an error.
    assert all(g.endswith("(negative): Unsatisfiable") for g in report.not_generated), report.not_generated
    distinct = report.distinct()
    assert not distinct, f"{report.summary()}:\n" + "\n".join(str(f) for f in distinct)


async def test_fuzz_control_api_with_the_admin_token(tmp_path: Path) -> None:
    async with sweep_world(tmp_path) as w:
        report = await run_fuzz(w, w.token)
        doc = (await w.client.get("/api/openapi.json")).json()
        every = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
        assert report.operations == every  # every operation of the document, none left out
        assert_clean(report)


async def test_fuzz_control_api_with_a_customer_session(tmp_path: Path) -> None:
    async with sweep_world(tmp_path) as w:
        # Signing out would end the session the rest of the run uses.
        report = await run_fuzz(w, w.a, skip=frozenset({"POST /api/auth/logout"}))
        assert_clean(report)
        assert (await w.call(w.a, "GET", "/api/me")).status_code == 200  # still signed in


async def test_dates_past_the_calendar_are_refused_not_a_500(tmp_path: Path) -> None:
    """Regressions of the fuzzing's one 5xx (an expiry that overflows when turned into UTC), and
    of the same arithmetic on the console's usage filter and voucher form."""
    async with sweep_world(tmp_path) as w:

        def console(who: Who) -> dict[str, str]:
            cookies = "; ".join(f"{k}={v}" for k, v in who.console_cookies().items())
            return {"cookie": cookies, "content-type": "application/x-www-form-urlencoded"}

        r = await w.client.get("/console/usage?until=9999-12-31", headers=console(w.a))
        assert r.status_code == 200, r.text[:300]  # the day after 9999-12-31 does not exist

        grants = f"/api/admin/accounts/{w.a.account_id}/vouchers"
        before = len((await w.ok(w.token, "GET", grants))["vouchers"])
        form = f"csrf={CSRF}&amount=1&reason=x&days=99999999999"
        page = f"/console/staff/accounts/{w.a.account_id}/voucher"
        r = await w.client.post(page, content=form, headers=console(w.support))
        assert r.status_code == 200 and 'class="error"' in r.text, r.text[:300]
        assert len((await w.ok(w.token, "GET", grants))["vouchers"]) == before  # nothing granted

        grant = {"amount": "1", "expires": "0001-01-01T00:00:00+01:01", "reason": "0"}
        r = await w.call(w.token, "POST", f"/api/admin/accounts/{w.owned.account_id}/vouchers", json=grant)
        assert r.status_code == 422 and r.json()["error"]["param"] == "expires", r.text
