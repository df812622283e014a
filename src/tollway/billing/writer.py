"""Grouped commits: settlements, holds and records are written in batches.

A batch commits at ``batch_size`` operations or ``interval_ms``, whichever comes first, and
nothing waiting on an operation is released before the batch holding it has committed
(DESIGN.md §10). A failed commit is retried (the database may be briefly away); an operation
is never dropped, so a settlement that outlives its caller's deadline is still posted once
the database returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.durations import Milliseconds, Seconds
from tollway.ledger.holds import Hold
from tollway.ledger.transfer import Transfer
from tollway.store.batch_store import Batch, BatchRefused, make_batch_store

log = logging.getLogger("tollway.writer")


@dataclass(slots=True)
class HoldOpened:
    hold: Hold


@dataclass(slots=True)
class HoldEnded:
    """Settle, void or expire a hold, with the call's transfer and record if it has them."""

    trace_id: str
    state: str  # settled | voided | expired
    ended_at: datetime
    settled_nano: int | None = None
    overrun_nano: int = 0
    transfer: Transfer | None = None
    usage_row: dict[str, Any] | None = None
    hold: Hold | None = None
    insert: bool = False  # the open was never written: write the hold once, in its final state


@dataclass(slots=True)
class PostTransfer:
    transfer: Transfer


@dataclass(slots=True)
class Flush:
    """Commits nothing; completes once everything queued before it has committed."""


@dataclass(slots=True)
class Exclusive:
    """Runs ``fn`` between batches, when no commit is in flight (wallet reloads need that)."""

    fn: Callable[[], Awaitable[None]]


Op = HoldOpened | HoldEnded | PostTransfer | Flush | Exclusive


@dataclass(slots=True)
class _Item:
    op: Op
    future: asyncio.Future[None]
    done_callbacks: list[Callable[[], None]] = field(default_factory=list)


class SettlementWriter:
    """Group commit: while one batch commits, the next accumulates; a batch closes at
    ``batch_size`` operations or once ``interval_ms`` has passed (0: as soon as the writer is
    free, which already groups everything that arrived during the previous commit).

    Hold openings are written lazily: most calls end within a second, and a hold that opens and
    ends before it was written is written once, in its final state. A hold still open after
    ``hold_persist_delay_s`` is written as active, so a crash leaves it for the expiry sweep.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int,
        interval_ms: Milliseconds,
        hold_persist_delay_s: Seconds = 1.0,
    ) -> None:
        self._store = make_batch_store(engine)
        self._batch_size = max(1, batch_size)
        self._interval = max(0.0, interval_ms) / 1000.0
        self._persist_delay = max(0.0, hold_persist_delay_s)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._lazy: dict[str, tuple[Seconds, _Item]] = {}  # trace id -> (due time, open not yet written)
        self._task: asyncio.Task[None] | None = None
        self.committed_batches = 0
        self.healthy = True

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="settlement-writer")

    async def stop(self) -> None:
        """Flush everything queued, then stop."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._store.close()

    async def flush(self) -> None:
        """Wait until everything submitted so far, lazy hold openings included, is committed."""
        for _due, item in self._lazy.values():
            self._queue.put_nowait(item)
        self._lazy.clear()
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(Flush(), marker))
        await marker

    def submit(self, op: Op, on_commit: Callable[[], None] | None = None) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        item = _Item(op, fut)
        if on_commit is not None:
            item.done_callbacks.append(on_commit)
        if isinstance(op, HoldOpened) and self._persist_delay > 0:
            self._lazy[op.hold.trace_id] = (loop.time() + self._persist_delay, item)
            return fut
        if isinstance(op, HoldEnded):
            pending = self._lazy.pop(op.trace_id, None)
            if pending is not None:
                op.insert = op.hold is not None
                pending[1].future.set_result(None)
        self._queue.put_nowait(item)
        return fut

    def _due_opens(self, now: Seconds) -> list[_Item]:
        # Every opening waits the same delay, so insertion order is due order: look at the head.
        due: list[_Item] = []
        for when, item in self._lazy.values():
            if when > now:
                break
            due.append(item)
        for item in due:
            assert isinstance(item.op, HoldOpened)
            del self._lazy[item.op.hold.trace_id]
        return due

    def _next_due(self, now: Seconds) -> Seconds | None:
        for when, _item in self._lazy.values():
            return max(0.0, when - now)
        return None

    async def run_exclusive(self, fn: Callable[[], Awaitable[None]]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(Exclusive(fn), fut))
        await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Item | None = None
        while True:
            if carry is not None:
                first: _Item | None = carry
                carry = None
            else:
                wait = self._next_due(loop.time())
                try:  # asyncio.timeout, not wait_for: see TollwayApp._refresh_loop
                    async with asyncio.timeout(wait):
                        first = await self._queue.get()
                except TimeoutError:
                    first = None
            if first is not None and isinstance(first.op, Exclusive):
                await self._exclusive(first)
                continue
            batch = [] if first is None else [first]
            deadline = loop.time() + self._interval
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        async with asyncio.timeout(remaining):
                            item = await self._queue.get()
                    except TimeoutError:
                        break
                if isinstance(item.op, Exclusive):
                    carry = item
                    break
                batch.append(item)
            batch[:0] = self._due_opens(loop.time())
            if batch:
                await self._commit_with_retry(batch)

    async def _exclusive(self, item: _Item) -> None:
        assert isinstance(item.op, Exclusive)
        try:
            await item.op.fn()
        except Exception as exc:  # a failed reload must not stop the writer
            log.warning("maintenance step failed: %s", exc)
            if not item.future.done():
                item.future.set_exception(exc)
            return
        if not item.future.done():
            item.future.set_result(None)

    async def _commit_with_retry(self, batch: list[_Item]) -> None:
        delay = 0.05
        while True:
            try:
                await self._commit(batch)
                self.healthy = True
                break
            except BatchRefused:
                log.exception("batch hit a constraint; committing its operations one by one")
                await self._commit_singly(batch)
                break
            except asyncio.CancelledError:
                raise
            except Exception:  # database away: keep the operations, try again
                self.healthy = False
                log.warning("settlement batch failed to commit; retrying in %.2fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        self.committed_batches += 1
        for item in batch:
            for cb in item.done_callbacks:
                cb()
            if not item.future.done():
                item.future.set_result(None)

    async def _commit_singly(self, batch: list[_Item]) -> None:
        for item in batch:
            try:
                await self._commit([item])
            except BatchRefused as exc:
                # Refused for good (a bug upstream of here): its waiter gets the error; its
                # callbacks still run so in-memory bookkeeping of pending deltas stays exact.
                log.error("operation %r refused by the database: %s", item.op, exc)
                if not item.future.done():
                    item.future.set_exception(exc)

    async def _commit(self, batch: list[_Item]) -> None:
        plan = plan_batch([item.op for item in batch])
        if plan:
            await self._store.write(plan)


def plan_batch(ops: list[Op]) -> Batch:
    """The rows one batch writes. A hold opened and ended in the same batch (or ended before
    its opening was written) is inserted once, in its final state."""
    batch = Batch()
    opens: dict[str, dict[str, Any]] = {}
    for op in ops:
        if isinstance(op, HoldOpened):
            opens[op.hold.trace_id] = _hold_row(op.hold)
        elif isinstance(op, HoldEnded):
            if op.insert and op.hold is not None:
                opens[op.trace_id] = _hold_row(op.hold)
            opened = opens.get(op.trace_id)
            if opened is not None:
                opened.update(
                    state=op.state,
                    settled_nano=op.settled_nano,
                    overrun_nano=op.overrun_nano,
                    ended_at=op.ended_at,
                )
            else:
                batch.hold_updates.append(
                    {
                        "t": op.trace_id,
                        "s": op.state,
                        "sn": op.settled_nano,
                        "o": op.overrun_nano,
                        "e": op.ended_at,
                    }
                )
            if op.transfer is not None:
                batch.transfers.append(op.transfer)
            if op.usage_row is not None:
                batch.usage_rows.append(op.usage_row)
        elif isinstance(op, PostTransfer):
            batch.transfers.append(op.transfer)
    batch.hold_inserts = list(opens.values())
    return batch


def _hold_row(h: Hold) -> dict[str, Any]:
    return {
        "trace_id": h.trace_id,
        "owner_id": h.owner_id,
        "key_id": h.key_id,
        "amount_nano": h.amount_nano,
        "state": "active",
        "settled_nano": None,
        "overrun_nano": 0,
        "created_at": h.created_at,
        "expires_at": h.expires_at,
        "ended_at": None,
    }
