"""Provider notifications and return pages, turned into order (or refund) updates.

A notification is verified by its provider (signature over the raw bytes, freshness,
merchant id) and then applied exactly once by :class:`Crediting`. A return page never trusts
its query string: it asks the provider about the order, as reconciliation does.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tollway.errors import NotFound
from tollway.payments.context import PaymentsContext
from tollway.payments.crediting import Crediting, Outcome
from tollway.payments.db import orders as orders_repo
from tollway.payments.db import refunds as refunds_repo
from tollway.payments.errors import NotificationRefused, ProviderError
from tollway.payments.model import CREDITED_STATES
from tollway.payments.numbers import normalise_order_number
from tollway.payments.provider import IncomingRequest, PaymentState
from tollway.payments.refunds import RefundService
from tollway.payments.views import order_json

Json = dict[str, Any]


class NotifyService:
    def __init__(self, ctx: PaymentsContext) -> None:
        self.ctx = ctx

    async def handle(self, provider_name: str, request: IncomingRequest) -> str:
        """Verify and apply one notification; returns what happened (raises NotificationRefused)."""
        provider = self.ctx.registry.get(provider_name)
        actor = f"{provider_name}:webhook"
        crediting = Crediting(self.ctx, actor)
        try:
            note = provider.parse_notification(request)
        except NotificationRefused as exc:
            await crediting.refuse(exc.order_number, provider_name, exc.message, source="webhook")
            raise
        if note.payment is not None:
            outcome = await crediting.apply(
                provider_name, note.payment, source="webhook", dedupe=(note.dedupe_key, note.kind)
            )
            return outcome.value
        async with self.ctx.engine.begin() as conn:
            fresh = await orders_repo.claim_notification(
                conn, provider_name, note.dedupe_key, order_number=None, kind=note.kind
            )
            refund = None
            if note.refund is not None:
                refund = await refunds_repo.refund_by_request_no(conn, note.refund.out_request_no)
        if not fresh:
            return Outcome.DUPLICATE.value
        if note.refund is None or refund is None:
            return "ignored"
        state = await RefundService(self.ctx, actor).apply(refund, note.refund)
        return f"refund_{state.value}"

    async def confirm(
        self, order_number: str, *, source: str = "return", account_id: str | None = None
    ) -> Json:
        """Ask the provider about one order now and apply the answer (return page, "refresh")."""
        number = normalise_order_number(order_number)
        async with self.ctx.engine.connect() as conn:
            order = await orders_repo.get_order(conn, number, account_id=account_id)
        if order is None:
            raise NotFound(f"no order {order_number!r}", param="order_number")
        if order.state not in CREDITED_STATES:
            provider = self.ctx.registry.get(order.provider)
            try:
                report = await provider.query(order)
            except ProviderError:
                report = None  # the provider is down; the notification or reconciliation will do it
            if report is not None and report.state is not PaymentState.UNKNOWN:
                with contextlib.suppress(NotificationRefused):  # recorded on the order for staff
                    await Crediting(self.ctx, f"{order.provider}:{source}").apply(
                        order.provider, report, source=source
                    )
            async with self.ctx.engine.connect() as conn:
                order = await orders_repo.get_order(conn, number)
            assert order is not None
        return order_json(order)
