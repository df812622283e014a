"""The ``tollway`` command line as scripts use it: a subprocess per command, ``--json``,
exit codes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tollway.settings import normalise_database_url
from tollway.store.db import make_engine
from tollway.store.tables import audit_log, channels


class Cli:
    """Runs ``python -m tollway.cli.main`` (what the ``tollway`` script runs) in a subprocess.

    Each run costs ~0.7 s of interpreter start-up, so independent commands run in parallel.
    """

    def __init__(self, db_url: str, data_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
        self.env.update(TOLLWAY_DATABASE_URL=db_url, TOLLWAY_DATA_DIR=str(data_dir))

    def start(self, *args: str, stdin: str | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tollway.cli.main", *args],
            env=self.env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def many(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Run commands at once; a command may end with ``("stdin", text)`` as its last item."""
        procs = []
        for cmd in commands:
            stdin = None
            if len(cmd) >= 2 and cmd[-2] == "<stdin>":
                cmd, stdin = cmd[:-2], cmd[-1]
            procs.append((cmd, stdin, self.start(*cmd, stdin=stdin)))
        done = []
        for cmd, stdin, proc in procs:
            out, err = proc.communicate(stdin, timeout=60)
            done.append(subprocess.CompletedProcess(list(cmd), proc.returncode, out, err))
        return done

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.many((*args, "<stdin>", stdin) if stdin is not None else args)[0]

    def json(self, *args: str, code: int = 0, stdin: str | None = None) -> Any:
        return self.parse(self.run(*args, "--json", stdin=stdin), code)

    def json_many(self, *commands: tuple[str, ...]) -> list[Any]:
        return [self.parse(p, 0) for p in self.many(*commands)]

    @staticmethod
    def parse(p: subprocess.CompletedProcess[str], code: int) -> Any:
        assert p.returncode == code, (p.args, p.returncode, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr
        return json.loads(p.stdout)  # exactly one JSON document, nothing else on stdout


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    return Cli(db_url, tmp_path / "data")


async def _stored(db_url: str) -> tuple[list[str], list[str]]:
    engine = make_engine(normalise_database_url(db_url))
    try:
        async with engine.connect() as conn:
            creds = list((await conn.execute(select(channels.c.credential_enc))).scalars())
            actors = list((await conn.execute(select(audit_log.c.actor))).scalars())
    finally:
        await engine.dispose()
    return creds, actors


def test_provisioning_round_trip(cli: Cli, db_url: str) -> None:
    assert cli.json("migrate")["migrated"] is True
    group, account = cli.json_many(
        ("admin", "group", "create", "default", "--multiplier", "0.3", "--rpm", "60", "--json"),
        ("admin", "account", "create", "--email", "Dev@Example.com", "--json"),
    )
    assert group["multiplier"] == "0.3" and group["rpm"] == 60
    assert account["email"] == "dev@example.com" and account["role"] == "customer"
    acct = account["id"]

    credential = "sk-upstream-PLAINTEXT-0123456789"
    # Only one ledger write in this round: the first credit creates the platform accounts.
    key, cash, price, chan = cli.json_many(
        ("admin", "key", "create", acct, "--name", "ci", "--group", "default",
         "--expires", "2031-01-31", "--spend-cap", "5", "--ip-allow", "10.0.0.0/8", "--json"),
        ("admin", "credit", acct, "10.5", "--kind", "cash", "--reason", "wire 42", "--json"),
        ("admin", "model", "set", "my-model", "--input", "1.25", "--output", "5", "--json"),
        ("admin", "channel", "create", "up", "--type", "openai",
         "--base-url", "https://api.openai.com/v1/", "--api-key", "-",
         "--models", "gpt-4o,gpt-4o-mini", "--map", "gpt-4o=gpt-4o-2024-11-20",
         "--priority", "2", "--json", "<stdin>", credential + "\n"),
    )  # fmt: skip
    assert key["secret"].startswith("sk-") and key["account_id"] == acct
    assert key["expires_at"] == "2031-01-31T23:59:59+00:00"
    assert key["spend_cap_nano"] == 5_000_000_000 and key["ip_allow"] == ["10.0.0.0/8"]
    assert cash["amount_nano"] == 10_500_000_000 and cash["available"] == "10.5"
    assert price["prices"]["input"] == "1.25" and price["prices"]["output"] == "5"
    assert chan["base_url"] == "https://api.openai.com/v1" and chan["priority"] == 2
    assert chan["model_map"] == {"gpt-4o": "gpt-4o-2024-11-20"} and chan["has_credential"]

    voucher, listed, models, channels_doc = cli.json_many(
        ("admin", "credit", acct, "2", "--kind", "voucher", "--reason", "sorry",
         "--expires", "2031-01-01T12:00:00+08:00", "--json"),
        ("admin", "key", "list", acct, "--json"),
        ("admin", "model", "list", "--json"),
        ("admin", "channel", "list", "--json"),
    )  # fmt: skip
    assert voucher["amount_nano"] == 2_000_000_000
    assert [k["id"] for k in listed["keys"]] == [key["id"]]
    assert "secret" not in listed["keys"][0] and key["secret"] not in json.dumps(listed)
    by_name = {m["model"]: m for m in models["models"]}
    assert by_name["my-model"]["version"] == "operator" and len(by_name) > 20
    assert channels_doc["channels"][0]["name"] == "up"

    bal = cli.json("admin", "balance", acct)
    assert bal["cash_nano"] == 10_500_000_000 and bal["voucher_nano"] == 2_000_000_000
    assert bal["held_nano"] == 0 and bal["available_nano"] == 12_500_000_000
    assert bal["available"] == "12.5" and isinstance(bal["available"], str)
    assert bal["vouchers"][0]["expires_at"] == "2031-01-01T04:00:00+00:00"

    [human] = cli.many(("admin", "channel", "list"))
    assert human.returncode == 0 and "up" in human.stdout
    for out in (json.dumps(chan), json.dumps(channels_doc), human.stdout):
        assert credential not in out
    creds, actors = asyncio.run(_stored(db_url))
    assert len(creds) == 1 and credential not in creds[0]
    assert actors and all(a.startswith("cli:") for a in actors)


def test_errors_exit_codes_and_messages(cli: Cli) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    cli.json("migrate")  # then the rest at once, without racing to create the schema
    balance, amount, multiplier, expires, price, human, no_target, bad_kind = cli.many(
        ("admin", "balance", missing, "--json"),
        ("admin", "credit", missing, "abc", "--kind", "cash", "--reason", "x", "--json"),
        ("admin", "group", "create", "neg", "--multiplier", "-0.3", "--json"),
        ("admin", "key", "create", missing, "--name", "k", "--group", "g",
         "--expires", "next week", "--json"),
        ("admin", "model", "set", "m", "--input", "1", "--output", "-2", "--json"),
        ("admin", "usage", "--trace", "no-such-trace"),
        ("admin", "usage"),
        ("admin", "credit", missing, "1", "--kind", "gold", "--reason", "x"),
    )  # fmt: skip
    err = cli.parse(balance, 1)["error"]
    assert err["code"] == "not_found" and err["param"] == "account_id" and missing in err["message"]
    err = cli.parse(amount, 1)["error"]
    assert err["param"] == "amount" and "abc" in err["message"]
    assert cli.parse(multiplier, 1)["error"] == {
        "code": "invalid_request_error",
        "message": "multiplier: must not be negative",
        "param": "multiplier",
    }
    assert cli.parse(expires, 1)["error"]["param"] == "expires"
    assert cli.parse(price, 1)["error"]["param"] == "output"

    # Without --json: one line on stderr, nothing on stdout, no traceback.
    assert human.returncode == 1 and human.stdout == ""
    assert human.stderr.strip().count("\n") == 0 and human.stderr.startswith("error: ")

    # Bad usage is typer's exit code 2.
    assert no_target.returncode == 2 and bad_kind.returncode == 2
