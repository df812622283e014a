"""What PostgreSQL sessions of the benchmark databases wait on: samples ``pg_stat_activity`` of
every active session in databases named ``bench_%`` (bench/scaleout.py's) every 20 ms for the
given seconds, and prints the most frequent (wait event, statement) pairs.

    .venv/bin/python bench/primitives/pg_waits.py 70    # while bench/scaleout.py runs a load
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time

import asyncpg

QUERY = """
SELECT wait_event_type, wait_event, left(query, 60) AS q FROM pg_stat_activity
WHERE datname LIKE 'bench_%' AND application_name <> 'tollway-listen' AND state = 'active'
"""


async def main(seconds: float) -> None:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    samples = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for r in await conn.fetch(QUERY):
            counts[(r["wait_event_type"] or "-", r["wait_event"] or "-", r["q"])] += 1
        samples += 1
        await asyncio.sleep(0.02)
    await conn.close()
    print(f"samples: {samples}")
    for (kind, event, q), n in counts.most_common(15):
        print(f"{n:6d}  {kind}/{event}  {q}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0))
