"""Order numbers, refund request numbers and redemption codes: random, quotable, unambiguous.

Order numbers are what a customer reads to support over the phone, so they use an alphabet
without look-alike characters (Crockford's base 32: no I, L, O, U) and carry the day they
were made: ``TW`` + ``YYMMDD`` + 10 random characters (50 bits). Only letters and digits, the
safe subset of every provider's ``out_trade_no`` rules.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_PREFIX = "TW"
REFUND_PREFIX = "TR"
CODE_GROUPS = 4  # redemption codes: 4 groups of 5 characters = 100 random bits
CODE_GROUP_LEN = 5

_ORDER_RE = re.compile(rf"^{ORDER_PREFIX}\d{{6}}[{ALPHABET}]{{10}}$")


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def new_order_number(now: datetime) -> str:
    return f"{ORDER_PREFIX}{now:%y%m%d}{_random(10)}"


def normalise_order_number(text: str) -> str:
    """Accept what people type: lower case, spaces and dashes."""
    return re.sub(r"[\s\-]", "", text).upper()


def looks_like_order_number(text: str) -> bool:
    return bool(_ORDER_RE.match(normalise_order_number(text)))


def new_refund_number(now: datetime) -> str:
    """A refund's ``out_request_no``: unique per refund, reused on every retry of it."""
    return f"{REFUND_PREFIX}{now:%y%m%d}{_random(12)}"


def new_code() -> str:
    groups = [_random(CODE_GROUP_LEN) for _ in range(CODE_GROUPS)]
    return "-".join(groups)


def normalise_code(text: str) -> str:
    """Codes are compared without case, spaces or dashes; O→0 and I/L→1 as people misread them."""
    cleaned = re.sub(r"[\s\-]", "", text).upper()
    return cleaned.translate(str.maketrans("OIL", "011"))


def code_hash(text: str) -> str:
    """Codes are looked up by this hash; the code itself is stored only encrypted."""
    return hashlib.sha256(normalise_code(text).encode("ascii", "replace")).hexdigest()


def code_hint(text: str) -> str:
    return normalise_code(text)[-4:]
