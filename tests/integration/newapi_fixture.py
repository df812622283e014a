"""Source databases for the import tests, built from new-api's and one-api's published schemas
(CREATE TABLE statements written from their GORM structs: model/user.go, model/token.go,
model/channel.go, model/ability.go, model/option.go, model/redemption.go, model/topup.go,
model/log.go) on SQLite or PostgreSQL, filled with the odd data real sites have."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import create_pg_database, drop_pg_database

NOW = int(time.time())
PAST = NOW - 86_400
FUTURE = NOW + 30 * 86_400

NEW_API_DDL = [
    """CREATE TABLE users (
        id INTEGER PRIMARY KEY, username VARCHAR(20) UNIQUE, password TEXT NOT NULL,
        display_name VARCHAR(20), role INTEGER DEFAULT 1, status INTEGER DEFAULT 1,
        email VARCHAR(50), github_id TEXT, discord_id TEXT, oidc_id TEXT, wechat_id TEXT,
        telegram_id TEXT, access_token CHAR(32) UNIQUE, quota INTEGER DEFAULT 0,
        used_quota INTEGER DEFAULT 0, request_count INTEGER DEFAULT 0,
        "group" VARCHAR(64) DEFAULT 'default', aff_code VARCHAR(32) UNIQUE,
        aff_count INTEGER DEFAULT 0, aff_quota INTEGER DEFAULT 0, aff_history INTEGER DEFAULT 0,
        inviter_id INTEGER, deleted_at TIMESTAMP, linux_do_id TEXT, setting TEXT,
        remark VARCHAR(255), stripe_customer VARCHAR(64), created_at BIGINT,
        last_login_at BIGINT DEFAULT 0)""",
    """CREATE TABLE tokens (
        id INTEGER PRIMARY KEY, user_id INTEGER, "key" VARCHAR(128) UNIQUE,
        status INTEGER DEFAULT 1, name TEXT, created_time BIGINT, accessed_time BIGINT,
        expired_time BIGINT DEFAULT -1, remain_quota INTEGER DEFAULT 0, unlimited_quota BOOLEAN,
        model_limits_enabled BOOLEAN, model_limits TEXT, allow_ips TEXT DEFAULT '',
        used_quota INTEGER DEFAULT 0, "group" TEXT DEFAULT '', cross_group_retry BOOLEAN,
        billing_type INTEGER DEFAULT 0, deleted_at TIMESTAMP)""",
    """CREATE TABLE channels (
        id INTEGER PRIMARY KEY, type INTEGER DEFAULT 0, "key" TEXT NOT NULL,
        openai_organization TEXT, test_model TEXT, status INTEGER DEFAULT 1, name TEXT,
        weight INTEGER DEFAULT 0, created_time BIGINT, test_time BIGINT, response_time INTEGER,
        base_url TEXT DEFAULT '', other TEXT, balance DOUBLE PRECISION,
        balance_updated_time BIGINT, models TEXT, "group" VARCHAR(64) DEFAULT 'default',
        used_quota BIGINT DEFAULT 0, model_mapping TEXT, status_code_mapping VARCHAR(1024) DEFAULT '',
        priority BIGINT DEFAULT 0, auto_ban INTEGER DEFAULT 1, need_reconcile INTEGER DEFAULT 0,
        other_info TEXT, tag TEXT, setting TEXT, param_override TEXT, header_override TEXT,
        remark VARCHAR(255), channel_info TEXT, settings TEXT)""",
    """CREATE TABLE abilities (
        "group" VARCHAR(64), model VARCHAR(255), channel_id INTEGER, enabled BOOLEAN,
        priority BIGINT DEFAULT 0, weight INTEGER DEFAULT 0, tag TEXT,
        PRIMARY KEY ("group", model, channel_id))""",
    """CREATE TABLE options ("key" TEXT PRIMARY KEY, value TEXT)""",
    """CREATE TABLE redemptions (
        id INTEGER PRIMARY KEY, user_id INTEGER, "key" CHAR(32) UNIQUE, status INTEGER DEFAULT 1,
        name TEXT, quota INTEGER DEFAULT 100, created_time BIGINT, redeemed_time BIGINT,
        used_user_id INTEGER, deleted_at TIMESTAMP, expired_time BIGINT)""",
    """CREATE TABLE top_ups (
        id INTEGER PRIMARY KEY, user_id INTEGER, amount BIGINT, money DOUBLE PRECISION,
        original_amount DECIMAL(10,2) DEFAULT 0, discount_rate DECIMAL(5,4) DEFAULT 1,
        actual_amount DECIMAL(10,2) DEFAULT 0, package_id VARCHAR(64) DEFAULT '',
        trade_no VARCHAR(255) UNIQUE, payment_method VARCHAR(50), payment_provider VARCHAR(50) DEFAULT '',
        paid_currency CHAR(3), paid_amount_minor BIGINT, create_time BIGINT, complete_time BIGINT,
        status TEXT)""",
    """CREATE TABLE logs (
        id INTEGER PRIMARY KEY, user_id INTEGER, created_at BIGINT, type INTEGER, content TEXT,
        username TEXT DEFAULT '', token_name TEXT DEFAULT '', model_name TEXT DEFAULT '',
        quota INTEGER DEFAULT 0, prompt_tokens INTEGER DEFAULT 0, completion_tokens INTEGER DEFAULT 0,
        use_time INTEGER DEFAULT 0, is_stream BOOLEAN, channel_id INTEGER, token_id INTEGER DEFAULT 0,
        "group" TEXT, ip TEXT, other TEXT)""",
]

# one-api: no display/limits columns on tokens but ``models`` and ``subnet``; no expiry or
# soft delete on redemptions; channels carry ``config`` and ``system_prompt``.
ONE_API_DDL = [
    """CREATE TABLE users (
        id INTEGER PRIMARY KEY, username VARCHAR(12) UNIQUE, password TEXT NOT NULL,
        display_name VARCHAR(20), role INTEGER DEFAULT 1, status INTEGER DEFAULT 1,
        email VARCHAR(50), github_id TEXT, wechat_id TEXT, lark_id TEXT, oidc_id TEXT,
        access_token CHAR(32) UNIQUE, quota BIGINT DEFAULT 0, used_quota BIGINT DEFAULT 0,
        request_count INTEGER DEFAULT 0, "group" VARCHAR(32) DEFAULT 'default',
        aff_code VARCHAR(32) UNIQUE, inviter_id INTEGER)""",
    """CREATE TABLE tokens (
        id INTEGER PRIMARY KEY, user_id INTEGER, "key" CHAR(48) UNIQUE, status INTEGER DEFAULT 1,
        name TEXT, created_time BIGINT, accessed_time BIGINT, expired_time BIGINT DEFAULT -1,
        remain_quota BIGINT DEFAULT 0, unlimited_quota BOOLEAN DEFAULT FALSE,
        used_quota BIGINT DEFAULT 0, models TEXT DEFAULT '', subnet TEXT DEFAULT '')""",
    """CREATE TABLE channels (
        id INTEGER PRIMARY KEY, type INTEGER DEFAULT 0, "key" TEXT NOT NULL, status INTEGER DEFAULT 1,
        name TEXT, weight INTEGER DEFAULT 0, created_time BIGINT, test_time BIGINT,
        response_time INTEGER, base_url TEXT DEFAULT '', other TEXT, balance DOUBLE PRECISION,
        balance_updated_time BIGINT, models TEXT, "group" VARCHAR(32) DEFAULT 'default',
        used_quota BIGINT DEFAULT 0, model_mapping VARCHAR(1024) DEFAULT '', priority BIGINT DEFAULT 0,
        config TEXT, system_prompt TEXT)""",
    """CREATE TABLE abilities (
        "group" VARCHAR(32), model VARCHAR(255), channel_id INTEGER, enabled BOOLEAN,
        priority BIGINT DEFAULT 0, PRIMARY KEY ("group", model, channel_id))""",
    """CREATE TABLE options ("key" TEXT PRIMARY KEY, value TEXT)""",
    """CREATE TABLE redemptions (
        id INTEGER PRIMARY KEY, user_id INTEGER, "key" CHAR(32) UNIQUE, status INTEGER DEFAULT 1,
        name TEXT, quota BIGINT DEFAULT 100, created_time BIGINT, redeemed_time BIGINT)""",
    """CREATE TABLE logs (
        id INTEGER PRIMARY KEY, user_id INTEGER, created_at BIGINT, type INTEGER, content TEXT,
        username TEXT DEFAULT '', token_name TEXT DEFAULT '', model_name TEXT DEFAULT '',
        quota INTEGER DEFAULT 0, prompt_tokens INTEGER DEFAULT 0, completion_tokens INTEGER DEFAULT 0,
        channel_id INTEGER, request_id TEXT, elapsed_time BIGINT DEFAULT 0, is_stream BOOLEAN,
        system_prompt_reset BOOLEAN)""",
]

KEY_LAPTOP = "Lp7oQ2xk9ZfWm3NvB8cR4tYh6uJ1sD5gA0eKiOpLqXwEzTyU"  # 48 chars, like theirs
KEY_VIP = "vIp" + "0" * 44 + "A"
KEY_EXPIRED = "exp1red" + "0" * 40 + "B"
KEY_EXHAUSTED = "exhau5ted" + "0" * 38 + "C"
KEY_DISABLED = "d1sabled" + "0" * 39 + "D"
KEY_AUTO = "aut0group" + "0" * 38 + "E"
CODE_PROMO = "0123456789abcdef0123456789abcdef"
CODE_PROMO_2 = "fedcba9876543210fedcba9876543210"

OPTIONS = {
    "GroupRatio": '{"default": 1, "vip": 0.3, "\U0001f680fast": 0.75, "svip": 0.1}',
    "ModelRatio": '{"gpt-4o": 1.25, "gpt-4.1": 1.5, "my-custom": 0.5, "claude-sonnet-4-5": 1.5}',
    "CompletionRatio": '{"gpt-4o": 4, "gpt-4.1": 4, "my-custom": 2}',
    "CacheRatio": '{"gpt-4o": 0.5}',
    "ModelPrice": '{"dall-e-3": 0.04, "my-image": 0.02}',
}

USERS: list[dict[str, Any]] = [
    # id, username, display, email, role, status, quota, group, deleted
    dict(
        id=1,
        username="alice",
        display_name="Alice",
        email="alice@example.com",
        role=100,
        status=1,
        quota=5_000_000,
        group="default",
        deleted_at=None,
    ),
    dict(
        id=2,
        username="bob",
        display_name="Bob",
        email="ALICE@example.com",
        role=1,
        status=1,
        quota=-250_000,
        group="vip",
        deleted_at=None,
    ),
    dict(
        id=3,
        username="\U0001f984 carol",
        display_name="Carol \U0001f308",
        email="",
        role=1,
        status=1,
        quota=1,
        group="\U0001f680fast",
        deleted_at=None,
    ),
    dict(
        id=4,
        username="dave",
        display_name="",
        email="dave@example.com",
        role=1,
        status=1,
        quota=1_000,
        group="default",
        deleted_at=datetime(2024, 1, 2, 3, 4, 5),
    ),
    dict(
        id=5,
        username="erin",
        display_name="",
        email="erin@example.com",
        role=1,
        status=2,
        quota=750_000,
        group="default",
        deleted_at=None,
    ),
]


def _token(id: int, user_id: int, key: str, **fields: Any) -> dict[str, Any]:
    """A tokens row: an enabled, unlimited, never-expiring key unless ``fields`` say otherwise."""
    row: dict[str, Any] = dict(
        id=id,
        user_id=user_id,
        key=key,
        name="",
        status=1,
        expired_time=-1,
        remain_quota=0,
        unlimited_quota=True,
        model_limits_enabled=False,
        model_limits="",
        allow_ips="",
        group="",
    )
    return {**row, **fields}


TOKENS: list[dict[str, Any]] = [
    _token(10, 1, KEY_LAPTOP, name="laptop"),
    _token(
        11,
        1,
        KEY_VIP,
        expired_time=FUTURE,
        remain_quota=250_000,
        unlimited_quota=False,
        model_limits_enabled=True,
        model_limits="gpt-4o,gpt-4o-mini",
        allow_ips="10.0.0.0/8\n192.168.1.5\nnot-an-ip",
        group="vip",
    ),
    _token(
        12, 2, KEY_EXPIRED, name="old", status=3, expired_time=PAST, remain_quota=100, unlimited_quota=False
    ),
    _token(13, 3, KEY_EXHAUSTED, name="\U0001f389 party key", status=4, unlimited_quota=False),
    _token(14, 1, KEY_DISABLED, name="laptop", status=2),
    _token(15, 4, "dave" + "0" * 44, name="d"),
    _token(16, 3, KEY_AUTO, name="auto", group="auto"),
    _token(17, 1, "deleted" + "0" * 41, name="gone", deleted_at=datetime(2024, 5, 6, 7, 8, 9)),
]

CHANNELS: list[dict[str, Any]] = [
    dict(
        id=100,
        type=1,
        key="sk-upstream-1\nsk-upstream-2",
        status=1,
        name="main",
        weight=5,
        base_url="",
        models="gpt-4o,gpt-4o-mini,gpt-4.1,my-custom",
        group="default,vip",
        priority=10,
        model_mapping='{"my-custom": "gpt-4o-mini"}',
    ),
    dict(
        id=101,
        type=14,
        key="sk-ant-upstream",
        status=2,
        name="claude",
        weight=0,
        base_url="https://proxy.example.com/",
        models="claude-sonnet-4-5",
        group="default",
        priority=0,
        model_mapping="",
    ),
    dict(
        id=102,
        type=3,
        key="azure-key",
        status=1,
        name="azure",
        weight=0,
        base_url="https://x.azure.com",
        models="gpt-4o",
        group="default",
        priority=0,
        model_mapping="",
    ),
    dict(
        id=103,
        type=1,
        key="sk-upstream-3",
        status=1,
        name="main",
        weight=0,
        base_url="https://relay.example.com/v1",
        models="gpt-4o",
        group="default",
        priority=5,
        model_mapping="not json",
    ),
    dict(
        id=104,
        type=24,
        key="gem-key",
        status=3,
        name="gemini \U0001f48e",
        weight=2,
        base_url="",
        models="gemini-2.5-pro",
        group="\U0001f680fast",
        priority=0,
        model_mapping="",
    ),
]

REDEMPTIONS: list[dict[str, Any]] = [
    dict(id=200, key=CODE_PROMO, status=1, name="promo", quota=1_000_000, expired_time=0, deleted_at=None),
    dict(
        id=201,
        key="used0000000000000000000000000000",
        status=3,
        name="promo",
        quota=1_000_000,
        expired_time=0,
        deleted_at=None,
    ),
    dict(
        id=202,
        key="expired000000000000000000000000a",
        status=1,
        name="old",
        quota=500_000,
        expired_time=PAST,
        deleted_at=None,
    ),
    dict(id=203, key=CODE_PROMO_2, status=1, name="promo", quota=1_000_000, expired_time=0, deleted_at=None),
]


def _abilities(channels: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in channels:
        for g in c["group"].split(","):
            for m in c["models"].split(","):
                out.append(
                    dict(
                        group=g, model=m, channel_id=c["id"], enabled=c["status"] == 1, priority=c["priority"]
                    )
                )
    out.append(dict(group="svip", model="gpt-4o", channel_id=103, enabled=True, priority=5))  # stale row
    return out


def _insert(table: str, row: dict[str, Any]) -> Any:
    cols = ", ".join(f'"{k}"' for k in row)
    params = ", ".join(f":{k}" for k in row)
    return text(f"INSERT INTO {table} ({cols}) VALUES ({params})").bindparams(**row)


async def _fill(url: str, flavour: str) -> None:
    engine = create_async_engine(url)
    one = flavour == "one-api"
    try:
        async with engine.begin() as conn:
            for ddl in ONE_API_DDL if one else NEW_API_DDL:
                await conn.execute(text(ddl))
            options = dict(OPTIONS)
            if one:
                options["QuotaPerUnit"] = "300000"  # not a divisor of 1e9: remainders
            for k, v in options.items():
                await conn.execute(_insert("options", {"key": k, "value": v}))
            for u in USERS:
                row = {**u, "password": "$2a$10$bcrypt-hash-not-imported"}
                if one:
                    row.pop("deleted_at")
                    row["username"] = row["username"][:12]
                await conn.execute(_insert("users", row))
            for t in TOKENS:
                row = {**t, "created_time": NOW}
                if one:
                    limits, enabled = row.pop("model_limits"), row.pop("model_limits_enabled")
                    row["models"] = limits if enabled else ""
                    row["subnet"] = row.pop("allow_ips").split("\n")[0]
                    row.pop("group")
                    if row.pop("deleted_at", None) is not None:
                        continue  # one-api deletes tokens for real
                await conn.execute(_insert("tokens", row))
            for c in CHANNELS:
                await conn.execute(_insert("channels", {**c, "created_time": NOW}))
            for a in _abilities(CHANNELS):
                await conn.execute(_insert("abilities", a))
            for r in REDEMPTIONS:
                row = {**r, "created_time": NOW}
                if one:
                    row.pop("deleted_at")
                    row.pop("expired_time")
                await conn.execute(_insert("redemptions", row))
            if not one:
                for i, (uid, amount, money) in enumerate([(1, 10, 72.5), (5, 3, 21.75)], start=1):
                    await conn.execute(
                        _insert(
                            "top_ups",
                            dict(
                                id=i,
                                user_id=uid,
                                amount=amount,
                                money=money,
                                trade_no=f"T{i}",
                                payment_method="alipay",
                                create_time=NOW,
                                status="success",
                            ),
                        )
                    )
            for i in range(1, 4):
                await conn.execute(_insert("logs", dict(id=i, user_id=1, created_at=NOW, type=2, quota=100)))
    finally:
        await engine.dispose()


@contextmanager
def source_database(backend: str, flavour: str, tmp_path: Path) -> Iterator[str]:
    """A filled source database; yields what ``--from`` takes (a file path or a URL)."""
    import asyncio

    if backend == "sqlite":
        path = tmp_path / f"{flavour}.db"
        asyncio.run(_fill(f"sqlite+aiosqlite:///{path}", flavour))
        yield str(path)
        return
    url = create_pg_database()
    try:
        asyncio.run(_fill(url.replace("postgresql://", "postgresql+asyncpg://"), flavour))
        yield url
    finally:
        drop_pg_database(url)


async def fill_async(backend: str, flavour: str, tmp_path: Path) -> tuple[str, str | None]:
    """The same from inside a running event loop: (location, pg url to drop or None)."""
    if backend == "sqlite":
        path = tmp_path / f"{flavour}.db"
        await _fill(f"sqlite+aiosqlite:///{path}", flavour)
        return str(path), None
    import asyncio

    url = await asyncio.to_thread(create_pg_database)
    await _fill(url.replace("postgresql://", "postgresql+asyncpg://"), flavour)
    return url, url


def options_json() -> dict[str, Any]:
    return {k: json.loads(v) for k, v in OPTIONS.items()}
