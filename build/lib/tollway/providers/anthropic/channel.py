"""Anthropic channels: the Messages API (``POST {base}/v1/messages``).

Auth is ``x-api-key`` plus ``anthropic-version``; a client calling the Anthropic surface has
its own ``anthropic-version`` and ``anthropic-beta`` forwarded (Claude Code relies on betas).

Usage semantics (docs/pricing.md §6): ``input_tokens`` excludes cache reads and writes,
``cache_creation`` splits the writes by TTL, and in a stream ``message_start`` carries the
input counts while every ``message_delta`` restates the totals so far (cumulative: the latest
value wins, nothing is summed).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway import tokens
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import ClientHints, Json, Shape, Target

API_VERSION = "2023-06-01"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


class MessagesTap:
    """Reads an Anthropic Messages stream once: usage (merged, never summed), text, the end."""

    __slots__ = ("done", "has_output", "has_usage", "merged", "text_parts")

    def __init__(self) -> None:
        self.done = False
        self.has_output = False
        self.has_usage = False  # a message_delta (the final counts) was seen
        self.merged: dict[str, Any] = {}
        self.text_parts: list[str] = []

    def feed(self, event: bytes) -> Any:
        doc = sse.parse(sse.data_of(event))
        if not isinstance(doc, dict):
            return None
        kind = doc.get("type")
        if kind == "content_block_delta":
            delta = doc.get("delta") or {}
            text = delta.get("text") or delta.get("partial_json") or delta.get("thinking")
            if isinstance(text, str) and text:
                self.text_parts.append(text)
                self.has_output = True
        elif kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") in ("tool_use", "server_tool_use"):
                self.text_parts.append(str(block.get("name") or ""))
                self.has_output = True
            elif block.get("text"):
                self.text_parts.append(str(block["text"]))
                self.has_output = True
        elif kind == "message_start":
            message = doc.get("message") or {}
            self.merged = normalize.merge_anthropic_usage(self.merged, message.get("usage"))
        elif kind == "message_delta":
            self.merged = normalize.merge_anthropic_usage(self.merged, doc.get("usage"))
            self.has_usage = True
        elif kind == "message_stop":
            self.done = True
        return doc

    def usage(self, input_estimate: int) -> Usage:
        if self.has_usage:
            return normalize.from_anthropic(self.merged)
        counted = tokens.count_output_tokens("".join(self.text_parts))
        if self.merged:  # message_start told the exact input; the output is counted
            usage = normalize.from_anthropic(self.merged)
            usage.output_tokens = max(usage.output_tokens, counted)
            usage.estimated = True
            return usage
        return Usage(input_tokens=input_estimate, output_tokens=counted, estimated=True)


class AnthropicChannel:
    shape = Shape.ANTHROPIC

    def target(self, base_url: str, api_key: str, model: str, *, stream: bool, hints: ClientHints) -> Target:
        del model, stream
        base = base_url.rstrip("/")
        if base.endswith("/v1"):
            base = base[:-3]
        headers = {"content-type": "application/json", "x-api-key": api_key, "anthropic-version": API_VERSION}
        for name, value in hints.headers:
            if name in FORWARDED_HEADERS:
                headers[name] = value
        return Target(base + "/v1/messages", headers)

    def passthrough_body(self, body: Json, model: str, *, stream: bool) -> Json:
        del stream
        body["model"] = model
        return body

    def usage(self, doc: Json) -> Usage | None:
        usage = doc.get("usage")
        return normalize.from_anthropic(usage) if usage else None

    def output_text(self, doc: Json) -> str:
        parts: list[str] = []
        for block in doc.get("content") or ():
            if not isinstance(block, dict):
                continue
            for key in ("text", "thinking"):
                value = block.get(key)
                if isinstance(value, str):
                    parts.append(value)
            if block.get("type") == "tool_use":
                parts.append(str(block.get("name") or "") + orjson.dumps(block.get("input")).decode())
        return "".join(parts)

    def tap(self) -> MessagesTap:
        return MessagesTap()
