"""Holds: reservations of the estimated maximum cost of in-flight calls (two-phase).

The :class:`HoldBook` is the in-memory authority on one node; the store mirrors every hold
(opened, then settled / voided / expired exactly once) so the audit can check them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tollway.ledger.wallet import Wallet


@dataclass(slots=True)
class Hold:
    trace_id: str
    owner_id: str
    key_id: str
    amount_nano: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HoldSize:
    amount_nano: int
    worst_nano: int
    expected_nano: int

    @property
    def may_overrun(self) -> bool:
        """True when the hold is the whole balance, short of the worst case (DESIGN.md §4)."""
        return self.amount_nano < self.worst_nano


def size_hold(available_nano: int, worst_nano: int, expected_nano: int) -> HoldSize | None:
    """Apply the three cases of DESIGN.md §4; ``None`` means the call must get a 402."""
    if available_nano >= worst_nano:
        return HoldSize(worst_nano, worst_nano, expected_nano)
    if available_nano >= expected_nano and available_nano > 0:
        return HoldSize(available_nano, worst_nano, expected_nano)
    return None


class HoldBook:
    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}
        self._by_key: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._holds)

    def open(self, hold: Hold, wallet: Wallet) -> None:
        if hold.trace_id in self._holds:
            raise ValueError(f"hold {hold.trace_id} already open")
        self._holds[hold.trace_id] = hold
        wallet.held_nano += hold.amount_nano
        self._by_key[hold.key_id] = self._by_key.get(hold.key_id, 0) + hold.amount_nano

    def close(self, trace_id: str, wallet: Wallet | None) -> Hold | None:
        """End a hold exactly once; a second close returns None."""
        hold = self._holds.pop(trace_id, None)
        if hold is None:
            return None
        if wallet is not None:
            wallet.held_nano -= hold.amount_nano
        left = self._by_key.get(hold.key_id, 0) - hold.amount_nano
        if left:
            self._by_key[hold.key_id] = left
        else:
            self._by_key.pop(hold.key_id, None)
        return hold

    def held_by_key(self, key_id: str) -> int:
        return self._by_key.get(key_id, 0)

    def expired(self, now: datetime) -> list[Hold]:
        return [h for h in self._holds.values() if h.expires_at <= now]

    def trace_ids(self) -> list[str]:
        return list(self._holds)

    def get(self, trace_id: str) -> Hold | None:
        return self._holds.get(trace_id)
