"""Top-up orders: quote, create (the provider's checkout), read, list.

Creating an order stores it first (``created``), then asks the provider for a checkout and
stores the result (``pending``), so a crash in between leaves a row that reconciliation
finds. The quote (price per credit, exchange rate, credits) is fixed when the order is made.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tollway.errors import InvalidRequest, NotFound, PermissionDenied
from tollway.money import nano_to_credits
from tollway.payments.amounts import currency_code, format_minor, price_text
from tollway.payments.context import PaymentsContext, log
from tollway.payments.db import orders as repo
from tollway.payments.db import refunds as refunds_repo
from tollway.payments.db.common import utcnow
from tollway.payments.errors import ProviderError
from tollway.payments.model import Order, OrderState
from tollway.payments.numbers import new_order_number, normalise_order_number
from tollway.payments.pricing import PricingService
from tollway.payments.views import order_json, refund_json
from tollway.store import config_repo

Json = dict[str, Any]


class OrderService:
    def __init__(self, ctx: PaymentsContext, actor: str) -> None:
        self.ctx = ctx
        self.actor = actor

    async def options(self) -> Json:
        """What a customer may choose before paying: currencies with live prices, providers."""
        registry = self.ctx.registry
        providers = []
        for name in registry.customer_providers():
            p = registry.get(name)
            takes = None if p.currencies is None else sorted(p.currencies)
            providers.append({"name": name, "methods": list(p.methods), "currencies": takes})
        prices = await PricingService(self.ctx, self.actor).list_json(enabled_only=True)
        return {"currencies": prices, "providers": providers}

    async def quote(self, currency: str, amount: str) -> Json:
        async with self.ctx.engine.connect() as conn:
            q = await PricingService(self.ctx, self.actor).quote(conn, currency, amount)
        return {
            "currency": q.currency,
            "amount": q.amount,
            "price_per_credit": price_text(q.price_per_credit),
            "fx_rate": None if q.fx_rate is None else price_text(q.fx_rate),
            "credits": nano_to_credits(q.credits_nano),
            "credits_nano": q.credits_nano,
        }

    async def create(
        self,
        account_id: str,
        *,
        provider: str,
        amount: str,
        currency: str,
        method: str | None = None,
        staff: bool = False,
    ) -> Json:
        impl = self.ctx.registry.get(provider)
        if provider == "manual" and not staff:
            raise PermissionDenied("manual orders are made by staff", param="provider")
        code = currency_code(currency)
        if impl.currencies is not None and code not in impl.currencies:
            raise InvalidRequest(
                f"{provider} takes {', '.join(sorted(impl.currencies))}, not {code}", param="currency"
            )
        chosen = method or impl.methods[0]
        if chosen not in impl.methods:
            raise InvalidRequest(f"{provider} methods are {', '.join(impl.methods)}", param="method")
        now = utcnow()
        number = new_order_number(now)
        async with self.ctx.engine.begin() as conn:
            account_id = _uuid(account_id)
            if await config_repo.get_account(conn, account_id) is None:
                raise NotFound(f"no account {account_id!r}", param="account_id")
            q = await PricingService(self.ctx, self.actor).quote(conn, code, amount)
            await repo.insert_order(
                conn,
                order_number=number,
                account_id=account_id,
                provider=provider,
                method=chosen,
                state=OrderState.CREATED.value,
                currency=code,
                amount_minor=q.amount_minor,
                price_per_credit=price_text(q.price_per_credit),
                fx_rate=None if q.fx_rate is None else price_text(q.fx_rate),
                credits_nano=q.credits_nano,
                created_by=self.actor,
                expires_at=now + timedelta(seconds=self.ctx.settings.order_ttl_s),
            )
            detail = {"amount": q.amount, "currency": code, "credits_nano": q.credits_nano}
            await repo.record_event(conn, number, "created", source="api", actor=self.actor, detail=detail)
            if staff:
                await config_repo.write_audit(
                    conn,
                    actor=self.actor,
                    action="order.create",
                    target=f"order:{number}",
                    after={"account_id": account_id, "provider": provider, **detail},
                )
            order = await repo.get_order(conn, number)
        assert order is not None
        try:
            checkout = await impl.create_checkout(order, self.ctx.urls(provider, number))
        except ProviderError as exc:
            async with self.ctx.engine.begin() as conn:
                await repo.transition(
                    conn, number, OrderState.FAILED, sources=[OrderState.CREATED], failure_reason=exc.message
                )
                await repo.record_event(
                    conn, number, "failed", source="provider", actor=self.actor, detail={"error": exc.message}
                )
            log.warning("order %s: checkout failed: %s", number, exc.message)
            raise
        async with self.ctx.engine.begin() as conn:
            await repo.transition(
                conn,
                number,
                OrderState.PENDING,
                sources=[OrderState.CREATED],
                pay_url=checkout.pay_url,
                qr_code=checkout.qr_code,
                provider_ref=checkout.provider_ref,
            )
            await repo.record_event(
                conn,
                number,
                "pending",
                source="provider",
                actor=self.actor,
                detail={"ref": checkout.provider_ref},
            )
        log.info("order %s: %s %s via %s", number, format_minor(q.amount_minor, code), code, provider)
        return await self.get(number)

    async def load(self, order_number: str, *, account_id: str | None = None) -> Order:
        async with self.ctx.engine.connect() as conn:
            order = await repo.get_order(conn, normalise_order_number(order_number), account_id=account_id)
        if order is None:
            raise NotFound(f"no order {order_number!r}", param="order_number")
        return order

    async def get(self, order_number: str, *, account_id: str | None = None) -> Json:
        return order_json(await self.load(order_number, account_id=account_id))

    async def show(self, order_number: str, *, account_id: str | None = None) -> Json:
        """The order with its history (every notification, refusal and state change) and refunds."""
        order = await self.load(order_number, account_id=account_id)
        async with self.ctx.engine.connect() as conn:
            events = await repo.list_events(conn, order.order_number)
            refunds = await refunds_repo.list_refunds(conn, order_number=order.order_number)
        return {**order_json(order), "events": events, "refunds": [refund_json(r) for r in refunds]}

    async def list_orders(
        self, *, account_id: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[Json]:
        try:
            states = None if state is None else [OrderState(state)]
        except ValueError as exc:
            names = ", ".join(s.value for s in OrderState)
            raise InvalidRequest(f"state must be one of {names}", param="state") from exc
        async with self.ctx.engine.connect() as conn:
            found = await repo.list_orders(conn, account_id=account_id, states=states, limit=limit)
        return [order_json(o) for o in found]


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise NotFound(f"no account {text!r}", param="account_id") from exc
