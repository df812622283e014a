"""Safe by default, with real server processes: a second node on a shared database without the
shared backend exits with a message naming the live node (no traceback); a SIGKILLed node's
lease blocks nothing; ``tollway serve --workers 2`` serves calls once Redis and PostgreSQL are
configured (each worker its own node lease) and is refused without them; each background job
runs on one node and moves to another when its node is SIGKILLed."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import openai

from redis_support import REDIS_URL
from tollway.cluster.leader import ALL_JOBS, PAYMENTS
from tollway.settings import normalise_database_url
from tollway.store.db import make_engine
from tollway.store.tables import job_leases, nodes

from .cluster_stack import running_cluster
from .provision import PYTHON
from .stack import Proc, Stack, free_port, poll, running_stack


def _refused(proc: Proc) -> str:
    """Wait for ``proc`` to give up; return its log."""
    try:
        code = proc.popen.wait(30)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise AssertionError(f"the node was not refused:\n{proc.tail()}") from None
    log = proc.tail()
    proc.stop()
    assert code != 0, log
    assert "Traceback" not in log, log
    return log


def _serve_workers(stack: Stack, port: int, workers: int, env: dict[str, str], name: str) -> Proc:
    argv = [PYTHON, "-m", "tollway.cli.main", "serve", "--workers", str(workers)]
    return Proc(name, argv, {**stack.server_env_for(port), **env}, stack.workdir / f"{name}.log")


def _leases(db_url: str) -> list[tuple[str, int, bool]]:
    async def read() -> list[tuple[str, int, bool]]:
        engine = make_engine(normalise_database_url(db_url))
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(nodes.select())).all()
            return [(r.host, r.pid, r.shared) for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_second_node_without_redis_is_refused_naming_the_first(pg_db_url: str, tmp_path: Path) -> None:
    with running_stack("postgres", pg_db_url, tmp_path) as st:
        assert st.server is not None
        first_pid = st.server.popen.pid
        log = _refused(st.spawn_server(free_port(), "second.log"))
        assert "refusing to start" in log and f"pid {first_pid}" in log and "last heartbeat" in log, log
        assert "TOLLWAY_REDIS_URL" in log and "PostgreSQL" in log, log
        # with Redis of its own it is still refused: the first node does not share
        log = _refused(st.spawn_server(free_port(), "third.log", {"TOLLWAY_REDIS_URL": REDIS_URL}))
        assert "that node runs without the shared backend" in log, log
        log = _refused(_serve_workers(st, free_port(), 2, {}, "workers"))
        assert "refusing to start 2 workers" in log, log
        # the first node still serves; once SIGKILLed its lease no longer blocks
        c = st.customer(credit="1")
        with st.client(c.secret) as client:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        st.server.popen.kill()
        st.server.popen.wait(10)
        st.server.stop()
        port = free_port()
        st.start_server(port, "after-kill.log")
        st.wait_server()


def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    with running_stack("sqlite", f"sqlite:///{tmp_path / 'tollway.db'}", tmp_path) as st:
        log = _refused(st.spawn_server(free_port(), "second.log"))
        assert "refusing to start" in log and "this node runs without the shared backend" in log, log


def test_workers_2_serve_calls_with_redis_and_postgres(
    pg_db_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    with running_cluster(pg_db_url, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix, nodes=1) as cl:
        st = cl.stack
        port = free_port()
        env = {"TOLLWAY_REDIS_URL": REDIS_URL, "TOLLWAY_REDIS_PREFIX": redis_prefix}
        proc = _serve_workers(st, port, 2, env, "workers")
        try:
            url = f"http://127.0.0.1:{port}"
            st.wait_proc(proc, url)
            c = st.customer(credit="5")

            async def calls() -> list[str]:
                client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=c.secret, max_retries=0)
                async with client:

                    async def one() -> str:
                        r = await client.chat.completions.with_raw_response.create(
                            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5
                        )
                        return str(r.headers["x-request-id"])

                    return await asyncio.gather(*(one() for _ in range(40)))

            traces = asyncio.run(calls())
            assert len(set(traces)) == 40
            for t in traces:
                assert st.usage(t, wait=5)["deduction_nano"] > 0
            leases = _leases(pg_db_url)
            assert len(leases) == 3 and all(shared for _, _, shared in leases), leases  # node0 + 2 workers
            assert proc.popen.pid not in {pid for _, pid, _ in leases}  # the workers, not the parent
        finally:
            proc.stop()
        assert "Traceback" not in proc.tail(), proc.tail()
        # the workers' leases go at a clean stop (well before their TTL; nobody else deletes them)
        poll(lambda: len(_leases(pg_db_url)) == 1 or None, timeout=10, what=f"clean stop\n{proc.tail()}")
        st.audit_ok()


def _job_holders(db_url: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        engine = make_engine(normalise_database_url(db_url))
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(job_leases.select())).all()
            return {r.name: r.holder for r in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_each_job_runs_on_one_node_and_moves_when_it_dies(
    pg_db_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    with running_cluster(pg_db_url, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix, nodes=2) as cl:
        pids = {n.proc.popen.pid: n for n in cl.nodes}
        holders = _job_holders(pg_db_url)
        assert set(holders) == set(ALL_JOBS)
        held_by = {int(h.split(":")[1]) for h in holders.values()}
        assert held_by <= set(pids), holders  # each job: one lease, held by a live node
        victim = pids[int(holders[PAYMENTS].split(":")[1])]
        survivor = next(n for n in cl.nodes if n is not victim)
        victim.kill()  # SIGKILL: its leases stay behind until their TTL (1.5 s in the test stack)

        def moved() -> bool | None:
            now = _job_holders(pg_db_url)
            return True if {int(h.split(":")[1]) for h in now.values()} == {survivor.proc.popen.pid} else None

        poll(moved, timeout=10, interval=0.2, what="the dead node's jobs to move to the survivor")
        c = cl.stack.customer(credit="1")  # the survivor serves on
        with openai.OpenAI(base_url=f"{survivor.url}/v1", api_key=c.secret, max_retries=0) as client:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
