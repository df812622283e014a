"""A started :class:`TollwayApp` (SQLite, fake upstream on loopback) called at its ASGI
boundary, where the TCP peer and the scheme can be chosen per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tollway.app import TollwayApp
from tollway.fake_upstream import STATE_KEY, FakeConfig, build_app
from tollway.services.admin import AdminService
from tollway.settings import Settings

SECRET_KEY = "edge-secret-key"
EMAIL = "edge@example.test"
PASSWORD = "correct horse battery"
UPSTREAM_KEY = "sk-upstream-oai-0123456789abcdef"
PEER = ("203.0.113.9", 40000)  # an ordinary client, not a proxy


@dataclass
class Reply:
    status: int = 0
    header_list: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        return orjson.loads(self.body)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k == name]

    def one(self, name: str) -> str:
        values = self.all(name)
        assert len(values) == 1, (name, values)
        return values[0]


@dataclass
class EdgeRig:
    app: TollwayApp
    admin: AdminService
    fake_url: str
    account_id: str = ""
    secret: str = ""

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        *,
        peer: tuple[str, int] = PEER,
        scheme: str = "http",
    ) -> Reply:
        raw = orjson.dumps(body) if isinstance(body, dict) else (body or b"")
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if isinstance(body, dict) and not any(k.lower() == "content-type" for k, _ in items):
            items.append(("content-type", "application/json"))
        path, _, query = path.partition("?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"tollway.test"), *((k.lower().encode(), v.encode()) for k, v in items)],
            "client": peer,
            "server": ("127.0.0.1", 8080),
        }
        reply = Reply()
        sent = False
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await done.wait()  # the client stays until the whole answer arrived
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                reply.status = message["status"]
                reply.header_list = [(k.decode().lower(), v.decode()) for k, v in message["headers"]]
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    reply.chunks.append(message["body"])
                if not message.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        return reply


@dataclass
class Fake:
    url: str
    app: Any  # aiohttp web.Application

    def last_request(self) -> dict[str, Any]:
        return dict(self.app[STATE_KEY].recorded[-1])


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[Fake]:
    from aiohttp import web

    fake_app = build_app(FakeConfig(chunks=3))
    runner = web.AppRunner(fake_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Fake(f"http://127.0.0.1:{runner.addresses[0][1]}", fake_app)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def tollway(
    tmp_path: Path, fake: Fake, *, provision: bool = True, **settings: Any
) -> AsyncIterator[EdgeRig]:
    """A started app on ``tmp_path``'s SQLite file (or ``database_url``); ``provision`` makes
    the group, the OpenAI channel on the fake, an account with a password, credit and a key."""
    settings.setdefault("database_url", f"sqlite:///{tmp_path / 'tollway.db'}")
    settings.setdefault("secret_key", SECRET_KEY)
    app = TollwayApp(
        Settings(
            data_dir=tmp_path / "data",
            hold_sweep_interval_s=60,
            refresh_interval_s=60,
            probe_interval_s=0,
            **settings,
        )
    )
    await app.start()
    admin = AdminService(app.engine, app.box)
    rig = EdgeRig(app, admin, fake.url)
    try:
        if provision:
            await admin.upsert_group("g", create=True, multiplier="1")
            await admin.upsert_channel(
                "oai",
                create=True,
                type="openai",
                base_url=f"{fake.url}/v1",
                api_key=UPSTREAM_KEY,
                models="gpt-4o,text-embedding-3-small",
                priority=0,
            )
            account = await admin.create_account(EMAIL, password=PASSWORD)
            await admin.credit(account["id"], "10", kind="cash", reason="test")
            key = await admin.create_key(account["id"], name="k", group="g")
            rig.account_id, rig.secret = str(account["id"]), str(key["secret"])
        assert app.gateway is not None
        await app.gateway.config.refresh(force=True)
        yield rig
    finally:
        await app.stop()


@asynccontextmanager
async def edge_rig(tmp_path: Path, **settings: Any) -> AsyncIterator[EdgeRig]:
    async with fake_upstream() as fake, tollway(tmp_path, fake, **settings) as rig:
        yield rig
