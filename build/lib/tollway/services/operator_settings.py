"""Settings the operator changes at run time from the console (stored in ``operator_settings``,
each change audited). Settings that hold secrets stay in the environment (docs/payments.md)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.store.config_repo import utcnow, write_audit
from tollway.store.tables import operator_settings

SIGNUP_ENABLED = "signup_enabled"


class OperatorSettings:
    """Typed access to the operator's run-time settings. ``defaults`` come from the environment
    (``Settings``) and apply until the operator sets a value."""

    def __init__(self, engine: AsyncEngine, defaults: dict[str, Any]) -> None:
        self.engine = engine
        self.defaults = dict(defaults)

    async def get(self, key: str) -> Any:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(operator_settings.c.value).where(operator_settings.c.key == key))
            ).first()
        return self.defaults.get(key) if row is None else orjson.loads(row[0])

    async def put(self, key: str, value: Any, *, actor: str, reason: str = "") -> None:
        text = orjson.dumps(value).decode()
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(operator_settings.c.value).where(operator_settings.c.key == key))
            ).first()
            before = self.defaults.get(key) if row is None else orjson.loads(row[0])
            if row is None:
                await conn.execute(
                    operator_settings.insert().values(key=key, value=text, updated_by=actor, updated_at=now)
                )
            else:
                await conn.execute(
                    operator_settings.update()
                    .where(operator_settings.c.key == key)
                    .values(value=text, updated_by=actor, updated_at=now)
                )
            await write_audit(
                conn,
                actor=actor,
                action="setting.update",
                target=f"setting:{key}",
                reason=reason,
                before={key: before},
                after={key: value},
            )

    async def signup_enabled(self) -> bool:
        return bool(await self.get(SIGNUP_ENABLED))

    async def set_signup_enabled(self, enabled: bool, *, actor: str, reason: str = "") -> None:
        await self.put(SIGNUP_ENABLED, enabled, actor=actor, reason=reason)
