"""Shape-neutral streaming: pacing, ``cut_after`` and client-abort accounting.

A wire shape renders a stream as ``head`` (bytes sent with the headers), one ``piece`` per
content chunk, and ``tail`` (finish / usage / terminator). This module writes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from aiohttp import web

from tollway.fake_upstream.scenario import Scenario
from tollway.fake_upstream.state import FakeState

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


async def send_stream(
    request: web.Request,
    state: FakeState,
    scenario: Scenario,
    head: bytes,
    pieces: Sequence[bytes],
    tail: bytes,
    headers: Mapping[str, str],
) -> web.StreamResponse:
    """Write a stream; count it as completed, cut, or aborted by the client."""
    resp = web.StreamResponse(status=200, headers=headers)
    cut = scenario.cut_after
    if cut is not None:
        cut = min(cut, len(pieces))  # even past the last chunk, the finish is never sent
    interval = scenario.chunk_interval_ms / 1000.0
    state.streams_started += 1
    try:
        await resp.prepare(request)
        if interval <= 0 and scenario.stall_after is None:
            if cut is None:
                await resp.write(b"".join((head, *pieces, tail)))
            else:
                await resp.write(b"".join((head, *pieces[:cut])))
                return _cut(request, state, resp)
        else:
            await resp.write(head)
            for i, piece in enumerate(pieces):
                if cut is not None and i >= cut:
                    return _cut(request, state, resp)
                if i == scenario.stall_after:
                    await asyncio.sleep(scenario.stall_ms / 1000.0)  # stalls mid-way
                if interval > 0:
                    await asyncio.sleep(interval)
                _ensure_open(request)
                await resp.write(piece)
            if cut is not None:
                return _cut(request, state, resp)
            if interval > 0:
                await asyncio.sleep(interval)
            _ensure_open(request)
            await resp.write(tail)
        await resp.write_eof()
    except ConnectionResetError:  # includes aiohttp's ClientConnectionResetError
        state.streams_aborted_by_client += 1
        return resp
    except asyncio.CancelledError:  # handler cancelled because the client went away
        state.streams_aborted_by_client += 1
        raise
    state.streams_completed += 1
    return resp


def _ensure_open(request: web.Request) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client closed the connection")


def _cut(request: web.Request, state: FakeState, resp: web.StreamResponse) -> web.StreamResponse:
    """Drop the connection mid-body: no terminating chunk, so the client sees a broken stream."""
    state.streams_cut += 1
    transport = request.transport
    if transport is not None:
        transport.close()  # flushes what was written, then closes without the last chunk
    return resp
