"""Request bodies of the control API.

Money is a decimal string (``"10.5"``), never a JSON number: a float cannot carry an exact
amount, so ``10.5`` (the number) is refused with 422. Expiries are ISO-8601 datetimes, or
``YYYY-MM-DD`` for the end of that day in UTC. Unknown fields are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from tollway.cli.dates import parse_expiry
from tollway.errors import InvalidRequest
from tollway.money import MoneyFormatError, Ratio, credits_to_nano, usd_per_mtok_to_nano


def _multiplier(value: str) -> str:
    try:
        Ratio.parse(value)
    except MoneyFormatError as exc:
        raise ValueError(str(exc).removeprefix("multiplier: ")) from exc
    return value.strip()


def _credits(value: str) -> str:
    try:
        nano = credits_to_nano(value)
    except MoneyFormatError as exc:
        raise ValueError(str(exc).removeprefix("amount: ")) from exc
    if nano <= 0:
        raise ValueError("must be positive")
    return value.strip()


def _usd(value: str) -> str:
    try:
        usd_per_mtok_to_nano(value)
    except MoneyFormatError as exc:
        raise ValueError(str(exc).removeprefix("price: ")) from exc
    return value.strip()


def _expiry(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_expiry(value)
        except InvalidRequest as exc:
            raise ValueError(exc.message.removeprefix("expires: ")) from exc
    return value


def _names(values: list[str]) -> list[str]:
    out = [v.strip() for v in values]
    for v in out:
        if not v or "," in v:
            raise ValueError(f"{v!r} is not a name (empty, or contains a comma)")
    return out


Multiplier = Annotated[
    str,
    AfterValidator(_multiplier),
    Field(description="Exact non-negative decimal string.", examples=["0.3"]),
]
Credits = Annotated[
    str,
    AfterValidator(_credits),
    Field(description="Credits as a positive decimal string.", examples=["10.5"]),
]
Usd = Annotated[
    str,
    AfterValidator(_usd),
    Field(description="USD per million tokens (or per call), decimal string.", examples=["2.5"]),
]
Expiry = Annotated[
    datetime,
    BeforeValidator(_expiry),
    Field(description="ISO-8601 datetime, or YYYY-MM-DD = 23:59:59 UTC that day."),
]
Names = Annotated[list[str], AfterValidator(_names)]
Limit = Annotated[int, Field(ge=0, le=2**63 - 1, description="0 = unlimited.")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupPatch(Body):
    multiplier: Multiplier | None = None
    models: Names | None = Field(None, description="Allowed models; empty = every priced one.")
    rpm: Limit | None = None
    tpm: Limit | None = None
    concurrency: Limit | None = None
    total_concurrency: Limit | None = None
    label: str | None = Field(None, max_length=64)
    visible: bool | None = Field(None, description="Shown to customers (key creation, prices).")
    sticky: bool | None = Field(
        None, description="Sticky routing: an account's calls for a model keep to one channel."
    )
    reason: str = ""


class GroupCreate(GroupPatch):
    name: str = Field(min_length=1, max_length=64)
    multiplier: Multiplier  # required on create


class ModelPrice(Body):
    input: Usd | None = None
    output: Usd | None = None
    cache_write_5m: Usd | None = None
    cache_write_1h: Usd | None = None
    cache_read: Usd | None = None
    per_call: Usd | None = None
    provider: str | None = Field(None, max_length=64)
    context_window: int | None = Field(None, ge=1)
    max_output_tokens: int | None = Field(None, ge=1)
    reason: str = ""


ChannelKind = Literal["openai", "anthropic", "gemini"]


class ChannelPatch(Body):
    type: ChannelKind | None = None
    base_url: str | None = Field(None, examples=["https://api.openai.com/v1"])
    api_key: str | None = Field(None, min_length=1, description="Write-only; never returned.")
    models: Names | None = None
    groups: Names | None = Field(None, description="Groups served; empty = every group.")
    priority: int | None = None
    weight: int | None = Field(None, ge=1)
    model_map: dict[str, str] | None = Field(None, examples=[{"gpt-4o": "gpt-4o-2024-11-20"}])
    enabled: bool | None = None
    connect_timeout: float | None = Field(None, ge=0, description="Seconds; 0 = the global setting.")
    first_byte_timeout: float | None = Field(None, ge=0, description="Seconds; 0 = the global setting.")
    idle_timeout: float | None = Field(None, ge=0, description="Seconds; 0 = the global setting.")


class ChannelCreate(ChannelPatch):
    name: str = Field(min_length=1, max_length=128)
    type: ChannelKind
    base_url: str
    api_key: str = Field(min_length=1, description="Write-only; never returned.")
    models: Names = Field(min_length=1)


class AccountCreate(Body):
    email: str = Field(min_length=3, max_length=320)
    password: str | None = Field(None, min_length=8, max_length=1024)
    role: Literal["customer", "support", "admin"] = "customer"


class StatusChange(Body):
    reason: str = ""


class MyKeyCreate(Body):
    name: str = Field(min_length=1, max_length=128)
    group: str = Field(min_length=1, max_length=64)
    expires: Expiry | None = None
    models: Names | None = None
    spend_cap: Credits | None = Field(None, description="Total credits this key may spend.")
    ip_allow: Names | None = Field(None, description="CIDRs allowed to call; empty = any.")


class KeyRename(Body):
    name: str = Field(min_length=1, max_length=128)


class KeyCreate(MyKeyCreate):
    rpm: Limit | None = None
    tpm: Limit | None = None
    concurrency: Limit | None = None


class CreditCreate(Body):
    amount: Credits
    kind: Literal["cash", "voucher"]
    reason: str = Field(min_length=1, max_length=500)
    expires: Expiry | None = Field(None, description="Voucher expiry (vouchers only).")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=120, description="The same key credits only once."
    )


class Login(Body):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(
        default=None,
        max_length=16,
        description="The current 6-digit two-factor code; required when the account has two-factor on.",
    )


def joined(values: list[str] | None) -> str | None:
    """The services take lists as comma-separated text, as the CLI does."""
    return None if values is None else ",".join(values)


def map_text(mapping: dict[str, str] | None) -> str | None:
    if mapping is None:
        return None
    for src, dst in mapping.items():
        if not src.strip() or not dst.strip() or any(c in src + dst for c in ",="):
            raise InvalidRequest(
                f"model_map: {src!r} -> {dst!r} must be names without ',' or '='",
                param="model_map",
            )
    return ",".join(f"{src.strip()}={dst.strip()}" for src, dst in mapping.items())
