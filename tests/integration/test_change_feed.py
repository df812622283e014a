"""Change notices on real PostgreSQL: a configuration write or a credit committed by another
connection (the CLI, the API, another node) reaches a listening node at once; a rolled-back
write and a call's own usage send nothing; a dropped LISTEN connection comes back and reloads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.cluster.change_feed import APP_NAME, ChangeFeed, listen_dsn
from tollway.services.admin import AdminService
from tollway.settings import normalise_database_url
from tollway.store import config_repo
from tollway.store.db import make_engine, migrate
from tollway.store.secret_box import SecretBox


@pytest.fixture
async def pg_engine(pg_db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(normalise_database_url(pg_db_url))
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


class Heard:
    def __init__(self) -> None:
        self.notices: list[tuple[float, str]] = []

    def __call__(self, what: str) -> None:
        self.notices.append((time.monotonic(), what))

    async def wait_for(self, what: str, after: float, within_s: float = 1.0) -> float:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for at, w in self.notices:
                if w == what and at >= after:
                    return at - after
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {what!r} notice within {within_s}s: {self.notices}")


async def test_writes_elsewhere_reach_the_listener_at_once(pg_engine: AsyncEngine) -> None:
    heard = Heard()
    feed = ChangeFeed(listen_dsn(pg_engine), heard, retry_s=0.1, check_s=0.2)
    task = asyncio.get_running_loop().create_task(feed.run())
    try:
        await asyncio.wait_for(feed.listening.wait(), 5)
        await heard.wait_for("config", 0.0)  # the reload of (re)connecting
        svc = AdminService(pg_engine, SecretBox("k" * 32), actor="test")
        t0 = time.monotonic()
        await svc.upsert_group("g1", create=True, multiplier="1")
        assert await heard.wait_for("config", t0) < 1.0
        account = await svc.create_account("feed@example.test")
        t0 = time.monotonic()
        await svc.credit(str(account["id"]), "5", kind="cash", reason="top-up")
        assert await heard.wait_for("ledger", t0) < 1.0

        # a write that rolls back tells nobody
        before = len(heard.notices)
        with pytest.raises(RuntimeError):
            async with pg_engine.begin() as conn:
                await config_repo.bump_version(conn)
                raise RuntimeError("rolled back")
        await asyncio.sleep(0.3)
        assert len(heard.notices) == before

        # the LISTEN connection is killed: the feed listens again and reloads
        admin = await asyncpg.connect(listen_dsn(pg_engine))
        try:
            t0 = time.monotonic()
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                APP_NAME,
            )
        finally:
            await admin.close()
        await heard.wait_for("config", t0, within_s=5)
        await asyncio.wait_for(feed.listening.wait(), 5)
        t0 = time.monotonic()
        await svc.upsert_group("g2", create=True, multiplier="1")
        assert await heard.wait_for("config", t0) < 1.0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
