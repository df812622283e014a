"""The OpenAI Responses API (``POST /v1/responses``), passed through to OpenAI-compatible
channels.

Usage (``input_tokens`` including ``input_tokens_details.cached_tokens``, ``output_tokens``
including ``output_tokens_details.reasoning_tokens``) comes with the whole response, or, in a
stream, on the terminal event: ``response.completed`` (or ``response.incomplete`` /
``response.failed``). That event is the stream's last and is held back until the settlement
has committed; there is no ``[DONE]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tollway import tokens
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import Json
from tollway.providers.openai.operations import Operation

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_OUTPUT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.custom_tool_call_input.delta",
    }
)


def usage_of(doc: Json) -> Usage | None:
    usage = doc.get("usage")
    return normalize.from_openai_responses(usage) if usage else None


def output_text(doc: Json) -> str:
    parts: list[str] = []
    for item in doc.get("output") or ():
        if not isinstance(item, dict):
            continue
        for content in item.get("content") or ():
            if isinstance(content, dict) and isinstance(content.get("text"), str):
                parts.append(content["text"])
        for key in ("name", "arguments"):
            if isinstance(item.get(key), str):
                parts.append(item[key])
        for summary in item.get("summary") or ():
            if isinstance(summary, dict) and isinstance(summary.get("text"), str):
                parts.append(summary["text"])
    return "".join(parts)


class ResponsesTap:
    """Reads a Responses stream once: output deltas, the terminal event and its usage."""

    __slots__ = ("done", "has_output", "has_usage", "text_parts", "usage_doc")

    def __init__(self) -> None:
        self.done = False
        self.has_output = False
        self.has_usage = False
        self.text_parts: list[str] = []
        self.usage_doc: Any = None

    def feed(self, event: bytes) -> Any:
        doc = sse.parse(sse.data_of(event))
        if not isinstance(doc, dict):
            return None
        kind = doc.get("type")
        if kind in _OUTPUT_DELTAS:
            delta = doc.get("delta")
            if isinstance(delta, str) and delta:
                self.text_parts.append(delta)
                self.has_output = True
        elif kind in TERMINAL:
            self.done = True
            response = doc.get("response") or {}
            self.usage_doc = response.get("usage") if isinstance(response, dict) else None
            self.has_usage = bool(self.usage_doc)
        return doc

    def usage(self, input_estimate: int) -> Usage:
        if self.has_usage:
            return normalize.from_openai_responses(self.usage_doc)
        return Usage(
            input_tokens=input_estimate,
            output_tokens=tokens.count_output_tokens("".join(self.text_parts)),
            estimated=True,
        )


def error_event(message: str, code: str) -> bytes:
    """The Responses ``error`` event (``type``, ``code``, ``message``), also carrying an
    ``error`` object, which the openai SDKs raise as an APIError."""
    error = {"type": "upstream_error", "code": code, "message": message}
    doc = {"type": "error", "code": code, "message": message, "param": None, "error": error}
    return sse.named_event("error", doc)


class ResponsesPassThrough:
    """Upstream's events as they are; the terminal event held until settled."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: list[bytes] = []

    def push(self, event: bytes, doc: Any) -> bytes:
        if self.held or (isinstance(doc, dict) and doc.get("type") in TERMINAL):
            self.held.append(event)
            return b""
        return event

    def tail(self, usage: Usage) -> bytes:
        del usage  # upstream's own terminal event, with its own usage
        return b"".join(self.held)

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)


RESPONSES = Operation(
    "/responses",
    usage_of,
    output_text,
    tap=ResponsesTap,
    stream=lambda _wants_usage: ResponsesPassThrough(),
    translatable=True,
)
# a conversation stored upstream (previous_response_id) can only continue where it is stored
RESPONSES_STORED = replace(RESPONSES, translatable=False)
