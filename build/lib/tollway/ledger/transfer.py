"""Transfers: balanced sets of legs with an idempotency key."""

from __future__ import annotations

from dataclasses import dataclass


class UnbalancedTransfer(ValueError):
    """The legs of a transfer do not sum to zero."""


@dataclass(frozen=True, slots=True)
class Leg:
    ledger_account_id: int
    amount_nano: int  # credit-positive


@dataclass(frozen=True, slots=True)
class Transfer:
    idempotency_key: str
    kind: str
    legs: tuple[Leg, ...]
    owner_id: str | None = None
    trace_id: str | None = None
    memo: str = ""
    actor: str = "system"

    def __post_init__(self) -> None:
        if sum(leg.amount_nano for leg in self.legs) != 0:
            raise UnbalancedTransfer(f"transfer {self.idempotency_key} does not sum to zero")
        if not self.legs:
            raise UnbalancedTransfer(f"transfer {self.idempotency_key} has no legs")

    @property
    def amount_nano(self) -> int:
        """The size of the movement: the sum of its positive legs."""
        return sum(leg.amount_nano for leg in self.legs if leg.amount_nano > 0)
