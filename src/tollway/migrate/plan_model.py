"""The import plan: one entry per thing found in the source, with what the import does about
it (``create``, ``update``, ``exists`` = already imported, ``skip`` = left out, with why).
A dry run prints the plan; a real run carries out its ``create`` and ``update`` entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tollway.migrate.prices import ModelPriceRow
from tollway.migrate.reader import SourceTopUp

CREATE, UPDATE, EXISTS, SKIP = "create", "update", "exists", "skip"
CHANGES = (CREATE, UPDATE)


@dataclass(slots=True)
class Step:
    kind: str  # group | account | balance | key | channel | price | code
    source_id: str
    label: str
    action: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source_id": self.source_id,
            "label": self.label,
            "action": self.action,
            "reason": self.reason,
            "notes": list(self.notes),
            **self.detail(),
        }

    def detail(self) -> dict[str, Any]:
        return {}


@dataclass(slots=True)
class GroupStep(Step):
    multiplier: str = "1"
    before: str | None = None

    def detail(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "before": self.before}


@dataclass(slots=True)
class AccountStep(Step):
    account_id: str = ""
    email: str = ""
    status: str = "active"
    username: str = ""
    display_name: str = ""

    def detail(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "email": self.email, "status": self.status}


@dataclass(slots=True)
class BalanceStep(Step):
    account_id: str = ""
    quota: int = 0
    nano: int = 0
    remainder: str = "0"  # the part of a nano-credit dropped by rounding down
    idempotency_key: str = ""

    def detail(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "quota": self.quota,
            "amount_nano": self.nano,
            "remainder_nano": self.remainder,
            "idempotency_key": self.idempotency_key,
        }


@dataclass(slots=True)
class KeyStep(Step):
    key_id: str = ""
    account_id: str = ""
    secret: str = ""
    name: str = ""
    group: str = ""
    status: str = "enabled"
    expires: datetime | None = None
    spend_cap: str | None = None  # credits; None = unlimited
    models: list[str] = field(default_factory=list)
    ip_allow: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "account_id": self.account_id,
            "prefix": self.secret[:7],
            "group": self.group,
            "status": self.status,
            "expires_at": self.expires.isoformat() if self.expires else None,
            "spend_cap": self.spend_cap,
            "models": self.models,
            "ip_allow": self.ip_allow,
        }


@dataclass(slots=True)
class ChannelStep(Step):
    channel_id: str = ""
    name: str = ""
    type: str = ""
    base_url: str = ""
    credentials: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    model_map: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    enabled: bool = True

    def detail(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "name": self.name,
            "type": self.type,
            "base_url": self.base_url,
            "credentials": len(self.credentials),
            "models": self.models,
            "groups": self.groups,
            "model_map": self.model_map,
            "priority": self.priority,
            "weight": self.weight,
            "enabled": self.enabled,
        }


@dataclass(slots=True)
class PriceStep(Step):
    price: ModelPriceRow | None = None

    def detail(self) -> dict[str, Any]:
        assert self.price is not None
        p = self.price
        return {
            "model": p.model,
            "theirs_usd": p.theirs.usd(),
            "tollway_usd": p.tollway.usd() if p.tollway else None,
            "difference_usd": p.difference_usd(),
            "differs": p.differs,
        }


@dataclass(slots=True)
class CodeStep(Step):
    code_id: str = ""
    code: str = ""
    code_hash: str = ""
    batch_id: str = ""
    batch_label: str = ""
    value_nano: int = 0
    remainder: str = "0"
    expires: datetime | None = None

    def detail(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "hint": self.code[-4:],
            "value_nano": self.value_nano,
            "remainder_nano": self.remainder,
            "expires_at": self.expires.isoformat() if self.expires else None,
        }


@dataclass(slots=True)
class Plan:
    source: str  # new-api | one-api
    quota_per_unit: str
    steps: list[Step] = field(default_factory=list)
    topups: list[SourceTopUp] = field(default_factory=list)
    log_count: int = 0
    warnings: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Step]:
        return [s for s in self.steps if s.kind == kind]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.steps:
            bucket = out.setdefault(s.kind, {CREATE: 0, UPDATE: 0, EXISTS: 0, SKIP: 0})
            bucket[s.action] = bucket.get(s.action, 0) + 1
        return out

    def changes(self) -> int:
        return sum(1 for s in self.steps if s.action in CHANGES)
