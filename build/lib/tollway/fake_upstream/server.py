"""Application assembly, introspection endpoints, and the ways to run the fake upstream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson
from aiohttp import web

from tollway.fake_upstream.anthropic_shape import AnthropicShape
from tollway.fake_upstream.config import FakeConfig
from tollway.fake_upstream.gemini_shape import GeminiShape
from tollway.fake_upstream.openai_media import MediaShape
from tollway.fake_upstream.openai_responses import ResponsesShape
from tollway.fake_upstream.openai_shape import OpenAIShape
from tollway.fake_upstream.state import FakeState

STATE_KEY: web.AppKey[FakeState] = web.AppKey("tollway_fake_state", FakeState)
_JSON_HEADERS = {"Content-Type": "application/json"}
_CLIENT_MAX_SIZE = 64 * 1024 * 1024


def build_app(config: FakeConfig) -> web.Application:
    """The aiohttp application; its state is ``app[STATE_KEY]``."""
    app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
    state = FakeState(config)
    app[STATE_KEY] = state
    OpenAIShape(state).add_routes(app.router)
    AnthropicShape(state).add_routes(app.router)
    GeminiShape(state).add_routes(app.router)
    ResponsesShape(state).add_routes(app.router)
    MediaShape(state).add_routes(app.router)

    async def get_requests(_: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(list(state.recorded), option=orjson.OPT_NON_STR_KEYS),
            headers=_JSON_HEADERS,
        )

    async def clear_requests(_: web.Request) -> web.Response:
        state.reset()
        return web.Response(body=b'{"cleared":true}', headers=_JSON_HEADERS)

    async def get_stats(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(state.stats()), headers=_JSON_HEADERS)

    app.router.add_get("/_fake/requests", get_requests)
    app.router.add_delete("/_fake/requests", clear_requests)
    app.router.add_get("/_fake/stats", get_stats)
    return app


def _runner(config: FakeConfig) -> web.AppRunner:
    # handler_cancellation: a client that goes away cancels its handler at once, so a stream
    # abort is noticed even while the fake is sleeping between chunks.
    return web.AppRunner(build_app(config), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)


async def start(host: str, port: int, config: FakeConfig) -> tuple[web.AppRunner, int]:
    """Start inside the running loop; returns the runner (``await runner.cleanup()`` to stop)
    and the bound port (pass ``port=0`` for a free one)."""
    runner = _runner(config)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            bound = int(addr[1])
            break
    return runner, bound


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return None
    return uvloop.new_event_loop


def run(host: str, port: int, config: FakeConfig) -> None:
    """Serve until interrupted (blocking); uses uvloop when it is importable."""

    async def serve() -> None:
        runner, bound = await start(host, port, config)
        print(f"tollway fake upstream listening on http://{host}:{bound}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with (
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
        contextlib.suppress(KeyboardInterrupt),
    ):
        runner.run(serve())
