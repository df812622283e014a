"""What the Tollway database already holds, read once before an import is planned: the plan
compares against it, so a re-run finds everything and plans nothing new."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.money import Ratio
from tollway.pricing.book import PriceBook
from tollway.store import config_repo, ledger_repo
from tollway.store.tables import accounts, api_keys, channels, groups, redemption_batches, redemption_codes


@dataclass(slots=True)
class TargetState:
    now: datetime
    account_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    key_ids_by_hash: dict[str, str] = field(default_factory=dict)
    channel_ids: set[str] = field(default_factory=set)
    channel_names: set[str] = field(default_factory=set)
    group_multipliers: dict[str, Ratio] = field(default_factory=dict)
    ledger_keys: set[str] = field(default_factory=set)
    code_hashes: set[str] = field(default_factory=set)
    batch_ids: set[str] = field(default_factory=set)
    book: PriceBook = field(default_factory=PriceBook.bundled)


async def read_target(engine: AsyncEngine, ledger_keys: list[str]) -> TargetState:
    state = TargetState(now=config_repo.utcnow())
    async with engine.connect() as conn:
        for account_id, email in await conn.execute(select(accounts.c.id, accounts.c.email)):
            state.account_ids.add(str(account_id))
            state.emails.add(str(email).lower())
        state.key_ids_by_hash = {
            str(h): str(i) for h, i in await conn.execute(select(api_keys.c.key_hash, api_keys.c.id))
        }
        for channel_id, name in await conn.execute(select(channels.c.id, channels.c.name)):
            state.channel_ids.add(str(channel_id))
            state.channel_names.add(str(name))
        rows = await conn.execute(select(groups.c.name, groups.c.multiplier))
        state.group_multipliers = {str(n): Ratio.parse(str(m)) for n, m in rows}
        for start in range(0, len(ledger_keys), 500):
            chunk = ledger_keys[start : start + 500]
            state.ledger_keys.update((await ledger_repo.existing_keys(conn, chunk)).keys())
        hashes = await conn.execute(select(redemption_codes.c.code_hash))
        state.code_hashes = {str(h) for h in hashes.scalars()}
        state.batch_ids = {str(i) for i in (await conn.execute(select(redemption_batches.c.id))).scalars()}
        state.book = PriceBook.bundled().with_overrides(await config_repo.list_price_overrides(conn))
    return state
