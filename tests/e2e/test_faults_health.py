"""Channel health: an invalid credential disabled at once and re-enabled by the probe,
several credentials per channel, metrics and health endpoints."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import openai
import pytest
from sqlalchemy import select

from tollway.store.tables import audit_log, usage_records

from .calls import fake
from .faults_support import (
    MODEL,
    _requests,
    _up,
    db_rows,
    metrics,
    sample,
)
from .provision import PYTHON, CliProvisioner, clean_env
from .stack import Proc, Stack, free_port, http_json, poll


def test_invalid_credential_disabled_at_once_and_reenabled_by_probe(fstack: Stack) -> None:
    port = free_port()
    strict = Proc(
        "strict fake upstream",
        [PYTHON, "-m", "tollway.fake_upstream", "--port", str(port), "--api-key", "right-key"],
        clean_env(),
        fstack.workdir / "strict-fake.log",
    )
    try:
        poll(lambda: _up(f"http://127.0.0.1:{port}/_fake/stats"), timeout=20, what="strict fake upstream")
        fstack.p.create_group("cred", multiplier="1")
        bad = fstack.p.create_channel(
            "cred-strict",
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="wrong-key",
            models=MODEL,
            priority=20,
            groups="cred",
        )
        fstack.p.create_channel(
            "cred-backup",
            base_url=f"{fstack.fake_url}/v1",
            api_key="k",
            models=MODEL,
            priority=1,
            groups="cred",
        )
        cust = fstack.customer(group="cred", credit="10")
        time.sleep(0.6)
        client = fstack.client(cust.secret)
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=fake()
        )
        assert raw.parse().choices[0].message.content  # served by the backup, no error
        trace = raw.headers["x-request-id"]
        attempts = json.loads(
            db_rows(fstack.db_url, select(usage_records.c.attempts).where(usage_records.c.trace_id == trace))[
                0
            ]["attempts"]
        )
        assert [(a["name"], a["status"]) for a in attempts] == [("cred-strict", 401), ("cred-backup", 200)]
        # disabled within that one request
        assert (
            sample(metrics(fstack), "tollway_channel_state", channel="cred-strict", state="disabled") == 1.0
        )
        # the probe keeps failing while the key is wrong
        time.sleep(1.5)
        assert (
            sample(metrics(fstack), "tollway_channel_state", channel="cred-strict", state="disabled") == 1.0
        )
        # an operator fixes the key: the prober re-enables the channel
        cli = CliProvisioner(fstack.db_url, fstack.data_dir or fstack.workdir / "data")
        cli.cli("admin", "channel", "update", "cred-strict", "--api-key", "right-key")
        poll(
            lambda: (
                True
                if sample(metrics(fstack), "tollway_channel_state", channel="cred-strict", state="closed")
                == 1.0
                else None
            ),
            timeout=15,
            what="cred-strict re-enabled by a probe",
        )
        text = metrics(fstack)
        assert sample(text, "tollway_channel_transitions_total", channel="cred-strict", to="disabled") == 1.0
        assert sample(text, "tollway_channel_transitions_total", channel="cred-strict", to="closed") == 1.0

        def audited() -> list[dict[str, Any]] | None:
            rows = db_rows(
                fstack.db_url,
                select(audit_log)
                .where(audit_log.c.action == "channel.state", audit_log.c.target == f"channel:{bad['id']}")
                .order_by(audit_log.c.id),
            )
            return rows if len(rows) >= 2 else None

        rows = poll(audited, timeout=5, what="audit entries")
        states = [json.loads(r["after"])["state"] for r in rows]
        assert states == ["disabled", "closed"], states
        # served by the strict channel again
        served = len(_requests(port))
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert len(_requests(port)) == served + 1
    finally:
        strict.stop()


def test_two_credentials_one_refused_is_disabled_other_keeps_serving(fstack: Stack) -> None:
    """A channel with keys K1,K2 against an upstream that only accepts K2: every call is served
    (K1's refusal fails over to K2 within the call), K1's breaker alone is disabled, and the
    audit log and the metrics name it ``multi-key#1``."""
    port = free_port()
    strict = Proc(
        "K2-only fake upstream",
        [PYTHON, "-m", "tollway.fake_upstream", "--port", str(port), "--api-key", "K2"],
        clean_env(),
        fstack.workdir / "k2-fake.log",
    )
    try:
        poll(lambda: _up(f"http://127.0.0.1:{port}/_fake/stats"), timeout=20, what="K2-only fake upstream")
        fstack.p.create_group("multikey", multiplier="1")
        chan = fstack.p.create_channel(
            "multi-key",
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="K1,K2",
            models=MODEL,
            priority=20,
            groups="multikey",
        )
        cust = fstack.customer(group="multikey", credit="10")
        time.sleep(0.6)
        client = fstack.client(cust.secret)
        traces = []
        for _ in range(4):
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=fake()
            )
            assert raw.parse().choices[0].message.content
            traces.append(raw.headers["x-request-id"])
        attempts = [
            [
                (a["name"], a["status"])
                for a in json.loads(
                    db_rows(
                        fstack.db_url,
                        select(usage_records.c.attempts).where(usage_records.c.trace_id == t),
                    )[0]["attempts"]
                )
            ]
            for t in traces
        ]
        # K1 is refused once and fails over to K2 within that call; then skipped while disabled
        assert sum(a.count(("multi-key#1", 401)) for a in attempts) == 1, attempts
        assert all(a[-1] == ("multi-key#2", 200) for a in attempts), attempts
        keys = [
            {k.lower(): v for k, v in r.get("headers", {}).items()}.get("authorization", "")
            for r in _requests(port)
        ]
        assert keys.count("Bearer K1") == 1, keys
        text = metrics(fstack)
        assert sample(text, "tollway_channel_state", channel="multi-key#1", state="disabled") == 1.0
        assert sample(text, "tollway_channel_state", channel="multi-key#2", state="closed") == 1.0

        def audited() -> list[dict[str, Any]] | None:
            rows = db_rows(
                fstack.db_url,
                select(audit_log)
                .where(audit_log.c.action == "channel.state", audit_log.c.target == f"channel:{chan['id']}")
                .order_by(audit_log.c.id),
            )
            return rows or None

        rows = poll(audited, timeout=5, what="audit entry")
        afters = [json.loads(r["after"]) for r in rows]
        assert afters == [{"state": "disabled", "credential": "multi-key#1"}], afters
    finally:
        strict.stop()


def test_metrics_and_health_endpoints(fstack: Stack) -> None:
    cust = fstack.customer(group="x1", credit="10")
    client = fstack.client(cust.secret)
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=fake()
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    text = metrics(fstack)
    for series in (
        "tollway_requests_total",
        "tollway_errors_total",
        "tollway_request_seconds_bucket",
        "tollway_time_to_first_token_seconds_bucket",
        "tollway_tokens_total",
        "tollway_deducted_nano_credits_total",
        "tollway_channel_state",
        "tollway_holds_in_flight",
        "tollway_settlement_queue_depth",
        "tollway_upstream_attempts_total",
    ):
        assert re.search(rf"^{series}[{{ ]", text, re.M), series
    assert (sample(text, "tollway_requests_total", model=MODEL, group="x1", status="200") or 0) >= 1
    assert (sample(text, "tollway_tokens_total", model=MODEL, group="x1", category="output") or 0) >= 1
    assert (sample(text, "tollway_deducted_nano_credits_total", model=MODEL, group="x1") or 0) > 0
    assert sample(text, "tollway_channel_state", channel="main", state="closed") == 1.0
    status, _, doc = http_json("GET", f"{fstack.url}/healthz")
    assert status == 200 and doc == {"status": "ok"}
    status, _, doc = http_json("GET", f"{fstack.url}/readyz")
    assert status == 200 and doc["ready"] is True, doc
