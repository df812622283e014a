"""Operator prices per payment currency, the quote shown before paying, and FX refreshes."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.errors import InvalidRequest, UpstreamError
from tollway.money import MoneyFormatError, parse_decimal
from tollway.payments.amounts import Quote, currency_code, format_minor, parse_amount, parse_price, price_text
from tollway.payments.context import PaymentsContext, log
from tollway.payments.db.common import utcnow
from tollway.payments.prices import DEFAULT_PRICES, CurrencyPrice, rates_from_document
from tollway.store import config_repo
from tollway.store.tables import payment_currencies as pc

Json = dict[str, Any]


def _price_from_row(row: Row[Any]) -> CurrencyPrice:
    return CurrencyPrice(
        currency=row.currency,
        mode=row.mode,
        price_per_credit=None if row.price_per_credit is None else Decimal(row.price_per_credit),
        fx_rate=None if row.fx_rate is None else Decimal(row.fx_rate),
        margin=Decimal(row.margin),
        fx_source=row.fx_source,
        fx_updated_at=row.fx_updated_at,
        min_minor=parse_amount(row.min_amount, row.currency, param="min_amount"),
        presets=tuple(parse_amount(p, row.currency, param="presets") for p in json.loads(row.presets)),
        enabled=bool(row.enabled),
    )


def _row_values(p: CurrencyPrice) -> Json:
    return {
        "mode": p.mode,
        "price_per_credit": None if p.price_per_credit is None else price_text(p.price_per_credit),
        "fx_rate": None if p.fx_rate is None else price_text(p.fx_rate),
        "margin": price_text(p.margin),
        "fx_source": p.fx_source,
        "fx_updated_at": p.fx_updated_at,
        "min_amount": format_minor(p.min_minor, p.currency),
        "presets": json.dumps([format_minor(m, p.currency) for m in p.presets]),
        "enabled": p.enabled,
    }


class PricingService:
    def __init__(self, ctx: PaymentsContext, actor: str) -> None:
        self.ctx = ctx
        self.actor = actor

    def max_age(self) -> timedelta:
        return timedelta(seconds=3 * self.ctx.settings.fx_refresh_interval_s)

    async def get(self, conn: AsyncConnection, currency: str) -> CurrencyPrice:
        code = currency_code(currency)
        row = (await conn.execute(select(pc).where(pc.c.currency == code))).first()
        if row is not None:
            return _price_from_row(row)
        if code in DEFAULT_PRICES:
            return DEFAULT_PRICES[code]
        raise InvalidRequest(
            f"payments in {code} are not set up; an operator sets a price with "
            f"`tollway payments price set {code}`",
            param="currency",
        )

    async def all(self, conn: AsyncConnection) -> list[CurrencyPrice]:
        stored = {
            r.currency: _price_from_row(r) for r in await conn.execute(select(pc).order_by(pc.c.currency))
        }
        merged = {**DEFAULT_PRICES, **stored}
        return [merged[c] for c in sorted(merged)]

    async def quote(self, conn: AsyncConnection, currency: str, amount: str) -> Quote:
        price = await self.get(conn, currency)
        minor = parse_amount(amount, price.currency)
        return price.quote(minor, now=utcnow(), max_age=self.max_age())

    async def list_json(self, *, enabled_only: bool = False) -> list[Json]:
        async with self.ctx.engine.connect() as conn:
            prices = await self.all(conn)
        now = utcnow()
        docs = [p.to_json(now=now, max_age=self.max_age()) for p in prices]
        if enabled_only:  # what customers may buy now: enabled, with a price
            docs = [d for d in docs if d["enabled"] and d["price_per_credit"] is not None]
        return docs

    async def set_price(
        self,
        currency: str,
        *,
        price_per_credit: str | None = None,
        fx_rate: str | None = None,
        margin: str | None = None,
        min_amount: str | None = None,
        presets: list[str] | None = None,
        enabled: bool | None = None,
        reason: str = "",
    ) -> Json:
        """Fixed price (``price_per_credit``) or FX mode (``fx_rate`` and/or ``margin``); other
        fields keep their value. Audited with before and after."""
        code = currency_code(currency)
        if price_per_credit is not None and (fx_rate is not None or margin is not None):
            raise InvalidRequest(
                "give a fixed price per credit, or an FX rate / margin, not both", param="mode"
            )
        async with self.ctx.engine.begin() as conn:
            try:
                current: CurrencyPrice | None = await self.get(conn, code)
            except InvalidRequest:
                current = None
            base = current or CurrencyPrice(code, "fx")
            mode = base.mode
            if price_per_credit is not None:
                mode = "fixed"
            elif fx_rate is not None or margin is not None:
                mode = "fx"
            new_margin = base.margin if margin is None else parse_decimal_field(margin, "margin")
            if new_margin <= -1:
                raise InvalidRequest("margin must be above -1", param="margin")
            updated = CurrencyPrice(
                currency=code,
                mode=mode,
                price_per_credit=parse_price(price_per_credit)
                if price_per_credit is not None
                else base.price_per_credit,
                fx_rate=parse_price(fx_rate, param="fx_rate") if fx_rate is not None else base.fx_rate,
                margin=new_margin,
                fx_source="operator" if fx_rate is not None else base.fx_source,
                fx_updated_at=utcnow() if fx_rate is not None else base.fx_updated_at,
                min_minor=parse_amount(min_amount, code, param="min_amount")
                if min_amount
                else base.min_minor,
                presets=tuple(parse_amount(p, code, param="presets") for p in presets)
                if presets is not None
                else base.presets,
                enabled=base.enabled if enabled is None else enabled,
            )
            if updated.mode == "fixed":
                updated.price(now=utcnow())  # FX mode may wait for its first rate from the source
            await self._store(
                conn, updated, exists=current is not None and current is not DEFAULT_PRICES.get(code)
            )
            now = utcnow()
            after = updated.to_json(now=now)
            await config_repo.write_audit(
                conn,
                actor=self.actor,
                action="payments.price",
                target=f"currency:{code}",
                reason=reason,
                before=None if current is None else current.to_json(now=now),
                after=after,
            )
        return after

    async def _store(self, conn: AsyncConnection, price: CurrencyPrice, *, exists: bool) -> None:
        values = {**_row_values(price), "updated_by": self.actor, "updated_at": utcnow()}
        if exists:
            await conn.execute(pc.update().where(pc.c.currency == price.currency).values(**values))
        else:
            await conn.execute(pc.insert().values(currency=price.currency, **values))

    async def refresh_fx(self, url: str | None = None) -> Json:
        """Fetch rates from ``url`` (default ``TOLLWAY_FX_URL``) into every FX-mode currency."""
        url = url or self.ctx.settings.fx_url
        if not url:
            raise InvalidRequest("no FX source: set TOLLWAY_FX_URL", param="fx_url")
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
                http.get(url) as resp,
            ):
                if resp.status != 200:
                    raise UpstreamError(f"FX source answered HTTP {resp.status}")
                text = await resp.text()
            doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise UpstreamError(f"FX source {url} failed: {exc}") from exc
        rates = rates_from_document(doc)
        updated: dict[str, str] = {}
        async with self.ctx.engine.begin() as conn:
            rows = (await conn.execute(select(pc).where(pc.c.mode == "fx"))).all()
            for row in rows:
                rate = rates.get(row.currency)
                if rate is None:
                    continue
                await conn.execute(
                    pc.update()
                    .where(pc.c.currency == row.currency)
                    .values(
                        fx_rate=price_text(rate), fx_source="url", fx_updated_at=utcnow(), updated_at=utcnow()
                    )
                )
                if row.fx_rate != price_text(rate):
                    await config_repo.write_audit(
                        conn,
                        actor=self.actor,
                        action="payments.fx",
                        target=f"currency:{row.currency}",
                        reason=f"refreshed from {url}",
                        before={"fx_rate": row.fx_rate},
                        after={"fx_rate": price_text(rate)},
                    )
                updated[row.currency] = price_text(rate)
        log.info("FX rates refreshed from %s: %s", url, updated)
        return {"source": url, "updated": updated, "at": utcnow().isoformat()}


def parse_decimal_field(text: str, param: str) -> Decimal:
    try:
        return parse_decimal(text, field=param)
    except MoneyFormatError as exc:
        raise InvalidRequest(str(exc), param=param) from exc
