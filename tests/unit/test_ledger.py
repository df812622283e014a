from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tollway.ledger.holds import Hold, HoldBook, size_hold
from tollway.ledger.transfer import Leg, Transfer, UnbalancedTransfer
from tollway.ledger.wallet import Pot, Wallet

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _wallet(cash: int, *vouchers: tuple[int, datetime | None]) -> Wallet:
    return Wallet(
        "owner",
        Pot(1, "cash:owner", cash),
        [Pot(10 + i, f"voucher:{i}", amount, exp) for i, (amount, exp) in enumerate(vouchers)],
    )


def test_transfer_must_balance() -> None:
    Transfer("k", "credit", (Leg(1, -5), Leg(2, 5)))
    with pytest.raises(UnbalancedTransfer):
        Transfer("k", "credit", (Leg(1, -5), Leg(2, 4)))
    with pytest.raises(UnbalancedTransfer):
        Transfer("k", "credit", ())


def test_spend_order_vouchers_soonest_expiry_first_then_cash() -> None:
    w = _wallet(
        100,
        (30, NOW + timedelta(days=9)),
        (20, NOW + timedelta(days=1)),
        (50, NOW - timedelta(days=1)),
    )
    plan = w.spend_plan(70, NOW)
    assert [(p.code, amount) for p, amount in plan] == [
        ("voucher:1", 20),
        ("voucher:0", 30),
        ("cash:owner", 20),
    ]
    assert w.available_nano(NOW) == 150  # the expired voucher does not count


def test_spend_beyond_everything_lands_on_cash_as_overrun() -> None:
    w = _wallet(10, (5, None))
    plan = w.spend_plan(20, NOW)
    w.apply(plan)
    assert w.cash.balance_nano == -5
    assert w.vouchers[0].balance_nano == 0


@pytest.mark.parametrize(
    ("available", "worst", "expected", "result"),
    [(100, 80, 20, 80), (50, 80, 20, 50), (10, 80, 20, None), (0, 0, 0, 0), (0, 10, 0, None)],
)
def test_hold_sizing_follows_the_three_cases(
    available: int, worst: int, expected: int, result: int | None
) -> None:
    size = size_hold(available, worst, expected)
    assert (None if size is None else size.amount_nano) == result


def test_holds_reserve_and_end_once() -> None:
    w = _wallet(100)
    book = HoldBook()
    book.open(Hold("t1", "owner", "k", 60, NOW, NOW + timedelta(seconds=5)), w)
    assert w.available_nano(NOW) == 40
    assert book.held_by_key("k") == 60
    with pytest.raises(ValueError):
        book.open(Hold("t1", "owner", "k", 1, NOW, NOW), w)
    assert book.close("t1", w) is not None
    assert book.close("t1", w) is None
    assert w.available_nano(NOW) == 100
    assert book.held_by_key("k") == 0


def test_expired_holds_are_found() -> None:
    w = _wallet(100)
    book = HoldBook()
    book.open(Hold("old", "owner", "k", 1, NOW, NOW + timedelta(seconds=1)), w)
    book.open(Hold("new", "owner", "k", 1, NOW, NOW + timedelta(seconds=100)), w)
    assert [h.trace_id for h in book.expired(NOW + timedelta(seconds=2))] == ["old"]
