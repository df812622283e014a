"""Payment checks of ``tollway audit``, run on the audit's connection; read only.

- ``order_not_credited``: an order in a credited state without its top-up transfer;
  ``order_credited_twice``: more than one top-up transfer for one order;
  ``order_credit_mismatch``: the transfer moved other credits than the order bought;
  ``credit_without_credited_order``: a top-up transfer for an order that is not credited (or
  no order at all).
- ``refund_hold_missing`` / ``refund_not_posted`` / ``refund_posted_twice`` /
  ``refund_amount_mismatch``: a refund's hold, posting or release is missing, repeated or of
  the wrong size for its state (pending: hold only; succeeded: hold + refund; failed: hold +
  release).
- ``order_over_refunded``: refunds (succeeded or in flight) exceed what the order was paid.
- ``code_not_credited`` / ``code_credited_twice`` / ``code_credit_mismatch``: a redeemed code
  and its redemption transfer do not match one to one.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.ledger.chart import TransferKind
from tollway.payments.model import CREDITED_STATES, RefundState
from tollway.store.tables import ledger_transfers as lt
from tollway.store.tables import orders, redemption_batches, redemption_codes, refunds

LIMIT = 50
CREDITED = [s.value for s in CREDITED_STATES]


class Report(Protocol):
    stats: dict[str, int]

    def add(self, code: str, message: str) -> None: ...


def _by_ref(kind: TransferKind) -> Any:
    return (
        select(lt.c.trace_id, func.count().label("n"), func.sum(lt.c.amount_nano).label("amount"))
        .where(lt.c.kind == kind.value)
        .group_by(lt.c.trace_id)
        .subquery()
    )


async def check_payments(conn: AsyncConnection, report: Report) -> None:
    await _orders(conn, report)
    await _refunds(conn, report)
    await _codes(conn, report)


async def _orders(conn: AsyncConnection, report: Report) -> None:
    t = _by_ref(TransferKind.TOPUP)
    credited = orders.c.state.in_(CREDITED)
    rows = await conn.execute(
        select(orders.c.order_number, orders.c.state, orders.c.credits_nano, t.c.n, t.c.amount)
        .select_from(orders.outerjoin(t, t.c.trace_id == orders.c.order_number))
        .where(
            (credited & (t.c.n.is_(None) | (t.c.n != 1) | (t.c.amount != orders.c.credits_nano)))
            | (~credited & t.c.n.is_not(None))
        )
        .limit(LIMIT)
    )
    for r in rows:
        if r.state not in CREDITED:
            report.add(
                "credit_without_credited_order", f"order {r.order_number} is {r.state} but was credited"
            )
        elif r.n is None:
            report.add("order_not_credited", f"order {r.order_number} is {r.state} without a top-up transfer")
        elif int(r.n) > 1:
            report.add("order_credited_twice", f"order {r.order_number} was credited {r.n} times")
        else:
            report.add(
                "order_credit_mismatch",
                f"order {r.order_number} bought {r.credits_nano} nano, its top-up moved {r.amount}",
            )
    stray = await conn.execute(
        select(lt.c.id, lt.c.trace_id)
        .select_from(lt.outerjoin(orders, orders.c.order_number == lt.c.trace_id))
        .where(lt.c.kind == TransferKind.TOPUP.value, orders.c.order_number.is_(None))
        .limit(LIMIT)
    )
    for st in stray:
        report.add("credit_without_credited_order", f"top-up transfer {st.id} names no order ({st.trace_id})")
    over = await conn.execute(
        select(
            orders.c.order_number, orders.c.amount_minor, func.sum(refunds.c.amount_minor).label("refunded")
        )
        .join(refunds, refunds.c.order_number == orders.c.order_number)
        .where(refunds.c.state != RefundState.FAILED.value)
        .group_by(orders.c.order_number, orders.c.amount_minor)
        .having(func.sum(refunds.c.amount_minor) > orders.c.amount_minor)
        .limit(LIMIT)
    )
    for ov in over:
        report.add(
            "order_over_refunded",
            f"order {ov.order_number}: {ov.refunded} minor units refunded of {ov.amount_minor} paid",
        )
    report.stats["orders"] = int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())


async def _refunds(conn: AsyncConnection, report: Report) -> None:
    hold, post, release = (
        _by_ref(TransferKind.REFUND_HOLD),
        _by_ref(TransferKind.REFUND),
        _by_ref(TransferKind.REFUND_RELEASE),
    )
    rows = await conn.execute(
        select(
            refunds.c.id,
            refunds.c.state,
            refunds.c.credits_nano,
            hold.c.n.label("holds"),
            hold.c.amount.label("held"),
            post.c.n.label("posts"),
            post.c.amount.label("posted"),
            release.c.n.label("releases"),
            release.c.amount.label("released"),
        ).select_from(
            refunds.outerjoin(hold, hold.c.trace_id == refunds.c.id)
            .outerjoin(post, post.c.trace_id == refunds.c.id)
            .outerjoin(release, release.c.trace_id == refunds.c.id)
        )
    )
    found = 0
    for r in rows:
        want_posts = 1 if r.state == RefundState.SUCCEEDED.value else 0
        want_releases = 1 if r.state == RefundState.FAILED.value else 0
        posts, releases = int(r.posts or 0), int(r.releases or 0)
        problem = None
        if int(r.holds or 0) != 1:
            problem = ("refund_hold_missing", f"refund {r.id} has {r.holds or 0} holds instead of 1")
        elif posts > want_posts or releases > want_releases or posts + releases > 1:
            problem = (
                "refund_posted_twice",
                f"refund {r.id} ({r.state}): {posts} postings, {releases} releases",
            )
        elif posts < want_posts or releases < want_releases:
            problem = ("refund_not_posted", f"refund {r.id} is {r.state} but its ledger side is missing")
        else:
            sizes = [int(v) for v in (r.held, r.posted, r.released) if v is not None]
            if any(v != int(r.credits_nano) for v in sizes):
                problem = (
                    "refund_amount_mismatch",
                    f"refund {r.id}: transfers {sizes}, refund {r.credits_nano}",
                )
        if problem is not None:
            found += 1
            if found <= LIMIT:
                report.add(*problem)
    report.stats["refunds"] = int(
        (await conn.execute(select(func.count()).select_from(refunds))).scalar_one()
    )


async def _codes(conn: AsyncConnection, report: Report) -> None:
    t = _by_ref(TransferKind.REDEMPTION)
    redeemed = redemption_codes.c.state == "redeemed"
    rows = await conn.execute(
        select(
            redemption_codes.c.id,
            redemption_codes.c.state,
            redemption_batches.c.value_nano,
            t.c.n,
            t.c.amount,
        )
        .select_from(
            redemption_codes.join(
                redemption_batches, redemption_batches.c.id == redemption_codes.c.batch_id
            ).outerjoin(t, t.c.trace_id == redemption_codes.c.id)
        )
        .where(
            (redeemed & (t.c.n.is_(None) | (t.c.n != 1) | (t.c.amount != redemption_batches.c.value_nano)))
            | (~redeemed & t.c.n.is_not(None))
        )
        .limit(LIMIT)
    )
    for r in rows:
        if r.n is None:
            report.add("code_not_credited", f"code {r.id} was redeemed without a transfer")
        elif r.state != "redeemed" or int(r.n) > 1:
            report.add("code_credited_twice", f"code {r.id} ({r.state}) has {r.n} redemption transfers")
        else:
            report.add("code_credit_mismatch", f"code {r.id} is worth {r.value_nano} nano, moved {r.amount}")
    redeemed_count = select(func.count()).select_from(redemption_codes).where(redeemed)
    report.stats["codes_redeemed"] = int((await conn.execute(redeemed_count)).scalar_one())
