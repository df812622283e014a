"""The 1-token test call to one channel credential, shared by the prober and the console's
"test call" button, and :class:`LiveChannels`: what the console may see of the running data
plane (the channels it loaded, each credential's breaker state) and do (a test call). The
composition root builds it and hands it over; there are no module globals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from tollway import providers
from tollway.catalog.model import Channel
from tollway.errors import NotFound, ServiceUnavailable
from tollway.providers import translate
from tollway.providers.base import ClientHints, Shape
from tollway.relay.upstream import _error_text
from tollway.routing.breaker import BreakerState
from tollway.routing.health import ChannelHealth, Outcome, classify


@dataclass(frozen=True, slots=True)
class ProbeResult:
    outcome: Outcome
    reason: str
    status: int | None  # the upstream's HTTP status, None when no answer came
    ms: int  # wall time of the call

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.OK, Outcome.NEUTRAL)


async def probe_call(http: aiohttp.ClientSession, channel: Channel, timeout_s: float) -> ProbeResult:
    """One real chat call (``max_tokens: 1``, prompt ``ping``, the channel's first model, in the
    channel's own wire shape) with the credential ``channel`` stands for. Never raises except
    on cancellation: a failure is a ``FAILED`` result with its reason."""
    outcome, reason, status = Outcome.FAILED, "probe failed", None
    started = time.monotonic()
    try:
        model = min(channel.models)
        upstream = channel.upstream_model(model)
        adapter = providers.adapter_for(channel.type)
        chat = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        if adapter.shape is Shape.OPENAI_CHAT:
            body = adapter.passthrough_body(chat, upstream, stream=False)
        else:
            pivot = translate.request_to_pivot(Shape.OPENAI_CHAT, chat, model)
            body = translate.request_from_pivot(
                adapter.shape, pivot, model=upstream, stream=False, max_output=1
            )
        target = adapter.target(
            channel.base_url, channel.api_key, upstream, stream=False, hints=ClientHints()
        )
        async with asyncio.timeout(timeout_s):
            async with http.post(target.url, json=body, headers=target.headers) as resp:
                status = resp.status
                raw = await resp.read()
        code = _error_text(raw)[1] if status >= 400 else None
        outcome = classify(status, code)
        reason = f"probe: HTTP {status}" + (f" {code}" if code else "")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reason = f"probe: {type(exc).__name__}"
    return ProbeResult(outcome, reason, status, int((time.monotonic() - started) * 1000))


@dataclass(frozen=True, slots=True)
class CredentialState:
    label: str  # "main", or "main#2" for a channel with several credentials
    index: int  # 0-based
    state: BreakerState


class LiveChannels:
    """The console's window on the data plane running in this process."""

    def __init__(
        self,
        health: ChannelHealth,
        channels: Callable[[], Sequence[Channel]],
        test: Callable[[Channel], Awaitable[ProbeResult]],
    ) -> None:
        self.health = health
        self._channels = channels
        self._test = test

    def _channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self._channels() if c.id == channel_id), None)

    def credentials(self, channel_id: str) -> list[CredentialState] | None:
        """Each credential's breaker state; None when the running data plane has not loaded the
        channel (yet: it reloads within a moment of a change)."""
        channel = self._channel(channel_id)
        if channel is None:
            return None
        return [CredentialState(c.label, c.key_index, self.health.state(c)) for c in channel.credentials()]

    async def test(self, channel_id: str, credential: int = 0) -> ProbeResult:
        """A real 1-token call through one credential; its outcome feeds that breaker, as a
        probe's does (so a passing test re-enables a disabled credential)."""
        channel = self._channel(channel_id)
        if channel is None:
            raise ServiceUnavailable(
                "the running gateway has not loaded this channel yet; try again in a moment"
            )
        creds = channel.credentials()
        if not 0 <= credential < len(creds):
            raise NotFound("no such credential", param="credential")
        if not channel.models:
            raise ServiceUnavailable("the channel serves no model to test with")
        return await self._test(creds[credential])
