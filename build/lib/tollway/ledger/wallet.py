"""A customer's wallet as the data plane sees it: balances, holds and the spend order.

Pure domain: no I/O. The store loads a :class:`Wallet` from ledger balances; the relay asks it
whether a hold fits, reserves, and turns a settled cost into ledger legs (vouchers first,
soonest expiry first, then cash). One event loop owns it, so no locks are needed: every
method is synchronous and completes without yielding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class Pot:
    """One customer ledger account: the cash account or a voucher grant."""

    ledger_account_id: int
    code: str
    balance_nano: int  # committed balance + pending (enqueued, not yet committed) deltas
    expires_at: datetime | None = None  # vouchers only

    def usable(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(slots=True)
class Wallet:
    owner_id: str
    cash: Pot
    vouchers: list[Pot] = field(default_factory=list)
    held_nano: int = 0

    @property
    def cash_nano(self) -> int:
        return self.cash.balance_nano

    def voucher_nano(self, now: datetime) -> int:
        if not self.vouchers:
            return 0
        return sum(max(p.balance_nano, 0) for p in self.vouchers if p.usable(now))

    def available_nano(self, now: datetime) -> int:
        return self.cash.balance_nano + self.voucher_nano(now) - self.held_nano

    def spend_plan(self, amount_nano: int, now: datetime) -> list[tuple[Pot, int]]:
        """Which pots pay ``amount_nano``: usable vouchers by soonest expiry, then cash.

        Cash takes whatever vouchers cannot cover, even below zero: that is the bounded
        overrun of DESIGN.md §4, reported by the settlement and the audit.
        """
        plan: list[tuple[Pot, int]] = []
        remaining = amount_nano
        for pot in sorted(
            (p for p in self.vouchers if p.usable(now) and p.balance_nano > 0),
            key=lambda p: (p.expires_at is None, p.expires_at or now, p.ledger_account_id),
        ):
            if remaining <= 0:
                break
            take = min(pot.balance_nano, remaining)
            plan.append((pot, take))
            remaining -= take
        if remaining > 0:
            plan.append((self.cash, remaining))
        return plan

    def apply(self, plan: list[tuple[Pot, int]]) -> None:
        for pot, amount in plan:
            pot.balance_nano -= amount

    def add_voucher(self, pot: Pot) -> None:
        self.vouchers.append(pot)

    def pot_by_id(self, ledger_account_id: int) -> Pot | None:
        if self.cash.ledger_account_id == ledger_account_id:
            return self.cash
        for pot in self.vouchers:
            if pot.ledger_account_id == ledger_account_id:
                return pot
        return None
