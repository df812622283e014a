"""Process and database faults: SIGKILL mid-load then restart, the database unreachable,
SIGTERM with streams in flight. The SIGKILL and SIGTERM tests stop the module's server, so
they come last."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import openai
import pytest
from sqlalchemy import select

from tollway.store.tables import usage_records

from .calls import fake
from .faults_support import (
    MODEL,
    SERVER_ENV,
    TcpProxy,
    db_rows,
)
from .stack import Stack, http_json, poll, running_stack


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_database_unreachable_503_then_resumes(db_url: str, tmp_path: Path) -> None:
    """PostgreSQL behind a TCP relay that is cut and restored. PostgreSQL only: on SQLite,
    running as root, a read-only directory would not stop the writes."""
    from urllib.parse import urlsplit

    parts = urlsplit(db_url)
    proxy = TcpProxy(parts.port or 5432)
    netloc = (
        parts.netloc.replace(f":{parts.port}", f":{proxy.port}")
        if parts.port
        else f"{parts.netloc}:{proxy.port}"
    )
    via_proxy = parts._replace(netloc=netloc).geturl()
    env = {**SERVER_ENV, "TOLLWAY_DATABASE_URL": via_proxy, "TOLLWAY_SETTLEMENT_DEADLINE_S": "3"}
    try:
        with running_stack("postgres", db_url, tmp_path / "dbdown", env) as st:
            cust = st.customer(group="x1", credit="10")
            client = st.client(cust.secret, timeout=10)
            ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            assert client.chat.completions.create(**ask).choices[0].message.content
            assert http_json("GET", f"{st.url}/readyz")[0] == 200
            proxy.cut()
            t0 = time.monotonic()
            poll(
                lambda: True if http_json("GET", f"{st.url}/readyz")[0] == 503 else None,
                timeout=10,
                what="/readyz 503",
            )

            def refused() -> bool | None:
                try:
                    client.chat.completions.create(**ask)
                except openai.APIStatusError as exc:
                    if exc.status_code == 503 and exc.response.headers.get("retry-after"):
                        return True
                    raise
                return None

            poll(refused, timeout=10, what="a 503 with Retry-After")
            started = time.monotonic()
            with pytest.raises(openai.APIStatusError) as err:
                client.chat.completions.create(**ask)
            assert err.value.status_code == 503 and time.monotonic() - started < 1.0  # at once, no hang
            assert time.monotonic() - t0 < 20
            proxy.restore()

            def served() -> bool | None:
                try:
                    return True if client.chat.completions.create(**ask).choices[0].message.content else None
                except openai.APIStatusError:
                    return None

            poll(served, timeout=15, interval=0.3, what="service to resume by itself")
            assert http_json("GET", f"{st.url}/readyz")[0] == 200
            time.sleep(6)  # holds of calls cut by the outage expire (TOLLWAY_HOLD_TIMEOUT_S=5)
            st.audit_ok()
    finally:
        proxy.cut()


def test_sigkill_mid_load_then_restart_audit_passes(fstack: Stack) -> None:
    """Last in the module: kills the module's server and restarts it."""
    cust = fstack.customer(group="x1", credit="10")

    async def load() -> list[tuple[str, bool] | BaseException]:
        client = fstack.aclient(cust.secret, timeout=10)

        async def go(i: int) -> tuple[str, bool]:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
                extra_body=fake(chunks=20, chunk_interval_ms=100 if i % 2 else 5),
            )
            done = False
            async for chunk in raw.parse():
                if chunk.usage is not None:
                    done = True
            return raw.headers["x-request-id"], done

        try:
            return await asyncio.gather(*(go(i) for i in range(30)), return_exceptions=True)
        finally:
            await client.close()

    async def kill_later() -> None:
        await asyncio.sleep(0.8)
        assert fstack.server is not None
        fstack.server.popen.send_signal(signal.SIGKILL)

    async def both() -> list[tuple[str, bool] | BaseException]:
        killer = asyncio.create_task(kill_later())
        results = await load()
        await killer
        return results

    results = asyncio.run(both())
    assert fstack.server is not None
    fstack.server.popen.wait(10)
    fstack.server.stop()
    complete = [r[0] for r in results if isinstance(r, tuple) and r[1]]
    broken = [r for r in results if not (isinstance(r, tuple) and r[1])]
    assert complete, "no call finished before the kill"
    assert broken, "the kill came too late to interrupt anything"
    port = int(fstack.url.rsplit(":", 1)[1])
    fstack.start_server(port, "server-restarted.log")
    fstack.wait_server()
    for trace in complete:  # every complete response is billed, once
        assert fstack.usage(trace)["status"] == "ok"
    time.sleep(6.5)  # TOLLWAY_HOLD_TIMEOUT_S=5 plus a sweep: the dead process's holds expire
    fstack.audit_ok()
    active = db_rows(
        fstack.db_url, select(usage_records.c.trace_id).where(usage_records.c.trace_id.in_(complete))
    )
    assert len(active) == len(complete)
    status, _, doc = http_json("GET", f"{fstack.url}/readyz")
    assert status == 200, doc


def test_sigterm_lets_streams_in_flight_finish(fstack: Stack) -> None:
    """Last of the module's server: SIGTERM mid-stream; the streams finish, billed, the process exits."""
    cust = fstack.customer(group="x1", credit="10")

    async def load() -> list[tuple[str, bool]]:
        client = fstack.aclient(cust.secret, timeout=20)

        async def go() -> tuple[str, bool]:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
                extra_body=fake(chunks=10, chunk_interval_ms=150),
            )
            done = False
            async for chunk in raw.parse():
                done = done or chunk.usage is not None
            return raw.headers["x-request-id"], done

        async def term() -> None:
            await asyncio.sleep(0.5)
            assert fstack.server is not None
            fstack.server.popen.send_signal(signal.SIGTERM)

        try:
            killer = asyncio.create_task(term())
            results = await asyncio.gather(*(go() for _ in range(8)))
            await killer
            return results
        finally:
            await client.close()

    results = asyncio.run(load())
    assert all(done for _, done in results), results
    assert fstack.server is not None
    # uvicorn re-raises the signal once its shutdown is complete
    assert fstack.server.popen.wait(15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in fstack.server.tail()
    for trace, _ in results:
        assert fstack.usage(trace)["status"] == "ok"
    fstack.audit_ok()
