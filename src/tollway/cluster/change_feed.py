"""Each node LISTENs for the change notices of :mod:`tollway.store.changes` on a connection
of its own and wakes its reload at once; the poll every ``refresh_interval_s`` stays as the
fallback. A lost connection is re-opened after ``notify_retry_s``, and every (re)connection
triggers one reload (notices sent while nobody listened are not replayed by PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.store.changes import CHANGES_CHANNEL, CONFIG, LEDGER

log = logging.getLogger("tollway.cluster")

APP_NAME = "tollway-listen"  # how the LISTEN connection shows in pg_stat_activity


def listen_dsn(engine: AsyncEngine) -> str:
    """The engine's database as a plain libpq URL for asyncpg."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeFeed:
    def __init__(
        self,
        dsn: str,
        on_change: Callable[[str], None],
        *,
        retry_s: float = 1.0,
        check_s: float = 5.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.on_change = on_change
        self.retry_s = retry_s
        self.check_s = check_s
        self.timeout_s = timeout_s
        self.listening = asyncio.Event()  # set while a LISTEN is in place (tests wait for it)

    def _notice(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self.on_change(payload)
        except Exception:
            log.exception("a change notice could not be handled; the poll picks the change up")

    async def run(self) -> None:
        warned = False
        while True:
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=self.timeout_s, server_settings={"application_name": APP_NAME}
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not warned:
                    log.warning("cannot LISTEN for changes (%s); polling until it works", exc)
                    warned = True
                await asyncio.sleep(self.retry_s)
                continue
            warned = False
            try:
                await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change notices lost (%s); listening again in %.1fs", exc, self.retry_s)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    conn.terminate()
            await asyncio.sleep(self.retry_s)

    async def _listen(self, conn: Any) -> None:  # an asyncpg.Connection
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        await conn.add_listener(CHANGES_CHANNEL, self._notice)
        self.listening.set()
        for what in (CONFIG, LEDGER):  # whatever changed while nobody listened
            self._notice(conn, 0, CHANGES_CHANNEL, what)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_s):  # not wait_for: see app.py
                    await lost.wait()
            if not lost.is_set():  # a connection that died silently fails this
                await conn.fetchval("SELECT 1", timeout=self.timeout_s)
        raise ConnectionError("the LISTEN connection closed")
