"""Why the server checkpoints SQLite's WAL in the background (store/db.py): 8,000 commits shaped like
a settlement (a usage row with four indexes + three ledger entries), paced like one connection,
with SQLite's own autocheckpoint (1,000 pages, inside a commit) against autocheckpoint off and a
PASSIVE checkpoint from another connection every 0.5 s. Prints commit-time percentiles.

    python3 bench/primitives/sqlite_checkpoint.py
"""

import contextlib
import os
import sqlite3
import threading
import time


def run(auto, bg):
    path = f"/tmp/tollway-bench-ck_{auto}_{bg}.db"
    for s in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + s)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute(f"PRAGMA wal_autocheckpoint={auto}")
    c.execute(
        "create table u (id integer primary key, trace text, owner text, model text, amount int, created text, body text)"
    )
    for col in ("trace", "owner", "created", "model"):
        c.execute(f"create index i_{col} on u({col})")
    c.execute("create table e (id integer primary key, tid int, acct int, amount int)")
    c.execute("create index ie on e(acct)")
    stop = threading.Event()

    def ck():
        b = sqlite3.connect(path, isolation_level=None)
        while not stop.wait(0.5):
            b.execute("PRAGMA wal_checkpoint(PASSIVE)")

    t = threading.Thread(target=ck)
    if bg:
        t.start()
    d = []
    for i in range(8000):
        t0 = time.perf_counter()
        c.execute("begin")
        c.execute(
            "insert into u (trace, owner, model, amount, created, body) values (?,?,?,?,?,?)",
            (os.urandom(12).hex(), f"o{i % 7}", "gpt-4o-mini", i, str(time.time()), "x" * 300),
        )
        for k in range(3):
            c.execute("insert into e (tid, acct, amount) values (?,?,?)", (i, k, i))
        c.execute("commit")
        d.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.0008)  # ~1 conn pacing
    stop.set()
    d.sort()
    print(
        f"auto={auto} bg={bg}: p50={d[4000]:.3f} p99={d[7920]:.3f} p99.9={d[7992]:.3f} max={d[-1]:.2f} >5ms={sum(x > 5 for x in d)}"
    )


for args in ((1000, False), (0, True), (1000, False), (0, True)):
    run(*args)
