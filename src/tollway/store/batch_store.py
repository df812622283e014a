"""Writing one settlement batch: holds, transfers with their entries and cached balances,
hold endings and usage records, in one transaction.

Two implementations behind one call, ``await store.write(batch)``:

- :class:`SqliteBatchStore` writes the whole batch in ONE call on a dedicated thread with the
  standard ``sqlite3`` module. Measured on the benchmark's database (bench/RESULTS.md): one
  call's commit took 2.0 ms through SQLAlchemy + aiosqlite (a thread hop per statement, and
  ``INSERT .. RETURNING`` executed row by row on SQLite) against 0.29 ms this way. It writes
  exactly the formats SQLAlchemy reads back (naive-UTC datetime text, 0/1 booleans).
- :class:`SqlAlchemyBatchStore` for PostgreSQL (asyncpg batches ``executemany`` itself).

Both raise :class:`BatchRefused` when a constraint refuses the batch (a duplicate trace ID),
so the writer can retry its operations one by one; any other error means "try again later".
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.ledger.transfer import Transfer
from tollway.store import ledger_repo
from tollway.store.tables import holds, usage_records


class BatchRefused(Exception):
    """A constraint refused the batch; retrying it unchanged would fail again."""


@dataclass(slots=True)
class Batch:
    hold_inserts: list[dict[str, Any]] = field(default_factory=list)
    hold_updates: list[dict[str, Any]] = field(default_factory=list)  # t, s, sn, o, e
    transfers: list[Transfer] = field(default_factory=list)
    usage_rows: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.hold_inserts or self.hold_updates or self.transfers or self.usage_rows)


class BatchStore(Protocol):
    async def write(self, batch: Batch) -> None: ...

    async def close(self) -> None: ...


class SqlAlchemyBatchStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, batch: Batch) -> None:
        try:
            async with self._engine.begin() as conn:
                if batch.hold_inserts:
                    await conn.execute(holds.insert(), batch.hold_inserts)
                if batch.hold_updates:
                    await conn.execute(
                        update(holds)
                        .where(and_(holds.c.trace_id == bindparam("t"), holds.c.state == "active"))
                        .values(
                            state=bindparam("s"),
                            settled_nano=bindparam("sn"),
                            overrun_nano=bindparam("o"),
                            ended_at=bindparam("e"),
                        ),
                        batch.hold_updates,
                    )
                if batch.usage_rows:
                    await conn.execute(usage_records.insert(), batch.usage_rows)
                # Last, just before the commit: the transfers end by updating cached balances,
                # and the platform's revenue account is in every batch of every node. Its row
                # lock is held from that UPDATE to the end of the commit (the WAL fsync), so
                # nothing else may run in between; the rows above contend with no one.
                if batch.transfers:
                    await ledger_repo.post_transfers(conn, batch.transfers, check_existing=False)
        except IntegrityError as exc:
            raise BatchRefused(str(exc.orig)) from exc

    async def close(self) -> None:
        return None


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite DATETIME text format, in UTC (see tables.UtcDateTime).
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


HOLD_COLUMNS = tuple(c.name for c in holds.columns)
USAGE_COLUMNS = tuple(c.name for c in usage_records.columns)
TRANSFER_COLUMNS = (
    "idempotency_key",
    "kind",
    "owner_id",
    "trace_id",
    "amount_nano",
    "memo",
    "actor",
    "created_at",
)
INSERT_HOLD = _insert_sql("holds", HOLD_COLUMNS)
INSERT_USAGE = _insert_sql("usage_records", USAGE_COLUMNS)
INSERT_TRANSFER = _insert_sql("ledger_transfers", TRANSFER_COLUMNS)
INSERT_ENTRY = "INSERT INTO ledger_entries (transfer_id, ledger_account_id, amount_nano) VALUES (?, ?, ?)"
UPDATE_BALANCE = "UPDATE ledger_accounts SET balance_nano = balance_nano + ? WHERE id = ?"
END_HOLD = (
    "UPDATE holds SET state = ?, settled_nano = ?, overrun_nano = ?, ended_at = ? "
    "WHERE trace_id = ? AND state = 'active'"
)
ID_CHUNK = 500  # SQLite's bound-parameter limit is far above this


class SqliteBatchStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tollway-sqlite-writer")
        self._db: sqlite3.Connection | None = None

    async def write(self, batch: Batch) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._write, batch)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=10000")
            self._db = db
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _write(self, batch: Batch) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            if batch.hold_inserts:
                db.executemany(INSERT_HOLD, _rows(batch.hold_inserts, HOLD_COLUMNS))
            if batch.transfers:
                self._post_transfers(db, batch.transfers)
            if batch.hold_updates:
                db.executemany(
                    END_HOLD,
                    [(u["s"], u["sn"], u["o"], _sqlite_value(u["e"]), u["t"]) for u in batch.hold_updates],
                )
            if batch.usage_rows:
                db.executemany(INSERT_USAGE, _rows(batch.usage_rows, USAGE_COLUMNS))
            db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            db.execute("ROLLBACK")
            raise BatchRefused(str(exc)) from exc
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _post_transfers(db: sqlite3.Connection, transfers: list[Transfer]) -> None:
        now = _sqlite_value(datetime.now(UTC))
        db.executemany(
            INSERT_TRANSFER,
            [
                (t.idempotency_key, t.kind, t.owner_id, t.trace_id, t.amount_nano, t.memo, t.actor, now)
                for t in transfers
            ],
        )
        ids: dict[str, int] = {}
        keys = [t.idempotency_key for t in transfers]
        for start in range(0, len(keys), ID_CHUNK):
            chunk = keys[start : start + ID_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for tid, key in db.execute(
                f"SELECT id, idempotency_key FROM ledger_transfers WHERE idempotency_key IN ({marks})", chunk
            ):
                ids[key] = tid
        deltas: dict[int, int] = defaultdict(int)
        entries = []
        for t in transfers:
            tid = ids[t.idempotency_key]
            for leg in t.legs:
                entries.append((tid, leg.ledger_account_id, leg.amount_nano))
                deltas[leg.ledger_account_id] += leg.amount_nano
        db.executemany(INSERT_ENTRY, entries)
        db.executemany(UPDATE_BALANCE, [(d, a) for a, d in sorted(deltas.items()) if d])


def _rows(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return [tuple(_sqlite_value(row.get(c)) for c in columns) for row in rows]


def make_batch_store(engine: AsyncEngine) -> BatchStore:
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return SqliteBatchStore(str(engine.url.database))
    return SqlAlchemyBatchStore(engine)
