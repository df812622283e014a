"""The payment commands as scripts use them: a subprocess per command, ``--json``, exit codes,
providers configured from the environment (keys given as ``@path``), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from payments_rig import Fakes, running_fakes


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with running_fakes() as f:
        yield f


class Cli:
    def __init__(self, db_url: str, tmp_path: Path, fakes: Fakes) -> None:
        private = tmp_path / "app_private.pem"
        private.write_text(fakes.alipay.app_keys.private_pem)
        public = tmp_path / "alipay_public.pem"
        public.write_text(fakes.alipay.alipay_keys.public_pem)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
        self.env.update(
            TOLLWAY_DATABASE_URL=db_url,
            TOLLWAY_DATA_DIR=str(tmp_path / "data"),
            TOLLWAY_STRIPE_SECRET_KEY=fakes.stripe.secret_key,
            TOLLWAY_STRIPE_WEBHOOK_SECRET=fakes.stripe.webhook_secret,
            TOLLWAY_STRIPE_API_BASE=fakes.stripe.url,
            TOLLWAY_ALIPAY_APP_ID=fakes.alipay.app_id,
            TOLLWAY_ALIPAY_PRIVATE_KEY=f"@{private}",
            TOLLWAY_ALIPAY_PUBLIC_KEY=f"@{public}",
            TOLLWAY_ALIPAY_GATEWAY=fakes.alipay.gateway,
            TOLLWAY_RECONCILE_AFTER_S="0",
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tollway.cli.main", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.many(args)[0]

    def many(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Independent commands at once (each costs ~1-2 s of start-up)."""
        procs = [(cmd, self.start(*cmd)) for cmd in commands]
        done = []
        for cmd, proc in procs:
            out, err = proc.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(list(cmd), proc.returncode, out, err))
        return done

    @staticmethod
    def parse(p: subprocess.CompletedProcess[str], code: int = 0) -> Any:
        assert p.returncode == code, (p.args, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr
        return orjson.loads(p.stdout)  # exactly one JSON document

    def json(self, *args: str, code: int = 0) -> Any:
        return self.parse(self.run(*args, "--json"), code)

    def json_many(self, *commands: tuple[str, ...]) -> list[Any]:
        return [self.parse(p) for p in self.many(*((*cmd, "--json") for cmd in commands))]


def test_payment_commands(db_url: str, tmp_path: Path, fakes: Fakes) -> None:
    cli = Cli(db_url, tmp_path, fakes)
    account = cli.json("admin", "account", "create", "--email", "cli-pay@example.com")["id"]
    price, order, manual, batch, grant = cli.json_many(
        ("payments", "price", "set", "CNY", "--price-per-credit", "7.2", "--presets", "72,144"),
        ("admin", "order", "create", account, "--provider", "stripe", "--amount", "10.00", "--currency",
         "USD"),
        ("admin", "order", "create", account, "--provider", "manual", "--amount", "5.00"),
        ("admin", "codes", "create", "--count", "3", "--value", "5", "--kind", "voucher",
         "--expires", "2099-01-01", "--label", "reseller"),
        ("admin", "voucher", "grant", account, "2", "--expires", "2099-01-01", "--reason", "outage"),
    )  # fmt: skip
    assert price["presets"][0] == {"amount": "72.00", "credits": "10"}
    assert order["order_number"].startswith("TW") and order["credits"] == "10"
    assert order["pay_url"].startswith(fakes.stripe.url)
    assert manual["state"] == "pending" and manual["pay_url"] is None
    assert len(batch["codes"]) == 3 and batch["expires_at"] == "2099-01-01T23:59:59+00:00"
    assert grant["voucher_nano"] == 2_000_000_000

    fakes.stripe.pay(order["provider_ref"])
    summary, alipay, qr, credited, vouchers, revoked = cli.json_many(
        ("payments", "reconcile"),
        ("admin", "order", "create", account, "--provider", "alipay", "--amount", "72.00", "--currency",
         "CNY"),
        ("admin", "order", "create", account, "--provider", "alipay", "--amount", "7.20", "--currency", "CNY",
         "--method", "qr"),
        ("admin", "order", "credit", manual["order_number"], "--reason", "wire 42"),
        ("admin", "voucher", "list", account),
        ("admin", "codes", "revoke", batch["codes"][0], "--reason", "leaked"),
    )  # fmt: skip
    assert summary["orders"]["credited"] == 1  # (an Alipay order made meanwhile may be "pending")
    assert alipay["pay_url"].startswith(fakes.alipay.gateway) and alipay["credits"] == "10"
    assert qr["qr_code"].startswith("https://qr.alipay.test/")
    assert credited["state"] == "credited"
    assert [v["granted"] for v in vouchers["vouchers"]] == ["2"]
    assert revoked == {"revoked": 1}

    shown, listed, codes, asked, human, exported, again, missing = cli.many(
        ("admin", "order", "show", order["order_number"], "--json"),
        ("admin", "order", "list", "--account", account, "--state", "credited", "--json"),
        ("admin", "codes", "list", "--json"),
        ("admin", "refund", "request", account, "--reason", "leaving", "--amount", "3", "--json"),
        ("payments", "reconcile"),
        ("admin", "codes", "export", batch["batch_id"]),
        ("admin", "order", "credit", manual["order_number"], "--reason", "again", "--json"),
        ("admin", "voucher", "grant", account, "2", "--reason", "no expiry", "--json"),
    )
    shown_doc = cli.parse(shown)
    assert shown_doc["state"] == "credited" and shown_doc["events"][-1]["source"] == "reconcile"
    assert {o["order_number"] for o in cli.parse(listed)["orders"]} == {
        order["order_number"],
        manual["order_number"],
    }
    assert cli.parse(codes)["batches"][0]["states"] == {"active": 2, "revoked": 1}
    assert human.returncode == 0 and "orders_checked" in human.stdout
    assert exported.returncode == 0
    assert sorted(r["code"] for r in csv.DictReader(io.StringIO(exported.stdout))) == sorted(batch["codes"])
    assert cli.parse(again, code=1)["error"]["code"] == "invalid_request_error"
    assert missing.returncode == 2  # --expires is required

    request = cli.parse(asked)
    queue = cli.json("admin", "refund", "list", "--state", "requested")
    assert [r["id"] for r in queue["refunds"]] == [request["id"]]
    done = cli.json("admin", "refund", "approve", request["id"], "--reason", "ok")
    assert done["state"] == "completed"
    newest = max(cli.parse(listed)["orders"], key=lambda o: o["credited_at"])  # newest payment first
    assert [(r["order_number"], r["amount"]) for r in done["refunds"]] == [(newest["order_number"], "3.00")]
    rejected = cli.json("admin", "refund", "request", account, "--reason", "more")
    reject, audit = cli.json_many(("admin", "refund", "reject", rejected["id"], "--reason", "no"), ("audit",))
    assert reject["state"] == "rejected"
    assert audit["ok"] is True
