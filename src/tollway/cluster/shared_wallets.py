"""Admission shared by every node: holds, balances, key spend caps and rate limits in Redis.

One script admits a call (limits checked, balance checked, then both consumed, or nothing is),
one ends it (hold and limits released, the cost spent in spend order). The ledger in the
database stays the record: Redis holds what the nodes must agree on *now* — the committed
balances plus spends not yet committed, and every open hold. How it stays in step with the
ledger, and what happens when Redis is away or restarts, is in docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.cluster import lua
from tollway.cluster.redis_client import KeySpace
from tollway.durations import Seconds
from tollway.errors import ServiceUnavailable
from tollway.ledger.chart import CUSTOMER_KINDS, AccountKind, TransferKind
from tollway.limits.specs import LimitSpec, limited, too_big
from tollway.store import ledger_repo
from tollway.store.tables import (
    ledger_accounts,
    ledger_entries,
    ledger_transfers,
    usage_records,
)

log = logging.getLogger("tollway.cluster")

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class SharedStateLost(Exception):
    """Redis answered with another epoch: it restarted and lost the shared state."""


@dataclass(slots=True)
class Ticket:
    """What this node must tell Redis when one admitted call ends."""

    owner_id: str
    key_id: str
    size: int
    key_amount: int
    limits: tuple[LimitSpec, ...]
    tokens: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Short:
    """The balance (or the key's cap) cannot cover the call; nothing was reserved."""

    available_nano: int
    scope: str  # "account" | "key spend cap"


@dataclass(slots=True)
class Spent:
    cash_ledger_id: int
    cash_before: int
    cash_after: int
    vouchers_after: int
    plan: list[tuple[int, int]] = field(default_factory=list)  # (ledger account id, amount taken)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def unavailable(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"the shared admission state (Redis) is {what}, so no call can be admitted safely right now; "
        "retry in a moment",
        retry_after_s=1,
    )


class SharedWallets:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: KeySpace,
        engine: AsyncEngine,
        *,
        hold_timeout_s: Seconds,
        wallet_ttl_s: Seconds,
        lookback_s: Seconds,
        recovery_s: Seconds,
    ) -> None:
        self.redis = client
        self.k = keys
        self.engine = engine
        self.hold_ms = int(hold_timeout_s * 1000)
        self.ttl_ms = self.hold_ms + int(wallet_ttl_s * 1000)
        self.lookback = timedelta(seconds=lookback_s)
        self.recovery_ms = max(1, int(recovery_s * 1000))
        self.tombstone_ms = max(self.hold_ms, 60_000)
        self.epoch = ""
        self.reachable = True
        self.tickets: dict[str, Ticket] = {}
        self.replay: list[tuple[str, list[str], list[Any]]] = []  # (script, keys, args) to resend
        self._scripts = {
            name: client.register_script(src)
            for name, src in (
                ("admit", lua.ADMIT),
                ("spend", lua.SPEND),
                ("init", lua.INIT),
                ("apply", lua.APPLY),
                ("force", lua.FORCE_HOLD),
                ("sweep", lua.SWEEP),
            )
        }
        self._recovering: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.redis.set(self.k("epoch"), uuid.uuid4().hex, nx=True)
        self.epoch = _text(await self.redis.get(self.k("epoch")))

    async def close(self) -> None:
        await self.redis.aclose()

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            result = await self._scripts[name](keys=keys, args=args)
        except REDIS_DOWN as exc:
            if self.reachable:
                log.error("Redis unreachable (%s): refusing new calls until it answers", exc)
            self.reachable = False
            raise
        self.reachable = True
        return result

    # ------------------------------------------------------------------ admission

    async def admit(
        self,
        *,
        trace_id: str,
        owner_id: str,
        key_id: str,
        worst: int,
        expected: int,
        cap_nano: int | None,
        limits: tuple[LimitSpec, ...],
        tokens: int,
    ) -> int | Short:
        """Reserve the hold (and the limits) atomically; its size, or why not."""
        wallet_key, key_key = self.k("w", owner_id), self.k("k", key_id)
        keys = [
            self.k("epoch"),
            self.k("recovering"),
            wallet_key,
            key_key,
            self.k("h", trace_id),
            self.k("hx"),
        ]
        keys += [self.k(spec.kind, spec.scope, spec.ident) for spec in limits]
        args: list[Any] = [self.epoch, trace_id, worst, expected, -1 if cap_nano is None else cap_nano]
        args += [self.hold_ms, self.ttl_ms, tokens, len(limits)]
        for spec in limits:
            args += [spec.kind, spec.limit]
        for _ in range(3):
            try:
                res = await self._run("admit", keys, args)
            except REDIS_DOWN:
                # The script may still run (a stalled Redis works through what it was sent):
                # end the call on Redis once it answers, so no hold or slot stays taken.
                ghost = Ticket(owner_id, key_id, 0, 0, limits, tokens, 0)
                self.replay.append(("spend", *self._spend_call(trace_id, ghost, 0, False, None, None)))
                raise unavailable("unreachable") from None
            code = int(res[0])
            if code == 0:
                size = int(res[1])
                expires = int(datetime.now(UTC).timestamp() * 1000) + self.hold_ms
                self.tickets[trace_id] = Ticket(
                    owner_id, key_id, size, size if cap_nano is not None else 0, limits, tokens, expires
                )
                return size
            if code == 1:
                spec = limits[int(res[1]) - 1]
                raise limited(spec, int(res[3]), int(res[2]) / 1000)
            if code == 2:
                return Short(int(res[1]), "account" if int(res[2]) == 0 else "key spend cap")
            if code == 7:
                raise too_big(limits[int(res[1]) - 1], tokens, 0)
            if code in (3, 4):
                await self.load(owner_id, key_id if cap_nano is not None else None)
                continue
            if code == 5:
                self._start_recovery()
                raise unavailable("recovering from a restart")
            if code in (6, 8):
                raise unavailable("recovering from a restart")
        raise unavailable("not answering consistently")

    async def load(self, owner_id: str, key_id: str | None) -> None:
        """Copy a wallet (and a key's spend so far) from the ledger into Redis, unless Redis
        has it already. One consistent read: balances plus the control-plane transfers of the
        look-back window they include, so the follower does not apply those twice."""
        since = datetime.now(UTC) - self.lookback
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                wallet = await ledger_repo.load_wallet(conn, owner_id)
                recent = (
                    (
                        await conn.execute(
                            select(ledger_transfers.c.idempotency_key).where(
                                and_(
                                    ledger_transfers.c.owner_id == owner_id,
                                    ledger_transfers.c.kind != TransferKind.USAGE.value,
                                    ledger_transfers.c.created_at > since,
                                )
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                used = ""
                if key_id is not None:
                    total = (
                        await conn.execute(
                            select(func.coalesce(func.sum(usage_records.c.deduction_nano), 0)).where(
                                usage_records.c.key_id == key_id
                            )
                        )
                    ).scalar_one()
                    used = str(int(total))
        keys = [self.k("epoch"), self.k("w", owner_id), self.k("k", key_id or "-")]
        keys += [self.k("ap", str(t), owner_id) for t in recent]
        args: list[Any] = [self.epoch, self.ttl_ms, self.marker_ttl_ms, wallet.cash.ledger_account_id]
        args += [wallet.cash.balance_nano, used, len(wallet.vouchers)]
        for pot in wallet.vouchers:
            exp = "" if pot.expires_at is None else str(int(pot.expires_at.timestamp() * 1000))
            args += [pot.ledger_account_id, pot.balance_nano, exp]
        try:
            res = await self._run("init", keys, args)
        except REDIS_DOWN:
            raise unavailable("unreachable") from None
        if int(res) == -1:
            self._start_recovery()
            raise unavailable("recovering from a restart")

    @property
    def marker_ttl_ms(self) -> int:
        return int(self.lookback.total_seconds() * 2000)

    # ------------------------------------------------------------------ the end of a call

    def _spend_call(
        self,
        trace_id: str,
        ticket: Ticket,
        amount: int,
        force: bool,
        tokens_actual: int | None,
        plan: list[tuple[int, int]] | None,
    ) -> tuple[list[str], list[Any]]:
        ended = [s for s in ticket.limits if s.kind in ("c", "t")]
        keys = [self.k("epoch"), self.k("w", ticket.owner_id), self.k("k", ticket.key_id)]
        keys += [self.k("h", trace_id), self.k("hx")]
        keys += [self.k(s.kind, s.scope, s.ident) for s in ended]
        correction = 0 if tokens_actual is None else ticket.tokens - tokens_actual
        args: list[Any] = [self.epoch, trace_id, amount, "1" if force else "0", correction, len(ended)]
        for s in ended:
            args += [s.kind, s.limit]
        args.append(len(plan or []))
        for ledger_id, take in plan or []:
            args += [ledger_id, take]
        args.append(self.tombstone_ms)
        return keys, args

    async def spend(
        self, trace_id: str, amount: int, *, force: bool, tokens_actual: int | None
    ) -> Spent | None:
        """Release the call's hold and limits and spend ``amount``; the spend plan, or None when
        Redis cannot say (unreachable, restarted, or the wallet unknown): the caller then plans
        from its own cache and :meth:`spend` is replayed with that plan later."""
        ticket = self.tickets.pop(trace_id, None)
        if ticket is None:
            return None
        keys, args = self._spend_call(trace_id, ticket, amount, force, tokens_actual, None)
        try:
            res = await self._run("spend", keys, args)
        except REDIS_DOWN:
            self.tickets[trace_id] = ticket  # the caller queues the replay with its plan
            return None
        if int(res[0]) != 0:
            return None  # epoch changed (the new state was read from the ledger) or wallet gone
        plan = [(int(res[i]), int(res[i + 1])) for i in range(5, len(res), 2)]
        return Spent(int(res[1]), int(res[2]), int(res[3]), int(res[4]), plan)

    def replay_spend(
        self,
        trace_id: str,
        amount: int,
        plan: list[tuple[int, int]],
        *,
        force: bool,
        tokens_actual: int | None,
    ) -> None:
        """Queue the spend made from this node's cache while Redis was away."""
        ticket = self.tickets.pop(trace_id, None)
        if ticket is None:
            return
        keys, args = self._spend_call(trace_id, ticket, amount, force, tokens_actual, plan)
        self.replay.append(("spend", keys, args))

    async def release(self, trace_id: str) -> None:
        """End a call that spent nothing (voided, abandoned, expired): its tokens go back too."""
        ticket = self.tickets.pop(trace_id, None)
        if ticket is None:
            return
        keys, args = self._spend_call(trace_id, ticket, 0, False, 0, None)
        try:
            await self._run("spend", keys, args)
        except REDIS_DOWN:
            self.replay.append(("spend", keys, args))

    async def unspend(self, owner_id: str, plan: list[tuple[int, int]], cash_ledger_id: int) -> None:
        """Give back a spend whose ledger commit was refused (no dedupe: it runs once)."""
        wallet_key = self.k("w", owner_id)
        args: list[Any] = [self.epoch, self.marker_ttl_ms, len(plan)]
        for ledger_id, take in plan:
            args += ["c" if ledger_id == cash_ledger_id else "v", ledger_id, take, ""]
        keys = [self.k("epoch"), wallet_key, wallet_key]
        try:
            await self._run("apply", keys, args)
        except REDIS_DOWN:
            self.replay.append(("apply", keys, args))

    # ------------------------------------------------------------------ background work

    async def flush_replay(self) -> None:
        """Resend what failed while Redis was unreachable (same epoch only: after a restart the
        state is read from the ledger again, which already holds these spends)."""
        while self.replay:
            name, keys, args = self.replay[0]
            if args[0] != self.epoch:
                self.replay.pop(0)
                continue
            await self._run(name, keys, args)
            self.replay.pop(0)

    async def check(self) -> None:
        """The watch: notice a restart (lost epoch) or a return, and act on it."""
        current = await self.redis.get(self.k("epoch"))
        self.reachable = True
        if current is None or _text(current) != self.epoch:
            self._start_recovery()
            if self._recovering is not None:
                await asyncio.shield(self._recovering)
            return
        await self.flush_replay()

    def _start_recovery(self) -> None:
        if self._recovering is None or self._recovering.done():
            self._recovering = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        """Redis lost the shared state: take a new epoch (the first node also blocks admission
        for ``recovery_s``), then put back the holds this node still has open."""
        fresh = uuid.uuid4().hex
        if await self.redis.set(self.k("epoch"), fresh, nx=True):
            await self.redis.set(self.k("recovering"), "1", px=self.recovery_ms)
            log.warning("Redis lost the shared state (restart?): new epoch, admission paused for recovery")
        self.epoch = _text(await self.redis.get(self.k("epoch")))
        self.replay.clear()
        for trace_id, t in list(self.tickets.items()):
            await self.load(t.owner_id, t.key_id if t.key_amount else None)
            keys = [self.k("epoch"), self.k("w", t.owner_id), self.k("k", t.key_id)]
            keys += [self.k("h", trace_id), self.k("hx")]
            await self._run(
                "force", keys, [self.epoch, trace_id, t.size, t.key_amount, t.expires_ms, self.ttl_ms]
            )
        log.info("re-registered %d open hold(s) after a Redis restart", len(self.tickets))

    async def sweep(self, batch: int = 500) -> int:
        """Release holds past their expiry, whichever node opened them."""
        res = await self._run("sweep", [self.k("epoch"), self.k("hx")], [self.epoch, self.k.prefix, batch])
        return max(0, int(res))

    async def follow(self) -> int:
        """Apply the control-plane transfers of the look-back window (credits, top-ups, voucher
        grants and expiries, refunds) to the wallets Redis knows; each once (a marker per
        transfer). Usage is spent by the scripts themselves."""
        since = datetime.now(UTC) - self.lookback
        async with self.engine.connect() as conn:
            ids = [int(r.id) for r in await conn.execute(ledger_repo.control_transfers_since(since))]
            if not ids:  # the usual answer, from a small index
                return 0
            rows = (await conn.execute(customer_legs_of(ids))).all()
        grouped: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            legs = grouped.setdefault((str(r.idempotency_key), str(r.owner_id)), [])
            exp = "" if r.expires_at is None else str(int(r.expires_at.timestamp() * 1000))
            legs += [
                "c" if r.kind == AccountKind.CUSTOMER_CASH.value else "v",
                int(r.id),
                int(r.amount_nano),
                exp,
            ]
        applied = 0
        for (transfer_key, owner_id), legs in grouped.items():
            keys = [self.k("epoch"), self.k("w", owner_id), self.k("ap", transfer_key, owner_id)]
            res = await self._run("apply", keys, [self.epoch, self.marker_ttl_ms, len(legs) // 4, *legs])
            applied += int(res) == 1
        return applied


def customer_legs_of(transfer_ids: list[int]) -> Select[Any]:
    """The customer legs (cash and vouchers) of these transfers, in posting order."""
    la, lt, le = ledger_accounts, ledger_transfers, ledger_entries
    return (
        select(lt.c.idempotency_key, la.c.owner_id, la.c.id, la.c.kind, la.c.expires_at, le.c.amount_nano)
        .select_from(lt.join(le, le.c.transfer_id == lt.c.id).join(la, la.c.id == le.c.ledger_account_id))
        .where(lt.c.id.in_(transfer_ids), la.c.kind.in_(CUSTOMER_KINDS))
        .order_by(lt.c.id)
    )
