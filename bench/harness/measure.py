"""The measurements: wrk runs (throughput, one-connection latency) and streamed calls."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from harness.procs import Proc

BENCH = Path(__file__).resolve().parent.parent
LUA = BENCH / "chat.lua"
PATH = "/v1/chat/completions"


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:PORT
    headers: dict[str, str]
    proc: Proc | None = None  # the gateway process (None for direct: the fake itself is shared)
    streams: bool = True  # measured in the streaming comparison
    available: bool = True
    problem: str = ""
    path: str = PATH  # request path (/v1/messages for the Anthropic surface)
    body_file: Path | None = None  # wrk body; None = the run's default chat completion body
    wire: str = "openai"  # stream shape: "openai" (data: ... [DONE]) or "anthropic" (event: ... message_stop)
    gateway: str = ""  # the gateway this target goes through ("" = its name): CPU and billing

    @property
    def url(self) -> str:
        return self.base + self.path

    @property
    def via(self) -> str:
        return self.gateway or self.name


def run_wrk(
    wrk: str,
    target: Target,
    *,
    body_file: Path,
    seconds: int,
    connections: int,
    threads: int,
    out_dir: Path,
    tag: str,
    cpu_procs: list[Proc],
) -> dict[str, Any]:
    """One wrk run; returns the Lua summary plus CPU seconds used by each watched process."""
    result_file = out_dir / f"{tag}.json"
    text_file = out_dir / f"{tag}.txt"
    env = dict(
        os.environ,
        BENCH_BODY_FILE=str(target.body_file or body_file),
        BENCH_PATH=target.path,
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in target.headers.items()),
        BENCH_SECONDS=str(seconds),
        BENCH_RESULT=str(result_file),
        BENCH_CONNS=str(connections // threads),
    )
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds + 2}s",  # bound only: the script stops each thread after `seconds` + drain
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(LUA),
        target.base,
    ]
    result_file.unlink(missing_ok=True)
    cpu_before = {p.name: p.cpu_seconds() for p in cpu_procs}
    sys_before = system_cpu()
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 60)
    wall = time.monotonic() - started
    sys_after = system_cpu()
    cpu = {p.name: round(p.cpu_seconds() - cpu_before[p.name], 3) for p in cpu_procs}
    text_file.write_text(" ".join(argv) + "\n\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"wrk failed ({proc.returncode}) against {target.name}: {proc.stderr}")
    doc: dict[str, Any] = json.loads(result_file.read_text())
    window = doc["window_s"] or 1e-9
    doc["rps"] = doc["ok"] / window
    doc["drained"] = doc["parked"] >= connections
    doc["cpu_s"] = cpu
    doc["cpu_us_per_ok"] = {k: (v * 1e6 / doc["ok"] if doc["ok"] else None) for k, v in cpu.items()}
    doc["wall_s"] = round(wall, 2)
    doc["system"] = system_delta(sys_before, sys_after)
    doc["argv"] = argv
    return doc


def system_cpu() -> list[int]:
    """The aggregate 'cpu' line of /proc/stat (jiffies: user nice system idle iowait irq softirq
    steal ...)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def system_delta(a: list[int], b: list[int]) -> dict[str, float]:
    d = [y - x for x, y in zip(a, b, strict=False)]
    total = sum(d[:8]) or 1
    idle = d[3] + d[4]
    ncpu = os.cpu_count() or 1
    return {
        "busy_cores": round((total - idle) / total * ncpu, 3),  # whole machine, all processes
        "steal_pct": round(100 * d[7] / total, 2) if len(d) > 7 else 0.0,
        "busy_cpu_s": round((total - idle) / os.sysconf("SC_CLK_TCK"), 3),
    }


# --- streaming -----------------------------------------------------------------------------


async def _streams(
    url: str, headers: dict[str, str], body: bytes, n: int, wire: str = "openai"
) -> dict[str, Any]:
    """OpenAI streams: first event = first ``data:`` line, complete at ``data: [DONE]``.
    Anthropic streams: first event = first ``event:`` or ``data:`` line, complete at the
    ``message_stop`` event."""
    anthropic = wire == "anthropic"
    first_marks = (b"data:", b"event:") if anthropic else (b"data:",)
    ttfc: list[float] = []
    total: list[float] = []
    errors: list[str] = []
    events: list[int] = []
    connector = aiohttp.TCPConnector(limit=1, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    hdrs = {**headers, "Content-Type": "application/json", "Accept": "text/event-stream"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(n):
            t0 = time.perf_counter()
            first: float | None = None
            count = 0
            done = False
            try:
                async with session.post(url, data=body, headers=hdrs) as resp:
                    if resp.status != 200:
                        errors.append(f"HTTP {resp.status}: {(await resp.text())[:200]}")
                        continue
                    async for line in resp.content:
                        if line.startswith(first_marks):
                            if first is None:
                                first = time.perf_counter()
                            if anthropic:
                                if line.startswith(b"event:"):
                                    count += 1
                                    if line.split(b":", 1)[1].strip() == b"message_stop":
                                        done = True
                            else:
                                count += 1
                                if line.strip() == b"data: [DONE]":
                                    done = True
                t1 = time.perf_counter()
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if first is None or not done:
                end = "message_stop" if anthropic else "[DONE]"
                errors.append(f"stream ended without {'data' if first is None else end}")
                continue
            ttfc.append((first - t0) * 1000)
            total.append((t1 - t0) * 1000)
            events.append(count)
    return {
        "n": n,
        "ok": len(ttfc),
        "errors": errors[:10],
        "error_count": len(errors),
        "ttfc_ms": ttfc,
        "total_ms": total,
        "ttfc_p50_ms": statistics.median(ttfc) if ttfc else None,
        "ttfc_p90_ms": _pct(ttfc, 90),
        "total_p50_ms": statistics.median(total) if total else None,
        "total_p90_ms": _pct(total, 90),
        "events_per_stream": statistics.median(events) if events else None,
    }


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def run_streams(target: Target, body: bytes, n: int) -> dict[str, Any]:
    """``n`` sequential streamed calls (chat completions or messages) over one keep-alive connection."""
    return asyncio.run(_streams(target.url, target.headers, body, n, target.wire))
