"""Operator and customer services for API keys: create (the secret shown once), read, rename,
enable, disable, revoke, delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from tollway.accounts.model import KeyStatus, display_prefix, hash_secret, new_secret, parse_networks
from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.money import MoneyFormatError, credits_to_nano
from tollway.services.account_admin import require_account
from tollway.services.base import Json, ServiceBase, check_limit, split_list
from tollway.store import config_repo as repo
from tollway.store.tables import api_keys


class KeyAdmin(ServiceBase):
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
        secret: str | None = None,
        key_id: str | None = None,
        status: str = KeyStatus.ENABLED.value,
        reason: str = "",
    ) -> Json:
        """Create a key; its secret is returned once. ``secret`` and ``key_id`` are for
        importers: a key moved in from another gateway keeps the secret its clients send (only
        its hash is stored), and a stable id lets a re-run find it."""
        try:
            cap = None if spend_cap is None else credits_to_nano(spend_cap, field="spend_cap")
            nets = [str(n) for n in parse_networks(split_list(ip_allow))]
        except (MoneyFormatError, ValueError) as exc:
            raise InvalidRequest(
                str(exc), param="spend_cap" if isinstance(exc, MoneyFormatError) else "ip_allow"
            ) from exc
        if cap is not None and cap < 0:
            raise InvalidRequest("spend cap must not be negative", param="spend_cap")
        try:
            status_v = KeyStatus(status)
        except ValueError as exc:
            raise InvalidRequest("status must be enabled or disabled", param="status") from exc
        if status_v not in (KeyStatus.ENABLED, KeyStatus.DISABLED):
            raise InvalidRequest("a new key is enabled or disabled", param="status")
        if secret is None:
            secret = new_secret()
        elif len(secret) < 16:
            raise InvalidRequest("a key secret is at least 16 characters", param="secret")
        key_id = key_id or str(uuid.uuid4())
        now = repo.utcnow()
        async with self.engine.begin() as conn:
            await require_account(conn, account_id)
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
                    status=status_v.value,
                    expires_at=expires,
                    spend_cap_nano=cap,
                    models=repo.dumps(sorted(split_list(models))),
                    ip_allow=repo.dumps(nets),
                    rpm=check_limit(rpm, "rpm"),
                    tpm=check_limit(tpm, "tpm"),
                    concurrency=check_limit(concurrency, "concurrency"),
                    created_at=now,
                )
            )
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="key.create",
                target=f"key:{key_id}",
                reason=reason,
                after={"account_id": account_id, "name": name, "group": group, "status": status_v.value},
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

    async def list_keys(self, account_id: str, *, include_deleted: bool = False) -> list[Json]:
        q = select(api_keys).where(api_keys.c.account_id == account_id)
        if not include_deleted:
            q = q.where(api_keys.c.status != KeyStatus.DELETED.value)
        async with self.engine.connect() as conn:
            rows = await conn.execute(q.order_by(api_keys.c.created_at))
            return [key_json(r) for r in rows]

    async def rename_key(self, key_id: str, name: str, *, account_id: str | None = None) -> Json:
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidRequest("a key name is 1 to 128 characters", param="name")
        current = await self.get_key(key_id, account_id=account_id)
        if current["status"] == KeyStatus.DELETED.value:
            raise NotFound(f"no key {key_id!r}", param="key_id")
        async with self.engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(name=name))
            await repo.write_audit(
                conn,
                actor=self.actor,
                action="key.rename",
                target=f"key:{key_id}",
                before={"name": current["name"]},
                after={"name": name},
            )
        return await self.get_key(key_id)

    async def set_key_status(self, key_id: str, status: str, *, account_id: str | None = None) -> Json:
        """Enable, disable, revoke or delete. Revoked and deleted are final (delete = revoke and
        hide from the list; the row stays so usage records and the ledger keep their key)."""
        value = KeyStatus(status)
        current = await self.get_key(key_id, account_id=account_id)
        if current["status"] == KeyStatus.DELETED.value:
            raise NotFound(f"no key {key_id!r}", param="key_id")
        final = (KeyStatus.REVOKED, KeyStatus.DELETED)
        if current["status"] == KeyStatus.REVOKED.value and value not in final:
            raise Conflict("a revoked key stays revoked; create a new key", param="key_id")
        async with self.engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(status=value.value))
            await repo.write_audit(
                conn, actor=self.actor, action=f"key.{value.value}", target=f"key:{key_id}"
            )
            await repo.bump_version(conn)
        return await self.get_key(key_id)


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
