"""Upstream APIs behind one small interface (:mod:`tollway.providers.base`): one package per
wire shape (``openai``, ``anthropic``, ``gemini``) with its channel adapter (URL, auth, usage,
stream tap), its surface (what a client of that shape receives) and its translation to and
from the pivot shape (OpenAI chat). Wire types only: no web framework, no database."""

from __future__ import annotations

from tollway.providers.anthropic.channel import AnthropicChannel
from tollway.providers.base import ChannelAdapter, ClientHints, Shape, StreamTap, SurfaceStream, Target
from tollway.providers.gemini.channel import GeminiChannel
from tollway.providers.openai.channel import OpenAIChatChannel

ADAPTERS: dict[str, ChannelAdapter] = {
    "openai": OpenAIChatChannel(),
    "anthropic": AnthropicChannel(),
    "gemini": GeminiChannel(),
}


def adapter_for(channel_type: str) -> ChannelAdapter:
    """The adapter of a channel type (``openai`` | ``anthropic`` | ``gemini``)."""
    return ADAPTERS[str(channel_type)]


__all__ = [
    "ADAPTERS",
    "ChannelAdapter",
    "ClientHints",
    "Shape",
    "StreamTap",
    "SurfaceStream",
    "Target",
    "adapter_for",
]
