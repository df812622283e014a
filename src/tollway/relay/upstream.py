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
    total_deadline: float | None = None,
    sticky: str | None = None,
) -> Opened:
    """Open the call on the first channel that answers; ``attempts_log`` receives one entry per
    attempt (channel, outcome, HTTP status, milliseconds) for the usage record.

    ``total_deadline`` bounds the time spent opening across every attempt: once it has passed,
    no further attempt is made and the call fails with :class:`UpstreamTimeout` (504).
    A channel's own timeouts (``Channel.connect_timeout`` ...) override the arguments.
    ``sticky`` (account and model, for groups with sticky routing) fixes the channel order."""
    last: TollwayError | None = None
    attempts = 0
    log = attempts_log if attempts_log is not None else []
    started = time.monotonic()
    deadline = started + total_deadline if total_deadline is not None else None
    if health is not None:
        ordered = health.order(channels, sticky=sticky)
    else:
        ordered = [x for c in order_channels(channels, sticky=sticky) for x in c.credentials()]
    for channel in ordered[:max_attempts]:
        fb = channel.first_byte_timeout if channel.first_byte_timeout is not None else first_byte_timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                last = _deadline_error(total_deadline)
                break
            fb = min(fb, left)
        attempts += 1
        target, body = prepare(channel)  # before the breaker hears of it: a 400 here is the client's
        if health is not None:
            health.before_attempt(channel)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=channel.connect_timeout if channel.connect_timeout is not None else connect_timeout,
            sock_read=channel.idle_timeout if channel.idle_timeout is not None else idle_timeout,
        )
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(fb):
                resp = await http.post(target.url, data=body, headers=target.headers, timeout=timeout)
        except asyncio.CancelledError:
            if health is not None:
                health.cancel_probe(channel)
            raise
        except TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                last = _deadline_error(total_deadline)
                _note(health, log, channel, Outcome.FAILED, "timeout (total deadline)", None, t0)
                break
            last = UpstreamTimeout(f"upstream {channel.label!r} did not answer within {fb:g}s")
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


def _deadline_error(total: float | None) -> UpstreamTimeout:
    return UpstreamTimeout(f"no upstream answered within the total deadline of {total:g}s")


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
            "name": channel.label,
            "outcome": outcome.value,
            "reason": reason,
            "status": status,
            "ms": int((time.monotonic() - t0) * 1000),
        }
    )


async def _read_error(resp: aiohttp.ClientResponse) -> bytes:
    try:
        async with asyncio.timeout(5.0):
            return await resp.content.read(64 * 1024)
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
