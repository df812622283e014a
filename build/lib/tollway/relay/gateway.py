"""The data plane's shared state and the steps every call takes before it reaches upstream:
authenticate the key, resolve account and group, check the model and the IP."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import aiohttp

from tollway.accounts.model import Account, AccountStatus, ApiKey, Group, KeyStatus, hash_secret
from tollway.billing.biller import Biller, CallFacts
from tollway.catalog.cache import ConfigCache
from tollway.catalog.model import Channel
from tollway.errors import AuthenticationFailed, ModelNotFound, PermissionDenied, ServiceUnavailable
from tollway.limits.limiter import Limiter
from tollway.observability.metrics import Metrics
from tollway.pricing.model import PriceEntry
from tollway.relay.asgi import Scope, header
from tollway.routing.health import ChannelHealth
from tollway.settings import Settings


def new_trace_id() -> str:
    return "req_" + secrets.token_hex(12)


@dataclass(slots=True)
class Caller:
    """An authenticated key with its account and group."""

    key: ApiKey
    account: Account
    group: Group


@dataclass(slots=True)
class Call:
    """One admitted call: what it is, what it is priced by, where it may go."""

    trace_id: str
    caller: Caller
    facts: CallFacts
    entry: PriceEntry
    channels: list[Channel]
    sticky_key: str | None = None  # account and model, when the group routes sticky
    started: float = field(default_factory=time.monotonic)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # upstream attempts, for the record
    ttft_ms: int | None = None

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


@dataclass(slots=True)
class Gateway:
    settings: Settings
    config: ConfigCache
    biller: Biller
    limiter: Limiter
    http: aiohttp.ClientSession
    accepting: bool = True
    db_ok: bool = True  # the app's database watch: False while the database does not answer
    health: ChannelHealth = field(default_factory=ChannelHealth)
    metrics: Metrics | None = None

    def ready(self) -> None:
        if not self.accepting:
            raise ServiceUnavailable("Tollway is shutting down; retry on another node", retry_after_s=2)
        if not self.db_ok or not self.biller.writer.healthy:
            raise ServiceUnavailable(
                "billing storage is unavailable, so no call can be billed right now",
                retry_after_s=5,
            )

    async def authenticate(self, secret: str | None) -> Caller:
        if not secret:
            raise AuthenticationFailed(
                "no API key given: send it as 'Authorization: Bearer sk-...' "
                "(or 'x-api-key' for Anthropic clients, 'x-goog-api-key' for Gemini clients)"
            )
        key = await self.config.key_by_hash(hash_secret(secret))
        if key is None:
            raise AuthenticationFailed("the API key is not valid")
        if key.status is not KeyStatus.ENABLED:
            raise AuthenticationFailed(f"the API key {key.prefix}... is {key.status.value}")
        if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
            raise AuthenticationFailed(f"the API key {key.prefix}... expired on {key.expires_at.date()}")
        account = await self.config.account(key.account_id)
        if account is None:
            raise AuthenticationFailed("the API key's account no longer exists")
        if account.status is not AccountStatus.ACTIVE:
            raise PermissionDenied("this account is suspended; contact support")
        group = self.config.groups.get(key.group_name)
        if group is None:
            raise PermissionDenied(f"the key's group {key.group_name!r} no longer exists")
        return Caller(key, account, group)

    def open_call(
        self,
        trace_id: str,
        caller: Caller,
        model: str,
        *,
        endpoint: str,
        stream: bool,
        scope: Scope,
    ) -> Call:
        client_ip = scope["client"][0] if scope.get("client") else None
        if not caller.key.allows_ip(client_ip):
            raise PermissionDenied(f"this key may not be used from {client_ip}")
        now = datetime.now(UTC)
        entry = self.config.prices.lookup(model, now)
        if entry is None:
            raise ModelNotFound(f"the model {model!r} does not exist", param="model")
        group = caller.group
        if not group.allows(model) or not caller.key.allows_model(model):
            raise PermissionDenied(
                f"the model {model!r} is not available to this key (group {group.name!r}); "
                "GET /v1/models lists the models it may use",
                param="model",
            )
        channels = self.config.channels_for(model, group.name)
        if not channels:
            raise ModelNotFound(
                f"no upstream serves the model {model!r} for group {group.name!r}", param="model"
            )
        facts = CallFacts(
            trace_id=trace_id,
            owner_id=caller.account.id,
            key_id=caller.key.id,
            endpoint=endpoint,
            model_requested=model,
            model_billed=model,
            group_name=group.name,
            multiplier=group.multiplier,
            stream=stream,
            client_ip=client_ip,
            started_at=now,
        )
        sticky = f"{caller.account.id}/{model}" if group.sticky else None
        return Call(trace_id, caller, facts, entry, channels, sticky)


def bearer_secret(scope: Scope) -> str | None:
    raw = header(scope, b"authorization")
    if raw is not None:
        text = raw.decode("latin-1").strip()
        if text[:7].lower() == "bearer ":
            return text[7:].strip() or None
        return text or None
    for name in (b"x-api-key", b"api-key"):
        raw = header(scope, name)
        if raw:
            return raw.decode("latin-1").strip()
    return None


def goog_secret(scope: Scope) -> str | None:
    """The key on the Gemini surface: ``x-goog-api-key``, else ``?key=``, else a bearer token."""
    raw = header(scope, b"x-goog-api-key")
    if raw:
        return raw.decode("latin-1").strip()
    query: bytes = scope.get("query_string") or b""
    for pair in query.split(b"&"):
        if pair.startswith(b"key="):
            return unquote_to_bytes(pair[4:]).decode("latin-1").strip() or None
    return bearer_secret(scope)
