"""The cross-account sweep's oracle (tests/sweep_oracle.py) against deliberately leaking answers:
the sweep must fail on each, and pass on an honest refusal."""

from __future__ import annotations

import orjson

from sweep_oracle import Attempt, SweepReport, changed_tables, judge, leaked

B_ID = "6f1c2a9e-0d7b-4c1e-9a55-2b7f3c8d9e01"
MARKERS = {"B account id": B_ID, "B email": "bee@example.test", "B key id": "key-b-1", "B secret": ""}


def attempt(status: int, body: object, sent: str = "/api/me/keys/key-b-1 ") -> Attempt:
    text = body if isinstance(body, str) else orjson.dumps(body).decode()
    return Attempt("A", "GET", "GET /api/me/keys/{key_id}", sent, status, text)


def test_a_leaking_answer_fails_the_sweep() -> None:
    # What a route that forgot its owner check would answer: 200 with B's key and account.
    toy = attempt(200, {"id": "key-b-1", "account_id": B_ID.upper(), "owner": "Bee@example.test"})
    verdict = judge(toy, MARKERS)
    assert verdict.problems == ("answered 200, not a refusal", "leaks B account id", "leaks B email")
    assert "GET /api/me/keys/{key_id}" in str(verdict)


def test_a_refusal_that_names_the_owner_still_fails() -> None:
    toy = attempt(404, {"error": {"message": f"key key-b-1 belongs to {B_ID}"}})
    assert judge(toy, MARKERS).problems == ("leaks B account id",)
    html = attempt(404, f"<p>not found</p><!-- debug: bee@example.test --><td>{B_ID}</td>")
    assert judge(html, MARKERS).problems == ("leaks B account id", "leaks B email")


def test_a_wrong_status_alone_fails() -> None:
    assert judge(attempt(409, {"error": {"message": "already revoked"}}), MARKERS).problems == (
        "answered 409, not a refusal",
    )
    assert judge(attempt(500, "internal error"), MARKERS).problems == ("answered 500, not a refusal",)


def test_an_honest_refusal_passes_even_when_it_echoes_the_id_asked_for() -> None:
    echo = attempt(404, {"error": {"code": "not_found", "message": "no key 'key-b-1'"}})
    assert judge(echo, MARKERS).problems == ()
    assert judge(attempt(403, ""), MARKERS).problems == ()
    # An empty marker (a secret the world did not make) matches nothing.
    assert leaked("anything at all", "", {"empty": ""}) == []
    # Public routes choose their own statuses; leaks still count there.
    public = attempt(200, {"state": "credited", "account_id": B_ID}, sent="/pay/return/TW1 ")
    assert judge(public, MARKERS, allowed={200, 303}).problems == ("leaks B account id",)


def test_writes_are_found_by_comparing_snapshots() -> None:
    before = {"api_keys": frozenset({("key-b-1", "enabled")}), "audit_log": frozenset()}
    revoked = {"api_keys": frozenset({("key-b-1", "revoked")}), "audit_log": frozenset({("x",)})}
    assert changed_tables(before, before) == {}
    assert changed_tables(before, revoked) == {"api_keys": (1, 1), "audit_log": (0, 1)}

    report = SweepReport()
    report.record(judge(attempt(404, "not found"), MARKERS), {})
    assert report.tried == 1 and report.failures == []
    report.record(judge(attempt(404, "not found"), MARKERS), changed_tables(before, revoked))
    assert report.tried == 2 and report.by_who == {"A": 2}
    assert report.failures == ["A: GET /api/me/keys/{key_id} wrote {'api_keys': (1, 1), 'audit_log': (0, 1)}"]
