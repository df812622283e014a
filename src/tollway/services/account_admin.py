"""Operator services for accounts, keys and money: create, credit, read."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.accounts.model import (
    AccountStatus,
    Role,
)
from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.money import MoneyFormatError, credits_to_nano
from tollway.services.base import Json, ServiceBase
from tollway.services.passwords import hash_password
from tollway.store import config_repo as repo
from tollway.store import ledger_repo
from tollway.store.tables import accounts


class AccountAdmin(ServiceBase):
    # --- accounts and keys ----------------------------------------------------------------

    async def create_account(
        self,
        email: str,
        *,
        password: str | None = None,
        role: str = "customer",
        account_id: str | None = None,
        status: str = "active",
        reason: str = "",
    ) -> Json:
        """Create an account. ``account_id`` (a UUID) is for importers that need a stable id
        (a re-run finds the same account); normally a fresh one is drawn."""
        email = email.strip().lower()
        if "@" not in email or len(email) > 320:
            raise InvalidRequest(f"{email!r} is not an email address", param="email")
        try:
            role_v = Role(role)
        except ValueError as exc:
            raise InvalidRequest("role must be customer, support or admin", param="role") from exc
        try:
            status_v = AccountStatus(status)
        except ValueError as exc:
            raise InvalidRequest("status must be active or suspended", param="status") from exc
        if account_id is None:
            account_id = str(uuid.uuid4())
        else:
            try:
                account_id = str(uuid.UUID(account_id))
            except ValueError as exc:
                raise InvalidRequest("account id must be a UUID", param="account_id") from exc
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
                        status=status_v.value,
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
                    reason=reason,
                    after={"email": email, "role": role_v.value, "status": status_v.value},
                )
        except IntegrityError as exc:
            raise Conflict(f"an account with email {email!r} already exists", param="email") from exc
        return {
            "id": account_id,
            "email": email,
            "role": role_v.value,
            "status": status_v.value,
            "created_at": now.isoformat(),
        }

    async def set_account_status(self, account_id: str, status: str, reason: str = "") -> Json:
        try:
            value = AccountStatus(status)
        except ValueError as exc:
            raise InvalidRequest("status must be active or suspended", param="status") from exc
        async with self.engine.begin() as conn:
            account = await require_account(conn, account_id)
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
            await require_account(conn, account_id)
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
            await require_account(conn, account_id)
            return await balance_snapshot(conn, account_id)

    # --- reads for the CLI and the control API ---------------------------------------------

    async def get_account(self, account_id: str) -> Json:
        async with self.engine.connect() as conn:
            await require_account(conn, account_id)
            row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).one()
        return account_json(row)

    async def list_usage(
        self, account_id: str, *, limit: int = 50, include_operator: bool = True
    ) -> list[Json]:
        from tollway.services.queries import list_usage

        async with self.engine.connect() as conn:
            await require_account(conn, account_id)
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


async def require_account(conn: AsyncConnection, account_id: str) -> Any:
    """The account row, or NotFound (also for a malformed id)."""
    try:
        uuid.UUID(account_id)
    except ValueError as exc:
        raise NotFound(f"no account {account_id!r}", param="account_id") from exc
    account = await repo.get_account(conn, account_id)
    if account is None:
        raise NotFound(f"no account {account_id!r}", param="account_id")
    return account
