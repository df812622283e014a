"""Reaching upstream: channel order, failover before the first byte, error mapping.

Channels are tried highest priority first, weighted-random inside a priority tier. A connect
error, a timeout before the response headers, an upstream 429 or 5xx, or an upstream refusal
of the gateway's own credential moves on to the next channel; nothing has reached the client
yet, so the call is still one call with one hold and one trace ID.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

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

MAX_ATTEMPTS = 3


def order_channels(channels: list[Channel], rng: random.Random | None = None) -> list[Channel]:
    pick = rng or random
    tiers: dict[int, list[Channel]] = {}
    for c in channels:
        tiers.setdefault(c.priority, []).append(c)
    ordered: list[Channel] = []
    for prio in sorted(tiers, reverse=True):
        pool = list(tiers[prio])
        while pool:
            chosen = pick.choices(pool, weights=[max(c.weight, 1) for c in pool])[0]
            pool.remove(chosen)
            ordered.append(chosen)
    return ordered


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


async def open_upstream(
    http: aiohttp.ClientSession,
    channels: list[Channel],
    prepare: Callable[[Channel], tuple[Target, bytes]],
    *,
    connect_timeout: float,
    first_byte_timeout: float,
    idle_timeout: float,
) -> Opened:
    last: TollwayError = UpstreamError("no upstream channel could be reached")
    attempts = 0
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=idle_timeout)
    for channel in order_channels(channels)[:MAX_ATTEMPTS]:
        attempts += 1
        target, body = prepare(channel)
        try:
            resp = await asyncio.wait_for(
                http.post(target.url, data=body, headers=target.headers, timeout=timeout),
                first_byte_timeout,
            )
        except TimeoutError:
            last = UpstreamTimeout(f"upstream {channel.name!r} did not answer within {first_byte_timeout:g}s")
            continue
        except aiohttp.ClientError as exc:
            last = UpstreamError(f"could not reach upstream {channel.name!r}: {type(exc).__name__}")
            continue
        if resp.status < 400:
            return Opened(resp, channel, attempts)
        body = await _read_error(resp)
        status = resp.status
        resp.release()
        message, code = _error_text(body)
        if status in (429, 503, 529):
            last = UpstreamUnavailable(f"upstream {channel.name!r} is overloaded (HTTP {status}): {message}")
        elif status >= 500:
            last = UpstreamError(f"upstream {channel.name!r} failed (HTTP {status}): {message}")
        elif status in (401, 403):
            last = UpstreamError(
                f"upstream {channel.name!r} refused the gateway's credential (HTTP {status})"
            )
        elif status == 413:
            raise InvalidRequest(f"upstream refused the request as too large: {message}")
        else:
            raise UpstreamClientError(status, message, code)
    raise last


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
