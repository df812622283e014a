"""Reading a new-api / one-api database (SQLite file, PostgreSQL, or MySQL when its driver is
installed) with SQLAlchemy Core. Tables are reflected, so any version's columns are read and a
missing optional column reads as its GORM default. The source is opened read-only: SQLite in
``mode=ro``, PostgreSQL in a read-only transaction. Nothing is ever written to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tollway.errors import InvalidRequest
from tollway.migrate.source_schema import TABLES, Flavour


@dataclass(frozen=True, slots=True)
class SourceUser:
    id: int
    username: str
    display_name: str
    email: str
    role: int
    status: int
    quota: int
    group: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class SourceToken:
    id: int
    user_id: int
    key: str
    name: str
    status: int
    expired_time: int
    remain_quota: int
    unlimited_quota: bool
    model_limits_enabled: bool
    model_limits: str
    allow_ips: str
    group: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class SourceChannel:
    id: int
    type: int
    key: str
    status: int
    name: str
    weight: int
    base_url: str
    models: str
    group: str
    model_mapping: str
    priority: int


@dataclass(frozen=True, slots=True)
class SourceAbility:
    group: str
    model: str
    channel_id: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class SourceRedemption:
    id: int
    key: str
    status: int
    name: str
    quota: int
    expired_time: int  # 0 = never (one-api has no such column)
    deleted: bool


@dataclass(frozen=True, slots=True)
class SourceTopUp:
    id: int
    user_id: int
    amount: int
    money: str  # their float column, as text: reported, never used as money here
    trade_no: str
    status: str
    create_time: int


@dataclass(slots=True)
class SourceData:
    flavour: Flavour
    users: list[SourceUser] = field(default_factory=list)
    tokens: list[SourceToken] = field(default_factory=list)
    channels: list[SourceChannel] = field(default_factory=list)
    abilities: list[SourceAbility] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    redemptions: list[SourceRedemption] = field(default_factory=list)
    topups: list[SourceTopUp] = field(default_factory=list)
    log_count: int = 0
    missing_tables: list[str] = field(default_factory=list)


def source_engine(location: str) -> AsyncEngine:
    """An engine on ``location``: a database URL, or a path to a SQLite file (opened
    read-only through a SQLite URI, so the path may hold spaces, ``#`` or ``?``)."""
    sqlite_path = None
    if "://" not in location:
        path = Path(location).expanduser()
        if not path.is_file():
            raise InvalidRequest(f"no SQLite file at {location!r}", param="from")
        sqlite_path = str(path.resolve())
    elif location.startswith(("sqlite:///", "sqlite+aiosqlite:///")):
        sqlite_path = location.split(":///", 1)[1]
    if sqlite_path is not None:
        uri = f"file:{quote(sqlite_path)}?mode=ro"

        def connect() -> Any:
            import aiosqlite

            return aiosqlite.connect(uri, uri=True)

        return create_async_engine("sqlite+aiosqlite://", async_creator=connect)
    url = location
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("mysql://", "mysql+aiomysql://"),
    ):
        if location.startswith(prefix):
            url = driver + location[len(prefix) :]
    try:
        return create_async_engine(url)
    except (NoSuchModuleError, ArgumentError, ModuleNotFoundError) as exc:
        backend = make_url(url).get_backend_name()
        raise InvalidRequest(
            f"cannot open a {backend} database: its driver is not installed ({exc})", param="from"
        ) from exc


def _text(row: Mapping[str, Any], name: str, default: str = "") -> str:
    value = row.get(name)
    return default if value is None else str(value)


def _int(row: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = row.get(name)
    if value is None or value == "":
        return default
    return int(value)


def _bool(row: Mapping[str, Any], name: str) -> bool:
    value = row.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "yes")
    return bool(value)


def _deleted(row: Mapping[str, Any]) -> bool:
    return row.get("deleted_at") is not None


async def read_source(location: str, flavour: Flavour) -> SourceData:
    engine = source_engine(location)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SET TRANSACTION READ ONLY"))
            return await _read(conn, flavour)
    except (OSError, DBAPIError) as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        raise InvalidRequest(f"cannot read the source database: {first}", param="from") from exc
    finally:
        await engine.dispose()


async def _read(conn: AsyncConnection, flavour: Flavour) -> SourceData:
    meta = MetaData()

    def reflect(sync_conn: Connection) -> list[str]:
        meta.reflect(bind=sync_conn, only=lambda name, _m: name in TABLES)
        return sorted(set(TABLES) - set(meta.tables))

    missing = await conn.run_sync(reflect)
    if "users" in missing:
        raise InvalidRequest(
            f"the source database has no users table: is it a {flavour} database?", param="from"
        )
    data = SourceData(flavour, missing_tables=missing)

    async def rows(name: str, order: str | None = "id") -> list[Mapping[str, Any]]:
        if name not in meta.tables:
            return []
        table: Table = meta.tables[name]
        query = select(table)
        if order and order in table.c:
            query = query.order_by(table.c[order])
        return [dict(r._mapping) for r in await conn.execute(query)]

    data.users = [
        SourceUser(
            id=_int(r, "id"),
            username=_text(r, "username"),
            display_name=_text(r, "display_name"),
            email=_text(r, "email"),
            role=_int(r, "role", 1),
            status=_int(r, "status", 1),
            quota=_int(r, "quota"),
            group=_text(r, "group", "default") or "default",
            deleted=_deleted(r),
        )
        for r in await rows("users")
    ]
    data.tokens = [
        SourceToken(
            id=_int(r, "id"),
            user_id=_int(r, "user_id"),
            key=_text(r, "key").strip(),
            name=_text(r, "name"),
            status=_int(r, "status", 1),
            expired_time=_int(r, "expired_time", -1),
            remain_quota=_int(r, "remain_quota"),
            unlimited_quota=_bool(r, "unlimited_quota"),
            # one-api names the allow-lists ``models`` and ``subnet``
            model_limits_enabled=_bool(r, "model_limits_enabled") or bool(_text(r, "models").strip()),
            model_limits=_text(r, "model_limits") or _text(r, "models"),
            allow_ips=_text(r, "allow_ips") or _text(r, "subnet"),
            group=_text(r, "group"),
            deleted=_deleted(r),
        )
        for r in await rows("tokens")
    ]
    data.channels = [
        SourceChannel(
            id=_int(r, "id"),
            type=_int(r, "type"),
            key=_text(r, "key"),
            status=_int(r, "status", 1),
            name=_text(r, "name"),
            weight=_int(r, "weight"),
            base_url=_text(r, "base_url").strip(),
            models=_text(r, "models"),
            group=_text(r, "group", "default"),
            model_mapping=_text(r, "model_mapping"),
            priority=_int(r, "priority"),
        )
        for r in await rows("channels")
    ]
    data.abilities = [
        SourceAbility(_text(r, "group"), _text(r, "model"), _int(r, "channel_id"), _bool(r, "enabled"))
        for r in await rows("abilities", order=None)
    ]
    data.options = {_text(r, "key"): _text(r, "value") for r in await rows("options", order=None)}
    data.redemptions = [
        SourceRedemption(
            id=_int(r, "id"),
            key=_text(r, "key").strip(),
            status=_int(r, "status", 1),
            name=_text(r, "name"),
            quota=_int(r, "quota"),
            expired_time=_int(r, "expired_time"),
            deleted=_deleted(r),
        )
        for r in await rows("redemptions")
    ]
    data.topups = [
        SourceTopUp(
            id=_int(r, "id"),
            user_id=_int(r, "user_id"),
            amount=_int(r, "amount"),
            money=_text(r, "money", "0"),
            trade_no=_text(r, "trade_no"),
            status=_text(r, "status"),
            create_time=_int(r, "create_time"),
        )
        for r in await rows("top_ups")
    ]
    if "logs" in meta.tables:
        count = select(func.count()).select_from(meta.tables["logs"])
        data.log_count = int((await conn.execute(count)).scalar_one())
    return data
