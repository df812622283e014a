"""The data plane's cache of wallets, kept in step with the ledger.

A wallet is loaded once from the store, then changed in memory by this node's settlements as
they are enqueued. Deltas enqueued but not yet committed are tracked per pot, so a reload
(after another process or node posted a transfer) is "committed balance + pending deltas".
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.ledger.wallet import Wallet
from tollway.store import ledger_repo
from tollway.store.tables import usage_records


class WalletCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._wallets: dict[str, Wallet] = {}
        self._loading: dict[str, asyncio.Future[Wallet]] = {}
        self._pending: dict[int, int] = defaultdict(int)  # ledger account id -> uncommitted delta
        self._key_spent: dict[str, int] = {}
        self._key_loading: dict[str, asyncio.Future[int]] = {}
        self.stale: set[str] = set()

    def mark_stale(self, owner_id: str) -> None:
        """Reload this wallet from the store at the next refresh."""
        self.stale.add(owner_id)

    def cached(self, owner_id: str) -> Wallet | None:
        return self._wallets.get(owner_id)

    async def get(self, owner_id: str) -> Wallet:
        wallet = self._wallets.get(owner_id)
        if wallet is not None:
            return wallet
        pending = self._loading.get(owner_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Wallet] = asyncio.get_running_loop().create_future()
        self._loading[owner_id] = fut
        try:
            async with self._engine.begin() as conn:
                loaded = await ledger_repo.load_wallet(conn, owner_id)
            wallet = self._wallets.setdefault(owner_id, loaded)
            fut.set_result(wallet)
            return wallet
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters get it through shield
            raise
        finally:
            self._loading.pop(owner_id, None)

    def add_pending(self, deltas: list[tuple[int, int]]) -> None:
        for account_id, delta in deltas:
            self._pending[account_id] += delta

    def commit_pending(self, deltas: list[tuple[int, int]]) -> None:
        for account_id, delta in deltas:
            left = self._pending[account_id] - delta
            if left:
                self._pending[account_id] = left
            else:
                del self._pending[account_id]

    async def reload(self, owner_ids: set[str]) -> None:
        """Re-read committed balances (and new voucher grants) of cached wallets."""
        owner_ids = owner_ids | self.stale
        self.stale = set()
        for owner_id in owner_ids:
            wallet = self._wallets.get(owner_id)
            if wallet is None:
                continue
            async with self._engine.begin() as conn:
                fresh = await ledger_repo.load_wallet(conn, owner_id)
            for pot in [fresh.cash, *fresh.vouchers]:
                pot.balance_nano += self._pending.get(pot.ledger_account_id, 0)
            fresh.held_nano = wallet.held_nano
            # Swap the pots in place: requests in flight hold a reference to the wallet.
            wallet.cash = fresh.cash
            wallet.vouchers = fresh.vouchers

    def forget(self, owner_id: str) -> None:
        wallet = self._wallets.get(owner_id)
        if wallet is not None and wallet.held_nano == 0:
            del self._wallets[owner_id]

    # --- key spend caps -------------------------------------------------------------------

    async def key_spent(self, key_id: str) -> int:
        spent = self._key_spent.get(key_id)
        if spent is not None:
            return spent
        pending = self._key_loading.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._key_loading[key_id] = fut
        try:
            async with self._engine.connect() as conn:
                total = (
                    await conn.execute(
                        select(func.coalesce(func.sum(usage_records.c.deduction_nano), 0)).where(
                            usage_records.c.key_id == key_id
                        )
                    )
                ).scalar_one()
            value = self._key_spent.setdefault(key_id, int(total))
            fut.set_result(value)
            return value
        finally:
            self._key_loading.pop(key_id, None)

    def add_key_spend(self, key_id: str, amount_nano: int) -> None:
        if key_id in self._key_spent:
            self._key_spent[key_id] += amount_nano
