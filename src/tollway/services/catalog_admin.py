"""Operator services for the catalogue: groups, model prices, channels."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, update

from tollway.catalog.model import ChannelType
from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.money import MoneyFormatError, Ratio, usd_per_mtok_to_nano
from tollway.pricing.book import PriceBook, entry_to_dict
from tollway.pricing.model import BillingMode, PriceEntry, TokenPrices
from tollway.services.base import Json, ServiceBase, check_limit, split_list
from tollway.store import config_repo as repo
from tollway.store.tables import channels, groups, model_prices

REQUIRED_CHANNEL_FIELDS = (
    ("type", "--type"),
    ("base_url", "--base-url"),
    ("credential_enc", "--api-key"),
    ("models", "--models"),
)


class CatalogAdmin(ServiceBase):
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
        visible: bool | None = None,
        sticky: bool | None = None,
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
            values["models"] = repo.dumps(sorted(split_list(models)))
        for field, value in (
            ("rpm", rpm),
            ("tpm", tpm),
            ("concurrency", concurrency),
            ("total_concurrency", total_concurrency),
        ):
            if value is not None:
                values[field] = check_limit(value, field) or None
        if label is not None:
            values["label"] = label
        if visible is not None:
            values["visible"] = visible
        if sticky is not None:
            values["sticky"] = sticky
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
            "visible": bool(row.visible),
            "sticky": bool(row.sticky),
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
        connect_timeout: float | None = None,
        first_byte_timeout: float | None = None,
        idle_timeout: float | None = None,
        reason: str = "",
        channel_id: str | None = None,
    ) -> Json:
        """Create or update a channel by name. ``channel_id`` (on create) is for importers that
        need a stable id, so a re-run finds the channel it made."""
        values: Json = {}
        timeouts = {
            k: v
            for k, v in (
                ("connect_timeout_s", connect_timeout),
                ("first_byte_timeout_s", first_byte_timeout),
                ("idle_timeout_s", idle_timeout),
            )
            if v is not None
        }
        if any(v < 0 for v in timeouts.values()):
            raise InvalidRequest(
                "timeouts must be positive seconds (0 = the global setting)", param="timeout"
            )
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
            keys = split_list(api_key)
            if not keys:
                raise InvalidRequest("at least one API key is required", param="api_key")
            values["credential_enc"] = repo.seal_credentials(self.box, keys)
        if models is not None:
            values["models"] = repo.dumps(sorted(split_list(models)))
        if groups_ is not None:
            values["groups"] = repo.dumps(sorted(split_list(groups_)))
        if model_map is not None:
            pairs = {}
            for item in split_list(model_map):
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
            if timeouts:
                opts = (
                    dict(orjson.loads(existing.options)) if existing is not None and existing.options else {}
                )
                for k, v in timeouts.items():
                    if v > 0:
                        opts[k] = v
                    else:
                        opts.pop(k, None)
                values["options"] = orjson.dumps(opts).decode("utf-8") if opts else None
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
                        id=channel_id or str(uuid.uuid4()),
                        name=name,
                        created_at=now,
                        updated_at=now,
                        **values,
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
                reason=reason,
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
            "timeouts": dict(orjson.loads(row.options)) if row.options else {},
        }

    async def list_channels(self) -> list[Json]:
        async with self.engine.connect() as conn:
            return [
                self._channel_json(r) for r in await conn.execute(select(channels).order_by(channels.c.name))
            ]


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
