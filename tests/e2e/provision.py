"""Provisioning for the end-to-end tests: groups, channels, accounts, keys, credit, and the
reads the tests use as oracles (balances, usage records, the ledger audit).

:func:`make_provisioner` is the one place that decides how: through ``AdminService`` (the
code path the CLI runs, in-process against the server's database; fast, the default) or
through the published command line (``TOLLWAY_E2E_PROVISION=cli``; ~0.8 s per command).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

PYTHON = sys.executable
SECRET_KEY = "tollway-e2e-secret-key"
T = TypeVar("T")

# Models the main channel serves; gpt-4.1 is served only by the failover pair (group "fo").
MAIN_MODELS = "gpt-4o,gpt-4o-mini,o4-mini,claude-opus-4-5,claude-sonnet-4-5,text-embedding-3-small"
GROUPS: dict[str, dict[str, Any]] = {
    "x03": {"multiplier": "0.3"},
    "x1": {"multiplier": "1"},
    "rpm2": {"multiplier": "1", "rpm": 2},
    "conc1": {"multiplier": "1", "concurrency": 1},
    "mini": {"multiplier": "1", "models": "gpt-4o-mini"},
    "fo": {"multiplier": "1"},
}
FAILOVER_MODEL = "gpt-4.1"
CHANNEL_KEYS = {
    "main": "upstream-main",
    "fo-primary": "upstream-primary",
    "fo-backup": "upstream-backup",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class AuditResult:
    ok: bool
    findings: list[str]
    overruns: list[dict[str, Any]] = field(default_factory=list)


class Provisioner(Protocol):
    def prepare(self) -> None: ...
    def close(self) -> None: ...
    def create_group(self, name: str, **kw: Any) -> dict[str, Any]: ...
    def create_channel(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str,
        models: str,
        priority: int = 0,
        groups: str | None = None,
    ) -> dict[str, Any]: ...
    def create_account(self, email: str) -> str: ...
    def create_key(
        self,
        account_id: str,
        *,
        name: str,
        group: str,
        spend_cap: str | None = None,
        models: str | None = None,
        ip_allow: str | None = None,
        expires: datetime | None = None,
    ) -> dict[str, Any]: ...
    def credit(self, account_id: str, amount: str, *, kind: str = "cash") -> dict[str, Any]: ...
    def set_key_status(self, key_id: str, status: str) -> None: ...
    def balance(self, account_id: str) -> dict[str, Any]: ...
    def usage(self, trace_id: str) -> dict[str, Any] | None: ...
    def usage_list(self, account_id: str) -> list[dict[str, Any]]: ...
    def audit(self) -> AuditResult: ...


class _LoopThread:
    """An event loop on its own thread, so sync and async tests can both provision."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class ServiceProvisioner:
    """Provisioning through ``AdminService`` against the server's database."""

    def __init__(self, db_url: str, data_dir: Path) -> None:
        from tollway.services.admin import AdminService
        from tollway.settings import normalise_database_url
        from tollway.store.db import make_engine
        from tollway.store.secret_box import SecretBox

        self._lt = _LoopThread()
        url = normalise_database_url(db_url)

        async def build() -> Any:
            return make_engine(url, pool_size=2)

        self.engine = self._lt.run(build())
        self.svc = AdminService(self.engine, SecretBox(SECRET_KEY), actor="e2e")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._lt.run(coro)

    def prepare(self) -> None:
        from tollway.store.db import migrate

        self._run(migrate(self.engine))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.engine.dispose())
        self._lt.close()

    def create_group(self, name: str, **kw: Any) -> dict[str, Any]:
        return self._run(self.svc.upsert_group(name, create=True, **kw))

    def create_channel(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str,
        models: str,
        priority: int = 0,
        groups: str | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self.svc.upsert_channel(
                name,
                create=True,
                type="openai",
                base_url=base_url,
                api_key=api_key,
                models=models,
                groups_=groups,
                priority=priority,
            )
        )

    def create_account(self, email: str) -> str:
        return str(self._run(self.svc.create_account(email))["id"])

    def create_key(
        self,
        account_id: str,
        *,
        name: str,
        group: str,
        spend_cap: str | None = None,
        models: str | None = None,
        ip_allow: str | None = None,
        expires: datetime | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self.svc.create_key(
                account_id,
                name=name,
                group=group,
                spend_cap=spend_cap,
                models=models,
                ip_allow=ip_allow,
                expires=expires,
            )
        )

    def credit(self, account_id: str, amount: str, *, kind: str = "cash") -> dict[str, Any]:
        return self._run(self.svc.credit(account_id, amount, kind=kind, reason="e2e top-up"))

    def set_key_status(self, key_id: str, status: str) -> None:
        self._run(self.svc.set_key_status(key_id, status))

    def balance(self, account_id: str) -> dict[str, Any]:
        return self._run(self.svc.balance(account_id))

    def usage(self, trace_id: str) -> dict[str, Any] | None:
        from tollway.errors import NotFound

        try:
            return self._run(self.svc.get_usage(trace_id))
        except NotFound:
            return None

    def usage_list(self, account_id: str) -> list[dict[str, Any]]:
        return self._run(self.svc.list_usage(account_id, limit=10_000))

    def audit(self) -> AuditResult:
        async def go() -> Any:
            from tollway.audit import run_audit  # `tollway audit`'s own function

            report: Any = run_audit(self.engine)
            if inspect.isawaitable(report):
                report = await report
            return report

        report = self._run(go())
        return AuditResult(
            bool(report.ok),
            [repr(f) for f in report.findings],
            list(getattr(report, "overruns", [])),
        )


class CliProvisioner:
    """Provisioning through the published command line, one process per command."""

    def __init__(self, db_url: str, data_dir: Path) -> None:
        self.env = clean_env(
            TOLLWAY_DATABASE_URL=db_url,
            TOLLWAY_DATA_DIR=str(data_dir),
            TOLLWAY_SECRET_KEY=SECRET_KEY,
        )

    def cli(self, *args: str, ok: bool = True) -> tuple[int, Any]:
        proc = subprocess.run(
            [PYTHON, "-m", "tollway.cli.main", *args, "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        try:
            doc = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            doc = proc.stdout
        if ok and proc.returncode != 0:
            raise AssertionError(
                f"tollway {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
            )
        return proc.returncode, doc

    def prepare(self) -> None:
        self.cli("migrate")

    def close(self) -> None:
        pass

    def create_group(self, name: str, **kw: Any) -> dict[str, Any]:
        args = ["admin", "group", "create", name]
        for k, v in kw.items():
            flag = k.replace("_", "-")
            if isinstance(v, bool):
                args.append(f"--{flag}" if v else f"--no-{flag}")
            elif v is not None:
                args += [f"--{flag}", str(v)]
        return self.cli(*args)[1]  # type: ignore[no-any-return]

    def create_channel(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str,
        models: str,
        priority: int = 0,
        groups: str | None = None,
    ) -> dict[str, Any]:
        args = [
            "admin",
            "channel",
            "create",
            name,
            "--type",
            "openai",
            "--base-url",
            base_url,
            "--api-key",
            api_key,
            "--models",
            models,
            "--priority",
            str(priority),
        ]
        if groups:
            args += ["--groups", groups]
        return self.cli(*args)[1]  # type: ignore[no-any-return]

    def create_account(self, email: str) -> str:
        return str(self.cli("admin", "account", "create", "--email", email)[1]["id"])

    def create_key(
        self,
        account_id: str,
        *,
        name: str,
        group: str,
        spend_cap: str | None = None,
        models: str | None = None,
        ip_allow: str | None = None,
        expires: datetime | None = None,
    ) -> dict[str, Any]:
        args = ["admin", "key", "create", account_id, "--name", name, "--group", group]
        for flag, value in (
            ("--spend-cap", spend_cap),
            ("--models", models),
            ("--ip-allow", ip_allow),
            ("--expires", expires.isoformat() if expires else None),
        ):
            if value is not None:
                args += [flag, value]
        return self.cli(*args)[1]  # type: ignore[no-any-return]

    def credit(self, account_id: str, amount: str, *, kind: str = "cash") -> dict[str, Any]:
        return self.cli(  # type: ignore[no-any-return]
            "admin", "credit", account_id, amount, "--kind", kind, "--reason", "e2e top-up"
        )[1]

    def set_key_status(self, key_id: str, status: str) -> None:
        self.cli("admin", "key", {"disabled": "disable", "enabled": "enable"}[status], key_id)

    def balance(self, account_id: str) -> dict[str, Any]:
        return self.cli("admin", "balance", account_id)[1]  # type: ignore[no-any-return]

    def usage(self, trace_id: str) -> dict[str, Any] | None:
        code, doc = self.cli("admin", "usage", "--trace", trace_id, ok=False)
        return doc if code == 0 else None  # type: ignore[no-any-return]

    def usage_list(self, account_id: str) -> list[dict[str, Any]]:
        doc = self.cli("admin", "usage", account_id, "--limit", "10000")[1]
        return doc if isinstance(doc, list) else list(doc.get("records", doc.get("data", [])))

    def audit(self) -> AuditResult:
        code, doc = self.cli("audit", ok=False)
        findings = doc.get("findings", []) if isinstance(doc, dict) else [doc]
        ok = code == 0 and isinstance(doc, dict) and bool(doc.get("ok", True))
        overruns = doc.get("overruns", []) if isinstance(doc, dict) else []
        return AuditResult(ok, [json.dumps(f) for f in findings], list(overruns))


def make_provisioner(db_url: str, data_dir: Path) -> Provisioner:
    """The one switch between provisioning paths (AdminService by default, or the CLI)."""
    if os.environ.get("TOLLWAY_E2E_PROVISION", "service") == "cli":
        return CliProvisioner(db_url, data_dir)
    return ServiceProvisioner(db_url, data_dir)


def provision_base(prov: Provisioner, fake_v1: str) -> dict[str, dict[str, Any]]:
    """Groups and channels every e2e module shares; created before the server starts."""
    for name, kw in GROUPS.items():
        prov.create_group(name, **kw)
    return {
        "main": prov.create_channel(
            "main", base_url=fake_v1, api_key=CHANNEL_KEYS["main"], models=MAIN_MODELS
        ),
        "fo-primary": prov.create_channel(
            "fo-primary",
            base_url=fake_v1,
            api_key=CHANNEL_KEYS["fo-primary"],
            models=FAILOVER_MODEL,
            priority=10,
            groups="fo",
        ),
        "fo-backup": prov.create_channel(
            "fo-backup",
            base_url=fake_v1,
            api_key=CHANNEL_KEYS["fo-backup"],
            models=FAILOVER_MODEL,
            priority=5,
            groups="fo",
        ),
    }
