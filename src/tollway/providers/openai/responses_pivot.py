"""An OpenAI Responses request as OpenAI chat (the pivot), for Anthropic and Gemini channels.

``instructions`` becomes a system message; ``input`` messages and their parts (``input_text``,
``input_image``, ``input_file``, ``output_text``) become chat messages; ``function_call`` items
become tool calls (consecutive ones share one assistant turn) and ``function_call_output`` items
tool messages; function ``tools``, ``tool_choice``, ``max_output_tokens`` and ``text.format``
map to their chat twins. Reasoning items and built-in tools have no equivalent and are dropped.
Several text parts stay several chat text parts (messages of every role, function outputs).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.providers import blocks
from tollway.providers.base import Json

_TEXT_PARTS = ("input_text", "output_text", "text")


def _part(part: Any) -> Json | None:
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        return {"type": "image_url", "image_url": {"url": str(url)}} if url else None
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        return {
            "type": "file",
            "file": {"file_data": part["file_data"], "filename": str(part.get("filename", "file"))},
        }
    return None


def _message(item: Json) -> Json | None:
    role = str(item.get("role", "user"))
    content = item.get("content")
    if isinstance(content, list):
        parts = [p for p in (_part(x) for x in content) if p is not None]
        if role in ("assistant", "system", "developer"):  # text parts only in chat
            content = blocks.chat_content([p["text"] for p in parts if p["type"] == "text"])
        elif len(parts) == 1 and parts[0]["type"] == "text":
            content = parts[0]["text"]
        else:
            content = parts
    return {"role": role, "content": content} if content is not None else None


def _tool_output(item: Json) -> Json:
    """A ``function_call_output`` as a tool message: a list of output parts keeps its text
    parts apart (chat tool messages take text parts only)."""
    output = item.get("output")
    if isinstance(output, list):
        content: Any = blocks.chat_content(blocks.texts(output))
    else:
        content = output if isinstance(output, str) else orjson.dumps(output).decode()
    return {"role": "tool", "tool_call_id": str(item.get("call_id", "")), "content": content}


def request_to_openai(body: Json) -> Json:
    """A Responses request as chat. ``previous_response_id`` (a conversation stored upstream)
    has no equivalent and is left out: only OpenAI channels can serve it."""
    messages: list[Json] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    value = body.get("input")
    items = [{"role": "user", "content": value}] if isinstance(value, str) else value or []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            message = _message(item)
            if message is not None:
                messages.append(message)
        elif kind == "function_call":
            call: Json = {"id": str(item.get("call_id", "")), "type": "function"}
            call["function"] = {
                "name": str(item.get("name", "")),
                "arguments": str(item.get("arguments", "")),
            }
            last = messages[-1] if messages else None
            if (
                last is not None
                and last["role"] == "assistant"
                and last.get("tool_calls")
                and not last["content"]
            ):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(_tool_output(item))
    out: Json = {"model": body.get("model"), "messages": messages}
    for key, target in (
        ("max_output_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
    ):
        if body.get(key) is not None:
            out[target] = body[key]
    if body.get("parallel_tool_calls") is False:
        out["parallel_tool_calls"] = False
    tools = [
        {
            "type": "function",
            "function": {
                "name": t.get("name"),
                "description": t.get("description", ""),
                "parameters": t.get("parameters"),
            },
        }
        for t in body.get("tools") or ()
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    if tools:
        out["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "function":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif choice in ("auto", "required", "none"):
            out["tool_choice"] = choice
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {
            "name": fmt.get("name", "response"),
            "schema": fmt.get("schema"),
            "strict": fmt.get("strict"),
        }
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    return out
