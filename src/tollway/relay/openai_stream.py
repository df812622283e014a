"""Relaying an OpenAI chat stream chunk by chunk, and billing it exactly once.

Events are forwarded as they arrive, except the two that end the stream: the usage chunk and
``data: [DONE]`` are held back until the settlement has committed (DESIGN.md §10). The usage
chunk is shown only to clients that asked for it. When usage never arrives (upstream cut the
stream, or the client left), the call is billed for the input estimate plus the output counted
from what upstream sent, and the record is marked estimated. No output at all: the hold is
voided and nothing is charged.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from tollway import tokens
from tollway.errors import TollwayError
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.relay.asgi import SSE_CT, ClientWatch, Send
from tollway.relay.gateway import Call, Gateway
from tollway.relay.upstream import Opened

DONE = b"data: [DONE]\n\n"


class StreamState:
    __slots__ = ("done", "has_output", "text_parts", "ttft_ms", "usage_doc", "usage_event")

    def __init__(self) -> None:
        self.done = False
        self.has_output = False
        self.text_parts: list[str] = []
        self.usage_doc: dict[str, Any] | None = None
        self.usage_event: bytes | None = None
        self.ttft_ms: int | None = None

    def observe(self, event: bytes, client_wants_usage: bool) -> bytes | None:
        """Return the bytes to forward now (None = hold back or drop)."""
        payload = _data_of(event)
        if payload is None:
            return event  # comments, keep-alives, other fields
        if payload == b"[DONE]":
            self.done = True
            return None
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(doc, dict):
            return event
        choices = doc.get("choices") or ()
        for choice in choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text_parts.append(content)
                self.has_output = True
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.text_parts.append(reasoning)
                self.has_output = True
            for tool in delta.get("tool_calls") or ():
                fn = tool.get("function") or {}
                self.text_parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
                self.has_output = True
        usage = doc.get("usage")
        if usage:
            self.usage_doc = usage
            if not choices:  # the dedicated usage chunk: held back until settled
                self.usage_event = event if client_wants_usage else None
                return None
        return event

    def usage(self, input_estimate: int) -> Usage:
        if self.usage_doc is not None:
            return normalize.from_openai_chat(self.usage_doc)
        return Usage(
            input_tokens=input_estimate,
            output_tokens=tokens.count_output_tokens("".join(self.text_parts)),
            estimated=True,
        )


def _data_of(event: bytes) -> bytes | None:
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


async def relay_stream(
    gw: Gateway,
    call: Call,
    opened: Opened,
    watch: ClientWatch,
    send: Send,
    *,
    input_estimate: int,
    client_wants_usage: bool,
) -> Usage | None:
    resp = opened.response
    state = StreamState()
    client_gone = watch.gone
    watch.on_gone(resp.close)  # stop the upstream call: nobody will read the rest
    started = False
    upstream_broke = False
    buffer = b""

    async def feed(chunk: bytes) -> None:
        nonlocal buffer, started
        if state.ttft_ms is None:
            state.ttft_ms = int((time.monotonic() - call.started) * 1000)
        buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        out: list[bytes] = []
        while (cut := buffer.find(b"\n\n")) >= 0:
            event, buffer = buffer[: cut + 2], buffer[cut + 2 :]
            forward = state.observe(event, client_wants_usage)
            if forward is not None:
                out.append(forward)
        if out and not client_gone.is_set():
            if not started:
                await _start(send, call)
                started = True
            await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})

    try:
        try:
            async for chunk in resp.content.iter_any():
                await feed(chunk)
                if state.done:
                    break
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            upstream_broke = not client_gone.is_set()
            # aiohttp raises the connection error before handing out bytes it already
            # buffered; those are output upstream produced and must be relayed and billed.
            leftover = b"".join(getattr(resp.content, "_buffer", ()))
            if leftover and not client_gone.is_set():
                await feed(leftover + b"\n\n" if not leftover.endswith(b"\n\n") else leftover)
        if not state.done and not client_gone.is_set():
            upstream_broke = True
    finally:
        resp.release()

    usage = state.usage(input_estimate)
    if not state.has_output and state.usage_doc is None:
        status = "client_disconnected" if client_gone.is_set() else "upstream_failed"
        gw.biller.void(
            call.facts,
            call.entry,
            status=status,
            http_status=499 if client_gone.is_set() else 502,
            error_code=None if client_gone.is_set() else "upstream_error",
            latency_ms=call.elapsed_ms(),
        )
        if not started and not client_gone.is_set():
            from tollway.errors import UpstreamError

            raise UpstreamError(f"upstream {opened.channel.name!r} ended the stream before any output")
        if not client_gone.is_set():
            message = "upstream ended the stream before any output; nothing was charged"
            await _finish(send, started, call, _error_event(message, call.trace_id, "upstream_error"))
        return None

    status = "ok"
    if client_gone.is_set():
        status = "client_disconnected"
    elif upstream_broke:
        status = "upstream_cut"
    try:
        await gw.biller.settle(
            call.facts,
            call.entry,
            usage,
            status=status,
            latency_ms=call.elapsed_ms(),
            ttft_ms=state.ttft_ms,
            http_status=200,
        )
    except TollwayError as exc:
        await _finish(send, started, call, _error_event(exc.message, call.trace_id, exc.code))
        return usage
    if client_gone.is_set():
        return usage
    tail = (
        (state.usage_event or b"") + DONE
        if not upstream_broke
        else _error_event(
            "upstream ended the stream early; you were billed for the output received",
            call.trace_id,
            "upstream_error",
        )
    )
    await _finish(send, started, call, tail)
    return usage


async def _start(send: Send, call: Call) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                SSE_CT,
                (b"cache-control", b"no-cache"),
                (b"x-request-id", call.trace_id.encode()),
            ],
        }
    )


async def _finish(send: Send, started: bool, call: Call, tail: bytes) -> None:
    if not started:
        await _start(send, call)
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def _error_event(message: str, trace_id: str, code: str) -> bytes:
    doc = {
        "error": {
            "message": f"{message} (request id: {trace_id})",
            "type": "upstream_error",
            "code": code,
        }
    }
    return b"data: " + orjson.dumps(doc) + b"\n\n"
