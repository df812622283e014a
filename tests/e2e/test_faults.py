"""Fault injection (issue 4): a channel failing every way, a credential turning invalid and
coming back, the metrics and health endpoints, and SIGKILL of the gateway mid-load.

The failing channel is :class:`Chaos`, a raw TCP upstream in the test process that answers in
turn with a 500, a 429, a connection reset and a hang past the first-byte timeout. The oracle
is what clients received, the fake upstream's record of what it served, the usage records
and ``tollway audit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select

from tollway.settings import normalise_database_url
from tollway.store.db import make_engine
from tollway.store.tables import audit_log, usage_records

from .calls import fake
from .conftest import _backend_of
from .provision import PYTHON, CliProvisioner, clean_env
from .stack import Proc, Stack, free_port, http_json, poll, running_stack

MODEL = "gpt-4o-mini"
SERVER_ENV = {
    "TOLLWAY_BREAKER_OPEN_S": "1",
    "TOLLWAY_BREAKER_MAX_OPEN_S": "2",
    "TOLLWAY_PROBE_INTERVAL_S": "0.3",
    "TOLLWAY_PROBE_TIMEOUT_S": "2",
    "TOLLWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_S": "1",
    "TOLLWAY_UPSTREAM_IDLE_TIMEOUT_S": "1",
    "TOLLWAY_LOG_FORMAT": "json",
}


class Chaos:
    """An upstream that fails every way, in turn: HTTP 500, HTTP 429, reset, hang."""

    MODES = ("500", "429", "reset", "hang")

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.served: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(body) < need:
                more = conn.recv(65536)
                if not more:
                    return
                body += more
            with self._lock:
                mode = self.MODES[len(self.served) % len(self.MODES)]
                self.served.append(mode)
            if mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if mode == "hang":
                time.sleep(3)
                return
            status, reason, code = (
                (500, "Internal Server Error", "server_error")
                if mode == "500"
                else (429, "Too Many Requests", "rate_limit_exceeded")
            )
            doc = json.dumps({"error": {"message": f"chaos {mode}", "type": code, "code": code}}).encode()
            conn.sendall(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(doc)}\r\nconnection: close\r\n\r\n".encode()
                + doc
            )


@pytest.fixture(scope="module")
def fstack(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("faults")
    with running_stack(_backend_of(module_db_url), module_db_url, workdir, SERVER_ENV) as s:
        yield s


def db_rows(db_url: str, query: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        engine = make_engine(normalise_database_url(db_url))
        try:
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in (await conn.execute(query)).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def metrics(stack: Stack) -> str:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{stack.url}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain")
        return str(resp.read().decode())


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def one_call(client: openai.AsyncOpenAI, stream: bool, tag: str) -> tuple[str, str]:
    """A chat call; returns (trace ID, the text the client received)."""
    kw: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_body": fake(tag),
    }
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(**kw)
        return raw.headers["x-request-id"], raw.parse().choices[0].message.content or ""
    raw_s = await client.chat.completions.with_raw_response.create(stream=True, **kw)
    text = ""
    async for chunk in raw_s.parse():
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    return raw_s.headers["x-request-id"], text


def test_failing_channel_is_invisible_to_clients(fstack: Stack) -> None:
    chaos = Chaos()
    try:
        fstack.p.create_group("chaos", multiplier="1")
        fstack.p.create_channel(
            "chaos-bad", base_url=chaos.url, api_key="k", models=MODEL, priority=20, groups="chaos"
        )
        fstack.p.create_channel(
            "chaos-good",
            base_url=f"{fstack.fake_url}/v1",
            api_key="k",
            models=MODEL,
            priority=1,
            groups="chaos",
        )
        cust = fstack.customer(group="chaos", credit="10")
        time.sleep(0.6)  # the server picks the new configuration up (refresh every 0.2 s)
        before = int(fstack.balance(cust.account_id)["cash_nano"])

        async def load() -> list[tuple[str, str, str, bool]]:
            client = fstack.aclient(cust.secret)
            sem = asyncio.Semaphore(6)

            async def go(i: int) -> tuple[str, str, str, bool]:
                tag = f"chaos-{uuid.uuid4().hex[:10]}"
                async with sem:
                    trace, text = await one_call(client, stream=i % 2 == 1, tag=tag)
                    await asyncio.sleep(0.1)
                    return trace, text, tag, i % 2 == 1

            try:
                return await asyncio.gather(*(go(i) for i in range(24)))
            finally:
                await client.close()

        results = asyncio.run(load())
        assert {"500", "429", "reset", "hang"} <= set(chaos.served), chaos.served
        for trace, text, tag, _stream in results:
            assert text, trace
            assert len(fstack.fake_requests(tag)) == 1, tag  # served once upstream
            record = fstack.usage(trace)
            assert record["status"] == "ok", record
        traces = [r[0] for r in results]
        rows = db_rows(fstack.db_url, select(usage_records).where(usage_records.c.trace_id.in_(traces)))
        assert len(rows) == len(traces)  # one record per call, never two
        assert sum(1 for r in rows if r["attempts"] and '"chaos-bad"' in r["attempts"]) >= 4
        failed = [json.loads(r["attempts"]) for r in rows if r["attempts"] and '"failed"' in r["attempts"]]
        assert failed and all(a[-1]["outcome"] == "ok" and a[-1]["name"] == "chaos-good" for a in failed)
        deducted = sum(int(r["deduction_nano"]) for r in rows)
        assert deducted > 0
        assert before - int(fstack.balance(cust.account_id)["cash_nano"]) == deducted
        text = metrics(fstack)
        assert (
            sample(text, "tollway_upstream_attempts_total", channel="chaos-bad", outcome="failed") or 0
        ) >= 4
        assert (sample(text, "tollway_channel_transitions_total", channel="chaos-bad", to="open") or 0) >= 1
        fstack.audit_ok()
    finally:
        chaos.close()


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


def test_channel_first_byte_timeout_overrides_global(fstack: Stack) -> None:
    """Global first-byte timeout 1 s; the channel's own is 0.3 s: an upstream that holds its
    headers for 0.7 s gets a 504 at once instead of being waited for."""
    alone = "gpt-4.1-nano"
    fstack.p.create_group("quickto", multiplier="1")
    # a model no other channel serves, so that nothing fails over
    fstack.p.create_channel(
        "quick-timeout", base_url=f"{fstack.fake_url}/v1", api_key="k", models=alone, groups="quickto"
    )
    cli = CliProvisioner(fstack.db_url, fstack.data_dir or fstack.workdir / "data")
    _, doc = cli.cli("admin", "channel", "update", "quick-timeout", "--first-byte-timeout", "0.3")
    assert doc["timeouts"] == {"first_byte_timeout_s": 0.3}, doc
    cust = fstack.customer(group="quickto", credit="10")
    time.sleep(2.5)  # the server picks up the CLI's change
    client = fstack.client(cust.secret)
    # without hanging, the channel serves
    assert (
        client.chat.completions.create(
            model=alone, messages=[{"role": "user", "content": "hi"}], extra_body=fake()
        )
        .choices[0]
        .message.content
    )
    t0 = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model=alone, messages=[{"role": "user", "content": "hi"}], extra_body=fake(hang_ms=700)
        )
    assert err.value.status_code == 504
    assert time.monotonic() - t0 < 0.65


def _up(url: str) -> bool | None:
    try:
        return True if http_json("GET", url)[0] == 200 else None
    except OSError:
        return None


def _requests(port: int) -> list[Any]:
    status, _, doc = http_json("GET", f"http://127.0.0.1:{port}/_fake/requests")
    assert status == 200
    return list(doc)


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


# ------------------------------------------------------------------ faults after the first byte


def _estimated_output_tokens(text: str) -> int:
    """Tollway's documented count for output whose usage never arrived: ceil(ASCII / 4)."""
    return -(-len(text) // 4)


async def stream_until_error(
    stack: Stack, secret: str, extra: dict[str, Any], include_usage: bool = False
) -> tuple[str, str, openai.APIError | None, bool]:
    """Stream a chat; returns (trace ID, text received, the error that ended the stream or
    None, whether a usage chunk arrived)."""
    text, trace, saw_usage = "", "", False
    kw: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if include_usage:
        kw["stream_options"] = {"include_usage": True}
    try:
        async with stack.aclient(secret, timeout=20) as client:
            a = await client.chat.completions.create(**kw, extra_body=extra)
            trace = a.response.headers["x-request-id"]
            async for chunk in a:
                text += "".join(ch.delta.content or "" for ch in chunk.choices)
                saw_usage = saw_usage or chunk.usage is not None
    except openai.APIError as exc:
        return trace, text, exc, saw_usage
    return trace, text, None, saw_usage


def _billed_once(stack: Stack, account_id: str, trace: str, before: int) -> dict[str, Any]:
    """The call's one usage record; the balance moved by exactly its deduction, nothing held."""
    rec = stack.usage(trace, wait=5)
    assert [r["trace_id"] for r in stack.p.usage_list(account_id)] == [trace]
    bal = stack.balance(account_id)
    assert (before - int(bal["cash_nano"]), int(bal["held_nano"])) == (rec["deduction_nano"], 0)
    return rec


def test_timeout_after_first_byte_bills_what_was_sent(fstack: Stack) -> None:
    """Upstream sends 3 content chunks, then stalls 3 s (idle timeout 1 s): the client gets the
    chunks, then an error event; the call is billed once, estimated, for what was sent."""
    cust = fstack.customer(group="x1", credit="10")
    before = int(fstack.balance(cust.account_id)["cash_nano"])
    tag = f"stall-{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    trace, text, exc, _ = asyncio.run(
        stream_until_error(fstack, cust.secret, fake(tag, chunks=6, stall_after=3, stall_ms=3000))
    )
    assert time.monotonic() - t0 < 2.8, "the idle timeout did not fire"
    assert text == "The quick brown"
    assert exc is not None, "the stream ended as if nothing had gone wrong"
    assert str(exc.message).rstrip(" .)").endswith(trace)
    rec = _billed_once(fstack, cust.account_id, trace, before)
    assert (rec["status"], rec["estimated"], rec["stream"]) == ("upstream_cut", True, True)
    assert rec["tokens"]["output"] == _estimated_output_tokens(text) and rec["deduction_nano"] > 0
    assert len(fstack.fake_requests(tag)) == 1  # never retried after a byte reached the client
    fstack.audit_ok()


class MidStreamReset:
    """An OpenAI-shaped upstream that starts one stream, sends ``PIECES``, resets the connection
    (RST) and then stops listening, as a crashed upstream does."""

    PIECES = ("Hello", " world", "!")

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.served = 0
        threading.Thread(target=self._serve_one, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve_one(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            self.sock.close()  # gone after this one: the next calls get a connect error
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            self.served += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            for i, piece in enumerate(("", *self.PIECES)):
                delta = {"role": "assistant", "content": ""} if i == 0 else {"content": piece}
                chunk = {
                    "id": "chatcmpl-reset",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                conn.sendall(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            time.sleep(0.3)  # let Tollway read it all before the reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


def test_connection_reset_mid_stream_on_one_of_two_channels(fstack: Stack) -> None:
    """The stream already started on the failing channel is billed for what upstream sent, once;
    the next calls fail over to the good channel and succeed."""
    reset = MidStreamReset()
    fstack.p.create_group("reset", multiplier="1")
    fstack.p.create_channel(
        "reset-bad", base_url=reset.url, api_key="k", models=MODEL, priority=20, groups="reset"
    )
    fstack.p.create_channel(
        "reset-good", base_url=f"{fstack.fake_url}/v1", api_key="k", models=MODEL, priority=1, groups="reset"
    )
    cust = fstack.customer(group="reset", credit="10")
    time.sleep(0.6)  # the server picks the new configuration up
    before = int(fstack.balance(cust.account_id)["cash_nano"])
    trace, text, exc, _ = asyncio.run(stream_until_error(fstack, cust.secret, fake()))
    assert reset.served == 1
    assert text == "".join(MidStreamReset.PIECES)
    assert exc is not None and str(exc.message).rstrip(" .)").endswith(trace)
    rec = _billed_once(fstack, cust.account_id, trace, before)
    assert (rec["status"], rec["estimated"]) == ("upstream_cut", True)
    assert rec["tokens"]["output"] == _estimated_output_tokens(text) and rec["deduction_nano"] > 0
    attempts = json.loads(
        db_rows(fstack.db_url, select(usage_records.c.attempts).where(usage_records.c.trace_id == trace))[0][
            "attempts"
        ]
    )
    assert [a["name"] for a in attempts] == ["reset-bad"]

    async def next_calls() -> list[tuple[str, str, str]]:
        client = fstack.aclient(cust.secret)
        try:
            out = []
            for i in range(4):
                tag = f"after-reset-{uuid.uuid4().hex[:10]}"
                out.append((*await one_call(client, stream=i % 2 == 0, tag=tag), tag))
            return out
        finally:
            await client.close()

    for trace2, text2, tag in asyncio.run(next_calls()):
        assert text2, trace2
        assert fstack.usage(trace2)["status"] == "ok"
        assert len(fstack.fake_requests(tag)) == 1
    rows = db_rows(fstack.db_url, select(usage_records).where(usage_records.c.owner_id == cust.account_id))
    assert len(rows) == 5  # one record per call
    spent = before - int(fstack.balance(cust.account_id)["cash_nano"])
    assert spent == sum(int(r["deduction_nano"]) for r in rows)
    fstack.audit_ok()


def test_slow_loris_upstream_completes_billed_once(fstack: Stack) -> None:
    """Chunks spaced just under the idle timeout (0.6 s vs 1 s): no timeout, the stream
    completes with its usage, and is billed exactly once from upstream's usage."""
    cust = fstack.customer(group="x1", credit="10")
    before = int(fstack.balance(cust.account_id)["cash_nano"])
    tag = f"loris-{uuid.uuid4().hex[:10]}"
    trace, text, exc, saw_usage = asyncio.run(
        stream_until_error(
            fstack, cust.secret, fake(tag, chunks=3, chunk_interval_ms=600), include_usage=True
        )
    )
    assert exc is None and saw_usage
    assert text == "The quick brown"
    rec = _billed_once(fstack, cust.account_id, trace, before)
    assert (rec["status"], rec["estimated"]) == ("ok", False)
    assert rec["tokens"]["output"] == 3 and rec["deduction_nano"] > 0
    assert len(fstack.fake_requests(tag)) == 1
    fstack.audit_ok()


def test_sigkill_mid_load_then_restart_audit_passes(fstack: Stack) -> None:
    """Last in the module: kills the module's server and restarts it."""
    cust = fstack.customer(group="x1", credit="10")

    async def load() -> list[tuple[str, bool] | BaseException]:
        client = fstack.aclient(cust.secret, timeout=10)

        async def go(i: int) -> tuple[str, bool]:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
                extra_body=fake(chunks=20, chunk_interval_ms=100 if i % 2 else 5),
            )
            done = False
            async for chunk in raw.parse():
                if chunk.usage is not None:
                    done = True
            return raw.headers["x-request-id"], done

        try:
            return await asyncio.gather(*(go(i) for i in range(30)), return_exceptions=True)
        finally:
            await client.close()

    async def kill_later() -> None:
        await asyncio.sleep(0.8)
        assert fstack.server is not None
        fstack.server.popen.send_signal(signal.SIGKILL)

    async def both() -> list[tuple[str, bool] | BaseException]:
        killer = asyncio.create_task(kill_later())
        results = await load()
        await killer
        return results

    results = asyncio.run(both())
    assert fstack.server is not None
    fstack.server.popen.wait(10)
    fstack.server.stop()
    complete = [r[0] for r in results if isinstance(r, tuple) and r[1]]
    broken = [r for r in results if not (isinstance(r, tuple) and r[1])]
    assert complete, "no call finished before the kill"
    assert broken, "the kill came too late to interrupt anything"
    port = int(fstack.url.rsplit(":", 1)[1])
    fstack.start_server(port, "server-restarted.log")
    fstack.wait_server()
    for trace in complete:  # every complete response is billed, once
        assert fstack.usage(trace)["status"] == "ok"
    time.sleep(6.5)  # TOLLWAY_HOLD_TIMEOUT_S=5 plus a sweep: the dead process's holds expire
    fstack.audit_ok()
    active = db_rows(
        fstack.db_url, select(usage_records.c.trace_id).where(usage_records.c.trace_id.in_(complete))
    )
    assert len(active) == len(complete)
    status, _, doc = http_json("GET", f"{fstack.url}/readyz")
    assert status == 200, doc


class TcpProxy:
    """A TCP relay to PostgreSQL on a fixed port: ``cut()`` makes the database unreachable (the
    port closes, live connections drop), ``restore()`` brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def cut(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_database_unreachable_503_then_resumes(db_url: str, tmp_path: Path) -> None:
    """PostgreSQL behind a TCP relay that is cut and restored. PostgreSQL only: on SQLite,
    running as root, a read-only directory would not stop the writes."""
    from urllib.parse import urlsplit

    parts = urlsplit(db_url)
    proxy = TcpProxy(parts.port or 5432)
    netloc = (
        parts.netloc.replace(f":{parts.port}", f":{proxy.port}")
        if parts.port
        else f"{parts.netloc}:{proxy.port}"
    )
    via_proxy = parts._replace(netloc=netloc).geturl()
    env = {**SERVER_ENV, "TOLLWAY_DATABASE_URL": via_proxy, "TOLLWAY_SETTLEMENT_DEADLINE_S": "3"}
    try:
        with running_stack("postgres", db_url, tmp_path / "dbdown", env) as st:
            cust = st.customer(group="x1", credit="10")
            client = st.client(cust.secret, timeout=10)
            ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            assert client.chat.completions.create(**ask).choices[0].message.content
            assert http_json("GET", f"{st.url}/readyz")[0] == 200
            proxy.cut()
            t0 = time.monotonic()
            poll(
                lambda: True if http_json("GET", f"{st.url}/readyz")[0] == 503 else None,
                timeout=10,
                what="/readyz 503",
            )

            def refused() -> bool | None:
                try:
                    client.chat.completions.create(**ask)
                except openai.APIStatusError as exc:
                    if exc.status_code == 503 and exc.response.headers.get("retry-after"):
                        return True
                    raise
                return None

            poll(refused, timeout=10, what="a 503 with Retry-After")
            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as err:
                client.chat.completions.create(**ask)
            assert err.value.status_code == 503 and time.monotonic() - started < 1.0  # at once, no hang
            assert time.monotonic() - t0 < 20
            proxy.restore()

            def served() -> bool | None:
                try:
                    return True if client.chat.completions.create(**ask).choices[0].message.content else None
                except openai.APIStatusError:
                    return None

            poll(served, timeout=15, interval=0.3, what="service to resume by itself")
            assert http_json("GET", f"{st.url}/readyz")[0] == 200
            time.sleep(6)  # holds of calls cut by the outage expire (TOLLWAY_HOLD_TIMEOUT_S=5)
            st.audit_ok()
    finally:
        proxy.cut()


def test_sigterm_lets_streams_in_flight_finish(fstack: Stack) -> None:
    """Last of the module's server: SIGTERM mid-stream; the streams finish, billed, the process exits."""
    cust = fstack.customer(group="x1", credit="10")

    async def load() -> list[tuple[str, bool]]:
        client = fstack.aclient(cust.secret, timeout=20)

        async def go() -> tuple[str, bool]:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
                extra_body=fake(chunks=10, chunk_interval_ms=150),
            )
            done = False
            async for chunk in raw.parse():
                done = done or chunk.usage is not None
            return raw.headers["x-request-id"], done

        async def term() -> None:
            await asyncio.sleep(0.5)
            assert fstack.server is not None
            fstack.server.popen.send_signal(signal.SIGTERM)

        try:
            killer = asyncio.create_task(term())
            results = await asyncio.gather(*(go() for _ in range(8)))
            await killer
            return results
        finally:
            await client.close()

    results = asyncio.run(load())
    assert all(done for _, done in results), results
    assert fstack.server is not None
    # uvicorn re-raises the signal once its shutdown is complete
    assert fstack.server.popen.wait(15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in fstack.server.tail()
    for trace, _ in results:
        assert fstack.usage(trace)["status"] == "ok"
    fstack.audit_ok()
