"""Tollway's side of the benchmark: provisioning, starting it, and checking its books.

Provisioning and the audit go through the published command line (``tollway admin ... --json``,
``tollway audit --json``); if the command line is not usable in this checkout, the same
operations run through ``tollway.services.admin.AdminService`` / ``tollway.audit.run_audit``.
Usage records and holds are counted straight from the SQLite file (read-only).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import procs

CREDIT = "1000000"  # credits given to the benchmark account (1e15 nano)
# Generous limits: the limiter runs its checks for key, account and group, and never rejects.
RPM = 100_000_000
TPM = 10_000_000_000
CONCURRENCY = 100_000


@dataclass
class Provisioned:
    account_id: str
    secret: str
    via: str
    notes: list[str] = field(default_factory=list)


def _cli(
    python: str, data_dir: Path, *args: str, timeout: float = 120, extra_env: dict[str, str] | None = None
) -> Any:
    env = dict(os.environ, TOLLWAY_DATA_DIR=str(data_dir), **(extra_env or {}))
    proc = subprocess.run(
        [python, "-m", "tollway.cli.main", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"tollway {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    return json.loads(proc.stdout)


def provision(
    python: str,
    data_dir: Path,
    fake_base: str,
    model: str,
    anthropic: tuple[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Provisioned:
    """``model``: the OpenAI channel's models (comma-separated); ``anthropic``: (base URL, models)
    of an extra channel of type anthropic to the fake (the Anthropic pass-through), or None.
    ``extra_env``: more TOLLWAY_* settings (a PostgreSQL database, Redis); only the CLI is tried."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if extra_env:
        return _provision_cli(python, data_dir, fake_base, model, anthropic, extra_env)
    try:
        return _provision_cli(python, data_dir, fake_base, model, anthropic)
    except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired) as exc:
        note = f"the CLI could not provision ({exc}); used AdminService instead"
        print(f"  {note}", flush=True)
        for leftover in data_dir.glob("tollway.db*"):
            leftover.unlink()
        p = asyncio.run(_provision_api(data_dir, fake_base, model, anthropic))
        p.notes.append(note)
        return p


def _provision_cli(
    python: str,
    data_dir: Path,
    fake_base: str,
    model: str,
    anthropic: tuple[str, str] | None,
    extra_env: dict[str, str] | None = None,
) -> Provisioned:
    cli = functools.partial(_cli, extra_env=extra_env)
    limits = ["--rpm", str(RPM), "--tpm", str(TPM), "--concurrency", str(CONCURRENCY)]
    cli(
        python,
        data_dir,
        "admin",
        "group",
        "create",
        "bench",
        "--multiplier",
        "1",
        *limits,
        "--total-concurrency",
        str(CONCURRENCY),
    )
    cli(
        python,
        data_dir,
        "admin",
        "channel",
        "create",
        "fake",
        "--type",
        "openai",
        "--base-url",
        fake_base,
        "--api-key",
        "sk-fake-upstream",
        "--models",
        model,
    )
    if anthropic is not None:
        cli(
            python,
            data_dir,
            "admin",
            "channel",
            "create",
            "fake-anthropic",
            "--type",
            "anthropic",
            "--base-url",
            anthropic[0],
            "--api-key",
            "sk-fake-upstream",
            "--models",
            anthropic[1],
        )
    account = cli(python, data_dir, "admin", "account", "create", "--email", "bench@example.com")
    key = cli(
        python,
        data_dir,
        "admin",
        "key",
        "create",
        account["id"],
        "--name",
        "bench",
        "--group",
        "bench",
        *limits,
    )
    cli(
        python,
        data_dir,
        "admin",
        "credit",
        account["id"],
        CREDIT,
        "--kind",
        "cash",
        "--reason",
        "benchmark",
    )
    return Provisioned(account["id"], key["secret"], "tollway admin ... --json (CLI)")


async def _provision_api(
    data_dir: Path, fake_base: str, model: str, anthropic: tuple[str, str] | None
) -> Provisioned:
    from tollway.services.admin import AdminService
    from tollway.settings import Settings
    from tollway.store.db import make_engine, migrate
    from tollway.store.secret_box import SecretBox

    settings = Settings(data_dir=data_dir)
    engine = make_engine(settings.resolved_database_url())
    try:
        await migrate(engine)
        admin = AdminService(engine, SecretBox.from_settings(settings.secret_key, data_dir))
        await admin.upsert_group(
            "bench",
            create=True,
            multiplier="1",
            rpm=RPM,
            tpm=TPM,
            concurrency=CONCURRENCY,
            total_concurrency=CONCURRENCY,
        )
        await admin.upsert_channel(
            "fake",
            create=True,
            type="openai",
            base_url=fake_base,
            api_key="sk-fake-upstream",
            models=model,
        )
        if anthropic is not None:
            await admin.upsert_channel(
                "fake-anthropic",
                create=True,
                type="anthropic",
                base_url=anthropic[0],
                api_key="sk-fake-upstream",
                models=anthropic[1],
            )
        account = await admin.create_account("bench@example.com")
        key = await admin.create_key(
            account["id"], name="bench", group="bench", rpm=RPM, tpm=TPM, concurrency=CONCURRENCY
        )
        await admin.credit(account["id"], CREDIT, kind="cash", reason="benchmark")
    finally:
        await engine.dispose()
    return Provisioned(account["id"], key["secret"], "AdminService (Python API)")


def serve_commands(python: str, port: int) -> list[tuple[str, list[str]]]:
    """How to start Tollway, preferred first: the CLI, then the app's serve()."""
    return [
        (
            "python -m tollway.cli.main serve",
            [python, "-m", "tollway.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        ),
        (
            "tollway.app.serve(Settings())",
            [
                python,
                "-c",
                "from tollway.app import serve; from tollway.settings import Settings; serve(Settings())",
            ],
        ),
    ]


def db_path(data_dir: Path) -> Path:
    return data_dir / "tollway.db"


def usage_counts(data_dir: Path) -> dict[str, int]:
    """Usage records by (status, stream), plus holds still active; read-only."""
    con = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True, timeout=30)
    try:
        out: dict[str, int] = {}
        for status, stream, n in con.execute(
            "select status, stream, count(*) from usage_records group by status, stream"
        ):
            out[f"{status}:{'stream' if stream else 'json'}"] = n
        out["total"] = sum(out.values())
        out["holds_active"] = con.execute("select count(*) from holds where state = 'active'").fetchone()[0]
        out["deduction_nano_sum"] = con.execute(
            "select coalesce(sum(deduction_nano), 0) from usage_records"
        ).fetchone()[0]
        return out
    finally:
        con.close()


def audit(python: str, data_dir: Path) -> dict[str, Any]:
    """``tollway audit --json``; falls back to tollway.audit.run_audit."""
    env = dict(os.environ, TOLLWAY_DATA_DIR=str(data_dir))
    try:
        proc = subprocess.run(
            [python, "-m", "tollway.cli.main", "audit", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        doc = json.loads(proc.stdout)
        return {
            "via": "tollway audit --json",
            "exit_code": proc.returncode,
            "ok": bool(doc.get("ok")) and proc.returncode == 0,
            "report": doc,
        }
    except (json.JSONDecodeError, subprocess.TimeoutExpired, OSError) as exc:
        cli_error = repr(exc)
    return _audit_api(data_dir, cli_error)


def _audit_api(data_dir: Path, cli_error: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        from tollway.audit import run_audit
        from tollway.settings import Settings
        from tollway.store.db import make_engine

        engine = make_engine(Settings(data_dir=data_dir).resolved_database_url())
        try:
            report = await run_audit(engine)
        finally:
            await engine.dispose()
        return report.to_json()

    try:
        doc = asyncio.run(go())
    except Exception as exc:
        return {"via": "unavailable", "ok": False, "error": f"{cli_error}; {exc!r}"}
    return {"via": f"tollway.audit.run_audit (CLI failed: {cli_error})", "ok": doc["ok"], "report": doc}


def balance(python: str, data_dir: Path, account_id: str) -> dict[str, Any] | None:
    try:
        return dict(_cli(python, data_dir, "admin", "balance", account_id))
    except Exception as exc:
        print(f"  could not read the balance: {exc}", flush=True)
        return None


def python_of_project() -> str:
    return sys.executable


def start_tollway(
    python: str, port: int, data_dir: Path, log_dir: Path, ready_check: Any
) -> tuple[procs.Proc, str, list[str]]:
    """Start Tollway with the first serve command that comes up; returns (proc, how, notes)."""
    notes: list[str] = []
    env = {
        "TOLLWAY_DATA_DIR": str(data_dir),
        "TOLLWAY_HOST": "127.0.0.1",
        "TOLLWAY_PORT": str(port),
    }
    last: Exception | None = None
    for i, (how, argv) in enumerate(serve_commands(python, port)):
        proc = procs.start("tollway" if i == 0 else f"tollway-{i + 1}", argv, log_dir, env=env)
        try:
            procs.wait_until(proc, ready_check, 60, "answering a chat completion with 200")
            return proc, how, notes
        except RuntimeError as exc:
            up = proc.alive()
            proc.stop()
            if up:  # it started and answers, but not with 200: another launcher will not help
                raise
            last = exc
            notes.append(f"`{how}` did not come up: {str(exc).splitlines()[0]}")
            print(f"  {notes[-1]}", flush=True)
    raise RuntimeError(f"Tollway did not start: {last}")
