"""The "Scale-out" section of bench/RESULTS.md, written by bench/scaleout.py between its markers."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

BEGIN = "<!-- scaleout:begin (written by bench/scaleout.py) -->"
END = "<!-- scaleout:end -->"
LABEL = {
    "direct": "direct (fake upstream)",
    "tollway": "Tollway, 1 worker, SQLite (embedded default)",
    "tollway-pg": "Tollway, 1 worker, PostgreSQL + Redis",
    "tollway-2w": "Tollway, `--workers 2`, PostgreSQL + Redis",
    "portkey": "Portkey gateway",
    "litellm": "LiteLLM Proxy",
}
# The summary table of the full harness run before this work (bench/RESULTS.md, 2026-11-22).
BEFORE_ADDED_P50_MS = 1.127
BEFORE_ONE_P99_MS = 16.206


def _f(v: float | None, fmt: str = "{:,.2f}") -> str:
    return "–" if v is None else fmt.format(v)


def _ratio(label: str, mine: float | None, theirs: float | None, need: float) -> str:
    if not mine or not theirs:
        return f"| {label} | – | ≥ {need:g}x | not measured |"
    r = mine / theirs
    return f"| {label} | {r:.2f}x | ≥ {need:g}x | {'yes' if r >= need else 'NO'} |"


def section(results: dict[str, Any]) -> list[str]:
    s: dict[str, dict[str, Any]] = results.get("summary", {})
    v = results.get("versions", {})
    m = results.get("machine", {})
    cfg = results.get("config", {})
    out = [
        "## Scale-out: one worker, two workers, the shared backend (issue 9)",
        "",
        f"- **Command**: `{results['command'].strip()}` (from the repository root)",
        f"- **Date**: {results['date']} (wall time {results.get('wall_seconds', '–')} s); "
        f"machine: {m.get('nproc', '?')} CPUs, {m.get('cpu', '?')}, load at start {m.get('loadavg_at_start')}",
        f"- **Versions**: Tollway `{v.get('tollway', '?')}`; Portkey gateway {v.get('portkey_gateway', '?')}; "
        f"LiteLLM {v.get('litellm', '?')}",
        f"- **Raw output**: `{results['out_dir']}/`",
        f"- Same request and fake upstream as above; wrk {cfg.get('connections')} connections, 2 threads, "
        f"{cfg.get('seconds')} s per throughput run, {cfg.get('latency_seconds')} s per one-connection run, "
        f"{cfg.get('runs')} runs of each in rotating order; medians. Billing on for every Tollway target "
        "(holds, settlement, usage records); the Redis-backed targets admit through the Redis scripts. "
        f"PostgreSQL `synchronous_commit` = {cfg.get('pg_synchronous_commit', 'on')}.",
        "- Everything (wrk, the fake upstream, PostgreSQL, Redis, the gateway) shares the 2 cores: the "
        "ratios inside this run are what it is for.",
        "",
        "| target | req/s (64 conn) | runs | p50 ms | p99 ms | 1-conn p50 ms | 1-conn p99 ms | added p50 ms "
        "| gateway CPU µs/req | PostgreSQL CPU µs/req | machine busy cores |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in s.items():
        out.append(
            f"| {LABEL.get(name, name)} | {_f(row['rps'], '{:,.0f}')} | {', '.join(map(str, row['rps_runs']))} "
            f"| {_f(row['p50_ms'])} | {_f(row['p99_ms'])} | {_f(row['one_p50_ms'], '{:.3f}')} "
            f"| {_f(row['one_p99_ms'], '{:.3f}')} | {_f(row['added_p50_ms'], '{:.3f}')} "
            f"| {_f(row['cpu_us'], '{:,.0f}')} | {_f(row.get('postgres_cpu_us'), '{:,.0f}')} "
            f"| {_f(row.get('busy_cores'))} |"
        )
    rps = {k: r["rps"] for k, r in s.items()}
    tw = s.get("tollway", {})
    out += [
        "",
        "| measure | this run | target | met |",
        "|---|---:|---:|---|",
        _ratio(
            "`--workers 2` / 1 worker (both PostgreSQL + Redis)",
            rps.get("tollway-2w"),
            rps.get("tollway-pg"),
            1.7,
        ),
        _ratio("`--workers 2` / Portkey", rps.get("tollway-2w"), rps.get("portkey"), 2.5),
        _ratio("`--workers 2` / 1 worker on SQLite", rps.get("tollway-2w"), rps.get("tollway"), 1.0),
        f"| added p50 at 1 connection, SQLite (before: {BEFORE_ADDED_P50_MS:.3f} ms) | "
        f"{_f(tw.get('added_p50_ms'), '{:.3f}')} ms | no worse | "
        f"{_met(tw.get('added_p50_ms'), BEFORE_ADDED_P50_MS * 1.1)} |",
        f"| 1-connection p99, SQLite (before: {BEFORE_ONE_P99_MS:.1f} ms) | "
        f"{_f(tw.get('one_p99_ms'), '{:.3f}')} ms | fixed | {_met(tw.get('one_p99_ms'), BEFORE_ONE_P99_MS / 3)} |",
        "",
    ]
    out += _redis(s)
    out += _profile(results.get("profile", {}))
    out += _books(results.get("books", {}))
    notes = results.get("notes") or []
    if notes:
        out += ["Notes of the run:", "", *[f"- {n}" for n in notes], ""]
    return out


def _met(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return "yes" if value <= limit else "NO"


def _redis(s: dict[str, dict[str, Any]]) -> list[str]:
    runs = [r for name in ("tollway-2w", "tollway-pg") for r in s.get(name, {}).get("redis", [])]
    two = s.get("tollway-2w", {})
    if not runs or not two.get("redis"):
        return []

    def med(key: str, rows: list[dict[str, Any]]) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    per_call = med("commands_per_call", runs)
    in_cmd = med("usec_in_commands_per_call", runs)
    cpu = med("redis_cpu_us_per_call", two["redis"])
    lines = [
        "**What one Redis sustains.** Measured over the throughput runs of the Redis-backed targets "
        "(`INFO commandstats`, and Redis's own process CPU from /proc during the `--workers 2` runs):",
        "",
        f"- Redis commands per call: {_f(per_call)}; time inside those commands: {_f(in_cmd)} µs per call; "
        f"Redis process CPU (commands + network I/O): {_f(cpu, '{:.1f}')} µs per call.",
    ]
    if cpu and two.get("rps"):
        capacity = 1e6 / cpu  # Redis executes commands on one thread: one core's worth
        nodes = capacity / two["rps"]
        lines.append(
            f"- One Redis core therefore sustains about {capacity:,.0f} calls/s; a 2-core node here serves "
            f"{two['rps']:,.0f} calls/s, so one Redis serves about {nodes:.0f} such nodes before it is the "
            "bottleneck (more with pipelining-friendly clients, fewer on a Redis that also does other work)."
        )
    return [*lines, ""]


def _profile(p: dict[str, dict[str, Any]]) -> list[str]:
    """CPU per call by area (py-spy, every thread), SQLite against PostgreSQL + Redis."""
    rows: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for name, doc in p.items():
        per = doc.get("per_request") or {}
        totals[name] = per.get("us_per_request_total") or 0.0
        for _thread, areas in (per.get("areas") or {}).items():
            for area, us in areas:
                rows.setdefault(area, {}).setdefault(name, 0.0)
                rows[area][name] += us
    if not rows:
        return []
    names = list(p)
    raw = ", ".join("`" + d["raw_file"] + "`" for d in p.values())
    lines = [
        "**Where the CPU of a call goes** (py-spy at 200 Hz over every thread of the one-worker "
        f"targets under the 64-connection load; raw stacks: {raw}):",
        "",
        "| area | " + " | ".join(f"{LABEL.get(n, n)} µs/call" for n in names) + " |",
        "|---|" + "---:|" * len(names),
        "| **sampled CPU per call** | " + " | ".join(f"**{totals[n]:,.0f}**" for n in names) + " |",
    ]
    ordered = sorted(rows.items(), key=lambda kv: -max(kv[1].values()))
    for area, by in ordered[:14]:
        lines.append(f"| {area} | " + " | ".join(f"{by.get(n, 0.0):,.0f}" for n in names) + " |")
    return [*lines, ""]


def _books(books: dict[str, dict[str, Any]]) -> list[str]:
    if not books:
        return []
    lines = [
        "**The books after the run** (every Tollway target; responses counted by wrk, records in its database):",
        "",
        "| target | 200 responses | ok usage records | holds still open | `tollway audit` |",
        "|---|---:|---:|---:|---|",
    ]
    for name, b in books.items():
        audit = "clean" if b["audit_ok"] else f"FINDINGS {b['audit_findings']}"
        lines.append(
            f"| {LABEL.get(name, name)} | {b['responses_200']:,} | {b['usage_records_ok']:,} "
            f"| {b['holds_active']} | {audit} |"
        )
    return [*lines, ""]


def write_section(results: dict[str, Any], path: Path) -> None:
    body = "\n".join([BEGIN, *section(results), END])
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + body + tail
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.write_text(text)
