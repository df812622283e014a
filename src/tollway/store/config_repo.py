"""Repositories for configuration: groups, accounts, keys, channels, operator prices.

Every write bumps ``config_version`` in the same transaction so running servers reload; on
PostgreSQL it also sends a ``NOTIFY`` (delivered at commit) so every node reloads at once
instead of at its next poll (:mod:`tollway.store.changes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.accounts.model import (
    Account,
    AccountStatus,
    ApiKey,
    Group,
    KeyStatus,
    Limits,
    Role,
    parse_networks,
)
from tollway.catalog.model import Channel, ChannelType
from tollway.money import Ratio
from tollway.pricing.book import entry_from_dict
from tollway.pricing.model import PriceEntry
from tollway.store import changes
from tollway.store.secret_box import SecretBox
from tollway.store.tables import (
    accounts,
    api_keys,
    audit_log,
    channels,
    config_version,
    groups,
    model_prices,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def loads_list(text: str | None) -> list[str]:
    return list(orjson.loads(text)) if text else []


async def bump_version(conn: AsyncConnection) -> None:
    await conn.execute(
        update(config_version).where(config_version.c.id == 1).values(version=config_version.c.version + 1)
    )
    await changes.notify_change(conn, changes.CONFIG)


async def get_version(conn: AsyncConnection) -> int:
    return int(
        (await conn.execute(select(config_version.c.version).where(config_version.c.id == 1))).scalar_one()
    )


async def write_audit(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    target: str,
    reason: str = "",
    before: Any = None,
    after: Any = None,
) -> None:
    await conn.execute(
        audit_log.insert().values(
            at=utcnow(),
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            before=None if before is None else dumps(before),
            after=None if after is None else dumps(after),
        )
    )


# --- groups -------------------------------------------------------------------------------


def group_from_row(row: Row[Any]) -> Group:
    return Group(
        name=row.name,
        multiplier=Ratio.parse(row.multiplier),
        models=frozenset(loads_list(row.models)),
        account_limits=Limits(row.rpm, row.tpm, row.concurrency),
        total_concurrency=row.total_concurrency,
        label=row.label,
        visible=bool(row.visible),
        sticky=bool(row.sticky),
    )


async def get_group_row(conn: AsyncConnection, name: str) -> Row[Any] | None:
    return (await conn.execute(select(groups).where(groups.c.name == name))).first()


async def list_groups(conn: AsyncConnection) -> list[Group]:
    return [group_from_row(r) for r in await conn.execute(select(groups).order_by(groups.c.name))]


# --- accounts and keys --------------------------------------------------------------------


def account_from_row(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        status=AccountStatus(row.status),
        limits=Limits(row.rpm, row.tpm, row.concurrency),
    )


async def get_account(conn: AsyncConnection, account_id: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return None if row is None else account_from_row(row)


def key_from_row(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        prefix=row.prefix,
        group_name=row.group_name,
        status=KeyStatus(row.status),
        expires_at=row.expires_at,
        spend_cap_nano=row.spend_cap_nano,
        models=frozenset(loads_list(row.models)),
        ip_allow=parse_networks(loads_list(row.ip_allow)),
        limits=Limits(row.rpm, row.tpm, row.concurrency),
    )


async def get_key_by_hash(conn: AsyncConnection, key_hash: str) -> ApiKey | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
    return None if row is None else key_from_row(row)


# --- channels -----------------------------------------------------------------------------


def open_credentials(box: SecretBox, sealed: str) -> tuple[str, ...]:
    """The channel's credentials: a sealed JSON list, or (older rows) one sealed plain key."""
    plain = box.open(sealed)
    if plain.startswith("["):
        try:
            keys = orjson.loads(plain)
        except orjson.JSONDecodeError:
            return (plain,)
        if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
            return tuple(keys)
    return (plain,)


def seal_credentials(box: SecretBox, keys: Sequence[str]) -> str:
    return box.seal(orjson.dumps(list(keys)).decode("utf-8"))


def _timeout(opts: dict[str, Any], name: str) -> float | None:
    v = opts.get(name)
    return float(v) if isinstance(v, int | float) and v > 0 else None


def channel_from_row(row: Row[Any], box: SecretBox) -> Channel:
    keys = open_credentials(box, row.credential_enc)
    raw_opts = getattr(row, "options", None)
    opts = orjson.loads(raw_opts) if raw_opts else {}
    if not isinstance(opts, dict):
        opts = {}
    return Channel(
        id=row.id,
        name=row.name,
        type=ChannelType(row.type),
        base_url=row.base_url,
        api_key=keys[0],
        api_keys=keys,
        connect_timeout=_timeout(opts, "connect_timeout_s"),
        first_byte_timeout=_timeout(opts, "first_byte_timeout_s"),
        idle_timeout=_timeout(opts, "idle_timeout_s"),
        models=frozenset(loads_list(row.models)),
        model_map=dict(orjson.loads(row.model_map or "{}")),
        groups=frozenset(loads_list(row.groups)),
        priority=row.priority,
        weight=row.weight,
        enabled=row.status == "enabled",
    )


async def list_channels(conn: AsyncConnection, box: SecretBox) -> list[Channel]:
    return [channel_from_row(r, box) for r in await conn.execute(select(channels).order_by(channels.c.name))]


# --- operator prices ----------------------------------------------------------------------


async def list_price_overrides(conn: AsyncConnection) -> list[PriceEntry]:
    rows = await conn.execute(
        select(model_prices.c.entry).order_by(model_prices.c.model, model_prices.c.effective_from)
    )
    return [entry_from_dict(orjson.loads(r.entry)) for r in rows]
