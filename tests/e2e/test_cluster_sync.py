"""Two real nodes on one PostgreSQL database and one Redis keep in step within a second, with
their poll set to 30 s so only the push paths can explain it: a credential disabled on node A
is skipped by node B; a key revoked, a price changed and a credit posted through node A's admin
API, and a group changed by the CLI in a process of its own, take effect on node B; the sign-in
throttle is one budget per email across nodes and across the API and the console."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select

from redis_support import REDIS_URL
from tollway.store.tables import usage_records

from .calls import MESSAGES, fake
from .cluster_stack import Cluster, Node, running_cluster
from .faults_support import _requests, _up, db_rows, sample
from .provision import PYTHON, CliProvisioner, clean_env
from .stack import Proc, free_port, http_json, poll

ADMIN = "cluster-sync-admin-token"
ENV = {
    "TOLLWAY_REFRESH_INTERVAL_S": "30",  # the poll cannot explain anything below
    "TOLLWAY_ADMIN_TOKEN": ADMIN,
    "TOLLWAY_PROBE_INTERVAL_S": "30",
}
PASSWORD = "a-long-password"


@pytest.fixture
def cluster(pg_db_url: str, redis_prefix: str, tmp_path: Path) -> Any:
    with running_cluster(
        pg_db_url, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix, nodes=2, server_env=ENV
    ) as cl:
        yield cl


def client(node: Node, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{node.url}/v1", api_key=secret, max_retries=0, timeout=30)


def call(node: Node, secret: str, **body: Any) -> tuple[int, str]:
    """(status, trace id) of one chat call on ``node``."""
    try:
        raw = client(node, secret).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES, max_tokens=10, extra_body=fake(**body)
        )
        return 200, raw.headers["x-request-id"]
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.headers.get("x-request-id", "")


def admin(node: Node, method: str, path: str, body: Any = None) -> Any:
    status, _, doc = http_json(
        method, f"{node.url}/api/admin{path}", body, {"authorization": f"Bearer {ADMIN}"}
    )
    assert 200 <= status < 300, (status, doc)
    return doc


def node_metrics(node: Node) -> str:
    status, _, text = http_json("GET", f"{node.url}/metrics")
    assert status == 200
    return str(text)


def within_1s(check: Any, what: str) -> float:
    started = time.monotonic()
    poll(lambda: True if check() else None, timeout=1.0, interval=0.02, what=what)
    return time.monotonic() - started


def test_a_credential_disabled_on_one_node_is_out_on_the_other(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster.nodes
    st = cluster.stack
    port = free_port()
    strict = Proc(
        "strict fake upstream",
        [PYTHON, "-m", "tollway.fake_upstream", "--port", str(port), "--api-key", "right-key"],
        clean_env(),
        tmp_path / "strict-fake.log",
    )
    try:
        poll(lambda: _up(f"http://127.0.0.1:{port}/_fake/stats"), timeout=20, what="strict fake upstream")
        st.p.create_group("cred", multiplier="1")
        base = {"models": "gpt-4o", "groups": "cred"}
        st.p.create_channel(
            "cred-strict", base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", priority=20, **base
        )
        st.p.create_channel("cred-backup", base_url=f"{st.fake_url}/v1", api_key="k", priority=10, **base)
        # the new channels reach both nodes through the change notice (the poll is 30 s)
        for node in (a, b):
            within_1s(
                lambda n=node: (
                    sample(node_metrics(n), "tollway_channel_state", channel="cred-strict", state="closed")
                    == 1.0
                ),
                f"{node.name} loaded the new channel",
            )
        cust = st.customer(group="cred", credit="5")
        assert call(a, cust.secret)[0] == 200
        assert (
            sample(node_metrics(a), "tollway_channel_state", channel="cred-strict", state="disabled") == 1.0
        )
        took = within_1s(
            lambda: (
                sample(node_metrics(b), "tollway_channel_state", channel="cred-strict", state="disabled")
                == 1.0
            ),
            "node B to disable the credential",
        )
        seen_by_strict = len(_requests(port))
        status, trace_b = call(b, cust.secret)
        assert status == 200
        record = poll(lambda: st.p.usage(trace_b), timeout=5, what="usage of node B's call")
        attempts = json.loads(
            db_rows(st.db_url, select(usage_records.c.attempts).where(usage_records.c.trace_id == trace_b))[
                0
            ]["attempts"]
        )
        assert [x["name"] for x in attempts] == ["cred-backup"], attempts  # never tried the bad key
        assert len(_requests(port)) == seen_by_strict
        assert record["status"] == "ok"
        print(f"node B disabled the credential {took * 1000:.0f} ms after node A")
    finally:
        strict.stop()


def cost(trace: str, cluster: Cluster) -> int:
    record = poll(lambda: cluster.stack.p.usage(trace), timeout=5, what=f"usage of {trace}")
    return int(record["deduction_nano"])


def test_changes_through_node_a_and_the_cli_reach_node_b(cluster: Cluster) -> None:
    a, b = cluster.nodes
    st = cluster.stack
    usage = {"usage": {"prompt_tokens": 9, "completion_tokens": 10}}
    cust = st.customer(group="x1", credit="5")
    status, trace = call(b, cust.secret, **usage)
    assert status == 200 and cost(trace, cluster) == 9 * 2_500 + 10 * 10_000  # gpt-4o list price

    # a price set through node A's admin API: node B charges it within a second
    admin(a, "PUT", "/models/gpt-4o", {"input": "5", "output": "20"})
    time.sleep(1.0)
    status, trace = call(b, cust.secret, **usage)
    assert status == 200 and cost(trace, cluster) == 9 * 5_000 + 10 * 20_000

    # a group changed by the CLI (a process of its own): node B applies it within a second
    cli = CliProvisioner(st.db_url, st.data_dir or st.workdir / "data")
    cli.cli("admin", "group", "update", "x1", "--multiplier", "2")
    time.sleep(1.0)
    status, trace = call(b, cust.secret, **usage)
    assert status == 200 and cost(trace, cluster) == 2 * (9 * 5_000 + 10 * 20_000)

    # a key revoked through node A: refused by node B within a second
    assert call(b, cust.secret)[0] == 200
    admin(a, "POST", f"/keys/{cust.key_id}/revoke")
    took = within_1s(lambda: call(b, cust.secret)[0] == 401, "node B to refuse the revoked key")
    print(f"node B refused the revoked key {took * 1000:.0f} ms after node A revoked it")

    # a credit posted through node A: an account that could not pay is served by node B
    poor = st.customer(group="x1", credit=None)
    assert call(b, poor.secret)[0] == 402
    admin(
        a, "POST", f"/accounts/{poor.account_id}/credits", {"amount": "1", "kind": "cash", "reason": "top-up"}
    )
    took = within_1s(lambda: call(b, poor.secret)[0] == 200, "node B to serve the topped-up account")
    print(f"node B served the top-up {took * 1000:.0f} ms after node A posted it")
    st.audit_ok()


def console_login(node: Node, email: str, password: str) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    csrf = uuid.uuid4().hex
    data = urllib.parse.urlencode({"email": email, "password": password, "csrf": csrf}).encode()
    req = urllib.request.Request(f"{node.url}/console/login", data=data, method="POST")
    req.add_header("content-type", "application/x-www-form-urlencoded")
    req.add_header("cookie", f"tw_csrf={csrf}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def api_login(node: Node, email: str, password: str) -> int:
    return http_json("POST", f"{node.url}/api/auth/login", {"email": email, "password": password})[0]


def test_one_sign_in_budget_across_nodes_api_and_console(cluster: Cluster) -> None:
    a, b = cluster.nodes
    email = f"throttle-{uuid.uuid4().hex[:8]}@example.test"
    admin(a, "POST", "/accounts", {"email": email, "password": PASSWORD})
    assert api_login(b, email, PASSWORD) == 200
    assert console_login(a, email, PASSWORD) == 303  # signed in: redirected home
    # five wrong passwords spread over two nodes and both front doors
    assert api_login(a, email, "wrong-1") == 401
    assert console_login(b, email, "wrong-2") == 401
    assert api_login(b, email, "wrong-3") == 401
    assert console_login(a, email, "wrong-4") == 401
    assert api_login(a, email, "wrong-5") == 401
    # the budget is spent everywhere, even for the right password
    assert api_login(b, email, PASSWORD) == 429
    assert console_login(b, email, PASSWORD) == 429
    assert api_login(a, email, PASSWORD) == 429
    assert console_login(a, email, PASSWORD) == 429
    # another email from the same address still signs in: the address has its own, larger budget
    other = f"other-{uuid.uuid4().hex[:8]}@example.test"
    admin(b, "POST", "/accounts", {"email": other, "password": PASSWORD})
    assert api_login(a, other, PASSWORD) == 200
