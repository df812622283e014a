"""The Anthropic Messages surface: what an Anthropic client (SDK, Claude Code) receives.

Final events (held back until the settlement commits): ``message_stop`` and the last
``message_delta`` (the one carrying the final usage). A ``message_delta`` followed by any
other event was not the last one and is released with that event.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.anthropic.from_pivot import FINISH_TO_STOP
from tollway.providers.base import Json

MESSAGE_STOP = sse.named_event("message_stop", {"type": "message_stop"})


def render_usage(u: Usage) -> Json:
    """Normalised usage in Anthropic's semantics: ``input_tokens`` excludes the cache."""
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_5m_tokens + u.cache_write_1h_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": u.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
        },
        "output_tokens": u.output_tokens,
    }


def error_event(message: str, code: str) -> bytes:
    kind = "overloaded_error" if code == "overloaded_error" else "api_error"
    return sse.named_event("error", {"type": "error", "error": {"type": kind, "message": message}})


class AnthropicPassThrough:
    """An Anthropic channel's events relayed as they are; the final ones held."""

    __slots__ = ("held", "stop")

    def __init__(self) -> None:
        self.held: list[bytes] = []
        self.stop: bytes | None = None

    def push(self, event: bytes, doc: Any) -> bytes:
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind == "message_delta":
            self.held.append(event)
            return b""
        if kind == "message_stop":
            self.stop = event
            return b""
        if self.held:  # the delta held back was not the last one
            out = b"".join(self.held) + event
            self.held.clear()
            return out
        return event

    def tail(self, usage: Usage) -> bytes:
        del usage  # upstream's own final events, as they were sent
        return b"".join(self.held) + (self.stop or MESSAGE_STOP)

    def error(self, message: str, code: str) -> bytes:
        return b"".join(self.held) + error_event(message, code)


def new_id() -> str:
    return "msg_" + secrets.token_hex(12)


class AnthropicWriter:
    """Pivot chunks -> Messages stream events (message_start, content blocks, deltas)."""

    __slots__ = ("_block", "_index", "_model", "_started", "_stop_reason", "_tool_blocks")

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._index = -1  # index of the open (or last) content block
        self._block: str | None = None  # kind of the open block
        self._tool_blocks: dict[int, int] = {}  # tool call index -> content block index
        self._stop_reason: str | None = None

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message: Json = {
            "id": new_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(sse.named_event("message_start", {"type": "message_start", "message": message}))

    def _close(self, out: list[bytes]) -> None:
        if self._block is not None:
            out.append(
                sse.named_event("content_block_stop", {"type": "content_block_stop", "index": self._index})
            )
            self._block = None

    def _open(self, out: list[bytes], kind: str, block: Json) -> None:
        self._close(out)
        self._index += 1
        self._block = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        out.append(sse.named_event("content_block_start", start))

    def _delta(self, out: list[bytes], delta: Json, index: int | None = None) -> None:
        doc = {
            "type": "content_block_delta",
            "index": self._index if index is None else index,
            "delta": delta,
        }
        out.append(sse.named_event("content_block_delta", doc))

    def feed(self, chunk: Json) -> bytes:
        out: list[bytes] = []
        self._start(out)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self._block != "thinking":
                    self._open(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                self._delta(out, {"type": "thinking_delta", "thinking": reasoning})
            content = delta.get("content")
            if isinstance(content, str) and content:
                if self._block != "text":
                    self._open(out, "text", {"type": "text", "text": ""})
                self._delta(out, {"type": "text_delta", "text": content})
            for call in delta.get("tool_calls") or ():
                self._tool_call(out, call)
            finish = choice.get("finish_reason")
            if finish:
                self._stop_reason = FINISH_TO_STOP.get(str(finish), "end_turn")
                self._close(out)
        return b"".join(out)

    def _tool_call(self, out: list[bytes], call: Json) -> None:
        number = int(call.get("index", 0))
        fn = call.get("function") or {}
        if number not in self._tool_blocks:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{secrets.token_hex(8)}"),
                "input": {},
            }
            block["name"] = str(fn.get("name") or "")
            self._open(out, "tool_use", block)
            self._tool_blocks[number] = self._index
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            index = self._tool_blocks[number]
            self._delta(out, {"type": "input_json_delta", "partial_json": arguments}, index)

    def finish(self, usage: Usage) -> bytes:
        out: list[bytes] = []
        self._start(out)
        self._close(out)
        delta = {"stop_reason": self._stop_reason or "end_turn", "stop_sequence": None}
        doc = {"type": "message_delta", "delta": delta, "usage": render_usage(usage)}
        out.append(sse.named_event("message_delta", doc))
        out.append(MESSAGE_STOP)
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)


def response_from_pivot(pivot: Json, usage: Usage, model: str) -> bytes:
    """A whole Messages response for the client, from the pivot built off another shape."""
    choices = pivot.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[Json] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {}
        tool_id = str(call.get("id") or f"toolu_{secrets.token_hex(8)}")
        content.append({"type": "tool_use", "id": tool_id, "name": str(fn.get("name", "")), "input": args})
    doc = {
        "id": new_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": FINISH_TO_STOP.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": render_usage(usage),
    }
    return orjson.dumps(doc)
