"""The EPay protocol as pure functions: signing, verification, the submit URL.

Signature: drop ``sign``, ``sign_type`` and empty values; sort the keys (ASCII ascending);
join ``k=v`` with ``&`` without URL-encoding; ``sign = lower_hex(MD5(joined + merchant_key))``.
Verification compares in constant time (the reference Go client uses ``==``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

SIGN_EXCLUDED = frozenset({"sign", "sign_type"})
PAID_STATUS = "TRADE_SUCCESS"


def signing_string(params: Mapping[str, str]) -> str:
    items = sorted((k, v) for k, v in params.items() if k not in SIGN_EXCLUDED and v != "")
    return "&".join(f"{k}={v}" for k, v in items)


def sign(params: Mapping[str, str], key: str) -> str:
    return hashlib.md5((signing_string(params) + key).encode("utf-8")).hexdigest()


def verify(params: Mapping[str, str], key: str) -> bool:
    given = params.get("sign", "")
    if not given or not key:
        return False
    return hmac.compare_digest(sign(params, key).encode(), given.strip().lower().encode())


def signed(params: Mapping[str, str], key: str) -> dict[str, str]:
    out = {k: v for k, v in params.items() if v != ""}
    out["sign"] = sign(out, key)
    out["sign_type"] = "MD5"
    return out


def submit_params(
    *,
    pid: str,
    key: str,
    pay_type: str,
    out_trade_no: str,
    notify_url: str,
    return_url: str,
    name: str,
    money: str,
    device: str = "pc",
) -> dict[str, str]:
    return signed(
        {
            "pid": pid,
            "type": pay_type,
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "return_url": return_url,
            "name": name,
            "money": money,
            "device": device,
        },
        key,
    )


def submit_url(base_url: str, params: Mapping[str, str]) -> str:
    """The page the customer is sent to (``submit.php`` accepts GET as well as a POSTed form)."""
    return f"{base_url.rstrip('/')}/submit.php?{urlencode(params)}"
