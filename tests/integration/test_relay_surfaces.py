"""The relay pipeline in-process (Tollway's ASGI app, the fake upstream on loopback, a real
SQLite / PostgreSQL database), where the ASGI boundary can be watched directly:

* the final events of every surface leave only after the settlement is committed;
* pass-through streams are upstream's bytes; holds are sized by the same rules on every surface;
* failover crosses shapes (an Anthropic request falls over to an OpenAI-compatible channel)
  and still bills once;
* a client leaving a translated stream stops upstream and is billed for what was produced.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tollway import tokens
from tollway.app import TollwayApp
from tollway.errors import NotFound
from tollway.fake_upstream import STATE_KEY, FakeConfig, build_app
from tollway.money import Ratio
from tollway.pricing import cost
from tollway.services.admin import AdminService
from tollway.settings import Settings

SECRET = "integration-secret"


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Rig:
    app: TollwayApp
    admin: AdminService
    fake_url: str
    fake: Any  # aiohttp web.Application
    account_id: str = ""
    secret: str = ""

    async def call(
        self,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        on_chunk: Callable[[Response, bytes], Any] | None = None,
        leave_after: int | None = None,
    ) -> Response:
        """One request through the data plane's ASGI app; ``leave_after`` disconnects the
        client after that many body chunks."""
        raw = orjson.dumps(body)
        hdrs = {"content-type": "application/json", "x-api-key": self.secret, **(headers or {})}
        path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": query.encode(),
            "headers": [(k.encode(), v.encode()) for k, v in hdrs.items()],
            "client": ("127.0.0.1", 5555),
        }
        resp = Response()
        gone = asyncio.Event()
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                resp.status = message["status"]
                resp.headers = {k.decode(): v.decode() for k, v in message["headers"]}
                return
            chunk = message.get("body", b"")
            if chunk:
                resp.chunks.append(chunk)
                if on_chunk is not None:
                    await on_chunk(resp, chunk)
            if leave_after is not None and len(resp.chunks) >= leave_after:
                gone.set()

        assert self.app.data_plane is not None
        await self.app.data_plane(scope, receive, send)
        return resp

    async def record(self, trace_id: str) -> dict[str, Any] | None:
        try:
            return await self.admin.get_usage(trace_id)
        except NotFound:
            return None

    async def wait_record(self, trace_id: str) -> dict[str, Any]:
        for _ in range(200):
            rec = await self.record(trace_id)
            if rec is not None:
                return rec
            await asyncio.sleep(0.02)
        raise AssertionError(f"no usage record for {trace_id}")


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    from aiohttp import web

    fake_app = build_app(FakeConfig(chunks=4))
    runner = web.AppRunner(fake_app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key=SECRET,
        hold_sweep_interval_s=60,
        refresh_interval_s=60,
        upstream_first_byte_timeout_s=2,
    )
    app = TollwayApp(settings)
    await app.start()
    admin = AdminService(app.engine, app.box)
    r = Rig(app, admin, fake_url, fake_app)
    await admin.upsert_group("g", create=True, multiplier="1")
    await admin.upsert_group("fo", create=True, multiplier="1")
    for name, kind, base, models, prio, groups in (
        ("anth", "anthropic", fake_url, "claude-sonnet-4-5", 10, "g,fo"),
        ("oai", "openai", f"{fake_url}/v1", "claude-sonnet-4-5,gpt-4o", 0, None),
        ("gem", "gemini", fake_url, "gemini-2.5-pro", 0, None),
    ):
        await admin.upsert_channel(
            name,
            create=True,
            type=kind,
            base_url=base,
            api_key=f"k-{name}",
            models=models,
            priority=prio,
            groups_=groups,
        )
    account = await admin.create_account("relay@example.test")
    await admin.credit(account["id"], "10", kind="cash", reason="test")
    key = await admin.create_key(account["id"], name="k", group="g")
    r.account_id, r.secret = str(account["id"]), str(key["secret"])
    assert app.gateway is not None
    await app.gateway.config.refresh(force=True)
    try:
        yield r
    finally:
        await app.stop()
        await runner.cleanup()


CLAUDE = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
GEMINI_PATH = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
GEMINI = {
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "generationConfig": {"maxOutputTokens": 50},
}
OPENAI = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.mark.parametrize(
    ("path", "body", "final"),
    [
        ("/v1/messages", {**CLAUDE, "stream": True}, b"message_stop"),
        (GEMINI_PATH, GEMINI, b"finishReason"),
        ("/v1/chat/completions", OPENAI, b"[DONE]"),
    ],
    ids=["anthropic", "gemini", "openai"],
)
async def test_final_events_leave_only_after_the_settlement_committed(
    rig: Rig, path: str, body: dict[str, Any], final: bytes
) -> None:
    seen: list[bool] = []

    async def on_chunk(resp: Response, chunk: bytes) -> None:
        if final in chunk:  # the usage record must already be readable from the database
            seen.append(await rig.record(resp.headers["x-request-id"]) is not None)

    resp = await rig.call(path, body, {"x-goog-api-key": rig.secret}, on_chunk=on_chunk)
    assert resp.status == 200
    assert seen == [True]
    assert final not in b"".join(resp.chunks[:-1])  # nothing final before the last send


async def test_anthropic_passthrough_stream_is_upstreams_bytes(rig: Rig) -> None:
    body = {**CLAUDE, "stream": True, "fake": {"thinking": "t"}}
    through = (await rig.call("/v1/messages", body)).body
    async with aiohttp.ClientSession() as s, s.post(f"{rig.fake_url}/v1/messages", json=body) as direct:
        expected = await direct.read()

    def ids(b: bytes) -> bytes:
        return re.sub(rb"msg_fake\d+", b"msg_X", b)

    assert ids(through) == ids(expected)


@pytest.mark.parametrize(
    ("path", "body", "cap"),
    [
        ("/v1/messages", {**CLAUDE, "stream": True, "fake": {"chunk_interval_ms": 100}}, 100),
        (GEMINI_PATH, {**GEMINI, "fake": {"chunk_interval_ms": 100}}, 50),
        (GEMINI_PATH, {"contents": GEMINI["contents"], "fake": {"chunk_interval_ms": 100}}, None),
    ],
    ids=["anthropic-max_tokens", "gemini-maxOutputTokens", "gemini-model-maximum"],
)
async def test_holds_are_sized_from_the_byte_bound_and_the_output_cap(
    rig: Rig, path: str, body: dict[str, Any], cap: int | None
) -> None:
    assert rig.app.gateway is not None
    biller = rig.app.gateway.biller
    held: list[int] = []

    async def on_chunk(resp: Response, chunk: bytes) -> None:
        if not held:
            hold = biller.holds.get(resp.headers["x-request-id"])
            assert hold is not None
            held.append(hold.amount_nano)

    resp = await rig.call(path, body, {"x-goog-api-key": rig.secret}, on_chunk=on_chunk)
    assert resp.status == 200
    model = body.get("model", "gemini-2.5-pro")
    entry = rig.app.gateway.config.prices.lookup(model, datetime.now(UTC))
    assert entry is not None
    if path == "/v1/messages":
        upper = tokens.chat_input_bounds(body)[0]
    else:
        upper = tokens.gemini_input_bounds(body)[0]
    max_output = cap if cap is not None else entry.max_output_tokens
    assert held == [cost.hold_cost_nano(entry, upper, max_output, Ratio(1, 1))]


async def test_failover_crosses_shapes_and_bills_once(rig: Rig) -> None:
    """The Anthropic channel fails (the scenario in the body reaches it); the OpenAI-compatible
    one serves the translated request (the scenario does not survive translation)."""
    key = await rig.admin.create_key(rig.account_id, name="fo", group="fo")
    rig.secret = str(key["secret"])
    body = {**CLAUDE, "fake": {"status": 503}}
    resp = await rig.call("/v1/messages", body)
    assert resp.status == 200, resp.body
    doc = orjson.loads(resp.body)
    assert doc["type"] == "message" and doc["content"][0]["text"] == "The quick brown fox"
    paths = [r["path"] for r in rig.fake[STATE_KEY].recorded]
    assert paths[-2:] == ["/v1/messages", "/v1/chat/completions"]
    rec = await rig.wait_record(resp.headers["request-id"])
    assert rec["status"] == "ok" and rec["deduction_nano"] > 0
    records = await rig.admin.list_usage(rig.account_id, limit=10)
    assert len(records) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_failover_translation_keeps_text_blocks_apart(rig: Rig, stream: bool) -> None:
    """Multi-block system and tool result: the Anthropic channel gets them as sent, the
    OpenAI-compatible one it fails over to gets them as as many text parts (issue 14)."""
    key = await rig.admin.create_key(rig.account_id, name="fo", group="fo")
    rig.secret = str(key["secret"])
    system = [
        {"type": "text", "text": "You are Claude Code."},
        {"type": "text", "text": "You are a CLI tool.", "cache_control": {"type": "ephemeral"}},
    ]
    result = [{"type": "text", "text": "18C"}, {"type": "text", "text": "sunny"}]
    use = {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}
    body = {
        **CLAUDE,
        "stream": stream,
        "system": system,
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, use]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}],
            },
        ],
        "fake": {"status": 503},
    }
    resp = await rig.call("/v1/messages", body)
    assert resp.status == 200, resp.body
    anthropic, chat = list(rig.fake[STATE_KEY].recorded)[-2:]
    assert anthropic["path"] == "/v1/messages" and chat["path"] == "/v1/chat/completions"
    assert (anthropic["body"]["system"], anthropic["body"]["messages"]) == (system, body["messages"])
    parts = [
        {"type": "text", "text": "You are Claude Code."},
        {"type": "text", "text": "You are a CLI tool."},
    ]
    assert chat["body"]["messages"][0] == {"role": "system", "content": parts}
    assert chat["body"]["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": result}


async def test_client_leaving_a_translated_stream_stops_upstream_and_bills_the_output(rig: Rig) -> None:
    body = {
        **CLAUDE,
        "stream": True,
        "messages": [{"role": "user", "content": 'hi <fake>{"chunks": 50, "chunk_interval_ms": 50}</fake>'}],
    }
    # claude-sonnet-4-5 for group "g" goes to the Anthropic channel first; make it the OpenAI one
    await rig.admin.upsert_channel("anth", create=False, groups_="fo")
    assert rig.app.gateway is not None
    await rig.app.gateway.config.refresh(force=True)
    state = rig.fake[STATE_KEY]
    before = state.streams_aborted_by_client
    resp = await rig.call("/v1/messages", body, leave_after=3)
    rec = await rig.wait_record(resp.headers["request-id"])
    assert rec["status"] == "client_disconnected" and rec["estimated"] is True
    assert 0 < rec["tokens"]["output"] < 50
    for _ in range(100):
        if state.streams_aborted_by_client > before:
            break
        await asyncio.sleep(0.02)
    assert state.streams_aborted_by_client == before + 1
    assert state.recorded[-1]["path"] == "/v1/chat/completions"
