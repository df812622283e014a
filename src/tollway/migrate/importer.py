"""Carrying out an import plan through Tollway's own services: groups, accounts, credits
(one ledger transfer per imported balance, keyed ``import:<source>:user:<id>``), keys,
channels (credentials sealed like every channel's), prices and redemption codes.

Each step commits on its own; every step is keyed by a stable id or an idempotency key, so
an interrupted import is finished by running it again, and a complete one plans nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from tollway.errors import TollwayError
from tollway.migrate.convert import import_key
from tollway.migrate.plan_model import (
    CHANGES,
    CREATE,
    AccountStep,
    BalanceStep,
    ChannelStep,
    CodeStep,
    GroupStep,
    KeyStep,
    Plan,
    PriceStep,
    Step,
)
from tollway.migrate.reader import read_source
from tollway.migrate.source_schema import Flavour
from tollway.migrate.target_state import read_target
from tollway.money import nano_to_credits
from tollway.payments.numbers import code_hint
from tollway.services.admin import AdminService
from tollway.store import config_repo
from tollway.store.tables import redemption_batches as rb
from tollway.store.tables import redemption_codes as rc


@dataclass(slots=True)
class Outcome:
    plan: Plan
    dry_run: bool
    applied: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)


async def plan_import(admin: AdminService, location: str, flavour: Flavour, *, import_prices: bool) -> Plan:
    from tollway.migrate.planner import build_plan, ledger_keys

    data = await read_source(location, flavour)
    state = await read_target(admin.engine, ledger_keys(data))
    return build_plan(data, state, import_prices=import_prices)


async def run_import(
    admin: AdminService,
    location: str,
    flavour: Flavour,
    *,
    dry_run: bool = False,
    import_prices: bool = True,
) -> Outcome:
    plan = await plan_import(admin, location, flavour, import_prices=import_prices)
    outcome = Outcome(plan, dry_run)
    if dry_run:
        return outcome
    writer = _Writer(admin, plan.source)
    order: list[tuple[str, Callable[[Step], Awaitable[None]]]] = [
        ("group", writer.group),
        ("account", writer.account),
        ("balance", writer.balance),
        ("key", writer.key),
        ("channel", writer.channel),
        ("price", writer.price),
        ("code", writer.code),
    ]
    for kind, apply in order:
        for step in plan.of(kind):
            if step.action not in CHANGES:
                continue
            try:
                await apply(step)
            except TollwayError as exc:
                outcome.failed.append({"kind": kind, "source_id": step.source_id, "error": exc.message})
                step.action, step.reason = "failed", exc.message
            else:
                outcome.applied += 1
    if outcome.applied:
        async with admin.engine.begin() as conn:
            await config_repo.write_audit(
                conn,
                actor=admin.actor,
                action="import.run",
                target=f"import:{plan.source}",
                after={"applied": outcome.applied, "failed": len(outcome.failed), "counts": plan.counts()},
            )
    return outcome


class _Writer:
    def __init__(self, admin: AdminService, source: str) -> None:
        self.admin = admin
        self.source = source

    def _reason(self, kind: str, source_id: str) -> str:
        return import_key(self.source, kind, source_id)

    async def group(self, step: Step) -> None:
        assert isinstance(step, GroupStep)
        await self.admin.upsert_group(
            step.label,
            create=step.action == CREATE,
            multiplier=step.multiplier,
            reason=f"import:{self.source}:GroupRatio",
        )

    async def account(self, step: Step) -> None:
        assert isinstance(step, AccountStep)
        reason = self._reason("user", step.source_id)
        await self.admin.create_account(
            step.email, account_id=step.account_id, status=step.status, reason=reason
        )
        async with self.admin.engine.begin() as conn:  # what Tollway has no column for
            await config_repo.write_audit(
                conn,
                actor=self.admin.actor,
                action="account.import",
                target=f"account:{step.account_id}",
                reason=reason,
                after={"username": step.username, "display_name": step.display_name, "notes": step.notes},
            )

    async def balance(self, step: Step) -> None:
        assert isinstance(step, BalanceStep)
        await self.admin.credit(
            step.account_id,
            nano_to_credits(step.nano),
            kind="cash",
            reason=step.idempotency_key,
            idempotency_key=step.idempotency_key,
        )

    async def key(self, step: Step) -> None:
        assert isinstance(step, KeyStep)
        await self.admin.create_key(
            step.account_id,
            name=step.name,
            group=step.group,
            expires=step.expires,
            models=",".join(step.models) or None,
            spend_cap=step.spend_cap,
            ip_allow=",".join(step.ip_allow) or None,
            secret=step.secret,
            key_id=step.key_id,
            status=step.status,
            reason=self._reason("token", step.source_id),
        )

    async def channel(self, step: Step) -> None:
        assert isinstance(step, ChannelStep)
        await self.admin.upsert_channel(
            step.name,
            create=True,
            type=step.type,
            base_url=step.base_url,
            api_key=",".join(step.credentials),
            models=",".join(step.models),
            groups_=",".join(step.groups),
            priority=step.priority,
            weight=step.weight,
            model_map=",".join(f"{k}={v}" for k, v in step.model_map.items()) or None,
            enabled=step.enabled,
            reason=self._reason("channel", step.source_id),
            channel_id=step.channel_id,
        )

    async def price(self, step: Step) -> None:
        assert isinstance(step, PriceStep) and step.price is not None
        theirs = step.price.theirs.usd()
        reason = f"import:{self.source}:price:{step.price.model}"
        if theirs["per_call"] is not None:
            await self.admin.set_model_price(step.price.model, per_call=theirs["per_call"], reason=reason)
            return
        await self.admin.set_model_price(
            step.price.model,
            input=theirs["input"],
            output=theirs["output"],
            cache_read=theirs["cache_read"],
            reason=reason,
        )

    async def code(self, step: Step) -> None:
        """Redemption codes keep their text (customers redeem what they were sold); they are
        stored like every Tollway code: looked up by hash, sealed for the CSV export."""
        assert isinstance(step, CodeStep)
        now = config_repo.utcnow()
        async with self.admin.engine.begin() as conn:
            found = (await conn.execute(select(rb.c.id).where(rb.c.id == step.batch_id))).first()
            if found is None:
                await conn.execute(
                    rb.insert().values(
                        id=step.batch_id,
                        label=step.batch_label,
                        kind="cash",
                        value_nano=step.value_nano,
                        count=0,
                        expires_at=step.expires,
                        created_by=self.admin.actor,
                        created_at=now,
                    )
                )
            await conn.execute(
                rc.insert().values(
                    id=step.code_id or str(uuid.uuid4()),
                    batch_id=step.batch_id,
                    code_hash=step.code_hash,
                    code_enc=self.admin.box.seal(step.code),
                    hint=code_hint(step.code),
                    state="active",
                )
            )
            await conn.execute(rb.update().where(rb.c.id == step.batch_id).values(count=rb.c.count + 1))
            await config_repo.write_audit(
                conn,
                actor=self.admin.actor,
                action="codes.import",
                target=f"code_batch:{step.batch_id}",
                reason=self._reason("redemption", step.source_id),
                after={"value_nano": step.value_nano, "hint": code_hint(step.code)},
            )
