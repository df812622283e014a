"""Reaching upstream: channel order, failover before the first byte, error mapping.

Channels are tried highest priority first, weighted-random inside a priority tier. A connect
error, a timeout before the response headers, an upstream 429 or 5xx, or an upstream refusal
of the gateway's own credential moves on to the next channel; nothing has reached the client
yet, so the call is still one call with one hold and one trace ID.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tollway.catalog.model import Channel
from tollway.errors import (
    InvalidRequest,
    TollwayError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollway.providers.base import Target
from tollway.routing.health import ChannelHealth, Outcome, classify, order_channels

__all__ = ["MAX_ATTEMPTS", "Opened", "UpstreamClientError", "open_upstream", "order_channels"]

MAX_ATTEMPTS = 3


@dataclass(slots=True)
class UpstreamClientError(Exception):
    """Upstream refused the request itself (4xx other than 401/403/429): the caller's fault,
    passed through with upstream's status and message."""

    status: int
    message: str
    code: str | None


@dataclass(slots=True)
class Opened:
    response: aiohttp.ClientResponse
    channel: Channel
    attempts: int
    log: list[dict[str, Any]] = field(default_factory=list)


async def open_upstream(
    http: aiohttp.ClientSession,
    channels: list[Channel],
    prepare: Callable[[Channel], tuple[Target, bytes]],
    *,
    connect_timeout: float,
    first_byte_timeout: float,
    idle_timeout: float,
    health: ChannelHealth | None = None,
    attempts_log: list[dict[str, Any]] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> Opened:
    """Open the call on the first channel that answers; ``attempts_log`` receives one entry per
    attempt (channel, outcome, HTTP status, milliseconds) for the usage record."""
    last: TollwayError | None = None
    attempts = 0
    log = attempts_log if attempts_log is not None else []
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=idle_timeout)
    ordered = health.order(channels) if health is not None else order_channels(channels)
    for channel in ordered[:max_attempts]:
        attempts += 1
        if health is not None:
            health.before_attempt(channel)
        target, body = prepare(channel)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(first_byte_timeout):
                resp = await http.post(target.url, data=body, headers=target.headers, timeout=timeout)
        except asyncio.CancelledError:
            if health is not None:
                health.cancel_probe(channel)
            raise
        except TimeoutError:
            last = UpstreamTimeout(f"upstream {channel.name!r} did not answer within {first_byte_timeout:g}s")
            _note(health, log, channel, Outcome.FAILED, "timeout", None, t0)
            continue
        except aiohttp.ClientError as exc:
            last = UpstreamError(f"could not reach upstream {channel.name!r}: {type(exc).__name__}")
            _note(health, log, channel, Outcome.FAILED, type(exc).__name__, None, t0)
            continue
        status = resp.status
        if status < 400:
            _note(health, log, channel, Outcome.OK, "ok", status, t0)
            return Opened(resp, channel, attempts, log)
        try:
            raw = await _read_error(resp)
        except asyncio.CancelledError:
            resp.release()
            if health is not None:
                health.cancel_probe(channel)
            raise
        resp.release()
        message, code = _error_text(raw)
        outcome = classify(status, code)
        _note(health, log, channel, outcome, f"HTTP {status}" + (f" {code}" if code else ""), status, t0)
        if status in (429, 503, 529):
            last = UpstreamUnavailable(f"upstream {channel.name!r} is overloaded (HTTP {status}): {message}")
        elif status >= 500:
            last = UpstreamError(f"upstream {channel.name!r} failed (HTTP {status}): {message}")
        elif status in (401, 402, 403):
            last = UpstreamError(
                f"upstream {channel.name!r} refused the gateway's credential (HTTP {status})"
            )
        elif status == 413:
            raise InvalidRequest(f"upstream refused the request as too large: {message}")
        else:
            raise UpstreamClientError(status, message, code)
    raise last if last is not None else UpstreamError("no upstream channel could be reached")


def _note(
    health: ChannelHealth | None,
    log: list[dict[str, Any]],
    channel: Channel,
    outcome: Outcome,
    reason: str,
    status: int | None,
    t0: float,
) -> None:
    if health is not None:
        health.record(channel, outcome, reason)
    log.append(
        {
            "channel": channel.id,
            "name": channel.name,
            "outcome": outcome.value,
            "reason": reason,
            "status": status,
            "ms": int((time.monotonic() - t0) * 1000),
        }
    )


async def _read_error(resp: aiohttp.ClientResponse) -> bytes:
    try:
        return await asyncio.wait_for(resp.content.read(64 * 1024), 5.0)
    except (TimeoutError, aiohttp.ClientError):
        return b""


def _error_text(body: bytes) -> tuple[str, str | None]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (body[:300].decode("utf-8", "replace") or "no details"), None
    # OpenAI {"error": {message, code}}, Anthropic {"error": {type, message}},
    # Gemini {"error": {code: 400, message, status}}
    err = doc.get("error", doc) if isinstance(doc, dict) else {}
    if isinstance(err, dict):
        code = err.get("code") if isinstance(err.get("code"), str) else err.get("type") or err.get("status")
        return str(err.get("message") or "no details"), (str(code) if code else None)
    return str(err), None
