"""Accounts, API keys and groups: the domain objects the data plane caches."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from tollway.money import Ratio


class Role(StrEnum):
    CUSTOMER = "customer"
    SUPPORT = "support"
    ADMIN = "admin"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class KeyStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    REVOKED = "revoked"
    DELETED = "deleted"  # revoked and hidden from the key list; its usage records keep the id


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests per minute, tokens per minute, concurrent requests; ``None`` = unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    multiplier: Ratio
    models: frozenset[str]  # empty = every priced model
    account_limits: Limits  # defaults for each account whose key uses this group
    total_concurrency: int | None = None
    label: str = ""
    visible: bool = True
    # Sticky routing: each account's calls for a model keep to one channel while it is healthy,
    # so the upstream's prompt cache keeps hitting (routing/sticky.py).
    sticky: bool = False

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    role: Role
    status: AccountStatus
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    account_id: str
    name: str
    prefix: str
    group_name: str
    status: KeyStatus
    expires_at: datetime | None
    spend_cap_nano: int | None
    models: frozenset[str]
    ip_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    limits: Limits = field(default_factory=Limits)

    def allows_model(self, model: str) -> bool:
        return not self.models or model in self.models

    def allows_ip(self, ip: str | None) -> bool:
        if not self.ip_allow:
            return True
        if ip is None:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.ip_allow)


KEY_PREFIX = "sk-"


def new_secret() -> str:
    """An ``sk-`` secret with 256 bits of entropy."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret. Keys are random 256-bit strings, so a fast hash is safe here
    (argon2 is for low-entropy passwords) and keeps authentication off the hot path's budget."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:7]


def parse_networks(items: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())
