"""Token counting endpoints (``count_tokens``, ``countTokens``): asked of a channel that speaks
the surface's own shape when one serves the model, never billed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from tollway.catalog.model import ChannelType
from tollway.relay.gateway import Call, Gateway
from tollway.relay.upstream import order_channels

COUNT_TIMEOUT_S = 10.0


async def count_upstream(
    gw: Gateway,
    call: Call,
    channel_type: ChannelType,
    body: dict[str, Any],
    target: Callable[[str, str, str], tuple[str, dict[str, str]]],
    field: str,
) -> int | None:
    """``field`` of the first same-shape channel's answer, or None (no such channel, or it
    failed: the caller falls back to Tollway's estimate)."""
    for channel in order_channels([c for c in call.channels if c.type == channel_type]):
        upstream_model = channel.upstream_model(call.facts.model_requested)
        url, headers = target(channel.base_url, channel.api_key, upstream_model)
        payload = dict(body)
        if "model" in payload:
            payload["model"] = upstream_model
        try:
            async with asyncio.timeout(COUNT_TIMEOUT_S):
                async with gw.http.post(url, data=orjson.dumps(payload), headers=headers) as resp:
                    if resp.status != 200:
                        continue
                    doc = orjson.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            continue
        value = doc.get(field) if isinstance(doc, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
