"""The end-to-end stack: a fake upstream and a Tollway server, each a real subprocess on
loopback, provisioned through :mod:`.provision`, and the oracles the tests read (balances,
usage records, the fake's recorded requests, the ledger audit).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import openai

from .provision import (
    PYTHON,
    SECRET_KEY,
    AuditResult,
    Provisioner,
    clean_env,
    make_provisioner,
    provision_base,
)

T = TypeVar("T")


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
    server_env: dict[str, str] = field(default_factory=dict)  # extra TOLLWAY_* for the server
    data_dir: Path | None = None

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
        self.data_dir = data_dir
        self.start_server(port)
        self._wait_ready(self.fake, f"{self.fake_url}/_fake/stats", 200)
        self._wait_ready(self.server, f"{self.url}/v1/models", 401)
        return self

    def start_server(self, port: int, log_name: str = "server.log") -> Proc:
        """Start (or restart, after :meth:`Proc.stop` or a kill) the Tollway server on ``port``."""
        self.url = f"http://127.0.0.1:{port}"
        self.server = self.spawn_server(port, log_name)
        return self.server

    def server_env_for(self, port: int) -> dict[str, str]:
        """The environment a Tollway server of this stack runs with, listening on ``port``."""
        assert self.data_dir is not None
        return clean_env(
            **{
                "TOLLWAY_DATA_DIR": str(self.data_dir),
                "TOLLWAY_DATABASE_URL": self.db_url,
                "TOLLWAY_SECRET_KEY": SECRET_KEY,
                "TOLLWAY_HOST": "127.0.0.1",
                "TOLLWAY_PORT": str(port),
                "TOLLWAY_REFRESH_INTERVAL_S": "0.2",
                "TOLLWAY_HOLD_TIMEOUT_S": "5",
                "TOLLWAY_HOLD_SWEEP_INTERVAL_S": "0.5",
                "TOLLWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_S": "2",
                # a SIGKILLed node's background jobs (hold sweeps) move to another node quickly
                "TOLLWAY_JOB_LEASE_TTL_S": "1.5",
                **self.server_env,
            }
        )

    def spawn_server(self, port: int, log_name: str, extra_env: dict[str, str] | None = None) -> Proc:
        """A Tollway server process on this stack's database and fake upstream (another node)."""
        env = {**self.server_env_for(port), **(extra_env or {})}
        return Proc(
            "tollway server" if log_name == "server.log" else f"tollway {log_name.removesuffix('.log')}",
            [
                PYTHON,
                "-c",
                "from tollway.app import serve; from tollway.settings import Settings; serve(Settings())",
            ],
            env,
            self.workdir / log_name,
        )

    def wait_server(self) -> None:
        assert self.server is not None
        self._wait_ready(self.server, f"{self.url}/v1/models", 401)

    def wait_proc(self, proc: Proc, url: str) -> None:
        """Wait until the Tollway server ``proc`` answers at ``url`` (its base URL)."""
        self._wait_ready(proc, f"{url}/v1/models", 401)

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
def running_stack(
    backend: str, db_url: str, workdir: Path, server_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    stack = Stack(backend, db_url, workdir, server_env=dict(server_env or {}))
    try:
        yield stack.start()
    finally:
        stack.stop()
