"""Server-sent events at the byte level: find the data of an event, write an event."""

from __future__ import annotations

from typing import Any

import orjson

DONE_PAYLOAD = b"[DONE]"


def data_of(event: bytes) -> bytes | None:
    """The payload of an event's ``data:`` line (events Tollway relays carry one), or None
    for comments, keep-alives and events without data."""
    if event.startswith(b"data:"):
        start = 0
    else:
        found = event.find(b"\ndata:")
        if found < 0:
            return None
        start = found + 1
    end = event.find(b"\n", start)
    line = event[start + 5 : end if end >= 0 else len(event)]
    return line.strip()


def parse(payload: bytes | None) -> Any:
    """The JSON of a payload, or None when it is absent or not JSON."""
    if not payload or payload == DONE_PAYLOAD:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def data_event(doc: Any) -> bytes:
    """``data: <json>`` (OpenAI and Gemini style)."""
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def named_event(name: str, doc: Any) -> bytes:
    """``event: <name>`` + ``data: <json>`` (Anthropic style)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"
