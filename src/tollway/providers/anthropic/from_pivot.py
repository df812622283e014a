"""OpenAI chat (the pivot) -> an Anthropic Messages request.

System and developer messages become ``system``; ``tool`` messages become ``tool_result``
blocks of a user turn; ``tool_calls`` become ``tool_use`` blocks; consecutive turns of one
role are merged (Anthropic alternates user and assistant). Each text part stays one text
block (``system`` and ``tool_result`` take a string for one). ``max_tokens`` is required by
Anthropic: the client's cap, else the hold's maximum output. Temperature is clamped to
Anthropic's 0..1.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.providers import blocks
from tollway.providers.base import Json

FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _text_blocks(content: Any) -> list[Json]:
    """One ``text`` block per text part (Anthropic refuses empty text blocks)."""
    return [{"type": "text", "text": t} for t in blocks.texts(content) if t]


def _one_or_blocks(items: list[Json]) -> str | list[Json]:
    """A string for one text block (or none), else the blocks: ``system`` and ``tool_result``
    content take either."""
    if len(items) <= 1:
        return str(items[0]["text"]) if items else ""
    return items


def _image_block(url: str) -> Json:
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": head or "image/png", "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[Json] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text"):
            out.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                out.append(_image_block(url))
        elif kind == "file":
            data = (part.get("file") or {}).get("file_data")
            if isinstance(data, str) and data.startswith("data:") and ";base64," in data:
                head, raw = data[5:].split(";base64,", 1)
                source = {"type": "base64", "media_type": head, "data": raw}
                out.append({"type": "document", "source": source})
    return out


def _assistant_blocks(message: Json) -> list[Json]:
    out = _text_blocks(message.get("content"))
    calls = list(message.get("tool_calls") or ())
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls.append({"id": "call_legacy", "function": legacy})
    for call in calls:
        if not isinstance(call, dict):
            continue
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            args = {"arguments": fn.get("arguments")}
        block: Json = {"type": "tool_use", "id": str(call.get("id", "")), "name": str(fn.get("name", ""))}
        block["input"] = args if isinstance(args, dict) else {"value": args}
        out.append(block)
    return out


def _append(messages: list[Json], role: str, blocks: list[Json]) -> None:
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _tool_choice(choice: Any, parallel: Any) -> Json | None:
    out: Json | None = None
    if choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            out = {"type": "tool", "name": name}
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def request_from_openai(pivot: Json, *, model: str, stream: bool, max_tokens: int) -> Json:
    system: list[Json] = []
    messages: list[Json] = []
    for message in pivot.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message))
        elif role in ("tool", "function"):
            result = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or message.get("name") or ""),
                "content": _one_or_blocks(_text_blocks(message.get("content"))),
            }
            _append(messages, "user", [result])
        else:
            _append(messages, "user", _user_blocks(message.get("content")))
    out: Json = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = _one_or_blocks(system)
    if stream:
        out["stream"] = True
    temperature = pivot.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        out["temperature"] = min(max(temperature, 0), 1)
    if pivot.get("top_p") is not None:
        out["top_p"] = pivot["top_p"]
    stop = pivot.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [
        {
            "name": fn.get("name"),
            "description": fn.get("description", ""),
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        for t in pivot.get("tools") or ()
        if isinstance(t, dict) and isinstance(fn := t.get("function"), dict)
    ]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(pivot.get("tool_choice"), pivot.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(pivot.get("user"), str):
        out["metadata"] = {"user_id": pivot["user"]}
    return out
