"""Console page timings with 1,000,000 usage records (DESIGN.md §10: every page under 200 ms).

    .venv/bin/python bench/console_pages.py                 # SQLite, 1M records, ~5 minutes
    .venv/bin/python bench/console_pages.py --backend both  # also PostgreSQL (throwaway database)

For each back-end: a throwaway database is migrated and seeded (accounts, keys, orders, a heavy
customer holding a large share of the calls, usage records spread over --days days), the daily
rollup is run (timed), Tollway is started as a real server (``tollway serve``) on a free
loopback port, sessions are made directly through ``tollway.api.sessions`` for the heavy
customer and an admin (no login form, so two-factor does not matter), and every console page
is fetched --runs times after one warm-up (keep-alive connection). Median and p95 per page are
printed and, with --results, written into that file between the ``console-pages`` markers.
Not part of ``.ci/run`` / ``scripts/test``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
MODELS = [  # (model, weight, official nano per call-ish scale)
    ("gpt-4o-mini", 30, 150),
    ("gpt-4o", 15, 2500),
    ("claude-sonnet-4-5", 15, 3000),
    ("claude-haiku-4-5", 12, 1000),
    ("gemini-2.5-flash", 10, 300),
    ("gemini-2.5-pro", 6, 1250),
    ("text-embedding-3-small", 8, 20),
    ("o4-mini", 4, 1100),
]
STATUSES = [("ok", 970), ("upstream_failed", 15), ("client_disconnected", 10), ("upstream_rejected", 5)]
MARK_START, MARK_END = "<!-- console-pages:start -->", "<!-- console-pages:end -->"


def now_utc() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------ seeding


async def provision(url: str, n_accounts: int, n_orders: int, rng: random.Random) -> dict[str, Any]:
    """Migrate, then accounts (bulk), keys, credits and orders. Returns ids for the usage seed."""
    from sqlalchemy import insert

    from tollway.services.admin import AdminService
    from tollway.settings import normalise_database_url
    from tollway.store.db import make_engine, migrate
    from tollway.store.secret_box import SecretBox
    from tollway.store.tables import account_totp, accounts, api_keys, orders

    engine = make_engine(normalise_database_url(url))
    await migrate(engine)
    svc = AdminService(engine, SecretBox("bench-console-pages"), actor="bench")
    await svc.upsert_group("default", create=True, multiplier="1")
    heavy = (await svc.create_account("heavy@bench.test"))["id"]
    admin = (await svc.create_account("admin@bench.test", role="admin"))["id"]
    await svc.credit(heavy, "100000", kind="cash", reason="bench funding")
    heavy_keys = [(await svc.create_key(heavy, name=f"heavy-{i}", group="default"))["id"] for i in range(6)]
    created = now_utc() - timedelta(days=120)
    acc_rows, key_rows, owners = [], [], []
    for i in range(n_accounts):
        aid = str(uuid.uuid4())
        acc_rows.append({"id": aid, "email": f"c{i}@bench.test", "password_hash": None, "role": "customer",
                         "status": "active", "created_at": created})  # fmt: skip
        keys = []
        for k in range(rng.choice((1, 1, 2, 3))):
            kid = str(uuid.uuid4())
            key_rows.append({"id": kid, "account_id": aid, "name": f"key {k}", "key_hash": uuid.uuid4().hex * 2,
                             "prefix": "tw-bench", "group_name": "default", "status": "enabled", "models": "[]",
                             "ip_allow": "[]", "created_at": created})  # fmt: skip
            keys.append(kid)
        owners.append((aid, keys))
    order_rows = []
    now = now_utc()
    for i in range(n_orders):
        aid = rng.choice(owners)[0] if i % 5 else heavy
        at = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        state = rng.choice(("credited", "credited", "credited", "expired", "pending"))
        minor = rng.choice((1000, 2000, 5000, 10000))
        order_rows.append({"order_number": f"B{i:09d}", "account_id": aid, "provider": "manual", "state": state,
                           "currency": rng.choice(("USD", "CNY")), "amount_minor": minor, "price_per_credit": "1",
                           "credits_nano": minor * 10_000_000, "created_by": "bench", "created_at": at,
                           "updated_at": at, "expires_at": at + timedelta(hours=2),
                           "credited_at": at if state == "credited" else None})  # fmt: skip
    async with engine.begin() as conn:
        # staff sessions count only once two-factor is on: mark the admin's as confirmed
        await conn.execute(insert(account_totp).values(account_id=admin, secret="bench", confirmed_at=now))
        for table, rows in ((accounts, acc_rows), (api_keys, key_rows), (orders, order_rows)):
            for i in range(0, len(rows), 2000):
                await conn.execute(insert(table), rows[i : i + 2000])
    await engine.dispose()
    return {"heavy": heavy, "heavy_keys": heavy_keys, "admin": admin, "owners": owners}


def usage_rows(ids: dict[str, Any], n: int, days: int, heavy_share: float, rng: random.Random) -> Any:
    """Tuples of (trace, created_at, owner, key, model, status, tokens..., official, deduction)."""
    owners = ids["owners"]
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(owners))]  # a long tail of small accounts
    models = [m for m, _, _ in MODELS]
    mweights = [w for _, w, _ in MODELS]
    scale = {m: s for m, _, s in MODELS}
    statuses = [s for s, _ in STATUSES]
    sweights = [w for _, w in STATUSES]
    end = now_utc()
    span = days * 86400.0
    batch = 20_000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        heavy_n = int(m * heavy_share)
        picked = rng.choices(owners, weights=weights, k=m - heavy_n)
        mods = rng.choices(models, weights=mweights, k=m)
        sts = rng.choices(statuses, weights=sweights, k=m)
        out = []
        for i in range(m):
            if i < heavy_n:
                owner, key = ids["heavy"], rng.choice(ids["heavy_keys"])
            else:
                owner, keys = picked[i - heavy_n]
                key = rng.choice(keys)
            at = end - timedelta(seconds=rng.random() * span)
            inp, outp = rng.randint(50, 8000), rng.randint(1, 1500)
            official = (inp + 4 * outp) * scale[mods[i]]
            ok = sts[i] == "ok"
            out.append((f"req_{uuid.uuid4().hex[:24]}", at, owner, key, mods[i], sts[i], inp, outp,
                        official if ok else 0, (official * 3 // 10) if ok else 0))  # fmt: skip
        yield out


def sqlite_seed(path: Path, ids: dict[str, Any], args: argparse.Namespace, rng: random.Random) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    cols = ("trace_id, created_at, owner_id, key_id, endpoint, model_requested, model_billed, group_name, "
            "multiplier, stream, status, http_status, error_code, input_tokens, cache_read_tokens, "
            "cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, calls, estimated, "
            "price_snapshot, lines, official_cost_nano, deduction_nano, balance_after_nano, overrun_nano, "
            "hold_nano, latency_ms, ttft_ms, channel_id, client_ip, attempts")  # fmt: skip
    sql = f"INSERT INTO usage_records ({cols}) VALUES ({','.join('?' * 33)})"
    lines = '[{"category":"input","quantity":1,"unit_price_nano":1,"per":"mtok"}]'
    for chunk in usage_rows(ids, args.records, args.days, args.heavy_share, rng):
        db.executemany(
            sql,
            [
                (t, at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"), o, k, "chat.completions", m, m,
                 "default", "0.3", 0, s, 200 if s == "ok" else 502, None if s == "ok" else "upstream_error",
                 i, 0, 0, 0, op, 0, 1, 0, "{}", lines, off, ded, None, 0, ded, 420, 95, None, "127.0.0.1", None)
                for t, at, o, k, m, s, i, op, off, ded in chunk
            ],
        )  # fmt: skip
        db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()


async def pg_seed(url: str, ids: dict[str, Any], args: argparse.Namespace, rng: random.Random) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    cols = ["trace_id", "created_at", "owner_id", "key_id", "endpoint", "model_requested", "model_billed",
            "group_name", "multiplier", "stream", "status", "http_status", "error_code", "input_tokens",
            "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "output_tokens",
            "reasoning_tokens", "calls", "estimated", "price_snapshot", "lines", "official_cost_nano",
            "deduction_nano", "overrun_nano", "hold_nano", "latency_ms", "client_ip"]  # fmt: skip
    lines = '[{"category":"input","quantity":1,"unit_price_nano":1,"per":"mtok"}]'
    try:
        for chunk in usage_rows(ids, args.records, args.days, args.heavy_share, rng):
            recs = [
                (t, at, o, k, "chat.completions", m, m, "default", "0.3", False, s, 200 if s == "ok" else 502,
                 None if s == "ok" else "upstream_error", i, 0, 0, 0, op, 0, 1, False, "{}", lines, off, ded, 0,
                 ded, 420, "127.0.0.1")
                for t, at, o, k, m, s, i, op, off, ded in chunk
            ]  # fmt: skip
            await conn.copy_records_to_table("usage_records", records=recs, columns=cols)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def rollup_and_sessions(url: str, ids: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy import select

    from tollway.api.sessions import create_session
    from tollway.settings import normalise_database_url
    from tollway.store.db import make_engine
    from tollway.store.tables import usage_records
    from tollway.usage import rollups

    engine = make_engine(normalise_database_url(url))
    t0 = time.perf_counter()
    done = await rollups.roll_up(engine, grace_s=0)
    rollup_s = time.perf_counter() - t0
    async with engine.begin() as conn:
        customer, _ = await create_session(conn, ids["heavy"], ttl_s=86400)
        admin, _ = await create_session(conn, ids["admin"], ttl_s=86400)
        trace = (
            await conn.execute(
                select(usage_records.c.trace_id)
                .where(usage_records.c.owner_id == ids["heavy"])
                .order_by(usage_records.c.created_at.desc())
                .limit(1)
            )
        ).scalar_one()
    await engine.dispose()
    return {"customer": customer, "admin": admin, "trace": trace, "rollup_s": rollup_s, "days": len(done),
            "rows": sum(d.rows for d in done)}  # fmt: skip


# ------------------------------------------------------------------------------------ timing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "TOLLWAY_DATABASE_URL": url, "TOLLWAY_DATA_DIR": str(workdir / "data"),
           "TOLLWAY_SECRET_KEY": "bench-console-pages", "TOLLWAY_USAGE_ROLLUP_INTERVAL_S": "0",
           "TOLLWAY_PROBE_INTERVAL_S": "0", "TOLLWAY_LOG_LEVEL": "warning"}  # fmt: skip
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [PY, "-m", "tollway.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not start; see {workdir / 'server.log'}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def pages(ids: dict[str, Any], s: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, path, who) for every console page."""
    today = now_utc().date()
    key = ids["heavy_keys"][0]
    return [
        ("dashboard", "/console/", "customer"),
        ("usage list", "/console/usage", "customer"),
        ("usage list, model filter", "/console/usage?model=o4-mini", "customer"),
        ("usage list, key + 30 days", f"/console/usage?key={key}&since={today - timedelta(days=30)}", "customer"),
        ("usage list, failed only", "/console/usage?status=upstream_failed", "customer"),
        ("usage list, trace ID", f"/console/usage?trace={s['trace']}", "customer"),
        ("usage detail", f"/console/usage/{s['trace']}", "customer"),
        ("billing", "/console/billing", "customer"),
        ("wallet", "/console/wallet", "customer"),
        ("keys", "/console/keys", "customer"),
        ("prices", "/console/prices", "customer"),
        ("staff overview", "/console/staff/overview", "admin"),
        ("staff account (heavy)", f"/console/staff/accounts/{ids['heavy']}", "admin"),
        ("staff orders", "/console/staff/orders", "admin"),
        ("staff audit", "/console/staff/audit", "admin"),
    ]


def time_pages(port: int, plan: list[tuple[str, str, str]], s: dict[str, Any], runs: int) -> list[dict[str, Any]]:
    conns = {who: http.client.HTTPConnection("127.0.0.1", port, timeout=60) for who in ("customer", "admin")}
    out = []
    for label, path, who in plan:
        headers = {"cookie": f"tw_session={s[who]}; tw_lang=en"}
        samples, size = [], 0
        for i in range(runs + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            conns[who].request("GET", path, headers=headers)
            resp = conns[who].getresponse()
            body = resp.read()
            ms = (time.perf_counter() - t0) * 1000
            if resp.status != 200:
                raise SystemExit(f"{path}: HTTP {resp.status}\n{body[:500]!r}")
            size = len(body)
            if i:
                samples.append(ms)
        samples.sort()
        p95 = samples[min(len(samples) - 1, max(0, round(0.95 * len(samples)) - 1))]
        out.append({"page": label, "path": path, "median_ms": statistics.median(samples), "p95_ms": p95,
                    "max_ms": samples[-1], "kb": size / 1024})  # fmt: skip
        print(f"  {label:32s} median {out[-1]['median_ms']:7.1f} ms  p95 {p95:7.1f} ms", flush=True)
    return out


# ------------------------------------------------------------------------------------ main


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix=f"tollway-console-bench-{backend}-"))
    pg_name = None
    if backend == "sqlite":
        db_path = workdir / "tollway.db"
        url = f"sqlite:///{db_path}"
    else:
        import asyncpg

        pg_name = f"tollway_bench_{uuid.uuid4().hex[:10]}"

        async def admin_sql(sql: str) -> None:
            c = await asyncpg.connect(args.pg_admin)
            try:
                await c.execute(sql)
            finally:
                await c.close()

        asyncio.run(admin_sql(f'CREATE DATABASE "{pg_name}"'))
        url = f"{args.pg_admin.rsplit('/', 1)[0]}/{pg_name}"
    proc = None
    try:
        t0 = time.perf_counter()
        ids = asyncio.run(provision(url, args.accounts, args.orders, rng))
        if backend == "sqlite":
            sqlite_seed(db_path, ids, args, rng)
        else:
            asyncio.run(pg_seed(url, ids, args, rng))
        seed_s = time.perf_counter() - t0
        print(f"[{backend}] seeded {args.records:,} usage records in {seed_s:.0f} s", flush=True)
        s = asyncio.run(rollup_and_sessions(url, ids))
        print(f"[{backend}] rollup of {s['days']} days ({s['rows']:,} rows) in {s['rollup_s']:.1f} s", flush=True)
        proc, port = start_server(url, workdir)
        results = time_pages(port, pages(ids, s), s, args.runs)
        return {"backend": backend, "seed_s": seed_s, "rollup": s, "pages": results}
    finally:
        if proc is not None:
            stop_server(proc)
        if pg_name is not None:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"[{backend}] kept {workdir}")


def report(all_results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    load = os.getloadavg()
    lines = [
        MARK_START,
        "## Console pages with 1,000,000 usage records",
        "",
        f"- **Command**: `{command}`",
        f"- **Date**: {now_utc().isoformat(timespec='seconds')}; {os.cpu_count()} CPUs shared with other work "
        f"(load average at the end {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f})",
        f"- **Data**: {args.records:,} usage records over {args.days} days, {args.accounts:,} accounts (Zipf-like "
        f"tail) plus one heavy customer with {args.heavy_share:.0%} of the records (6 keys), 8 models, ~3 % "
        f"non-ok statuses, {args.orders:,} orders. Seed `{args.seed}`.",
        f"- **Method**: `tollway serve` on loopback; sessions made through `tollway.api.sessions`; each page "
        f"fetched once to warm up, then {args.runs} times over one keep-alive connection; time = request sent "
        "to the whole body read. Target: under 200 ms.",
        "",
    ]
    for r in all_results:
        s = r["rollup"]
        lines += [
            f"### {r['backend']}",
            "",
            f"Seeding took {r['seed_s']:.0f} s; the first rollup of {s['days']} closed days wrote {s['rows']:,} "
            f"`usage_daily` rows in {s['rollup_s']:.1f} s.",
            "",
            "| page | median ms | p95 ms | max ms | KiB | < 200 ms |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for p in r["pages"]:
            ok = "yes" if p["p95_ms"] < 200 else "**no**"
            lines.append(
                f"| {p['page']} (`{p['path'][:60]}`) | {p['median_ms']:.1f} | {p['p95_ms']:.1f} | "
                f"{p['max_ms']:.1f} | {p['kb']:.0f} | {ok} |"
            )
        lines.append("")
    lines.append(MARK_END)
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=5000)
    ap.add_argument("--heavy-share", type=float, default=0.3)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--orders", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=10, help="timed fetches per page (median and p95 of these)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg-admin", default=os.environ.get("TOLLWAY_TEST_PG_ADMIN_URL",
                                                          "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    ap.add_argument("--results", default="", help="write the table into this file (e.g. bench/RESULTS.md)")
    ap.add_argument("--keep", action="store_true", help="keep the SQLite file and server log")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [run_backend(b, args) for b in backends]
    command = "python bench/console_pages.py " + " ".join(sys.argv[1:])
    text = report(results, args, command.strip())
    print(text)
    if args.results:
        path = Path(args.results)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if MARK_START in old and MARK_END in old:
            new = old[: old.index(MARK_START)] + text + old[old.index(MARK_END) + len(MARK_END) :]
        else:
            new = old.rstrip("\n") + "\n\n" + text + "\n"
        path.write_text(new, encoding="utf-8")
    return 0 if all(p["p95_ms"] < 200 for r in results for p in r["pages"]) else 1


if __name__ == "__main__":
    sys.exit(main())
