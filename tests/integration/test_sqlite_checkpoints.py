"""The server's SQLite engine never checkpoints inside a commit; a background task does."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.store.db import make_engine, run_sqlite_checkpoints


async def _write_pages(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    for i in range(rows):
        async with engine.begin() as conn:  # one commit per row: WAL frames pile up
            await conn.exec_driver_sql("INSERT INTO t (body) VALUES (?)", (f"{i}" + "x" * 2000,))


async def test_commits_do_not_checkpoint_on_the_server_engine(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", background_checkpoint=True)
    try:
        await _write_pages(engine, 1500)
        wal = tmp_path / "a.db-wal"
        # 1,500 commits of a page or more each: past SQLite's 1,000-page autocheckpoint, which
        # would have reset the WAL; with it off the WAL holds them all
        assert wal.stat().st_size > 1000 * 4096
    finally:
        await engine.dispose()


async def test_the_background_task_checkpoints(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", background_checkpoint=True)
    task = asyncio.get_running_loop().create_task(run_sqlite_checkpoints(engine, 0.05))
    try:
        await _write_pages(engine, 300)
        await asyncio.sleep(0.3)
        size_before = (tmp_path / "b.db-wal").stat().st_size
        # checkpointed meanwhile, the WAL is reused from its start; unchecked it would double
        await _write_pages(engine, 300)
        await asyncio.sleep(0.3)
        assert (tmp_path / "b.db-wal").stat().st_size <= size_before * 1.5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


async def test_other_engines_keep_sqlites_own_checkpoint(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 1000
    finally:
        await engine.dispose()
