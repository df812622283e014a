"""Scale-out benchmark (issue 9): Tollway on one worker and on ``serve --workers 2`` with the
shared backend (PostgreSQL + Redis), billing on, side by side with the embedded default (SQLite),
the Portkey gateway and LiteLLM Proxy, in one run.

    .venv/bin/python bench/scaleout.py            # from the repository root; about 15 minutes

Every target is measured ``--runs`` times in rotating order (throughput at 64 connections, then
latency at one connection); the report gives medians. Afterwards each Tollway target's books
are checked: a usage record for every 200 it answered, no hold left open, ``tollway audit``
clean. Redis's share of the work is measured from its own counters (``INFO commandstats``) and
its process CPU during the two-worker throughput runs, and projected to how many calls/s one
Redis sustains. Writes ``bench/out/<stamp>/scaleout.json`` and the "Scale-out" section of
``bench/RESULTS.md`` (between its markers; the rest of the file is left as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # type: ignore[import-untyped]
import redis
from harness import envs, procs, tollway_side
from harness import profile as prof
from harness.bench_consts import BENCH, FAKE_KEY, LITELLM_KEY, MODEL, PROMPT, ROOT
from harness.measure import Target, run_wrk
from harness.scaleout_report import write_section

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# A Redis of the run's own (redis-server on a free port, no persistence): its counters and CPU
# are Tollway's alone. BENCH_REDIS_URL uses an existing one instead.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")
TOLLWAYS = ("tollway", "tollway-pg", "tollway-2w")
ALL = ("direct", *TOLLWAYS, "portkey", "litellm")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=int, default=15, help="throughput window per run (s)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--latency-seconds", type=int, default=10, help="one-connection window (s)")
    p.add_argument("--warmup-seconds", type=int, default=3)
    p.add_argument("--targets", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument(
        "--pg-synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="the bench databases' synchronous_commit (off: a diagnosis of commit waits, not a setting "
        "Tollway recommends)",
    )
    p.add_argument("--profile-seconds", type=int, default=10, help="py-spy per Tollway target; 0 = none")
    p.add_argument("--results", default=str(BENCH / "RESULTS.md"))
    return p.parse_args()


class ScaleOut:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.out = BENCH / "out" / f"scaleout-{self.stamp}"
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True)
        self.python = sys.executable
        self.procs: list[procs.Proc] = []
        self.targets: dict[str, Target] = {}
        self.tw: dict[str, dict[str, Any]] = {}  # Tollway target -> env, data dir, account, db
        self.ok_total: dict[str, int] = {}
        self.redis_url = REDIS_URL
        self.results: dict[str, Any] = {
            "command": "python bench/scaleout.py " + " ".join(sys.argv[1:]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "out_dir": str(self.out.relative_to(ROOT)),
            "config": vars(args),
            "throughput": {},
            "latency": {},
            "redis": {},
            "books": {},
            "targets": {},
            "notes": [],
        }
        msg = [{"role": "user", "content": PROMPT}]
        self.body = json.dumps({"model": MODEL, "messages": msg, "max_tokens": 16}).encode()
        self.body_file = self.out / "body.json"
        self.body_file.write_bytes(self.body)

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        wanted = self.args.targets.split(",")
        log = self.logs / "install.log"
        self.wrk_bin = envs.ensure_wrk(log)
        self.results["machine"] = envs.machine()
        self.results["versions"] = envs.versions(self.wrk_bin, self.python)
        ports = procs.free_ports(9)
        if not self.redis_url:
            port = ports.pop()
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            self.procs.append(procs.start("redis", [*argv, "--appendonly", "no"], self.logs))
            self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.redis.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        fake_port = ports.pop()
        self.fake_base = f"http://127.0.0.1:{fake_port}/v1"
        fake = procs.start(
            "fake-upstream",
            [self.python, "-m", "tollway.fake_upstream", "--port", str(fake_port), "--no-record"],
            self.logs,
        )
        self.procs.append(fake)
        self.fake = fake
        direct = Target("direct", f"http://127.0.0.1:{fake_port}", {"Authorization": f"Bearer {FAKE_KEY}"})
        procs.wait_until(fake, procs.chat_ok(direct.url, direct.headers, self.body), 30, "ready")
        if "direct" in wanted:
            self.targets["direct"] = direct
        for name in TOLLWAYS:
            if name in wanted:
                self._start_tollway(name, ports.pop())
        if "portkey" in wanted:
            self._start_portkey(ports.pop(), fake_port, log)
        if "litellm" in wanted:
            self._start_litellm(ports.pop(), log)

    def _start_tollway(self, name: str, port: int) -> None:
        data = self.out / f"{name}-data"
        env: dict[str, str] = {"TOLLWAY_LOG_LEVEL": "warning"}
        workers = 2 if name == "tollway-2w" else 1
        how = "tollway serve (SQLite, the embedded default)"
        if name != "tollway":
            db = f"bench_{self.stamp.lower()}_{name.replace('-', '_')}"
            asyncio.run(_pg(f'CREATE DATABASE "{db}"'))
            if self.args.pg_synchronous_commit == "off":
                asyncio.run(_pg(f'ALTER DATABASE "{db}" SET synchronous_commit = off'))
            prefix = f"bench:{self.stamp}:{name}:{uuid.uuid4().hex[:6]}:"
            env |= {
                "TOLLWAY_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{db}",
                "TOLLWAY_REDIS_URL": self.redis_url,
                "TOLLWAY_REDIS_PREFIX": prefix,
            }
            how = f"tollway serve --workers {workers} (PostgreSQL + Redis, shared admission)"
            self.tw[name] = {"db": db, "prefix": prefix}
        print(f"provisioning {name}", flush=True)
        prov = tollway_side.provision(self.python, data, self.fake_base, MODEL, extra_env=env)
        argv = [self.python, "-m", "tollway.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers > 1:
            argv += ["--workers", str(workers)]
        proc = procs.start(name, argv, self.logs, env={"TOLLWAY_DATA_DIR": str(data), **env})
        self.procs.append(proc)
        t = Target(name, f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {prov.secret}"}, proc)
        procs.wait_until(proc, procs.chat_ok(t.url, t.headers, self.body), 90, "ready")
        self.ok_total[name] = 1  # the readiness call
        self.targets[name] = t
        self.tw.setdefault(name, {}).update(env=env, data=data, account=prov.account_id)
        self.results["targets"][name] = {"how": how, "workers": workers}

    def _start_portkey(self, port: int, fake_port: int, log: Path) -> None:
        pk_bin = envs.ensure_portkey(log)
        argv = ["node", "--require", str(BENCH / "portkey_loopback.cjs"), str(pk_bin), f"--port={port}"]
        proc = procs.start("portkey", [*argv, "--headless"], self.logs)
        self.procs.append(proc)
        headers = {
            "Authorization": f"Bearer {FAKE_KEY}",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"http://127.0.0.1:{fake_port}/v1",
        }
        t = Target("portkey", f"http://127.0.0.1:{port}", headers, proc)
        procs.wait_until(proc, procs.chat_ok(t.url, t.headers, self.body), 60, "ready")
        self.targets["portkey"] = t
        self.results["targets"]["portkey"] = {"how": "Portkey gateway, one Node process"}

    def _start_litellm(self, port: int, log: Path) -> None:
        ll_bin = envs.ensure_litellm(log)
        argv = [str(ll_bin), "--config", str(BENCH / "litellm.yaml"), "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--num_workers", "1"]
        env = {"BENCH_FAKE_BASE": self.fake_base, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        proc = procs.start("litellm", argv, self.logs, env=env)
        self.procs.append(proc)
        t = Target("litellm", f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {LITELLM_KEY}"}, proc)
        procs.wait_until(proc, procs.chat_ok(t.url, t.headers, self.body), 180, "ready")
        self.targets["litellm"] = t
        self.results["targets"]["litellm"] = {"how": "LiteLLM Proxy, --num_workers 1, no database"}

    # ------------------------------------------------------------------ measuring
    def order(self, rep: int) -> list[Target]:
        ts = [self.targets[n] for n in ALL if n in self.targets]
        k = rep % len(ts)
        return ts[k:] + ts[:k]

    def wrk(self, t: Target, tag: str, seconds: int, connections: int, threads: int) -> dict[str, Any]:
        watched = [self.fake, *([t.proc] if t.proc else [])]
        redis_before = self._redis_counters() if t.name != "direct" else None
        pg_before = _postgres_cpu_s()
        doc = run_wrk(
            self.wrk_bin,
            t,
            body_file=self.body_file,
            seconds=seconds,
            connections=connections,
            threads=threads,
            out_dir=self.out,
            tag=tag,
            cpu_procs=watched,
        )
        if redis_before is not None and t.name in ("tollway-pg", "tollway-2w"):
            doc["redis"] = _delta(redis_before, self._redis_counters(), doc["ok"])
            pg_cpu = _postgres_cpu_s() - pg_before
            doc["postgres_cpu_us_per_call"] = pg_cpu * 1e6 / doc["ok"] if doc["ok"] else None
        if t.name in self.ok_total:
            self.ok_total[t.name] += doc["ok"]
        lat = doc["latency_us"]
        print(
            f"  {tag:<30} {doc['rps']:>9.1f} req/s  p50 {lat['p50'] / 1000:7.2f} ms  "
            f"p99 {lat['p99'] / 1000:7.2f} ms  ok {doc['ok']}  failed {doc['failed']}",
            flush=True,
        )
        if doc["failed"]:
            self.results["notes"].append(f"{tag}: {doc['failed']} non-200 ({doc['non_200']})")
        return doc

    def measure(self) -> None:
        a = self.args
        for t in self.order(0):
            self.wrk(t, f"warmup-{t.name}", a.warmup_seconds, a.connections, 2)
        for rep in range(a.runs):
            for t in self.order(rep):
                doc = self.wrk(t, f"throughput-{t.name}-{rep + 1}", a.seconds, a.connections, 2)
                self.results["throughput"].setdefault(t.name, []).append(doc)
        for rep in range(a.runs):
            for t in self.order(rep):
                doc = self.wrk(t, f"latency-{t.name}-{rep + 1}", a.latency_seconds, 1, 1)
                self.results["latency"].setdefault(t.name, []).append(doc)

    def _redis_counters(self) -> dict[str, Any]:
        stats = self.redis.info("commandstats")
        calls = sum(v["calls"] for v in stats.values())
        usec = sum(v["usec"] for v in stats.values())
        cpu_s = procs.cpu_seconds_of(int(self.redis.info("server")["process_id"]))
        per = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
        return {"calls": calls, "usec": usec, "cpu_s": cpu_s, "per": per}

    def profile(self) -> None:
        """py-spy on the one-worker targets under the throughput load: where each spends its CPU
        per call (SQLite against PostgreSQL + Redis shows what the shared backend costs)."""
        secs = self.args.profile_seconds
        py_spy = envs.TOOLS_VENV / "bin" / "py-spy"
        if secs <= 0 or not py_spy.exists():
            return
        for name in ("tollway", "tollway-pg"):
            t = self.targets.get(name)
            if t is None or t.proc is None:
                continue
            raw = self.out / f"pyspy-{name}.txt"  # not profile-*: wrk writes those
            box: dict[str, Any] = {}
            load = threading.Thread(
                target=lambda t=t, box=box: box.update(
                    doc=self.wrk(t, f"profile-{t.name}", secs + 4, self.args.connections, 2)
                )
            )
            load.start()
            time.sleep(2)
            error = prof.record(py_spy, t.proc.pid, secs, raw, rate=200)
            load.join()
            if error:
                self.results["notes"].append(f"profile of {name}: {error}")
                continue
            rps = box["doc"]["rps"] if "doc" in box else None
            calls = int(rps * secs) if rps else None
            summary = prof.analyse(raw, secs, 200, requests=calls)
            self.results.setdefault("profile", {})[name] = {
                "raw_file": str(raw.relative_to(ROOT)),
                "calls_while_sampled": calls,
                "per_request": summary["per_request"],
                "under_tollway": summary["under_tollway"][:15],
            }

    # ------------------------------------------------------------------ the books
    def check_books(self) -> None:
        time.sleep(2.0)  # settlements are committed before a response; holds close with them
        for name, info in self.tw.items():
            if name not in self.targets:
                continue
            env = {"TOLLWAY_DATA_DIR": str(info["data"]), **info["env"]}
            counts = asyncio.run(_usage_counts(info.get("db")))
            if info.get("db") is None:
                counts = tollway_side.usage_counts(info["data"])
            proc = _run_cli(self.python, env, "audit", "--json")
            audit = json.loads(proc) if proc else {}
            self.results["books"][name] = {
                "responses_200": self.ok_total[name],
                "usage_records_ok": counts.get("ok:json", 0),
                "holds_active": counts.get("holds_active"),
                "audit_ok": bool(audit.get("ok")),
                "audit_findings": [f.get("code") for f in audit.get("findings", [])][:10],
            }
            print(f"  books of {name}: {self.results['books'][name]}", flush=True)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        for info in self.tw.values():
            if info.get("db"):
                asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{info["db"]}" WITH (FORCE)'))
            if info.get("prefix") and REDIS_URL:  # a Redis of the run's own is gone already
                for key in self.redis.scan_iter(match=info["prefix"] + "*", count=1000):
                    self.redis.delete(key)


def _postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL process on the machine (every backend, the WAL writer)."""
    return sum(map(procs.cpu_seconds_of, procs.pids_named("postgres")))


def _delta(before: dict[str, Any], after: dict[str, Any], ok: int) -> dict[str, Any]:
    calls = after["calls"] - before["calls"]
    cpu = after["cpu_s"] - before["cpu_s"]
    per = {k: n - before["per"].get(k, 0) for k, n in after["per"].items()}
    return {
        "per_call_by_command": {k: round(n / ok, 3) for k, n in sorted(per.items()) if n and ok},
        "commands": calls,
        "commands_per_call": calls / ok if ok else None,
        "usec_in_commands_per_call": (after["usec"] - before["usec"]) / ok if ok else None,
        "redis_cpu_s": round(cpu, 3),
        "redis_cpu_us_per_call": cpu * 1e6 / ok if ok else None,
    }


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _usage_counts(db: str | None) -> dict[str, int]:
    if db is None:
        return {}
    conn = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{db}")
    try:
        ok = await conn.fetchval("select count(*) from usage_records where status = 'ok' and not stream")
        holds = await conn.fetchval("select count(*) from holds where state = 'active'")
        return {"ok:json": int(ok), "holds_active": int(holds)}
    finally:
        await conn.close()


def _run_cli(python: str, env: dict[str, str], *args: str) -> str:
    import subprocess

    proc = subprocess.run(
        [python, "-m", "tollway.cli.main", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=300,
    )
    return proc.stdout


def summarise(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def med(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None]
        return statistics.median(vals) if vals else None

    out: dict[str, dict[str, Any]] = {}
    direct_p50 = med([d["latency_us"]["p50"] for d in results["latency"].get("direct", [])])
    for name in ALL:
        thr = results["throughput"].get(name, [])
        lat = results["latency"].get(name, [])
        if not thr:
            continue
        p50 = med([d["latency_us"]["p50"] for d in lat])
        out[name] = {
            "rps": med([d["rps"] for d in thr]),
            "rps_runs": [round(d["rps"]) for d in thr],
            "p50_ms": med([d["latency_us"]["p50"] / 1000 for d in thr]),
            "p99_ms": med([d["latency_us"]["p99"] / 1000 for d in thr]),
            "one_p50_ms": None if p50 is None else p50 / 1000,
            "one_p99_ms": med([d["latency_us"]["p99"] / 1000 for d in lat]),
            "added_p50_ms": None if p50 is None or direct_p50 is None else (p50 - direct_p50) / 1000,
            "cpu_us": med(
                [d["cpu_us_per_ok"].get(name) for d in thr if d["cpu_us_per_ok"].get(name) is not None]
            ),
            "redis": [d["redis"] for d in thr if "redis" in d],
            "postgres_cpu_us": med([d.get("postgres_cpu_us_per_call") for d in thr]),
            "busy_cores": med([d["system"]["busy_cores"] for d in thr]),
        }
    return out


def main() -> int:
    args = parse_args()
    bench = ScaleOut(args)
    started = time.monotonic()
    try:
        bench.start()
        bench.measure()
        bench.profile()
        bench.check_books()
    finally:
        bench.stop()
        bench.results["wall_seconds"] = round(time.monotonic() - started, 1)
        bench.results["summary"] = summarise(bench.results)
        (bench.out / "scaleout.json").write_text(json.dumps(bench.results, indent=1, default=str))
        write_section(bench.results, Path(args.results))
        print(f"wrote {args.results} and {bench.out.relative_to(ROOT)}/scaleout.json", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
