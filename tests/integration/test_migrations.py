"""Migrations: several processes starting at once against one fresh database all come up
(PostgreSQL serialises them with an advisory lock), and the schema ends at head."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text

from tollway.settings import normalise_database_url
from tollway.store.db import make_engine, migrate


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_concurrent_migrations_on_a_fresh_database(db_url: str) -> None:
    engines = [make_engine(normalise_database_url(db_url)) for _ in range(4)]
    try:
        async with asyncio.timeout(60):  # without the lock they collide (or wait on each other)
            await asyncio.gather(*(migrate(e) for e in engines))
        async with engines[0].connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("groups")})
        assert version == "0011" and "sticky" in columns
    finally:
        for e in engines:
            await e.dispose()
