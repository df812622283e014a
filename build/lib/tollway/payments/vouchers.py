"""Vouchers: staff compensation grants, what customers see of them, and expiry.

A grant is a staff voucher credit (:meth:`AdminService.credit` with ``kind="voucher"``: its
own ledger account, an expiry, audited), optionally linked to an order or a call's trace ID.
An expired remainder leaves the balance through the ledger: the sweep posts it from the
grant to ``platform:voucher_breakage`` once the grace period after expiry has passed (so a
settlement that spent the voucher just before it expired has committed first).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from tollway.errors import InvalidRequest, NotFound
from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.money import nano_to_credits
from tollway.payments.context import PaymentsContext, log
from tollway.payments.db import orders as orders_repo
from tollway.payments.db.common import lock_ledger_account, utcnow
from tollway.services.admin import AdminService
from tollway.store import ledger_repo
from tollway.store.tables import ledger_accounts as la
from tollway.store.tables import ledger_entries as le
from tollway.store.tables import ledger_transfers as lt
from tollway.store.tables import usage_records

Json = dict[str, Any]


class VoucherService:
    def __init__(self, ctx: PaymentsContext, actor: str) -> None:
        self.ctx = ctx
        self.actor = actor

    async def grant(
        self,
        account_id: str,
        amount: str,
        *,
        expires: datetime,
        reason: str,
        order_number: str | None = None,
        trace_id: str | None = None,
    ) -> Json:
        links = []
        async with self.ctx.engine.connect() as conn:
            if order_number:
                order = await orders_repo.get_order(conn, order_number, account_id=account_id)
                if order is None:
                    raise NotFound(f"account has no order {order_number!r}", param="order_number")
                links.append(f"order {order.order_number}")
            if trace_id:
                q = select(usage_records.c.trace_id).where(
                    usage_records.c.trace_id == trace_id, usage_records.c.owner_id == account_id
                )
                if (await conn.execute(q)).first() is None:
                    raise NotFound(f"account has no call with trace id {trace_id!r}", param="trace_id")
                links.append(f"trace {trace_id}")
        if not reason.strip():
            raise InvalidRequest("a reason is required for every voucher", param="reason")
        text = reason.strip() + (f" [{', '.join(links)}]" if links else "")
        service = AdminService(self.ctx.engine, self.ctx.box, actor=self.actor)
        out = await service.credit(account_id, amount, kind="voucher", reason=text, expires=expires)
        if order_number:
            async with self.ctx.engine.begin() as conn:
                detail = {"amount": amount, "reason": reason, "transfer_id": out["transfer_id"]}
                await orders_repo.record_event(
                    conn, order_number, "voucher", source="staff", actor=self.actor, detail=detail
                )
        self.ctx.changed()
        return {**out, "order_number": order_number, "trace_id": trace_id}

    async def list_grants(self, account_id: str, *, now: datetime | None = None) -> list[Json]:
        """Each grant: what was granted, spent, expired and remains, and when it expires."""
        now = now or utcnow()
        positive = func.sum(case((le.c.amount_nano > 0, le.c.amount_nano), else_=0))
        expired = func.sum(case((lt.c.kind == TransferKind.VOUCHER_EXPIRY.value, -le.c.amount_nano), else_=0))
        rows = await self._query(account_id, positive, expired)
        out = []
        for r in rows:
            granted, gone, left = int(r.granted or 0), int(r.expired or 0), int(r.balance_nano)
            live = r.expires_at is None or r.expires_at > now
            out.append(
                {
                    "grant": r.code.rsplit(":", 1)[-1],
                    "reason": r.label,
                    "granted": nano_to_credits(granted),
                    "spent": nano_to_credits(granted - gone - left),
                    "expired_amount": nano_to_credits(gone),
                    "remaining": nano_to_credits(left if live else 0),
                    "remaining_nano": left if live else 0,
                    "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                    "state": "active" if live and left > 0 else ("expired" if not live else "used"),
                    "granted_at": r.created_at.isoformat(),
                }
            )
        return out

    async def _query(self, account_id: str, positive: Any, expired: Any) -> list[Any]:
        async with self.ctx.engine.connect() as conn:
            q = (
                select(
                    la.c.code,
                    la.c.label,
                    la.c.balance_nano,
                    la.c.expires_at,
                    la.c.created_at,
                    positive.label("granted"),
                    expired.label("expired"),
                )
                .select_from(
                    la.outerjoin(le, le.c.ledger_account_id == la.c.id).outerjoin(
                        lt, lt.c.id == le.c.transfer_id
                    )
                )
                .where(la.c.owner_id == account_id, la.c.kind == AccountKind.CUSTOMER_VOUCHER.value)
                .group_by(la.c.id, la.c.code, la.c.label, la.c.balance_nano, la.c.expires_at, la.c.created_at)
                .order_by(la.c.created_at.desc())
            )
            return list(await conn.execute(q))

    async def sweep(self, *, now: datetime | None = None) -> int:
        """Move expired remainders to voucher breakage; returns how many grants were swept."""
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self.ctx.settings.voucher_expiry_grace_s)
        async with self.ctx.engine.connect() as conn:
            due = list(
                await conn.execute(
                    select(la.c.id, la.c.code).where(
                        la.c.kind == AccountKind.CUSTOMER_VOUCHER.value,
                        la.c.expires_at <= cutoff,
                        la.c.balance_nano > 0,
                    )
                )
            )
        swept = 0
        for row in due:
            async with self.ctx.engine.begin() as conn:
                await lock_ledger_account(conn, row.code)
                current = (await conn.execute(select(la).where(la.c.id == row.id))).one()
                left = int(current.balance_nano)
                if left <= 0:
                    continue
                platform = await ledger_repo.ensure_platform_accounts(conn)
                transfer = Transfer(
                    f"voucher-expiry:{row.code}",
                    TransferKind.VOUCHER_EXPIRY.value,
                    (Leg(row.id, -left), Leg(platform[chart.VOUCHER_BREAKAGE], left)),
                    owner_id=current.owner_id,
                    memo=f"voucher expired {current.expires_at.isoformat()}",
                    actor=self.actor,
                )
                await ledger_repo.post_transfers(conn, [transfer])
                swept += 1
        if swept:
            log.info("swept %d expired voucher remainder(s) to breakage", swept)
            self.ctx.changed()
        return swept
