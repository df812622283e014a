"""The app's side of channel health: transitions to the audit log, the metrics and the alert
webhook; the operations endpoints; 503 while shutting down."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from tollway.app import TollwayApp
from tollway.catalog.model import Channel, ChannelType
from tollway.routing.health import Outcome
from tollway.settings import Settings
from tollway.store.tables import audit_log


async def asgi_get(app: TollwayApp, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], headers, body


async def test_transition_goes_to_audit_metrics_and_webhook(db_url: str, tmp_path: Path) -> None:
    posts: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(text="ok")

    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_key="test-secret",
        alert_webhook_url=f"http://127.0.0.1:{port}/hook",
        probe_interval_s=0,
    )
    app = TollwayApp(settings)
    await app.start()
    try:
        channel = Channel(
            id="c-1",
            name="acme",
            type=ChannelType.OPENAI,
            base_url="http://127.0.0.1:9/v1",
            api_key="k",
            models=frozenset({"gpt-4o-mini"}),
            model_map={},
            groups=frozenset(),
        )
        app.health.record(channel, Outcome.DISABLE, "HTTP 401 invalid_api_key")
        for _ in range(100):
            if posts:
                break
            await asyncio.sleep(0.05)
        assert posts and posts[0]["after"] == "disabled" and posts[0]["channel"] == "acme"
        async with app.engine.connect() as conn:
            rows = (await conn.execute(select(audit_log).where(audit_log.c.action == "channel.state"))).all()
        assert len(rows) == 1 and rows[0].target == "channel:c-1"
        assert json.loads(rows[0].after) == {"state": "disabled"}
        status, headers, body = await asgi_get(app, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert b'tollway_channel_state{channel="acme",state="disabled"} 1.0' in body
        assert b'tollway_channel_transitions_total{channel="acme",to="disabled"} 1.0' in body
        assert (await asgi_get(app, "/healthz"))[0] == 200
        status, _, body = await asgi_get(app, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
    finally:
        await app.stop()
        await runner.cleanup()
    # after stop: the data plane refuses, readiness says no
    status, headers, _ = await asgi_get(app, "/v1/models")
    assert status == 503 and headers.get("retry-after")
