"""Which payments a refund goes back to: newest first, never more than unspent cash, never more
than what is left of a payment, money at each payment's own rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tollway.payments.refund_plan import Payment, PlanLine, plan, refundable_cash, refundable_total

T0 = datetime(2026, 1, 1, tzinfo=UTC)
C = 1_000_000_000


def pay(
    n: str, provider: str, currency: str, minor: int, credits: int, day: int, done: tuple[int, int] = (0, 0)
) -> Payment:
    return Payment(n, provider, currency, minor, credits, done[0], done[1], T0 + timedelta(days=day))


STRIPE = pay("TW-A", "stripe", "USD", 1000, 10 * C, 1)
ALIPAY = pay("TW-B", "alipay", "CNY", 7200, 10 * C, 2)


def test_newest_payment_first() -> None:
    lines = plan([STRIPE, ALIPAY], cash_available_nano=15 * C, requested_nano=None)
    assert lines == [
        PlanLine("TW-B", "alipay", "CNY", 7200, 10 * C),
        PlanLine("TW-A", "stripe", "USD", 500, 5 * C),
    ]


def test_never_more_than_unspent_cash_or_what_was_asked() -> None:
    assert (
        sum(
            line.credits_nano
            for line in plan([STRIPE, ALIPAY], cash_available_nano=3 * C, requested_nano=None)
        )
        == 3 * C
    )
    assert plan([STRIPE, ALIPAY], cash_available_nano=15 * C, requested_nano=2 * C) == [
        PlanLine("TW-B", "alipay", "CNY", 1440, 2 * C)
    ]
    # More cash than payments (staff credits, cash codes): only payments go back.
    assert refundable_total([STRIPE], cash_available_nano=50 * C) == 10 * C
    assert plan([], cash_available_nano=50 * C, requested_nano=None) == []


def test_never_more_than_is_left_of_a_payment() -> None:
    half = pay("TW-A", "stripe", "USD", 1000, 10 * C, 1, done=(600, 6 * C))
    assert plan([half], cash_available_nano=10 * C, requested_nano=None) == [
        PlanLine("TW-A", "stripe", "USD", 400, 4 * C)
    ]
    gone = pay("TW-A", "stripe", "USD", 1000, 10 * C, 1, done=(1000, 10 * C))
    assert plan([gone], cash_available_nano=10 * C, requested_nano=None) == []


def test_partial_money_rounds_down_and_takes_only_the_credits_it_stands_for() -> None:
    odd = pay("TW-C", "alipay", "CNY", 1000, 1_388_888_888, 1)  # ¥10 at ¥7.2
    [line] = plan([odd], cash_available_nano=C, requested_nano=None)
    assert (line.amount_minor, line.credits_nano) == (720, C)
    [line] = plan([odd], cash_available_nano=1_300_000_000, requested_nano=None)
    assert line.amount_minor == 936  # ¥9.36 = floor(1.3 credits × 7.2)
    assert line.credits_nano == 1_300_000_000  # ceil(936 fen ÷ 720 fen per credit)
    tiny = plan([odd], cash_available_nano=1_000_000, requested_nano=None)
    assert tiny == []  # less than one fen: nothing to send back
    # What is left after a partial refund returns exactly the rest of the money.
    rest = pay("TW-C", "alipay", "CNY", 1000, 1_388_888_888, 1, done=(720, C))
    assert plan([rest], cash_available_nano=5 * C, requested_nano=None) == [
        PlanLine("TW-C", "alipay", "CNY", 280, 388_888_888)
    ]


def test_holds_reduce_refundable_cash_beyond_vouchers() -> None:
    assert refundable_cash(cash_nano=10 * C, voucher_nano=0, held_nano=4 * C) == 6 * C
    assert refundable_cash(cash_nano=10 * C, voucher_nano=5 * C, held_nano=4 * C) == 10 * C
    assert refundable_cash(cash_nano=10 * C, voucher_nano=1 * C, held_nano=4 * C) == 7 * C
    assert refundable_cash(cash_nano=-1, voucher_nano=0, held_nano=0) == 0
