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
    main_file = tmp_path / "b.db"
    await _write_pages(engine, 300)
    # with autocheckpoint off nothing has reached the main file yet: it is all in the WAL
    assert main_file.stat().st_size < 100 * 4096
    task = asyncio.get_running_loop().create_task(run_sqlite_checkpoints(engine, 0.05))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0  # a loaded CI machine may be slow, never this slow
        while main_file.stat().st_size < 300 * 2000 and loop.time() < deadline:  # noqa: ASYNC110 (a file, no event)
            await asyncio.sleep(0.05)
        # the checkpoint copied the 300 rows (2 kB each) into the main file
        assert main_file.stat().st_size >= 300 * 2000
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
