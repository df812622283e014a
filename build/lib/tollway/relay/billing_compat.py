"""The balance endpoints chat clients (NextChat, LobeChat, one-api dashboards) read with a key.

They compute "remaining = hard_limit_usd - total_usage / 100", so Tollway reports the key's
spend so far as usage and (available balance + that spend) as the hard limit: the difference
is exactly what the key can still spend. The numbers are JSON numbers (the clients expect
them) written from exact decimal text, never through a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tollway.money import NANO_PER_CREDIT
from tollway.relay.asgi import JSON_CT, Scope, Send, send_bytes
from tollway.relay.gateway import Gateway, bearer_secret


async def _available_and_spent(gw: Gateway, scope: Scope) -> tuple[int, int]:
    caller = await gw.authenticate(bearer_secret(scope))
    wallets = gw.biller.wallets
    wallet = await wallets.get(caller.account.id)
    available = wallet.available_nano(datetime.now(UTC))
    spent = await wallets.key_spent(caller.key.id)
    if caller.key.spend_cap_nano is not None:
        available = min(available, caller.key.spend_cap_nano - spent)
    return available, spent


async def subscription(gw: Gateway, trace_id: str, scope: Scope, send: Send) -> None:
    available, spent = await _available_and_spent(gw, scope)
    limit = json_number(available + spent, 1)
    body = (
        b'{"object":"billing_subscription","has_payment_method":true,"soft_limit_usd":'
        + limit
        + b',"hard_limit_usd":'
        + limit
        + b',"system_hard_limit_usd":'
        + limit
        + b',"access_until":0,"available_nano":'
        + str(available).encode()
        + b',"spent_nano":'
        + str(spent).encode()
        + b"}"
    )
    await send_bytes(send, 200, body, [JSON_CT, (b"x-request-id", trace_id.encode())])


async def usage(gw: Gateway, trace_id: str, scope: Scope, send: Send) -> None:
    _available, spent = await _available_and_spent(gw, scope)
    body = b'{"object":"list","total_usage":' + json_number(spent, 100) + b"}"
    await send_bytes(send, 200, body, [JSON_CT, (b"x-request-id", trace_id.encode())])


def json_number(nano: int, scale: int) -> bytes:
    """``nano`` credits x ``scale`` as an exact JSON number (scale 100 gives cents)."""
    value = Decimal(nano * scale) / NANO_PER_CREDIT
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return (text if text not in ("", "-", "-0") else "0").encode()
