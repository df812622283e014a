"""Ledger persistence: accounts, balanced transfers, wallets. Used by the settlement writer
(in batches) and by the control plane and CLI (one transfer per transaction)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.ledger.chart import PLATFORM_ACCOUNTS, AccountKind, TransferKind, cash_code
from tollway.ledger.transfer import Transfer
from tollway.ledger.wallet import Pot, Wallet
from tollway.store import changes
from tollway.store.tables import CONTROL_TRANSFERS
from tollway.store.tables import ledger_accounts as la
from tollway.store.tables import ledger_entries as le
from tollway.store.tables import ledger_transfers as lt


def utcnow() -> datetime:
    return datetime.now(UTC)


async def get_or_create_account(
    conn: AsyncConnection,
    code: str,
    kind: AccountKind,
    *,
    owner_id: str | None = None,
    expires_at: datetime | None = None,
    label: str = "",
) -> int:
    found = (await conn.execute(select(la.c.id).where(la.c.code == code))).scalar_one_or_none()
    if found is not None:
        return int(found)
    values = {
        "code": code,
        "kind": kind.value,
        "owner_id": owner_id,
        "expires_at": expires_at,
        "balance_nano": 0,
        "label": label,
        "created_at": utcnow(),
    }
    # Two writers may create the same account at once: let the database pick one.
    insert = pg_insert(la) if conn.dialect.name == "postgresql" else sqlite_insert(la)
    await conn.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["code"]))
    return int((await conn.execute(select(la.c.id).where(la.c.code == code))).scalar_one())


async def ensure_platform_accounts(conn: AsyncConnection) -> dict[str, int]:
    return {code: await get_or_create_account(conn, code, kind) for code, kind in PLATFORM_ACCOUNTS.items()}


async def existing_keys(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = await conn.execute(
        select(lt.c.idempotency_key, lt.c.id).where(lt.c.idempotency_key.in_(list(keys)))
    )
    return {str(k): int(i) for k, i in rows}


async def post_transfers(
    conn: AsyncConnection,
    transfers: Sequence[Transfer],
    *,
    at: datetime | None = None,
    check_existing: bool = True,
) -> list[int]:
    """Insert transfers, their entries and the cached balances in the caller's transaction.

    Returns the transfer ids in order. Idempotent: a transfer whose key exists is not posted
    again and its existing id is returned. A handful of statements per call however many
    transfers it carries (executemany), which is what makes grouped commits cheap.
    """
    if not transfers:
        return []
    now = at or utcnow()
    # The settlement writer skips the look-up: its keys are fresh trace IDs, and the unique
    # constraint still refuses a duplicate (the writer then commits operations one by one).
    already = await existing_keys(conn, [t.idempotency_key for t in transfers]) if check_existing else {}
    fresh: list[Transfer] = []
    seen: set[str] = set()
    for t in transfers:
        if t.idempotency_key not in already and t.idempotency_key not in seen:
            fresh.append(t)
            seen.add(t.idempotency_key)
    ids: dict[str, int] = dict(already)
    if fresh:
        result = await conn.execute(
            lt.insert().returning(lt.c.id, lt.c.idempotency_key, sort_by_parameter_order=True),
            [
                {
                    "idempotency_key": t.idempotency_key,
                    "kind": t.kind,
                    "owner_id": t.owner_id,
                    "trace_id": t.trace_id,
                    "amount_nano": t.amount_nano,
                    "memo": t.memo,
                    "actor": t.actor,
                    "created_at": now,
                }
                for t in fresh
            ],
        )
        for row in result:
            ids[str(row.idempotency_key)] = int(row.id)
        entries = []
        deltas: dict[int, int] = defaultdict(int)
        for t in fresh:
            tid = ids[t.idempotency_key]
            for leg in t.legs:
                entries.append(
                    {
                        "transfer_id": tid,
                        "ledger_account_id": leg.ledger_account_id,
                        "amount_nano": leg.amount_nano,
                    }
                )
                deltas[leg.ledger_account_id] += leg.amount_nano
        await conn.execute(le.insert(), entries)
        params = [{"acct": a, "delta": d} for a, d in sorted(deltas.items()) if d]
        if params:
            await conn.execute(
                update(la)
                .where(la.c.id == bindparam("acct"))
                .values(balance_nano=la.c.balance_nano + bindparam("delta")),
                params,
            )
        if any(t.kind != TransferKind.USAGE.value for t in fresh):  # credit, top-up, grant, refund
            await changes.notify_change(conn, changes.LEDGER)
    return [ids[t.idempotency_key] for t in transfers]


async def load_wallet(conn: AsyncConnection, owner_id: str) -> Wallet:
    cash_id = await get_or_create_account(
        conn, cash_code(owner_id), AccountKind.CUSTOMER_CASH, owner_id=owner_id
    )
    rows = await conn.execute(
        select(la.c.id, la.c.code, la.c.kind, la.c.balance_nano, la.c.expires_at).where(
            la.c.owner_id == owner_id
        )
    )
    cash = Pot(cash_id, cash_code(owner_id), 0)
    vouchers: list[Pot] = []
    for row in rows:
        if row.id == cash_id:
            cash.balance_nano = int(row.balance_nano)
        elif row.kind == AccountKind.CUSTOMER_VOUCHER.value:
            vouchers.append(Pot(int(row.id), str(row.code), int(row.balance_nano), row.expires_at))
    return Wallet(owner_id=owner_id, cash=cash, vouchers=vouchers)


def control_transfers_since(since: datetime) -> Select[Any]:
    """The control-plane transfers (credits, top-ups, grants, refunds: not usage) posted after
    ``since``. The predicate is spelled as the literal one of ix_ledger_transfers_control_created
    so the planner can use that small partial index: a plain ``kind != :param`` scanned every
    settlement ever made, on every node at every refresh."""
    return select(lt.c.id).where(and_(lt.c.created_at > since, text(f"ledger_transfers.{CONTROL_TRANSFERS}")))


def control_transfers_after(transfer_id: int) -> Select[Any]:
    """The control-plane transfers after ``transfer_id`` with their owners, in order (through
    ix_ledger_transfers_control_id: the other nodes' settlements are not read)."""
    return (
        select(lt.c.id, lt.c.owner_id)
        .where(lt.c.id > transfer_id, text(f"ledger_transfers.{CONTROL_TRANSFERS}"))
        .order_by(lt.c.id)
    )
