"""Anthropic Messages -> OpenAI chat (the pivot): requests, responses and stream events.

Requests: ``system`` becomes a system message; ``tool_use`` blocks become ``tool_calls``;
``tool_result`` blocks become ``tool`` messages (placed before the rest of their user turn);
images become ``image_url`` parts (data URIs or URLs). ``cache_control``, ``top_k`` and
server tools have no OpenAI equivalent and are dropped (docs/surfaces.md lists what is lost).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.providers import blocks
from tollway.providers.base import Json

STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


_TEXT = frozenset({"text"})


def _tool_result(block: Json) -> Json:
    """A ``tool_result`` as a ``tool`` message; several text blocks stay several text parts."""
    parts = blocks.texts(block.get("content"), _TEXT) or [""]
    if block.get("is_error"):
        parts[0] = f"Error: {parts[0]}"
    call_id = str(block.get("tool_use_id", ""))
    return {"role": "tool", "tool_call_id": call_id, "content": blocks.chat_content(parts)}


def _image_part(block: Json) -> Json | None:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: Json) -> Json | None:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        data = f"data:{source.get('media_type', 'application/pdf')};base64,{source.get('data', '')}"
        return {
            "type": "file",
            "file": {"file_data": data, "filename": str(block.get("title") or "document")},
        }
    if source.get("type") == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    return None


def _user_turn(content: list[Any]) -> list[Json]:
    tool_messages: list[Json] = []
    parts: list[Json] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        part: Json | None = None
        if kind == "text":
            part = {"type": "text", "text": str(block.get("text", ""))}
        elif kind == "image":
            part = _image_part(block)
        elif kind == "document":
            part = _document_part(block)
        elif kind == "tool_result":
            tool_messages.append(_tool_result(block))
        if part is not None:
            parts.append(part)
    out = tool_messages
    if parts:
        plain = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if plain else parts})
    return out


def _assistant_turn(content: list[Any], *, response: bool = False) -> Json:
    """An assistant turn as a chat message. In a request several text blocks stay several text
    parts; a response's text is one string, its blocks concatenated as a stream of it would be
    (Anthropic splits one answer into blocks around citations)."""
    text: list[str] = []
    calls: list[Json] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            text.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {"name": str(block.get("name", "")), "arguments": arguments},
                }
            )
    message: Json = {"role": "assistant", "content": None}
    if text:
        message["content"] = "".join(text) if response else blocks.chat_content(text)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": str(choice.get("name", ""))}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))


def request_to_openai(body: Json) -> Json:
    messages: list[Json] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": blocks.chat_content(blocks.texts(system, _TEXT))})
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):
            messages.append({"role": "assistant" if role == "assistant" else "user", "content": content})
        elif isinstance(content, list):
            if role == "assistant":
                messages.append(_assistant_turn(content))
            else:
                messages.extend(_user_turn(content))
    out: Json = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    tools = [
        {
            "type": "function",
            "function": {
                "name": t.get("name"),
                "description": t.get("description", ""),
                "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
            },
        }
        for t in body.get("tools") or ()
        if isinstance(t, dict) and t.get("type") in (None, "custom") and t.get("name")
    ]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("tool_choice"), dict) and body["tool_choice"].get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    user = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user, str):
        out["user"] = user
    return out


def response_to_openai(doc: Json) -> Json:
    """A Messages response as a chat completion's ``choices`` (usage is rendered elsewhere)."""
    message = _assistant_turn(list(doc.get("content") or ()), response=True)
    thinking = "".join(
        str(b.get("thinking", ""))
        for b in doc.get("content") or ()
        if isinstance(b, dict) and b.get("type") == "thinking"
    )
    if thinking:
        message["reasoning_content"] = thinking
    finish = STOP_TO_FINISH.get(str(doc.get("stop_reason")), "stop")
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]}


def _chunk(delta: Json, finish: str | None = None) -> Json:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}


class StreamToOpenAI:
    """Messages stream events -> chat chunks. Tool-use blocks become numbered tool calls."""

    __slots__ = ("_tool_index", "_tools_seen")

    def __init__(self) -> None:
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._tools_seen = 0

    def read(self, doc: Any) -> list[Json]:
        if not isinstance(doc, dict):
            return []
        kind = doc.get("type")
        if kind == "message_start":
            return [_chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tools_seen
                self._tools_seen += 1
                self._tool_index[int(doc.get("index", 0))] = index
                call = {
                    "index": index,
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {"name": str(block.get("name", "")), "arguments": ""},
                }
                return [_chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [_chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = doc.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                return [_chunk({"content": str(delta.get("text", ""))})]
            if dtype == "thinking_delta":
                return [_chunk({"reasoning_content": str(delta.get("thinking", ""))})]
            if dtype == "input_json_delta":
                index = self._tool_index.get(int(doc.get("index", 0)), 0)
                call = {"index": index, "function": {"arguments": str(delta.get("partial_json", ""))}}
                return [_chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            reason = (doc.get("delta") or {}).get("stop_reason")
            if reason:
                return [_chunk({}, STOP_TO_FINISH.get(str(reason), "stop"))]
        return []
