"""open_upstream: the total deadline across failover attempts, per-channel timeouts and
per-credential rotation (tollway.relay.upstream), against local aiohttp servers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tollway.catalog.model import Channel, ChannelType
from tollway.errors import UpstreamTimeout
from tollway.providers.base import Target
from tollway.relay.upstream import open_upstream
from tollway.routing.breaker import BreakerState
from tollway.routing.health import ChannelHealth


def ch(cid: str, url: str, **kw: Any) -> Channel:
    return Channel(
        id=cid,
        name=cid,
        type=ChannelType.OPENAI,
        base_url=url,
        api_key="k",
        models=frozenset({"m"}),
        model_map={},
        groups=frozenset(),
        **kw,
    )


async def _server(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/x"


def _hanger(release: asyncio.Event) -> Any:
    async def hang(request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await release.wait()
        return web.Response(text="late")

    return hang


def _prepare(channel: Channel) -> tuple[Target, bytes]:
    return Target(channel.base_url, {"authorization": f"Bearer {channel.api_key}"}), b"{}"


@pytest.fixture
async def hanging() -> AsyncIterator[list[str]]:
    release = asyncio.Event()
    servers = [await _server(_hanger(release)) for _ in range(3)]
    yield [url for _, url in servers]
    release.set()
    for runner, _ in servers:
        await runner.cleanup()


async def test_total_deadline_stops_failover(hanging: list[str]) -> None:
    channels = [ch(f"c{i}", url, priority=3 - i) for i, url in enumerate(hanging)]
    log: list[dict[str, Any]] = []
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(UpstreamTimeout) as err:
            await open_upstream(
                http,
                channels,
                _prepare,
                connect_timeout=5,
                first_byte_timeout=0.4,
                idle_timeout=5,
                attempts_log=log,
                max_attempts=3,
                total_deadline=0.6,
            )
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5, elapsed  # 3 x 0.4 s would be 1.2 s; the deadline cut it at 0.6 s
    assert err.value.status == 504
    assert "total deadline" in str(err.value)
    assert [a["name"] for a in log] == ["c0", "c1"]  # the second attempt was cut short, no third


async def test_channel_first_byte_timeout_overrides_global(hanging: list[str]) -> None:
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(UpstreamTimeout):
            await open_upstream(
                http,
                [ch("quick", hanging[0], first_byte_timeout=0.3)],
                _prepare,
                connect_timeout=5,
                first_byte_timeout=20,
                idle_timeout=20,
            )
    assert time.monotonic() - t0 < 2


async def test_credentials_rotate_and_a_refused_one_is_disabled() -> None:
    seen: list[str] = []

    async def strict(request: web.Request) -> web.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        seen.append(key)
        if key != "K2":
            return web.json_response({"error": {"message": "bad key", "code": "invalid_api_key"}}, status=401)
        return web.json_response({"ok": True})

    runner, url = await _server(strict)
    health = ChannelHealth()
    channel = ch("multi", url, api_keys=("K1", "K2"))
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(4):
                opened = await open_upstream(
                    http,
                    [channel],
                    _prepare,
                    connect_timeout=5,
                    first_byte_timeout=5,
                    idle_timeout=5,
                    health=health,
                )
                assert opened.channel.api_key == "K2"
                assert opened.channel.label == "multi#2"
                opened.response.release()
    finally:
        await runner.cleanup()
    assert seen.count("K1") == 1  # refused once, then skipped while disabled
    assert seen.count("K2") == 4
    k1, k2 = channel.credentials()
    assert health.state(k1) is BreakerState.DISABLED
    assert health.state(k2) is BreakerState.CLOSED
    assert health.states([channel]) == {"multi#1": BreakerState.DISABLED, "multi#2": BreakerState.CLOSED}


def test_round_robin_over_healthy_credentials() -> None:
    health = ChannelHealth()
    channel = ch("rr", "http://x", api_keys=("A", "B", "C"))
    firsts = [health.order([channel])[0].api_key for _ in range(6)]
    assert firsts == ["A", "B", "C", "A", "B", "C"]
    assert replace(channel, api_keys=()).credentials() == [replace(channel, api_keys=())]


def test_credentials_stored_as_one_sealed_list_and_old_single_key_still_reads() -> None:
    from tollway.store.config_repo import open_credentials, seal_credentials
    from tollway.store.secret_box import SecretBox

    box = SecretBox("test-secret")
    assert open_credentials(box, seal_credentials(box, ["K1", "K2"])) == ("K1", "K2")
    assert open_credentials(box, box.seal("sk-old-single")) == ("sk-old-single",)
