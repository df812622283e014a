"""The data plane's view of configuration: groups, channels, prices, keys, accounts.

Loaded from the store and reloaded when ``config_version`` changes (every write by the CLI,
the API or another node bumps it), checked every ``refresh_interval_s``. Keys and accounts
are loaded lazily on first use and dropped on every reload.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.accounts.model import Account, ApiKey, Group
from tollway.catalog.model import Channel
from tollway.pricing.book import PriceBook
from tollway.store import config_repo as repo
from tollway.store.secret_box import SecretBox


class ConfigCache:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box
        self.version = -1
        self.groups: dict[str, Group] = {}
        self.channels: list[Channel] = []
        self._routes: dict[tuple[str, str], list[Channel]] = {}
        self.prices: PriceBook = PriceBook.bundled()
        self._keys: dict[str, ApiKey | None] = {}
        self._accounts: dict[str, Account | None] = {}
        self._lock = asyncio.Lock()

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload everything if the stored version moved; True when it did."""
        async with self._lock:
            async with self._engine.connect() as conn:
                version = await repo.get_version(conn)
                if version == self.version and not force:
                    return False
                groups = {g.name: g for g in await repo.list_groups(conn)}
                channels = await repo.list_channels(conn, self._box)
                overrides = await repo.list_price_overrides(conn)
            self.groups = groups
            self.channels = channels
            self._routes = _routes(channels, groups)
            self.prices = PriceBook.bundled().with_overrides(overrides)
            self._keys = {}
            self._accounts = {}
            self.version = version
            return True

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        if key_hash in self._keys:
            return self._keys[key_hash]
        async with self._engine.connect() as conn:
            key = await repo.get_key_by_hash(conn, key_hash)
        if len(self._keys) > 100_000:  # bound the negative cache under a key-guessing flood
            self._keys.clear()
        self._keys[key_hash] = key
        return key

    async def account(self, account_id: str) -> Account | None:
        if account_id in self._accounts:
            return self._accounts[account_id]
        async with self._engine.connect() as conn:
            account = await repo.get_account(conn, account_id)
        self._accounts[account_id] = account
        return account

    def channels_for(self, model: str, group: str) -> list[Channel]:
        """Enabled channels serving ``model`` to ``group``, precomputed at refresh. Callers must
        not mutate the list (copy it first)."""
        found = self._routes.get((model, group))
        if found is not None:
            return found
        return [c for c in self.channels if c.serves(model, group)]  # a group unknown at refresh

    def models_for(self, group: Group, key: ApiKey) -> list[str]:
        """Models a key may call: priced, served by a channel of its group, allowed by both."""
        now = datetime.now(UTC)
        served = {
            m
            for c in self.channels
            if c.enabled and (not c.groups or group.name in c.groups)
            for m in c.models
        }
        return sorted(
            m
            for m in served
            if group.allows(m) and key.allows_model(m) and self.prices.lookup(m, now) is not None
        )


def _routes(channels: list[Channel], groups: dict[str, Group]) -> dict[tuple[str, str], list[Channel]]:
    routes: dict[tuple[str, str], list[Channel]] = {}
    for c in channels:
        if not c.enabled:
            continue
        for group in c.groups or groups.keys():
            for model in c.models:
                routes.setdefault((model, group), []).append(c)
    return routes
