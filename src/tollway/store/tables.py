"""SQLAlchemy Core tables. Migrations in ``store/migrations`` create exactly these.

Money columns are BigInteger nano-credits; multipliers and prices are decimal strings.
Times are timezone-aware UTC (stored as naive UTC on SQLite by SQLAlchemy).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# The transfers the control plane posts (everything but call settlements), as SQL: the
# predicate of a partial index, and the follower's query spells it the same (a literal, so the
# planner can prove the index applies).
CONTROL_TRANSFERS = "kind <> 'usage'"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (naive storage) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_DT = UtcDateTime()

config_version = Table(
    "config_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("role", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("rpm", BigInteger),
    Column("tpm", BigInteger),
    Column("concurrency", BigInteger),
    Column("created_at", UTC_DT, nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("multiplier", String(40), nullable=False),
    Column("models", Text, nullable=False),  # JSON list; empty = every priced model
    Column("rpm", BigInteger),  # per-account defaults for accounts using this group; BIGINT: migration 0010
    Column("tpm", BigInteger),
    Column("concurrency", BigInteger),
    Column("total_concurrency", BigInteger),  # cap on the whole group (its channels' capacity)
    Column("label", String(64), nullable=False, server_default=""),
    Column("visible", Boolean, nullable=False, server_default="1"),
    Column("sticky", Boolean, nullable=False, server_default="0"),  # sticky routing; migration 0008
    Column("created_at", UTC_DT, nullable=False),
    Column("updated_at", UTC_DT, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("group_name", String(64), ForeignKey("groups.name"), nullable=False),
    Column("status", String(16), nullable=False),  # enabled | disabled | revoked
    Column("expires_at", UTC_DT),
    Column("spend_cap_nano", BigInteger),
    Column("models", Text, nullable=False),  # JSON list; empty = the group's models
    Column("ip_allow", Text, nullable=False),  # JSON list of CIDRs; empty = any
    Column("rpm", BigInteger),
    Column("tpm", BigInteger),
    Column("concurrency", BigInteger),
    Column("created_at", UTC_DT, nullable=False),
    Column("last_used_at", UTC_DT),
)

model_prices = Table(
    "model_prices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False, index=True),
    Column("effective_from", UTC_DT, nullable=False),
    Column("entry", Text, nullable=False),  # JSON of pricing.book.entry_to_dict
    Column("created_at", UTC_DT, nullable=False),
    Column("created_by", String(64), nullable=False),
    UniqueConstraint("model", "effective_from", name="uq_model_prices_model_effective"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("credential_enc", Text, nullable=False),
    Column("models", Text, nullable=False),
    Column("model_map", Text, nullable=False),
    Column("groups", Text, nullable=False),  # JSON list; empty = every group
    Column("priority", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTC_DT, nullable=False),
    Column("updated_at", UTC_DT, nullable=False),
    Column("options", Text, nullable=True),  # JSON: per-channel timeouts (0005)
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(128), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("owner_id", String(36), index=True),
    Column("expires_at", UTC_DT),
    # Cached sum of this account's entries, updated in the same transaction as each entry.
    Column("balance_nano", BigInteger, nullable=False),
    Column("label", Text, nullable=False, server_default=""),
    Column("created_at", UTC_DT, nullable=False),
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(160), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("owner_id", String(36), index=True),
    Column("trace_id", String(64), index=True),
    Column("amount_nano", BigInteger, nullable=False),
    Column("memo", Text, nullable=False, server_default=""),
    Column("actor", String(128), nullable=False, server_default="system"),
    Column("created_at", UTC_DT, nullable=False),
    # The shared-admission follower reads the recent transfers that are not usage (credits,
    # top-ups, refunds): a handful among millions of settlements. Migration 0011.
    Index(
        "ix_ledger_transfers_control_created",
        "created_at",
        postgresql_where=text(CONTROL_TRANSFERS),
        sqlite_where=text(CONTROL_TRANSFERS),
    ),
    # ... and each node's refresh reads the ones posted since the last it saw (app.py)
    Index(
        "ix_ledger_transfers_control_id",
        "id",
        postgresql_where=text(CONTROL_TRANSFERS),
        sqlite_where=text(CONTROL_TRANSFERS),
    ),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("transfer_id", Integer, ForeignKey("ledger_transfers.id"), nullable=False, index=True),
    Column("ledger_account_id", Integer, ForeignKey("ledger_accounts.id"), nullable=False),
    # Credit-positive: +x credits the account (raises a liability / income balance).
    Column("amount_nano", BigInteger, nullable=False),
    Index("ix_ledger_entries_account", "ledger_account_id", "transfer_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("owner_id", String(36), nullable=False, index=True),
    Column("key_id", String(36), nullable=False),
    Column("amount_nano", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # active | settled | voided | expired
    Column("settled_nano", BigInteger),
    Column("overrun_nano", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTC_DT, nullable=False),
    Column("expires_at", UTC_DT, nullable=False),
    Column("ended_at", UTC_DT),
    Index("ix_holds_state_expires", "state", "expires_at"),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("created_at", UTC_DT, nullable=False),
    Column("owner_id", String(36), nullable=False),
    Column("key_id", String(36), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("model_requested", String(128), nullable=False),
    Column("model_billed", String(128), nullable=False),
    Column("group_name", String(64), nullable=False),
    Column("multiplier", String(40), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("error_code", String(64)),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_5m_tokens", BigInteger, nullable=False),
    Column("cache_write_1h_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("calls", BigInteger, nullable=False),
    Column("estimated", Boolean, nullable=False),
    Column("tier", String(32)),
    Column("price_snapshot", Text, nullable=False),  # JSON: the price entry used
    Column("lines", Text, nullable=False),  # JSON: the arithmetic, line by line
    Column("official_cost_nano", BigInteger, nullable=False),
    Column("deduction_nano", BigInteger, nullable=False),
    Column("balance_after_nano", BigInteger),
    Column("overrun_nano", BigInteger, nullable=False),
    Column("hold_nano", BigInteger, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("ttft_ms", Integer),
    Column("channel_id", String(36)),
    Column("client_ip", String(64)),
    Column("attempts", Text),  # JSON: upstream attempts (channel, outcome, status, ms); migration 0003
    Index("ix_usage_owner_created", "owner_id", "created_at"),
    Index("ix_usage_key_created", "key_id", "created_at"),
    Index("ix_usage_created", "created_at"),  # the public status page's 24-hour window; migration 0004
)

# Daily rollups of usage_records (migration 0007): one row per UTC day, account, key and model,
# written by the rollup job (tollway.usage.rollups) for closed days only, never by the
# settlement path. Integers only: counts, token sums and nano-credits.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("owner_id", String(36), primary_key=True),
    Column("key_id", String(36), primary_key=True),
    Column("model", String(128), primary_key=True),  # usage_records.model_billed
    Column("calls", BigInteger, nullable=False),  # usage records
    Column("ok_calls", BigInteger, nullable=False),  # status "ok"
    Column("failed_calls", BigInteger, nullable=False),  # failures (the status page's rule)
    Column("input_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_5m_tokens", BigInteger, nullable=False),
    Column("cache_write_1h_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("official_cost_nano", BigInteger, nullable=False),
    Column("deduction_nano", BigInteger, nullable=False),
    Index("ix_usage_daily_owner_day", "owner_id", "day"),
)

# The same, summed over every account (what the staff overview reads: a few rows a day)...
usage_daily_models = Table(
    "usage_daily_models",
    metadata,
    Column("day", Date, primary_key=True),
    Column("model", String(128), primary_key=True),
    *(Column(c.name, BigInteger, nullable=False) for c in list(usage_daily.c)[4:]),
)

# ...and the accounts with calls each day (active accounts over a window).
usage_daily_accounts = Table(
    "usage_daily_accounts",
    metadata,
    Column("day", Date, primary_key=True),
    Column("owner_id", String(36), primary_key=True),
    Column("calls", BigInteger, nullable=False),
)

# The days that are rolled up (a day without calls is rolled up too: it has no usage_daily
# row but is listed here). ``pruned_at``: retention deleted that day's raw records, so the
# day is never rolled up again (it would come out empty).
usage_rollup_days = Table(
    "usage_rollup_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("rolled_at", UTC_DT, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("pruned_at", UTC_DT),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", UTC_DT, nullable=False),
    Column("expires_at", UTC_DT, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTC_DT, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(160), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("before", Text),
    Column("after", Text),
    Index("ix_audit_log_target", "target"),
)

# --- payments (migration 0002) ------------------------------------------------------------
# Money in a payment currency is an integer of minor units (cents, fen); prices and exchange
# rates are exact decimal strings; credits are nano-credits as everywhere else.

orders = Table(
    "orders",
    metadata,
    Column("order_number", String(32), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("provider", String(16), nullable=False),
    Column("method", String(16), nullable=False, server_default=""),
    Column("state", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("price_per_credit", String(40), nullable=False),  # currency per credit, exact
    Column("fx_rate", String(40)),  # currency per USD used for the price, when FX-based
    Column("credits_nano", BigInteger, nullable=False),
    Column("provider_ref", String(128), index=True),  # Stripe session, Alipay / EPay trade no
    Column("payment_ref", String(128)),  # Stripe payment intent
    Column("pay_url", Text),
    Column("qr_code", Text),
    Column("failure_reason", Text),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_DT, nullable=False),
    Column("updated_at", UTC_DT, nullable=False),
    Column("expires_at", UTC_DT, nullable=False),
    Column("paid_at", UTC_DT),
    Column("credited_at", UTC_DT),
    Index("ix_orders_state_created", "state", "created_at"),
    Index("ix_orders_credited_at", "credited_at"),  # the staff overview's revenue; migration 0007
)

order_events = Table(
    "order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_number", String(32), nullable=False, index=True),
    Column("at", UTC_DT, nullable=False),
    Column("kind", String(32), nullable=False),  # created | pending | credited | refused | ...
    Column("source", String(32), nullable=False),  # webhook | return | reconcile | staff | ...
    Column("actor", String(128), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),
)

payment_notifications = Table(
    "payment_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("dedupe_key", String(160), nullable=False),  # Stripe event id, Alipay notify id, ...
    Column("order_number", String(32), index=True),
    Column("kind", String(64), nullable=False),
    Column("received_at", UTC_DT, nullable=False),
    UniqueConstraint("provider", "dedupe_key", name="uq_payment_notifications_provider_key"),
)

refund_requests = Table(
    "refund_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False),  # requested | processing | completed | ...
    Column("reason", Text, nullable=False),
    Column("amount_nano", BigInteger),  # credits asked for; NULL = all refundable cash
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_DT, nullable=False),
    Column("decided_by", String(128)),
    Column("decided_at", UTC_DT),
    Column("decision_reason", Text),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(36), ForeignKey("refund_requests.id"), index=True),
    Column("order_number", String(32), ForeignKey("orders.order_number"), nullable=False, index=True),
    Column("account_id", String(36), nullable=False, index=True),
    Column("provider", String(16), nullable=False),
    Column("out_request_no", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("credits_nano", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # pending | succeeded | failed
    Column("provider_ref", String(128)),
    Column("failure_reason", Text),
    Column("created_at", UTC_DT, nullable=False),
    Column("updated_at", UTC_DT, nullable=False),
    Column("settled_at", UTC_DT),
)

redemption_batches = Table(
    "redemption_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("label", String(128), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),  # cash | voucher
    Column("value_nano", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("expires_at", UTC_DT),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTC_DT, nullable=False),
)

redemption_codes = Table(
    "redemption_codes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(36), ForeignKey("redemption_batches.id"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("code_enc", Text, nullable=False),  # Fernet, for the CSV export
    Column("hint", String(8), nullable=False),
    Column("state", String(16), nullable=False),  # active | redeemed | revoked
    Column("redeemed_by", String(36)),
    Column("redeemed_at", UTC_DT),
    Column("revoked_at", UTC_DT),
)

payment_currencies = Table(
    "payment_currencies",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("mode", String(8), nullable=False),  # fixed | fx
    Column("price_per_credit", String(40)),  # fixed mode: currency per credit
    Column("fx_rate", String(40)),  # fx mode: currency per USD
    Column("margin", String(40), nullable=False, server_default="0"),  # fx mode: 0.05 = +5%
    Column("fx_source", String(16), nullable=False, server_default="operator"),  # operator | url
    Column("fx_updated_at", UTC_DT),
    Column("min_amount", String(40), nullable=False),
    Column("presets", Text, nullable=False, server_default="[]"),  # JSON list of decimal strings
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", UTC_DT, nullable=False),
)

# --- console accounts (migration 0006) ------------------------------------------------------

operator_settings = Table(
    "operator_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", UTC_DT, nullable=False),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", UTC_DT, nullable=False),
    Column("expires_at", UTC_DT, nullable=False),
    Column("used_at", UTC_DT),
    Index("ix_password_resets_account_id", "account_id"),
)

# Mail Tollway sends (password resets). Sent through SMTP when configured; otherwise it stays
# here for the operator to read (`tollway outbox`).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTC_DT, nullable=False),
    Column("to_addr", String(320), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("sent_at", UTC_DT),
    Column("error", Text),
)

# TOTP two-factor: the shared secret is sealed with the SecretBox; enabled once confirmed.
account_totp = Table(
    "account_totp",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("confirmed_at", UTC_DT),
    Column("last_step", BigInteger),  # the last accepted time step: a code is accepted once
)

# Scale-out (docs/scaling.md): every running server registers a lease here and heartbeats it; a
# node without the shared backend (Redis on PostgreSQL) refuses to run next to another live one.
nodes = Table(
    "nodes",
    metadata,
    Column("id", String(200), primary_key=True),  # host:pid:random
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTC_DT, nullable=False),
    Column("heartbeat_at", UTC_DT, nullable=False),
    Column("shared", Boolean, nullable=False),  # runs with the shared admission backend
)

# Background jobs that must run on one node at a time hold a lease per job name.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),  # a nodes.id (not a foreign key: may be gone)
    Column("expires_at", UTC_DT, nullable=False),
)
