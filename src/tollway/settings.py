"""Settings from ``TOLLWAY_*`` environment variables and an optional TOML/JSON file.

The file is named by ``TOLLWAY_CONFIG_FILE``; environment variables win over it. Every
timeout is in seconds (fractions allowed) so tests can shrink them.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLWAY_", extra="ignore")

    data_dir: Path = Path("./tollway-data")
    database_url: str | None = None
    redis_url: str | None = None
    # Every Redis key Tollway writes starts with this (several deployments, or tests, on one Redis).
    redis_prefix: str = "tollway:"
    # A Redis command that takes longer than this counts as Redis being unreachable.
    redis_timeout_s: float = 2.0
    # Connections per process; a call waits (up to redis_timeout_s) for a free one rather than
    # opening an unbounded number under a burst.
    redis_pool_size: int = 64
    # Shared admission (docs/scaling.md): how often a node checks Redis (restart, return), how
    # long an idle wallet stays in Redis, how far back the ledger follower looks for transfers
    # posted by the control plane, and how long admission pauses after a Redis restart.
    redis_check_interval_s: float = 1.0
    redis_wallet_ttl_s: float = 600.0
    redis_follow_lookback_s: float = 120.0
    redis_recovery_s: float = 3.0
    # Node lease (docs/scaling.md): each server heartbeats its row in `nodes` this often; a lease
    # not renewed for node_lease_ttl_s is stale (its node died) and blocks no other node.
    node_heartbeat_interval_s: float = 5.0
    node_lease_ttl_s: float = 20.0
    # Background jobs (reconciliation, rollups, mail, hold expiry, probes) run on the node holding
    # their lease; a lease not renewed for job_lease_ttl_s is taken over by another node.
    job_lease_ttl_s: float = 15.0
    # Shared health and change notices (docs/scaling.md): how soon a node re-opens a lost
    # LISTEN connection or Redis subscription (it reloads then; the poll covers the gap).
    cluster_retry_s: float = 1.0
    admin_token: str | None = None
    secret_key: str | None = Field(
        default=None,
        description="Key for encrypting channel credentials; generated into the data dir if unset.",
    )
    config_file: Path | None = None

    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str | None = None
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks ("10.0.0.5, 172.16.0.0/12"); empty = none (docs/security.md).
    trusted_proxies: str = ""
    # Strict-Transport-Security max-age on HTTPS responses (direct or via a trusted proxy); 0 = off.
    hsts_max_age_s: int = Field(default=0, ge=0)

    # Settlement batching: a batch commits at B settlements or T ms, whichever comes first.
    commit_batch_size: int = 128
    # 0 = commit as soon as the writer is free: what arrives during one commit forms the next batch.
    commit_interval_ms: float = 0.0
    # Holds still open after this long are written as active (shorter calls write theirs once).
    hold_persist_delay_s: float = 1.0
    # Holds left open (crash, bug) are expired after this many seconds.
    hold_timeout_s: float = 900.0
    hold_sweep_interval_s: float = 5.0
    # How often a running server picks up changes made by the CLI, the API or other nodes.
    refresh_interval_s: float = 2.0
    # SQLite: the server checkpoints the WAL every this often in the background (0: SQLite's own
    # checkpoint inside the commit that fills 1,000 pages, which stalls that call; store/db.py).
    sqlite_checkpoint_interval_s: float = 1.0

    # Upstream timeouts.
    upstream_connect_timeout_s: float = 10.0
    upstream_first_byte_timeout_s: float = 120.0
    upstream_idle_timeout_s: float = 300.0
    # Failover: at most this many channels are tried for one call (before the first byte only).
    upstream_max_attempts: int = 3
    # Failover: total time spent opening a call (before the first byte) across all attempts.
    upstream_total_deadline_s: float = 300.0

    # Circuit breakers, one per channel credential (docs/reliability.md, DESIGN.md §7).
    breaker_consecutive_failures: int = 5
    breaker_failure_rate: float = 0.5
    breaker_min_calls: int = 20
    breaker_window_s: float = 60.0
    breaker_open_s: float = 30.0
    breaker_max_open_s: float = 600.0
    # How often open or disabled credentials are probed with a real 1-token call (0 = never).
    probe_interval_s: float = 10.0
    probe_timeout_s: float = 15.0
    # Channel state changes are POSTed here as JSON (best effort) when set.
    alert_webhook_url: str | None = None

    # The database is pinged this often; while it does not answer, new calls get 503 at once.
    db_check_interval_s: float = 1.0

    # Graceful shutdown: in-flight calls get this long to finish after SIGTERM.
    shutdown_grace_s: float = 20.0
    # Log lines as JSON objects ("json") or plain text ("text").
    log_format: str = "text"

    # Streams wait this long for their settlement to commit before failing closed.
    settlement_deadline_s: float = 30.0

    # Usage rollups and retention (tollway.usage; docs/console.md). The background job rolls up
    # closed UTC days into usage_daily every interval (0 = never; `tollway usage rollup` by hand).
    usage_rollup_interval_s: float = 300.0
    # A day is closed this long after its UTC midnight end (late settlements still land in it).
    usage_rollup_grace_s: float = 900.0
    # Every run also re-rolls the last N closed days, so records committed late are counted.
    usage_rollup_reroll_days: int = 2
    # Raw usage records older than this many days are deleted once their day is rolled up
    # (0 = keep forever). Charts and totals keep working from the rollups; the ledger is kept.
    usage_retention_days: int = 0
    usage_retention_batch: int = 5000  # records deleted per transaction

    # Request bodies (docs/surfaces.md "Limits"): answered 413 before any hold, each surface near
    # its provider's own limit; multipart uploads (audio) have theirs. A body that has not fully
    # arrived after body_read_timeout_s is answered 408.
    max_body_bytes: int = 32 * 1024 * 1024  # OpenAI surface (JSON): 32 MiB
    anthropic_max_body_bytes: int = 32_000_000  # Anthropic Messages: 32 MB
    gemini_max_body_bytes: int = 20_000_000  # Gemini generateContent (inline data): 20 MB
    upload_max_body_bytes: int = 25 * 1024 * 1024  # multipart uploads (audio files): 25 MiB
    body_read_timeout_s: float = 60.0
    # A max_tokens above the price book's output cap of the model: "reject" answers 400 as the
    # provider would; "clamp" forwards the request unchanged. The hold is sized at the cap either way.
    output_cap_policy: Literal["reject", "clamp"] = "reject"
    session_ttl_s: float = 7 * 24 * 3600.0
    # Console sign-up when the operator has not set it in the console (operator_settings wins).
    signup_enabled: bool = True
    # A password-reset link works once, for this long.
    password_reset_ttl_s: float = 3600.0
    # Between the password and the two-factor code (or staff enrollment) of a console sign-in.
    pending_signin_ttl_s: float = 300.0
    # Mail (password resets). Without smtp_host mail stays in the outbox (`tollway outbox list`).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None  # a value or "@/path/to/file"
    smtp_from: str = "Tollway <tollway@localhost>"
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout_s: float = 30.0
    # Unsent mail is (re)tried this often while smtp_host is set.
    outbox_interval_s: float = 30.0
    log_level: str = "info"

    # Payments (docs/payments.md). Secrets accept a value or "@/path/to/file".
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # default: the SDK's (https://api.stripe.com)
    stripe_webhook_tolerance_s: int = 300
    alipay_app_id: str | None = None
    alipay_private_key: str | None = None  # the app's RSA private key (PEM)
    alipay_public_key: str | None = None  # Alipay's RSA public key (PEM)
    alipay_gateway: str | None = None  # default: https://openapi.alipay.com/gateway.do
    alipay_seller_id: str | None = None  # when set, notifications must name this merchant
    epay_url: str | None = None
    epay_pid: str | None = None
    epay_key: str | None = None
    # Orders pending longer than this are asked about by reconciliation, every interval.
    reconcile_interval_s: float = 60.0
    reconcile_after_s: float = 120.0
    order_ttl_s: float = 7200.0  # an unpaid order expires after this
    fx_url: str | None = None  # JSON {"base": "USD", "rates": {...}} refreshed every interval
    fx_refresh_interval_s: float = 3600.0
    voucher_expiry_grace_s: float = 300.0  # expired voucher remainders are swept after this

    @field_validator(
        "stripe_secret_key",
        "stripe_webhook_secret",
        "alipay_private_key",
        "alipay_public_key",
        "epay_key",
        "alipay_app_id",
        "epay_pid",
        "smtp_password",
    )
    @classmethod
    def _value_or_file(cls, value: str | None) -> str | None:
        """``@path`` reads the value from a file (keys and secrets stay out of the environment)."""
        if value is None or not value.startswith("@"):
            return value
        try:
            return Path(value[1:]).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read {value[1:]!r}: {exc.strerror}") from exc

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        from tollway.security.proxies import parse_trusted

        parse_trusted(value)  # a typo fails at start-up, not silently trusting nobody
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tollway.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and pick the async driver Tollway uses."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


class _FileSource(PydanticBaseSettingsSource):
    """Values from the file named by TOLLWAY_CONFIG_FILE (TOML or JSON), keys without prefix."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        import os

        path = os.environ.get("TOLLWAY_CONFIG_FILE")
        self._data: dict[str, Any] = {}
        if path:
            text = Path(path).read_text(encoding="utf-8")
            self._data = json.loads(text) if path.endswith(".json") else tomllib.loads(text)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}
