"""Relaying a stream event by event, and billing it exactly once, whatever the shapes.

Each upstream SSE event is parsed once by the channel's tap (usage, output, end marker) and
handed to the surface stream, which returns what to send now: the same bytes (same shape) or
translated events. The events that end the stream are held back until the settlement has
committed (DESIGN.md §10). When usage never arrives (upstream cut the stream, or the client
left), the call is billed for the input estimate plus the output counted from what upstream
sent, and the record is marked estimated. No output at all: the hold is voided.
"""

from __future__ import annotations

import time

import aiohttp

from tollway.errors import TollwayError, UpstreamError
from tollway.pricing.model import Usage
from tollway.providers.base import StreamTap, SurfaceStream
from tollway.relay.asgi import SSE_CT, ClientWatch, Headers, Send
from tollway.relay.envelopes import with_trace
from tollway.relay.gateway import Call, Gateway
from tollway.relay.upstream import Opened


def salvage(reader: aiohttp.StreamReader) -> bytes:
    """Bytes aiohttp had already received when the connection broke: its readers raise the
    error before returning buffered data, which would lose the output sent just before a cut."""
    try:
        return reader._read_nowait(-1) if reader._buffer else b""
    except Exception:
        return b""


class _Pump:
    """Splits upstream bytes into events and runs each through the tap and the surface."""

    __slots__ = ("buffer", "surface", "tap")

    def __init__(self, tap: StreamTap, surface: SurfaceStream) -> None:
        self.tap = tap
        self.surface = surface
        self.buffer = b""

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        buffer = self.buffer + (data.replace(b"\r\n", b"\n") if b"\r" in data else data)
        out: list[bytes] = []
        while (cut := buffer.find(b"\n\n")) >= 0:
            event, buffer = buffer[: cut + 2], buffer[cut + 2 :]
            forward = self.surface.push(event, self.tap.feed(event))
            if forward:
                out.append(forward)
        if final and buffer.strip():  # a last event without its blank line
            forward = self.surface.push(buffer, self.tap.feed(buffer))
            if forward:
                out.append(forward)
            buffer = b""
        self.buffer = buffer
        return b"".join(out)


async def relay_stream(
    gw: Gateway,
    call: Call,
    opened: Opened,
    watch: ClientWatch,
    send: Send,
    *,
    tap: StreamTap,
    surface: SurfaceStream,
    headers: Headers,
    input_estimate: int,
) -> Usage | None:
    resp = opened.response
    watch.on_gone(resp.close)  # stop the upstream call: nobody will read the rest
    pump = _Pump(tap, surface)
    ttft_ms: int | None = None
    started = False
    upstream_broke = False

    async def forward(data: bytes) -> None:
        nonlocal started
        if not data or watch.gone.is_set():
            return
        if not started:
            await _start(send, headers)
            started = True
        await send({"type": "http.response.body", "body": data, "more_body": True})

    try:
        try:
            async for chunk in resp.content.iter_any():
                if ttft_ms is None:
                    ttft_ms = call.ttft_ms = int((time.monotonic() - call.started) * 1000)
                await forward(pump.feed(chunk))
                if tap.done:
                    break
            else:
                await forward(pump.feed(b"", final=True))
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            if not watch.gone.is_set():  # what arrived just before the break still counts
                await forward(pump.feed(salvage(resp.content), final=True))
        if not tap.done and not watch.gone.is_set():
            upstream_broke = True
    finally:
        resp.release()

    gone = watch.gone.is_set()
    if not tap.has_output and not tap.has_usage:
        gw.biller.void(
            call.facts,
            call.entry,
            status="client_disconnected" if gone else "upstream_failed",
            http_status=499 if gone else 502,
            error_code=None if gone else "upstream_error",
            latency_ms=call.elapsed_ms(),
        )
        if gone:
            return None
        message = f"upstream {opened.channel.name!r} ended the stream before any output"
        if not started:
            raise UpstreamError(message)
        await _finish(
            send, started, headers, surface.error(with_trace(message, call.trace_id), "upstream_error")
        )
        return None

    usage = tap.usage(input_estimate)
    status = "client_disconnected" if gone else ("upstream_cut" if upstream_broke else "ok")
    try:
        await gw.biller.settle(
            call.facts,
            call.entry,
            usage,
            status=status,
            latency_ms=call.elapsed_ms(),
            ttft_ms=ttft_ms,
            http_status=200,
        )
    except TollwayError as exc:
        if not gone:
            await _finish(
                send, started, headers, surface.error(with_trace(exc.message, call.trace_id), exc.code)
            )
        return usage
    if gone:
        return usage
    if upstream_broke:
        message = "upstream ended the stream early; you were billed for the output received"
        tail = surface.error(with_trace(message, call.trace_id), "upstream_error")
    else:
        tail = surface.tail(usage)
    await _finish(send, started, headers, tail)
    return usage


async def _start(send: Send, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [SSE_CT, (b"cache-control", b"no-cache"), *headers],
        }
    )


async def _finish(send: Send, started: bool, headers: Headers, tail: bytes) -> None:
    if not started:
        await _start(send, headers)
    await send({"type": "http.response.body", "body": tail, "more_body": False})
