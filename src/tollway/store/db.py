"""Engine creation, SQLite pragmas and migrations."""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger("tollway.store")


def make_engine(url: str, *, pool_size: int = 10, background_checkpoint: bool = False) -> AsyncEngine:
    """``background_checkpoint`` (SQLite, the server): commits never run a WAL checkpoint;
    :func:`run_sqlite_checkpoints` does, off the request path."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, poolclass=NullPool if not path else None)
        pragmas = functools.partial(_sqlite_pragmas, autocheckpoint=not background_checkpoint)
        event.listen(engine.sync_engine, "connect", pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, autocheckpoint: bool = True) -> None:
    cur = dbapi_conn.cursor()
    # WAL + synchronous=NORMAL survives a process crash (DESIGN.md §10); busy_timeout lets the
    # control plane and the settlement writer take turns instead of failing with "locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    if not autocheckpoint:
        # SQLite's own checkpoint runs inside the commit that crosses 1,000 WAL pages: that
        # commit writes the pages back and fsyncs, 5-60 ms, about 1 call in 100 (the 1-connection
        # p99 in bench/RESULTS.md). The server checkpoints from a background task instead.
        cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.execute("PRAGMA journal_size_limit=67108864")
    cur.close()


async def run_sqlite_checkpoints(engine: AsyncEngine, interval_s: float) -> None:
    """Forever: a PASSIVE checkpoint every ``interval_s`` (it never blocks a writer or a reader;
    it copies what no reader still needs and the WAL is reused from its start)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("WAL checkpoint failed; will retry", exc_info=True)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


# Any fixed number: the key of the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 0x746F6C6C77  # "tollw"


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (idempotent; run on start and by `tollway migrate`).

    On PostgreSQL several nodes (or CLI processes) may start at once against one database: a
    transaction-scoped advisory lock makes them take turns, so the second one finds the schema
    at head instead of applying the same DDL again."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await conn.run_sync(_upgrade)
