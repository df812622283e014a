"""Shared fixtures: throwaway databases on SQLite and PostgreSQL.

``db_url`` is parametrised over both back-ends; every test that takes it runs twice. The
PostgreSQL database is created for the test and dropped after it. Set
``TOLLWAY_TEST_PG_ADMIN_URL`` to point at another server (default: local trust auth).
Set ``TOLLWAY_TEST_BACKENDS=sqlite`` to run only SQLite while iterating locally; CI runs both.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.store.db import make_engine, migrate

if TYPE_CHECKING:
    from redis_support import PrivateRedis

PG_ADMIN_DSN = os.environ.get("TOLLWAY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("TOLLWAY_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database() -> str:
    name = f"tollway_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL (as an operator would write it) for an empty, throwaway database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tollway.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on the throwaway database."""
    from tollway.settings import normalise_database_url

    eng = make_engine(normalise_database_url(db_url))
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A ``TOLLWAY_REDIS_PREFIX`` of this test's own on the shared Redis, emptied afterwards."""
    from redis_support import REDIS_URL, drop_prefix, new_prefix

    prefix = new_prefix()
    try:
        yield prefix
    finally:
        drop_prefix(REDIS_URL, prefix)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (``.url``, ``.stop()``, ``.start()`` on the same port)."""
    from redis_support import PrivateRedis

    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_db_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (for what runs on PostgreSQL only: several nodes)."""
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)
