"""Pure conversions from new-api / one-api values to Tollway's: quota to nano-credits, ratio
JSON to exact decimals, stable ids, names and e-mail addresses. Integer and Decimal only."""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tollway.money import NANO_PER_CREDIT, MoneyFormatError, parse_decimal

ID_NAMESPACE = uuid.UUID("7f8f0a39-3c55-4d4f-9a57-2c1f1a8d6b10")  # Tollway imports, fixed forever
MAX_KEY_NAME = 128
MAX_CHANNEL_NAME = 128
MAX_GROUP_NAME = 64
MAX_QUOTA_PER_UNIT = 10**15
PLACEHOLDER_DOMAIN = "import.invalid"  # RFC 2606: can never be a real mailbox


@dataclass(frozen=True, slots=True)
class QuotaUnit:
    """Quota per credit (their ``QuotaPerUnit``) as an exact ratio ``num / den``."""

    num: int
    den: int

    @classmethod
    def parse(cls, text: str | None, default: int) -> QuotaUnit:
        value = parse_decimal(text, field="QuotaPerUnit") if text and text.strip() else Decimal(default)
        if value <= 0:
            raise MoneyFormatError("QuotaPerUnit must be positive")
        if value > MAX_QUOTA_PER_UNIT or value != value.quantize(Decimal("1e-9")):
            raise MoneyFormatError(f"QuotaPerUnit {text!r} is out of range (at most 1e15, 9 decimals)")
        num, den = value.as_integer_ratio()
        return cls(num, den)

    def __str__(self) -> str:
        return str(self.num) if self.den == 1 else f"{self.num}/{self.den}"


@dataclass(frozen=True, slots=True)
class Converted:
    """``nano`` credits for a quota, rounded down once; ``remainder`` is the part of a
    nano-credit dropped, as the exact fraction ``remainder_num / remainder_den``."""

    nano: int
    remainder_num: int
    remainder_den: int

    @property
    def remainder(self) -> str:
        return "0" if self.remainder_num == 0 else f"{self.remainder_num}/{self.remainder_den}"


def quota_to_nano(quota: int, unit: QuotaUnit) -> Converted:
    """``quota / QuotaPerUnit`` credits in nano-credits, rounded down (never credit more than
    the source held). With the default 500,000 every quota is exactly 2,000 nano-credits."""
    if quota < 0:
        raise ValueError("quota_to_nano takes a non-negative quota")
    numerator = quota * NANO_PER_CREDIT * unit.den
    nano, rest = divmod(numerator, unit.num)
    return Converted(nano, rest, unit.num)


def stable_id(source: str, kind: str, source_id: int | str) -> str:
    """The Tollway id of an imported object: the same on every run of the same source."""
    return str(uuid.uuid5(ID_NAMESPACE, f"import:{source}:{kind}:{source_id}"))


def import_key(source: str, kind: str, source_id: int | str) -> str:
    """Idempotency key and memo of what an import posts: ``import:new-api:user:42``."""
    return f"import:{source}:{kind}:{source_id}"


def parse_decimal_map(text: str | None, *, option: str) -> dict[str, Decimal]:
    """A ratio option (``{"gpt-4o": 1.25, ...}``) with every number read as an exact Decimal."""
    if not text or not text.strip():
        return {}
    try:
        doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise MoneyFormatError(f"option {option} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MoneyFormatError(f"option {option} is not a JSON object")
    out: dict[str, Decimal] = {}
    for name, value in doc.items():
        if isinstance(value, bool) or not isinstance(value, Decimal | str):
            raise MoneyFormatError(f"option {option}: {name!r} is not a number")
        out[str(name)] = parse_decimal(value, field=f"{option}.{name}")
    return out


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros ("0.075", "2")."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def split_csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def split_lines(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\r", "").split("\n") if p.strip()]


def unix_time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def allow_list(text: str) -> tuple[list[str], list[str]]:
    """new-api's ``allow_ips`` (one per line; commas and spaces are stripped, as new-api
    does) as CIDR strings, and the entries that are not an address or network."""
    good: list[str] = []
    bad: list[str] = []
    for line in split_lines(text.replace(",", "\n")):
        item = line.replace(" ", "")
        try:
            good.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            bad.append(item)
    return good, bad


def account_email(email: str, source: str, user_id: int, taken: set[str]) -> tuple[str, bool]:
    """Their e-mail (lower-cased) when it is usable and not taken, else a placeholder that can
    never receive mail. Returns (address, is_placeholder); adds the address to ``taken``."""
    candidate = email.strip().lower()
    ok = "@" in candidate and len(candidate) <= 320 and " " not in candidate and candidate not in taken
    address = candidate if ok else f"{source}-user-{user_id}@{PLACEHOLDER_DOMAIN}"
    taken.add(address)
    return address, not ok


def unique_name(name: str, fallback: str, suffix: str, taken: set[str], limit: int) -> str:
    """``name`` (or ``fallback`` when empty), with `` suffix`` when already taken."""
    base = clip(name.strip() or fallback, limit)
    candidate = base
    if candidate in taken:
        candidate = clip(base, limit - len(suffix) - 1) + " " + suffix
    taken.add(candidate)
    return candidate
