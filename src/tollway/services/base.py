"""What the operator services share: the engine, the credential box, the acting staff member."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.errors import InvalidRequest
from tollway.store.secret_box import SecretBox

Json = dict[str, Any]


class ServiceBase:
    def __init__(self, engine: AsyncEngine, box: SecretBox, actor: str = "admin") -> None:
        self.engine = engine
        self.box = box
        self.actor = actor


def split_list(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


MAX_LIMIT = 2**63 - 1  # the limit columns are BIGINT (migration 0010)


def check_limit(value: int | None, name: str) -> int | None:
    if value is not None and value < 0:
        raise InvalidRequest(f"{name} must be zero or more", param=name)
    if value is not None and value > MAX_LIMIT:
        raise InvalidRequest(f"{name} must be at most {MAX_LIMIT:,}", param=name)
    return value
