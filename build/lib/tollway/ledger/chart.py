"""Chart of accounts and transfer kinds.

Every ledger account has a code. Customer accounts are liabilities (what the platform owes the
customer in credit); the platform accounts are where that credit comes from or goes to.
Entries are credit-positive: +x raises the balance of a liability or income account.
"""

from __future__ import annotations

from enum import StrEnum


class AccountKind(StrEnum):
    CUSTOMER_CASH = "customer_cash"  # paid credit, refundable while unspent
    CUSTOMER_VOUCHER = "customer_voucher"  # one per grant; promotional, may expire
    USAGE_REVENUE = "usage_revenue"  # income: what calls deducted
    FUNDING = "funding"  # staff cash credits and code redemptions not tied to a payment
    PROMOTIONS = "promotions"  # expense: voucher grants
    VOUCHER_BREAKAGE = "voucher_breakage"  # income: expired voucher remainders
    CLEARING = "clearing"  # asset: a payment provider's clearing account
    REFUNDS_IN_FLIGHT = "refunds_in_flight"  # cash held for refunds the provider has not confirmed


class TransferKind(StrEnum):
    CREDIT = "credit"  # staff cash credit
    VOUCHER_GRANT = "voucher_grant"
    USAGE = "usage"  # settlement of a call
    VOUCHER_EXPIRY = "voucher_expiry"
    TOPUP = "topup"
    REFUND = "refund"
    CORRECTION = "correction"
    REFUND_HOLD = "refund_hold"  # cash -> refunds in flight, while the provider works
    REFUND_RELEASE = "refund_release"  # refunds in flight -> cash, when the provider refused
    REDEMPTION = "redemption"  # a redemption code (voucher card) was redeemed


CUSTOMER_KINDS = frozenset({AccountKind.CUSTOMER_CASH.value, AccountKind.CUSTOMER_VOUCHER.value})

USAGE_REVENUE = "platform:usage_revenue"
FUNDING = "platform:funding"
PROMOTIONS = "platform:promotions"
VOUCHER_BREAKAGE = "platform:voucher_breakage"
REFUNDS_IN_FLIGHT = "platform:refunds_in_flight"

PLATFORM_ACCOUNTS: dict[str, AccountKind] = {
    USAGE_REVENUE: AccountKind.USAGE_REVENUE,
    FUNDING: AccountKind.FUNDING,
    PROMOTIONS: AccountKind.PROMOTIONS,
    VOUCHER_BREAKAGE: AccountKind.VOUCHER_BREAKAGE,
    REFUNDS_IN_FLIGHT: AccountKind.REFUNDS_IN_FLIGHT,
}


def cash_code(owner_id: str) -> str:
    return f"cash:{owner_id}"


def voucher_code(owner_id: str, grant_id: str) -> str:
    return f"voucher:{owner_id}:{grant_id}"


def clearing_code(provider: str) -> str:
    return f"platform:clearing:{provider}"


def topup_transfer_key(order_number: str) -> str:
    """A paid order is credited by exactly one transfer, keyed by its order number."""
    return f"topup:{order_number}"


def usage_transfer_key(trace_id: str) -> str:
    """The settlement of a call is keyed by its trace ID: failover can never charge twice."""
    return f"usage:{trace_id}"
