"""The import report: a JSON document (``--json``) and its rendering as tables and text."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tollway.migrate.importer import Outcome
from tollway.migrate.plan_model import CREATE, EXISTS, SKIP, UPDATE, BalanceStep, PriceStep
from tollway.money import nano_to_credits

Json = dict[str, Any]
KINDS = ("group", "account", "balance", "key", "channel", "price", "code")


def report_json(outcome: Outcome) -> Json:
    plan = outcome.plan
    balances = [s for s in plan.of("balance") if isinstance(s, BalanceStep)]
    credited = [s for s in balances if s.action in (CREATE, EXISTS)]
    prices = [s.row() for s in plan.of("price") if isinstance(s, PriceStep) and s.price and s.price.differs]
    success = [t for t in plan.topups if t.status == "success"]
    return {
        "source": plan.source,
        "dry_run": outcome.dry_run,
        "quota_per_unit": plan.quota_per_unit,
        "changes": plan.changes() if outcome.dry_run else outcome.applied,
        "failed": outcome.failed,
        "summary": plan.counts(),
        "balances": {
            "accounts": len(credited),
            "total_nano": sum(s.nano for s in credited),
            "total": nano_to_credits(sum(s.nano for s in credited)),
            "rounded_down": [s.row() for s in credited if s.remainder != "0"],
            "negative": [s.row() for s in balances if s.quota < 0],
        },
        "price_differences": prices,
        "topups": {
            "count": len(plan.topups),
            "successful": len(success),
            "quota_credited": sum(t.amount for t in success),
            "note": "history only: their credit is already inside each user's quota",
            "rows": [
                {
                    "id": t.id,
                    "user_id": t.user_id,
                    "trade_no": t.trade_no,
                    "amount": t.amount,
                    "money": t.money,
                    "status": t.status,
                    "create_time": t.create_time,
                }
                for t in plan.topups
            ],
        },
        "logs": {"count": plan.log_count, "imported": 0, "note": "usage logs are not imported"},
        "warnings": plan.warnings,
        "steps": [s.row() for s in plan.steps],
    }


def render_report(console: Console, doc: Json) -> None:
    verb = "would change" if doc["dry_run"] else "changed"
    title = f"import from {doc['source']} ({'dry run' if doc['dry_run'] else 'done'})"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in ("what", CREATE, UPDATE, EXISTS, SKIP):
        table.add_column(column, justify="left" if column == "what" else "right")
    for kind in KINDS:
        c = doc["summary"].get(kind)
        if c:
            table.add_row(kind, *(str(c.get(a, 0)) for a in (CREATE, UPDATE, EXISTS, SKIP)))
    console.print(table)
    console.print(f"{doc['changes']} {verb}; quota per credit {doc['quota_per_unit']}")
    b = doc["balances"]
    console.print(f"balances: {b['accounts']} account(s), {b['total']} credits in all")
    for row in b["rounded_down"]:
        console.print(f"  user {row['source_id']}: rounded down by {row['remainder_nano']} nano-credit")
    for row in b["negative"]:
        console.print(f"  user {row['source_id']}: {escape(row['reason'])}")
    if doc["price_differences"]:
        prices = Table(title="prices that differ (USD per 1M tokens, or per call)", box=box.SIMPLE_HEAD)
        for column in ("model", "theirs in/out", "tollway in/out", "difference", "action"):
            prices.add_column(column)
        for row in doc["price_differences"]:
            prices.add_row(
                escape(row["model"]),
                _pair(row["theirs_usd"]),
                _pair(row["tollway_usd"]),
                row["action"] if row["action"] != SKIP else escape(row["reason"]),
            )
        console.print(prices)
    for row in doc["steps"]:
        if row["action"] in (SKIP, "failed") and row["kind"] != "price":
            console.print(
                f"{row['action']} {row['kind']} {row['source_id']} ({escape(row['label'])}): "
                f"{escape(row['reason'])}"
            )
        for note in row["notes"] if row["kind"] != "price" else ():
            console.print(f"note {row['kind']} {row['source_id']}: {escape(note)}")
    t = doc["topups"]
    console.print(f"top-ups: {t['count']} ({t['successful']} successful) kept as history in this report only")
    console.print(f"logs: {doc['logs']['count']} not imported")
    for warning in doc["warnings"]:
        console.print(f"warning: {escape(warning)}")


def _pair(prices: Json | None) -> str:
    if prices is None:
        return "-"
    if prices.get("per_call") is not None:
        return f"{prices['per_call']} / call"
    return f"{prices['input']} / {prices['output']}"
