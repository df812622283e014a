"""Request bodies of the payment routes. Amounts are decimal strings: in the payment currency
for orders (``"10.00"``), in credits for vouchers, codes and refunds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tollway.api.schemas import Body, Credits, Expiry

Text = Field(min_length=1, max_length=500)


class OrderCreate(Body):
    provider: Literal["stripe", "alipay", "epay"]
    amount: str = Field(
        min_length=1, max_length=32, examples=["10.00"], description="In the payment currency."
    )
    currency: str = Field(min_length=3, max_length=3, examples=["USD", "CNY"])
    method: str | None = Field(
        None, max_length=16, description="alipay: page | qr; epay: alipay | wxpay | qqpay"
    )


class StaffOrderCreate(Body):
    provider: Literal["stripe", "alipay", "epay", "manual"]
    amount: str = Field(min_length=1, max_length=32, examples=["10.00"])
    currency: str = Field(min_length=3, max_length=3)
    method: str | None = Field(None, max_length=16)


class Reasoned(Body):
    reason: str = Text


class OptionalReason(Body):
    reason: str = Field("", max_length=500)


class Redeem(Body):
    code: str = Field(min_length=4, max_length=64, examples=["7K3M9-Q2XHD-..."])


class RefundAsk(Body):
    reason: str = Text
    amount: Credits | None = Field(None, description="Credits to refund; omit for all refundable cash.")


class StaffRefundAsk(RefundAsk):
    account_id: str = Field(min_length=1, max_length=36)


class RefundResolve(Body):
    outcome: Literal["succeeded", "failed"]
    reason: str = Text


class VoucherGrant(Body):
    amount: Credits
    expires: Expiry
    reason: str = Text
    order_number: str | None = Field(None, max_length=32)
    trace_id: str | None = Field(None, max_length=64)


class CodeBatchCreate(Body):
    count: int = Field(ge=1, le=10_000)
    value: Credits
    kind: Literal["cash", "voucher"]
    expires: Expiry | None = None
    label: str = Field("", max_length=128)


class CodeRevoke(Body):
    code: str | None = Field(None, max_length=64)
    batch_id: str | None = Field(None, max_length=36)
    reason: str = Field("", max_length=500)


class PriceSet(Body):
    price_per_credit: str | None = Field(None, max_length=40, description="Fixed price of one credit.")
    fx_rate: str | None = Field(None, max_length=40, description="Currency units per USD (FX mode).")
    margin: str | None = Field(None, max_length=40, description="FX mode: 0.05 = 5% above the rate.")
    min_amount: str | None = Field(None, max_length=32)
    presets: list[str] | None = Field(None, max_length=20)
    enabled: bool | None = None
    reason: str = Field("", max_length=500)
