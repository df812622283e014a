"""The cluster stack itself: two nodes on one PostgreSQL database serve the same customer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis_support import REDIS_URL

from .cluster_stack import running_cluster


def test_two_nodes_serve_one_customer(pg_db_url: str, redis_prefix: str, tmp_path: Path) -> None:
    with running_cluster(pg_db_url, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix, nodes=2) as cl:
        c = cl.stack.customer(credit="5")

        async def call(i: int) -> str:
            node = cl.nodes[i % 2]
            async with node.aclient(c.secret) as client:
                r = await client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5
                )
                return str(r.headers["x-request-id"])

        async def main() -> list[str]:
            return await asyncio.gather(*(call(i) for i in range(4)))

        traces = asyncio.run(main())
        assert len(set(traces)) == 4
        for t in traces:
            assert cl.stack.usage(t, wait=5)["deduction_nano"] > 0
        cl.stack.audit_ok()
