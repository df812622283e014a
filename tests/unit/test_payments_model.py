"""Order states and transitions, order numbers and redemption codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tollway.payments.errors import OrderStateConflict
from tollway.payments.model import (
    CREDITED_STATES,
    OPEN_STATES,
    OrderState,
    check_transition,
    creditable_states,
    sources_for,
)
from tollway.payments.numbers import (
    code_hash,
    code_hint,
    looks_like_order_number,
    new_code,
    new_order_number,
    new_refund_number,
    normalise_code,
    normalise_order_number,
)

S = OrderState


def test_the_state_machine() -> None:
    for src, dst in ((S.CREATED, S.PENDING), (S.PENDING, S.PAID), (S.PAID, S.CREDITED),
                     (S.PENDING, S.FAILED), (S.PENDING, S.EXPIRED), (S.CREDITED, S.PARTIALLY_REFUNDED),
                     (S.PARTIALLY_REFUNDED, S.REFUNDED), (S.EXPIRED, S.PAID)):  # fmt: skip
        check_transition(src, dst, order_number="TW1")
    for src, dst in (
        (S.CREDITED, S.PAID),
        (S.REFUNDED, S.CREDITED),
        (S.PENDING, S.CREDITED),
        (S.FAILED, S.PENDING),
    ):
        with pytest.raises(OrderStateConflict, match=f"is {src.value}; it cannot become {dst.value}"):
            check_transition(src, dst, order_number="TW1")


def test_crediting_sources_exclude_every_credited_state() -> None:
    # A verified payment wins over our own expiry or a failure report, never credits twice.
    assert creditable_states() == {S.CREATED, S.PENDING, S.EXPIRED, S.FAILED}
    assert not creditable_states() & CREDITED_STATES
    assert sources_for(S.EXPIRED) == OPEN_STATES == sources_for(S.FAILED)
    assert sources_for(S.REFUNDED) == {S.CREDITED, S.PARTIALLY_REFUNDED}


def test_order_numbers_are_quotable() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    numbers = {new_order_number(now) for _ in range(1000)}
    assert len(numbers) == 1000
    for n in list(numbers)[:20]:
        assert n.startswith("TW261122") and len(n) == 18 and n.isalnum()
        assert not set(n[8:]) & set("ILOU")
        assert looks_like_order_number(n)
    n = next(iter(numbers))
    assert normalise_order_number(f" {n[:6].lower()}-{n[6:]} ") == n
    assert new_refund_number(now).startswith("TR261122")


def test_codes_normalise_what_people_type() -> None:
    code = new_code()
    assert len(code) == 23 and code.count("-") == 3
    assert normalise_code(code.lower().replace("-", " ")) == code.replace("-", "")
    assert normalise_code("abcd-oil0") == "ABCD0110"
    assert code_hash(code) == code_hash(code.lower()) != code_hash(new_code())
    assert code_hint(code) == code.replace("-", "")[-4:]
