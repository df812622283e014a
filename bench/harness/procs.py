"""Starting, watching and stopping the processes of one benchmark run.

Every process is started in its own session, so it (and anything it forks) can be stopped by
its own process-group id and nothing else is touched. CPU time is read from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pids_named(comm: str) -> list[int]:
    """Every live process whose name (``/proc/<pid>/comm``) is ``comm``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                name = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if name == comm:
                out.append(int(entry))
    return out


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def group_pids(self) -> list[int]:
        """Every live process of this process's session/group (the server and its children)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.pid:  # pgrp
                pids.append(int(entry))
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the whole process group so far (all threads)."""
        return sum(cpu_seconds_of(pid) for pid in self.group_pids())

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(5)


def start(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Proc:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the child
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    popen = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    log.close()
    return Proc(name, popen, log_path)


def http(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class NotReady(Exception):
    """The server is up but answers wrongly; waiting longer will not help."""


def wait_until(
    proc: Proc, check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited (code {proc.popen.returncode}) before {what}:\n{proc.log_tail()}"
            )
        try:
            if check():
                return
            last = getattr(check, "last", "not ready")
        except NotReady as exc:
            raise RuntimeError(f"{proc.name} is up but not working: {exc}\n{proc.log_tail()}") from exc
        except Exception as exc:  # connection refused while starting, etc.
            last = repr(exc)
        time.sleep(interval)
    raise RuntimeError(
        f"{proc.name}: timed out after {timeout:.0f}s waiting for {what} (last: {last}):\n{proc.log_tail()}"
    )


class chat_ok:
    """A readiness check: one real chat completion answered 200 with a JSON body. A server
    that answers HTTP but not 200 for ``grace`` seconds is given up on (NotReady)."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes, grace: float = 20.0):
        self.url = url
        self.headers = {**headers, "Content-Type": "application/json"}
        self.body = body
        self.grace = grace
        self.first_answer: float | None = None
        self.last = "no attempt"

    def __call__(self) -> bool:
        status, data = http("POST", self.url, body=self.body, headers=self.headers, timeout=10)
        if status == 200 and isinstance(json.loads(data), dict):
            return True
        self.last = f"HTTP {status}: {data[:300]!r}"
        now = time.monotonic()
        if self.first_answer is None:
            self.first_answer = now
        elif now - self.first_answer > self.grace:
            raise NotReady(self.last)
        return False
