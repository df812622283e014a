"""The end-to-end stack: a fake upstream and a Tollway server, each a real subprocess on
loopback, plus the operator's provisioning and the oracles the tests read (balances, usage
records, the fake's recorded requests, the ledger audit).

Provisioning goes through :func:`make_provisioner`, the one place that decides how: through
``AdminService`` (the code path the CLI runs, in-process against the same database; fast) or
through the published command line (``TOLLWAY_E2E_PROVISION=cli``; ~0.8 s per command).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import openai

PYTHON = sys.executable
SECRET_KEY = "tollway-e2e-secret-key"
T = TypeVar("T")

# Models the main channel serves; gpt-4.1 is served only by the failover pair (group "fo").
MAIN_MODELS = "gpt-4o,gpt-4o-mini,o4-mini,claude-opus-4-5,text-embedding-3-small"
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


# --------------------------------------------------------------------------- small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(check: Callable[[], T | None], *, timeout: float = 10.0, interval: float = 0.05, what: str) -> T:
    """Call ``check`` until it returns something other than None (polling with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """A plain HTTP call (stdlib only, no proxy); returns (status, headers, parsed JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            raw = resp.read()
            status, hdrs = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw = err.read()
        status, hdrs = err.code, dict(err.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return status, {k.lower(): v for k, v in hdrs.items()}, parsed


def nano(*lines: tuple[int, str], multiplier: str = "1") -> int:
    """Expected deduction in nano-credits, computed independently of Tollway: the exact sum
    of tokens x USD-per-MTok price, times the multiplier, rounded once half-up."""
    usd = sum(
        (Decimal(tokens) * Decimal(price) / Decimal(1_000_000) for tokens, price in lines),
        Decimal(0),
    )
    return int((usd * Decimal(multiplier) * Decimal(10**9)).quantize(Decimal(1), ROUND_HALF_UP))


def price_book() -> dict[str, dict[str, str]]:
    """Prices of the bundled price book (USD per MTok), read from the data file itself."""
    import tollway.pricing

    path = Path(tollway.pricing.__file__).parent / "data" / "pricebook.json"
    doc = json.loads(path.read_text())
    return {m["model"]: m["prices"] for m in doc["models"] if "prices" in m}


def assert_request_id_error(exc: openai.APIStatusError, status: int) -> str:
    """The error carries ``x-request-id`` and its message ends with that id (DESIGN.md §6)."""
    assert exc.status_code == status, (exc.status_code, exc.body)
    rid = exc.response.headers.get("x-request-id")
    assert rid and rid.startswith("req_"), exc.response.headers
    body = exc.body if isinstance(exc.body, dict) else {}
    message = str(body.get("message", ""))
    assert message.rstrip(" .)").endswith(rid), f"message does not end with {rid}: {message!r}"
    return rid


# --------------------------------------------------------------------------- processes


class Proc:
    """A subprocess whose stdout and stderr go to one log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._fh = log.open("wb")
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 200) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._fh.close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --------------------------------------------------------------------------- provisioning


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
            if v is not None:
                args += [f"--{k.replace('_', '-')}", str(v)]
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


# --------------------------------------------------------------------------- the stack


@dataclass
class Customer:
    account_id: str
    key_id: str
    secret: str


@dataclass
class Stack:
    backend: str
    db_url: str
    workdir: Path
    url: str = ""
    fake_url: str = ""
    prov: Provisioner | None = None
    server: Proc | None = None
    fake: Proc | None = None
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)

    # ---- clients
    def client(self, secret: str, **kw: Any) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30.0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=secret, **kw)

    def aclient(self, secret: str, **kw: Any) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60.0)
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=secret, **kw)

    # ---- provisioning
    @property
    def p(self) -> Provisioner:
        assert self.prov is not None
        return self.prov

    def customer(self, group: str = "x1", credit: str | None = "10", **key_kw: Any) -> Customer:
        account_id = self.p.create_account(f"e2e-{uuid.uuid4().hex[:12]}@example.test")
        if credit is not None:
            self.p.credit(account_id, credit)
        key = self.p.create_key(account_id, name="e2e", group=group, **key_kw)
        return Customer(account_id, str(key["id"]), str(key["secret"]))

    def balance(self, account_id: str) -> dict[str, Any]:
        return self.p.balance(account_id)

    def usage(self, trace_id: str, *, wait: float = 0.0) -> dict[str, Any]:
        """The usage record of ``trace_id``; ``wait`` polls for records written after the
        response (voids, client disconnects), with that deadline."""
        if wait <= 0:
            record = self.p.usage(trace_id)
            assert record is not None, f"no usage record for {trace_id}"
            return record
        return poll(lambda: self.p.usage(trace_id), timeout=wait, what=f"usage of {trace_id}")

    def audit_ok(self) -> AuditResult:
        result = self.p.audit()
        assert result.ok, "ledger audit failed:\n" + "\n".join(result.findings)
        return result

    # ---- the fake upstream
    def fake_requests(self, tag: str) -> list[dict[str, Any]]:
        """Requests the fake received whose body carried ``fake.tag == tag``, in order."""
        status, _, doc = http_json("GET", f"{self.fake_url}/_fake/requests")
        assert status == 200, doc
        return [
            r
            for r in doc
            if isinstance(r.get("body"), dict)
            and isinstance(r["body"].get("fake"), dict)
            and r["body"]["fake"].get("tag") == tag
        ]

    def fake_stats(self) -> dict[str, int]:
        status, _, doc = http_json("GET", f"{self.fake_url}/_fake/stats")
        assert status == 200, doc
        return doc  # type: ignore[no-any-return]

    def logs(self) -> str:
        parts = []
        for proc in (self.server, self.fake):
            if proc is not None:
                parts.append(f"----- {proc.name} ({proc.log}) -----\n{proc.tail()}")
        return "\n".join(parts)

    # ---- lifecycle
    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        data_dir = self.workdir / "data"
        fake_port, port = free_port(), free_port()
        self.fake_url = f"http://127.0.0.1:{fake_port}"
        self.url = f"http://127.0.0.1:{port}"
        self.fake = Proc(
            "fake upstream",
            [PYTHON, "-m", "tollway.fake_upstream", "--port", str(fake_port)],
            clean_env(),
            self.workdir / "fake.log",
        )
        self.prov = make_provisioner(self.db_url, data_dir)
        self.p.prepare()
        self.channels = provision_base(self.p, f"{self.fake_url}/v1")
        env = clean_env(
            TOLLWAY_DATA_DIR=str(data_dir),
            TOLLWAY_DATABASE_URL=self.db_url,
            TOLLWAY_SECRET_KEY=SECRET_KEY,
            TOLLWAY_HOST="127.0.0.1",
            TOLLWAY_PORT=str(port),
            TOLLWAY_REFRESH_INTERVAL_S="0.2",
            TOLLWAY_HOLD_TIMEOUT_S="5",
            TOLLWAY_HOLD_SWEEP_INTERVAL_S="0.5",
            TOLLWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_S="2",
        )
        self.server = Proc(
            "tollway server",
            [
                PYTHON,
                "-c",
                "from tollway.app import serve; from tollway.settings import Settings; serve(Settings())",
            ],
            env,
            self.workdir / "server.log",
        )
        self._wait_ready(self.fake, f"{self.fake_url}/_fake/stats", 200)
        self._wait_ready(self.server, f"{self.url}/v1/models", 401)
        return self

    def _wait_ready(self, proc: Proc, url: str, expected: int) -> None:
        def check() -> bool | None:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited during start-up:\n{proc.tail()}")
            try:
                status, _, _ = http_json("GET", url)
            except OSError:
                return None
            return True if status == expected else None

        try:
            poll(check, timeout=30, interval=0.1, what=f"{proc.name} at {url}")
        except AssertionError as exc:
            raise RuntimeError(f"{exc}\n{proc.tail()}") from None

    def stop(self) -> None:
        for proc in (self.server, self.fake):
            if proc is not None:
                proc.stop()
        if self.prov is not None:
            self.prov.close()


@contextlib.contextmanager
def running_stack(backend: str, db_url: str, workdir: Path) -> Iterator[Stack]:
    stack = Stack(backend, db_url, workdir)
    try:
        yield stack.start()
    finally:
        stack.stop()
