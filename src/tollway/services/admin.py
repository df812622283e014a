"""Operator services behind the CLI and the admin API: groups, prices, channels, accounts,
keys, credits, balances. Raises only :mod:`tollway.errors`; knows nothing of HTTP or typer."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.accounts.model import (
    AccountStatus,
    KeyStatus,
    Role,
    display_prefix,
    hash_secret,
    new_secret,
    parse_networks,
)
from tollway.catalog.model import ChannelType
from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.money import MoneyFormatError, Ratio, credits_to_nano, usd_per_mtok_to_nano
from tollway.pricing.book import PriceBook, entry_to_dict
from tollway.pricing.model import BillingMode, PriceEntry, TokenPrices
from tollway.services.passwords import hash_password
from tollway.store import config_repo as repo
from tollway.store import ledger_repo
from tollway.store.secret_box import SecretBox
from tollway.store.tables import accounts, api_keys, channels, groups, model_prices

Json = dict[str, Any]

REQUIRED_CHANNEL_FIELDS = (
    ("type", "--type"),
    ("base_url", "--base-url"),
    ("credential_enc", "--api-key"),
    ("models", "--models"),
)


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _limit(value: int | None, name: str) -> int | None:
    if value is not None and value < 0:
        raise InvalidRequest(f"{name} must be zero or more", param=name)
    return value


class AdminService:
    def __init__(self, engine: AsyncEngine, box: SecretBox, actor: str = "admin") -> None:
        self.engine = engine
        self.box = box
        self.actor = actor

    # --- groups ---------------------------------------------------------------------------

    async def upsert_group(
        self,
        name: str,
        *,
        create: bool,
        multiplier: str | None = None,
        models: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        total_concurrency: int | None = None,
        label: str | None = None,
        reason: str = "",
    ) -> Json:
        if not name or len(name) > 64:
            raise InvalidRequest("group name must be 1-64 characters", param="name")
        try:
            mult = None if multiplier is None else Ratio.parse(multiplier)
        except MoneyFormatError as exc:
            raise InvalidRequest(str(exc), param="multiplier") from exc
        values: Json = {}
        if mult is not None:
            values["multiplier"] = str(mult)
        if models is not None:
            values["models"] = repo.dumps(sorted(_split(models)))
        for field, value in (
            ("rpm", rpm),
            ("tpm", tpm),
            ("concurrency", concurrency),
            ("total_concurrency", total_concurrency),
        ):
            if value is not None:
                values[field] = _limit(value, field) or None
        if label is not None:
            values["label"] = label
        now = repo.utcnow()
        async with self.engine.begin() as conn:
            existing = await repo.get_group_row(conn, name)
            if create:
                if existing is not None:
                    raise Conflict(f"group {name!r} already exists; use `group update`", param="name")
                values.setdefault("multiplier", "1")
                values.setdefault("models", "[]")
                await conn.execute(
                    groups.insert().values(name=name, created_at=now, updated_at=now, **values)
                )
            else:
                if existing is None:
                    raise NotFound(f"group {name!r} does not exist", param="name")
                await conn.execute(
                    update(groups).where(groups.c.name == name).values(updated_at=now, **values)
                )
            row = await repo.get_group_row(conn, name)
            assert row is not None
            after = self._group_json(row)
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="group.create" if create else "group.update",
                target=f"group:{name}",
                reason=reason,
                before=None if existing is None else self._group_json(existing),
                after=after,
            )
            await repo.bump_version(conn)
        return after

    @staticmethod
    def _group_json(row: Any) -> Json:
        return {
            "name": row.name,
            "multiplier": row.multiplier,
            "models": repo.loads_list(row.models),
            "rpm": row.rpm,
            "tpm": row.tpm,
            "concurrency": row.concurrency,
            "total_concurrency": row.total_concurrency,
            "label": row.label,
        }

    async def list_groups(self) -> list[Json]:
        async with self.engine.connect() as conn:
            return [self._group_json(r) for r in await conn.execute(select(groups).order_by(groups.c.name))]

    # --- model prices ---------------------------------------------------------------------

    async def set_model_price(
        self,
        name: str,
        *,
        input: str | None = None,
        output: str | None = None,
        cache_write_5m: str | None = None,
        cache_write_1h: str | None = None,
        cache_read: str | None = None,
        per_call: str | None = None,
        provider: str | None = None,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
        effective_from: datetime | None = None,
        reason: str = "",
    ) -> Json:
        """Set the operator's price for a model from ``effective_from`` (default now).

        Categories not given keep their current value, so ``--output 12`` changes only output.
        """
        when = effective_from or repo.utcnow()
        async with self.engine.begin() as conn:
            book = PriceBook.bundled().with_overrides(await repo.list_price_overrides(conn))
            current = book.lookup(name, when)
            try:
                entry = _merge_price(
                    name,
                    current,
                    when,
                    input=input,
                    output=output,
                    cache_write_5m=cache_write_5m,
                    cache_write_1h=cache_write_1h,
                    cache_read=cache_read,
                    per_call=per_call,
                    provider=provider,
                    context_window=context_window,
                    max_output_tokens=max_output_tokens,
                )
            except MoneyFormatError as exc:
                raise InvalidRequest(str(exc), param="price") from exc
            doc = entry_to_dict(entry)
            await conn.execute(
                model_prices.delete().where(
                    model_prices.c.model == name, model_prices.c.effective_from == when
                )
            )
            await conn.execute(
                model_prices.insert().values(
                    model=name,
                    effective_from=when,
                    entry=repo.dumps(doc),
                    created_at=repo.utcnow(),
                    created_by=self.actor,
                )
            )
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="model.price",
                target=f"model:{name}",
                reason=reason,
                before=None if current is None else entry_to_dict(current),
                after=doc,
            )
            await repo.bump_version(conn)
        return doc

    async def list_models(self) -> list[Json]:
        async with self.engine.connect() as conn:
            book = PriceBook.bundled().with_overrides(await repo.list_price_overrides(conn))
        now = repo.utcnow()
        return [entry_to_dict(e) for m in book.models() if (e := book.lookup(m, now)) is not None]

    # --- channels -------------------------------------------------------------------------

    async def upsert_channel(
        self,
        name: str,
        *,
        create: bool,
        type: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        models: str | None = None,
        groups_: str | None = None,
        priority: int | None = None,
        weight: int | None = None,
        model_map: str | None = None,
        enabled: bool | None = None,
    ) -> Json:
        values: Json = {}
        if type is not None:
            try:
                values["type"] = ChannelType(type).value
            except ValueError as exc:
                raise InvalidRequest(
                    f"channel type must be one of openai, anthropic, gemini (got {type!r})",
                    param="type",
                ) from exc
        if base_url is not None:
            if not base_url.startswith(("http://", "https://")):
                raise InvalidRequest("base URL must start with http:// or https://", param="base_url")
            values["base_url"] = base_url.rstrip("/")
        if api_key is not None:
            values["credential_enc"] = self.box.seal(api_key)
        if models is not None:
            values["models"] = repo.dumps(sorted(_split(models)))
        if groups_ is not None:
            values["groups"] = repo.dumps(sorted(_split(groups_)))
        if model_map is not None:
            pairs = {}
            for item in _split(model_map):
                src, sep, dst = item.partition("=")
                if not sep or not src or not dst:
                    raise InvalidRequest(f"model map entries are from=to, got {item!r}", param="map")
                pairs[src.strip()] = dst.strip()
            values["model_map"] = repo.dumps(pairs)
        if priority is not None:
            values["priority"] = priority
        if weight is not None:
            if weight < 1:
                raise InvalidRequest("weight must be at least 1", param="weight")
            values["weight"] = weight
        if enabled is not None:
            values["status"] = "enabled" if enabled else "disabled"
        now = repo.utcnow()
        async with self.engine.begin() as conn:
            existing = (await conn.execute(select(channels).where(channels.c.name == name))).first()
            if create:
                if existing is not None:
                    raise Conflict(f"channel {name!r} already exists; use `channel update`", param="name")
                for required, flag in REQUIRED_CHANNEL_FIELDS:
                    if required not in values:
                        raise InvalidRequest(f"{flag} is required to create a channel", param=required)
                values.setdefault("groups", "[]")
                values.setdefault("model_map", "{}")
                values.setdefault("priority", 0)
                values.setdefault("weight", 1)
                values.setdefault("status", "enabled")
                await conn.execute(
                    channels.insert().values(
                        id=str(uuid.uuid4()), name=name, created_at=now, updated_at=now, **values
                    )
                )
            else:
                if existing is None:
                    raise NotFound(f"channel {name!r} does not exist", param="name")
                await conn.execute(
                    update(channels).where(channels.c.name == name).values(updated_at=now, **values)
                )
            row = (await conn.execute(select(channels).where(channels.c.name == name))).first()
            assert row is not None
            out = self._channel_json(row)
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="channel.create" if create else "channel.update",
                target=f"channel:{name}",
                after=out,
            )
            await repo.bump_version(conn)
        return out

    @staticmethod
    def _channel_json(row: Any) -> Json:
        # The credential is never returned, not even masked from its plaintext.
        return {
            "id": row.id,
            "name": row.name,
            "type": row.type,
            "base_url": row.base_url,
            "models": repo.loads_list(row.models),
            "groups": repo.loads_list(row.groups),
            "model_map": dict(orjson.loads(row.model_map)),
            "priority": row.priority,
            "weight": row.weight,
            "status": row.status,
            "has_credential": bool(row.credential_enc),
        }

    async def list_channels(self) -> list[Json]:
        async with self.engine.connect() as conn:
            return [
                self._channel_json(r) for r in await conn.execute(select(channels).order_by(channels.c.name))
            ]

    # --- accounts and keys ----------------------------------------------------------------

    async def create_account(
        self, email: str, *, password: str | None = None, role: str = "customer"
    ) -> Json:
        email = email.strip().lower()
        if "@" not in email or len(email) > 320:
            raise InvalidRequest(f"{email!r} is not an email address", param="email")
        try:
            role_v = Role(role)
        except ValueError as exc:
            raise InvalidRequest("role must be customer, support or admin", param="role") from exc
        account_id = str(uuid.uuid4())
        now = repo.utcnow()
        # argon2 takes tens of milliseconds: keep it off the event loop.
        password_hash = await asyncio.to_thread(hash_password, password) if password else None
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    accounts.insert().values(
                        id=account_id,
                        email=email,
                        password_hash=password_hash,
                        role=role_v.value,
                        status=AccountStatus.ACTIVE.value,
                        created_at=now,
                    )
                )
                await ledger_repo.get_or_create_account(
                    conn,
                    chart.cash_code(account_id),
                    AccountKind.CUSTOMER_CASH,
                    owner_id=account_id,
                )
                await repo.write_audit(
                    conn,
                    actor=self.actor,
                    action="account.create",
                    target=f"account:{account_id}",
                    after={"email": email, "role": role_v.value},
                )
        except IntegrityError as exc:
            raise Conflict(f"an account with email {email!r} already exists", param="email") from exc
        return {
            "id": account_id,
            "email": email,
            "role": role_v.value,
            "status": "active",
            "created_at": now.isoformat(),
        }

    async def set_account_status(self, account_id: str, status: str, reason: str = "") -> Json:
        try:
            value = AccountStatus(status)
        except ValueError as exc:
            raise InvalidRequest("status must be active or suspended", param="status") from exc
        async with self.engine.begin() as conn:
            account = await self._account(conn, account_id)
            await conn.execute(update(accounts).where(accounts.c.id == account_id).values(status=value.value))
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="account.status",
                target=f"account:{account_id}",
                reason=reason,
                before={"status": account.status.value},
                after={"status": value.value},
            )
            await repo.bump_version(conn)
        return {"id": account_id, "status": value.value}

    async def _account(self, conn: AsyncConnection, account_id: str) -> Any:
        try:
            uuid.UUID(account_id)
        except ValueError as exc:
            raise NotFound(f"no account {account_id!r}", param="account_id") from exc
        account = await repo.get_account(conn, account_id)
        if account is None:
            raise NotFound(f"no account {account_id!r}", param="account_id")
        return account

    async def create_key(
        self,
        account_id: str,
        *,
        name: str,
        group: str,
        expires: datetime | None = None,
        models: str | None = None,
        spend_cap: str | None = None,
        ip_allow: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
    ) -> Json:
        try:
            cap = None if spend_cap is None else credits_to_nano(spend_cap, field="spend_cap")
            nets = [str(n) for n in parse_networks(_split(ip_allow))]
        except (MoneyFormatError, ValueError) as exc:
            raise InvalidRequest(
                str(exc), param="spend_cap" if isinstance(exc, MoneyFormatError) else "ip_allow"
            ) from exc
        if cap is not None and cap < 0:
            raise InvalidRequest("spend cap must not be negative", param="spend_cap")
        secret = new_secret()
        key_id = str(uuid.uuid4())
        now = repo.utcnow()
        async with self.engine.begin() as conn:
            await self._account(conn, account_id)
            if await repo.get_group_row(conn, group) is None:
                raise NotFound(f"group {group!r} does not exist", param="group")
            await conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    account_id=account_id,
                    name=name,
                    key_hash=hash_secret(secret),
                    prefix=display_prefix(secret),
                    group_name=group,
                    status=KeyStatus.ENABLED.value,
                    expires_at=expires,
                    spend_cap_nano=cap,
                    models=repo.dumps(sorted(_split(models))),
                    ip_allow=repo.dumps(nets),
                    rpm=_limit(rpm, "rpm"),
                    tpm=_limit(tpm, "tpm"),
                    concurrency=_limit(concurrency, "concurrency"),
                    created_at=now,
                )
            )
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="key.create",
                target=f"key:{key_id}",
                after={"account_id": account_id, "name": name, "group": group},
            )
        out = await self.get_key(key_id)
        out["secret"] = secret
        return out

    async def get_key(self, key_id: str, *, account_id: str | None = None) -> Json:
        async with self.engine.connect() as conn:
            q = select(api_keys).where(api_keys.c.id == key_id)
            if account_id is not None:
                q = q.where(api_keys.c.account_id == account_id)
            row = (await conn.execute(q)).first()
        if row is None:
            raise NotFound(f"no key {key_id!r}", param="key_id")
        return key_json(row)

    async def list_keys(self, account_id: str) -> list[Json]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(api_keys).where(api_keys.c.account_id == account_id).order_by(api_keys.c.created_at)
            )
            return [key_json(r) for r in rows]

    async def set_key_status(self, key_id: str, status: str, *, account_id: str | None = None) -> Json:
        value = KeyStatus(status)
        current = await self.get_key(key_id, account_id=account_id)
        if current["status"] == KeyStatus.REVOKED.value and value is not KeyStatus.REVOKED:
            raise Conflict("a revoked key stays revoked; create a new key", param="key_id")
        async with self.engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(status=value.value))
            await repo.write_audit(
                conn, actor=self.actor, action=f"key.{value.value}", target=f"key:{key_id}"
            )
            await repo.bump_version(conn)
        return await self.get_key(key_id)

    # --- money ----------------------------------------------------------------------------

    async def credit(
        self,
        account_id: str,
        amount: str,
        *,
        kind: str,
        reason: str,
        expires: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        """A staff credit: cash from the funding account, or a voucher grant from promotions."""
        try:
            nano = credits_to_nano(amount)
        except MoneyFormatError as exc:
            raise InvalidRequest(str(exc), param="amount") from exc
        if nano <= 0:
            raise InvalidRequest("amount must be positive", param="amount")
        if not reason.strip():
            raise InvalidRequest("a reason is required for every staff credit", param="reason")
        if kind not in ("cash", "voucher"):
            raise InvalidRequest("kind must be cash or voucher", param="kind")
        if kind == "cash" and expires is not None:
            raise InvalidRequest(
                "cash does not expire; use --kind voucher for expiring credit", param="expires"
            )
        if expires is not None and expires <= repo.utcnow():
            raise InvalidRequest("the expiry is in the past", param="expires")
        key = idempotency_key or f"staff:{uuid.uuid4()}"
        async with self.engine.begin() as conn:
            await self._account(conn, account_id)
            platform = await ledger_repo.ensure_platform_accounts(conn)
            if kind == "cash":
                target = await ledger_repo.get_or_create_account(
                    conn,
                    chart.cash_code(account_id),
                    AccountKind.CUSTOMER_CASH,
                    owner_id=account_id,
                )
                source = platform[chart.FUNDING]
                tkind = TransferKind.CREDIT
            else:
                # The grant is named after the idempotency key, so a replay finds the same grant.
                grant = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
                target = await ledger_repo.get_or_create_account(
                    conn,
                    chart.voucher_code(account_id, grant),
                    AccountKind.CUSTOMER_VOUCHER,
                    owner_id=account_id,
                    expires_at=expires,
                    label=reason,
                )
                source = platform[chart.PROMOTIONS]
                tkind = TransferKind.VOUCHER_GRANT
            transfer = Transfer(
                key,
                tkind.value,
                (Leg(source, -nano), Leg(target, nano)),
                owner_id=account_id,
                memo=reason,
                actor=self.actor,
            )
            [tid] = await ledger_repo.post_transfers(conn, [transfer])
            await repo.write_audit(
                conn,
                actor=self.actor,
                action=f"credit.{kind}",
                target=f"account:{account_id}",
                reason=reason,
                after={
                    "amount": amount,
                    "kind": kind,
                    "transfer_id": tid,
                    "expires": expires.isoformat() if expires else None,
                },
            )
        return {
            "transfer_id": tid,
            "account_id": account_id,
            "kind": kind,
            "amount_nano": nano,
            **await self.balance(account_id),
        }

    async def balance(self, account_id: str) -> Json:
        from tollway.services.queries import balance_snapshot

        async with self.engine.connect() as conn:
            await self._account(conn, account_id)
            return await balance_snapshot(conn, account_id)

    # --- reads for the CLI and the control API ---------------------------------------------

    async def get_account(self, account_id: str) -> Json:
        async with self.engine.connect() as conn:
            await self._account(conn, account_id)
            row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).one()
        return account_json(row)

    async def list_usage(
        self, account_id: str, *, limit: int = 50, include_operator: bool = True
    ) -> list[Json]:
        from tollway.services.queries import list_usage

        async with self.engine.connect() as conn:
            await self._account(conn, account_id)
            return await list_usage(conn, account_id, limit=limit, include_operator=include_operator)

    async def get_usage(
        self, trace_id: str, *, account_id: str | None = None, include_operator: bool = True
    ) -> Json:
        """One usage record; ``account_id`` scopes it (another account's trace is "not found")."""
        from tollway.services.queries import get_usage

        async with self.engine.connect() as conn:
            record = await get_usage(conn, trace_id, owner_id=account_id, include_operator=include_operator)
        if record is None:
            raise NotFound(f"no usage record with trace id {trace_id!r}", param="trace_id")
        return record


def account_json(row: Any) -> Json:
    return {
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "status": row.status,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "concurrency": row.concurrency,
        "created_at": row.created_at.isoformat(),
    }


def key_json(row: Any) -> Json:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "name": row.name,
        "prefix": row.prefix,
        "group": row.group_name,
        "status": row.status,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "spend_cap_nano": row.spend_cap_nano,
        "models": repo.loads_list(row.models),
        "ip_allow": repo.loads_list(row.ip_allow),
        "rpm": row.rpm,
        "tpm": row.tpm,
        "concurrency": row.concurrency,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }


def _merge_price(name: str, current: PriceEntry | None, when: datetime, **kw: Any) -> PriceEntry:
    def nano(v: str | None) -> int | None:
        return None if v is None else usd_per_mtok_to_nano(v)

    per_call = nano(kw["per_call"])
    if per_call is not None:
        return PriceEntry(
            model=name,
            provider=kw["provider"] or (current.provider if current else "custom"),
            mode=BillingMode.CALL,
            effective_from=when,
            per_call_nano=per_call,
            version="operator",
        )
    base = current.tokens if current and current.tokens else None
    inp = nano(kw["input"]) if kw["input"] is not None else (base.input if base else None)
    out = nano(kw["output"]) if kw["output"] is not None else (base.output if base else None)
    if inp is None or out is None:
        raise InvalidRequest(
            f"model {name!r} has no price yet: give --input and --output (or --per-call)",
            param="input",
        )
    prices = TokenPrices(
        input=inp,
        output=out,
        cache_write_5m=nano(kw["cache_write_5m"])
        if kw["cache_write_5m"] is not None
        else (base.cache_write_5m if base else None),
        cache_write_1h=nano(kw["cache_write_1h"])
        if kw["cache_write_1h"] is not None
        else (base.cache_write_1h if base else None),
        cache_read=nano(kw["cache_read"])
        if kw["cache_read"] is not None
        else (base.cache_read if base else None),
    )
    if current is not None:
        return dataclasses.replace(
            current,
            mode=BillingMode.TOKEN,
            tokens=prices,
            per_call_nano=None,
            effective_from=when,
            version="operator",
            provider=kw["provider"] or current.provider,
            context_window=kw["context_window"] or current.context_window,
            max_output_tokens=kw["max_output_tokens"] or current.max_output_tokens,
            tiers=current.tiers if kw["input"] is None and kw["output"] is None else (),
        )
    return PriceEntry(
        model=name,
        provider=kw["provider"] or "custom",
        mode=BillingMode.TOKEN,
        effective_from=when,
        tokens=prices,
        context_window=kw["context_window"] or 128_000,
        max_output_tokens=kw["max_output_tokens"] or 16_384,
        version="operator",
    )
