"""Redemption codes (voucher cards): batches of single-use codes worth N credits of cash or
voucher, with an optional expiry and a label; exported as CSV, revoked while unused, redeemed
once however many people try at the same moment.

Codes are bearer secrets: looked up by their SHA-256, stored encrypted (for the CSV export),
never written to the audit log. Redemption is one conditional update
(``... SET state='redeemed' WHERE code_hash=? AND state='active' AND <batch not expired>``)
followed, in the same transaction, by the ledger transfer keyed ``redeem:<code id>``.
A voucher code's grant expires with its batch.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.money import MoneyFormatError, credits_to_nano, nano_to_credits
from tollway.payments.context import PaymentsContext
from tollway.payments.db.common import utcnow
from tollway.payments.numbers import code_hash, code_hint, new_code
from tollway.services.queries import balance_snapshot
from tollway.store import config_repo, ledger_repo
from tollway.store.tables import redemption_batches as rb
from tollway.store.tables import redemption_codes as rc

Json = dict[str, Any]
MAX_BATCH = 10_000


def _batch_json(row: Any, counts: dict[str, int] | None = None) -> Json:
    return {
        "batch_id": row.id,
        "label": row.label,
        "kind": row.kind,
        "value": nano_to_credits(int(row.value_nano)),
        "value_nano": int(row.value_nano),
        "count": int(row.count),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        **({"states": counts} if counts is not None else {}),
    }


class CodeService:
    def __init__(self, ctx: PaymentsContext, actor: str) -> None:
        self.ctx = ctx
        self.actor = actor

    async def create_batch(
        self, *, count: int, value: str, kind: str, expires: datetime | None = None, label: str = ""
    ) -> Json:
        if not 1 <= count <= MAX_BATCH:
            raise InvalidRequest(f"count must be 1 to {MAX_BATCH}", param="count")
        try:
            nano = credits_to_nano(value, field="value")
        except MoneyFormatError as exc:
            raise InvalidRequest(str(exc), param="value") from exc
        if nano <= 0:
            raise InvalidRequest("value must be positive", param="value")
        if kind not in ("cash", "voucher"):
            raise InvalidRequest("kind must be cash or voucher", param="kind")
        if expires is not None and expires <= utcnow():
            raise InvalidRequest("the expiry is in the past", param="expires")
        batch_id = str(uuid.uuid4())
        codes = [new_code() for _ in range(count)]
        now = utcnow()
        async with self.ctx.engine.begin() as conn:
            await conn.execute(
                rb.insert().values(
                    id=batch_id,
                    label=label,
                    kind=kind,
                    value_nano=nano,
                    count=count,
                    expires_at=expires,
                    created_by=self.actor,
                    created_at=now,
                )
            )
            await conn.execute(
                rc.insert(),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "batch_id": batch_id,
                        "code_hash": code_hash(code),
                        "code_enc": self.ctx.box.seal(code),
                        "hint": code_hint(code),
                        "state": "active",
                    }
                    for code in codes
                ],
            )
            row = (await conn.execute(select(rb).where(rb.c.id == batch_id))).one()
            doc = _batch_json(row)
            await config_repo.write_audit(
                conn, actor=self.actor, action="codes.create", target=f"code_batch:{batch_id}", after=doc
            )
        return {**doc, "codes": codes}

    async def list_batches(self) -> list[Json]:
        async with self.ctx.engine.connect() as conn:
            counts: dict[str, dict[str, int]] = {}
            q = select(rc.c.batch_id, rc.c.state, func.count().label("n")).group_by(rc.c.batch_id, rc.c.state)
            for r in await conn.execute(q):
                counts.setdefault(r.batch_id, {})[r.state] = int(r.n)
            rows = await conn.execute(select(rb).order_by(rb.c.created_at.desc()))
            return [_batch_json(r, counts.get(r.id, {})) for r in rows]

    async def export_csv(self, batch_id: str) -> str:
        async with self.ctx.engine.connect() as conn:
            batch = (await conn.execute(select(rb).where(rb.c.id == batch_id))).first()
            if batch is None:
                raise NotFound(f"no code batch {batch_id!r}", param="batch_id")
            rows = list(await conn.execute(select(rc).where(rc.c.batch_id == batch_id).order_by(rc.c.id)))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["code", "value", "kind", "expires_at", "state", "label", "batch_id"])
        expires = batch.expires_at.isoformat() if batch.expires_at else ""
        value = nano_to_credits(int(batch.value_nano))
        for r in rows:
            code = self.ctx.box.open(r.code_enc)
            writer.writerow([code, value, batch.kind, expires, r.state, batch.label, batch_id])
        return out.getvalue()

    async def revoke(self, *, code: str | None = None, batch_id: str | None = None, reason: str = "") -> Json:
        """Revoke one unused code, or every unused code of a batch (used codes stay used)."""
        if (code is None) == (batch_id is None):
            raise InvalidRequest("give a code or a batch id", param="code")
        q = update(rc).where(rc.c.state == "active")
        q = (
            q.where(rc.c.code_hash == code_hash(code))
            if code is not None
            else q.where(rc.c.batch_id == batch_id)
        )
        async with self.ctx.engine.begin() as conn:
            revoked = (await conn.execute(q.values(state="revoked", revoked_at=utcnow()))).rowcount
            if code is not None and revoked == 0:
                row = (
                    await conn.execute(select(rc.c.state).where(rc.c.code_hash == code_hash(code)))
                ).first()
                if row is None:
                    raise NotFound("no such code", param="code")
                raise Conflict(f"the code is already {row.state}", param="code")
            target = f"code_batch:{batch_id}" if batch_id else f"code:…{code_hint(code or '')}"
            await config_repo.write_audit(
                conn,
                actor=self.actor,
                action="codes.revoke",
                target=target,
                reason=reason,
                before={"state": "active"},
                after={"state": "revoked", "codes": revoked},
            )
        return {"revoked": revoked}

    async def redeem(self, account_id: str, code: str) -> Json:
        digest = code_hash(code)
        now = utcnow()
        live_batches = select(rb.c.id).where(or_(rb.c.expires_at.is_(None), rb.c.expires_at > now))
        async with self.ctx.engine.begin() as conn:
            won = await conn.execute(
                update(rc)
                .where(rc.c.code_hash == digest, rc.c.state == "active", rc.c.batch_id.in_(live_batches))
                .values(state="redeemed", redeemed_by=account_id, redeemed_at=now)
            )
            row = (
                await conn.execute(
                    select(
                        rc.c.id,
                        rc.c.state,
                        rc.c.hint,
                        rb.c.kind,
                        rb.c.value_nano,
                        rb.c.expires_at,
                        rb.c.label,
                    )
                    .join(rb, rb.c.id == rc.c.batch_id)
                    .where(rc.c.code_hash == digest)
                )
            ).first()
            if won.rowcount != 1:
                raise self._why_not(row, now)
            assert row is not None
            transfer_id = await self._credit(conn, account_id, row)
            balance = await balance_snapshot(conn, account_id)
        self.ctx.changed()
        return {
            "redeemed": True,
            "kind": row.kind,
            "value": nano_to_credits(int(row.value_nano)),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "transfer_id": transfer_id,
            "balance": {k: v for k, v in balance.items() if k != "vouchers"},
        }

    @staticmethod
    def _why_not(row: Any, now: datetime) -> Exception:
        if row is None:
            return NotFound("no such code; check it and try again", param="code")
        if row.state == "redeemed":
            return Conflict("this code has already been redeemed", param="code")
        if row.state == "revoked":
            return Conflict("this code has been revoked", param="code")
        if row.expires_at is not None and row.expires_at <= now:
            return Conflict(f"this code expired on {row.expires_at.date().isoformat()}", param="code")
        return Conflict("this code cannot be redeemed", param="code")

    async def _credit(self, conn: Any, account_id: str, row: Any) -> int:
        platform = await ledger_repo.ensure_platform_accounts(conn)
        nano = int(row.value_nano)
        if row.kind == "cash":
            source = platform[chart.FUNDING]
            target = await ledger_repo.get_or_create_account(
                conn, chart.cash_code(account_id), AccountKind.CUSTOMER_CASH, owner_id=account_id
            )
        else:
            source = platform[chart.PROMOTIONS]
            target = await ledger_repo.get_or_create_account(
                conn,
                chart.voucher_code(account_id, row.id),
                AccountKind.CUSTOMER_VOUCHER,
                owner_id=account_id,
                expires_at=row.expires_at,
                label=f"voucher card {row.label}".strip(),
            )
        transfer = Transfer(
            f"redeem:{row.id}",
            TransferKind.REDEMPTION.value,
            (Leg(source, -nano), Leg(target, nano)),
            owner_id=account_id,
            trace_id=row.id,
            memo=f"redemption code …{row.hint} ({row.kind})",
            actor=f"account:{account_id}",
        )
        [transfer_id] = await ledger_repo.post_transfers(conn, [transfer])
        return transfer_id
