"""Gemini generateContent -> OpenAI chat (the pivot): requests, responses and stream chunks.

Requests: ``systemInstruction`` becomes a system message, ``model`` turns assistant turns
(several text parts stay several text parts);
``functionCall`` parts become tool calls (ids made up when Gemini gives none, and matched to
the ``functionResponse`` parts that answer them, by name and order); ``inlineData`` images
become ``image_url`` data URIs and audio ``input_audio``; ``generationConfig`` maps to the
sampling fields. REST sends camelCase; snake_case is accepted too.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.providers import blocks
from tollway.providers.base import Json

FINISH_TO_OPENAI = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}


def get(d: Any, camel: str) -> Any:
    """A field by its camelCase name or its snake_case twin."""
    if not isinstance(d, dict):
        return None
    if camel in d:
        return d[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return d.get(snake)


def lower_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema (``"type": "OBJECT"``) as JSON Schema (lower-case types)."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else lower_schema(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [lower_schema(v) for v in schema]
    return schema


def _media_part(data: Json) -> Json | None:
    mime = str(get(data, "mimeType") or "")
    payload = str(data.get("data", ""))
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{payload}"}}
    if mime in _AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": payload, "format": _AUDIO_FORMATS[mime]}}
    if mime:
        return {"type": "file", "file": {"file_data": f"data:{mime};base64,{payload}", "filename": "file"}}
    return None


class _Calls:
    """Tool-call ids: Gemini may omit them, OpenAI needs them to pair calls and results."""

    def __init__(self) -> None:
        self.pending: dict[str, list[str]] = {}
        self.count = 0

    def call_id(self, call: Json) -> str:
        self.count += 1
        call_id = str(call.get("id") or f"call_{self.count}_{call.get('name', '')}")
        self.pending.setdefault(str(call.get("name", "")), []).append(call_id)
        return call_id

    def result_id(self, response: Json) -> str:
        if response.get("id"):
            return str(response["id"])
        queue = self.pending.get(str(response.get("name", "")))
        return queue.pop(0) if queue else f"call_{response.get('name', '')}"


def _turn(content: Json, calls: _Calls) -> list[Json]:
    model_turn = content.get("role") == "model"
    texts: list[Json] = []
    tool_calls: list[Json] = []
    results: list[Json] = []
    for part in content.get("parts") or ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append({"type": "text", "text": part["text"]})
        elif (call := get(part, "functionCall")) is not None:
            arguments = orjson.dumps(call.get("args") or {}).decode()
            fn = {"name": str(call.get("name", "")), "arguments": arguments}
            tool_calls.append({"id": calls.call_id(call), "type": "function", "function": fn})
        elif (response := get(part, "functionResponse")) is not None:
            body = orjson.dumps(response.get("response") or {}).decode()
            results.append({"role": "tool", "tool_call_id": calls.result_id(response), "content": body})
        elif (data := get(part, "inlineData")) is not None and not model_turn:
            media = _media_part(data)
            if media is not None:
                texts.append(media)
        elif (ref := get(part, "fileData")) is not None and not model_turn:
            uri, mime = str(get(ref, "fileUri") or ""), str(get(ref, "mimeType") or "")
            if mime.startswith("image/") or not mime:
                texts.append({"type": "image_url", "image_url": {"url": uri}})
    if model_turn:
        message: Json = {"role": "assistant", "content": None}
        if texts:
            message["content"] = blocks.chat_content([t["text"] for t in texts])
        if tool_calls:
            message["tool_calls"] = tool_calls
        return [message]
    out = results
    if texts:
        plain = len(texts) == 1 and texts[0]["type"] == "text"
        out.append({"role": "user", "content": texts[0]["text"] if plain else texts})
    return out


def _tools(body: Json) -> list[Json]:
    out: list[Json] = []
    for tool in body.get("tools") or ():
        for decl in get(tool, "functionDeclarations") or ():
            schema = get(decl, "parametersJsonSchema")
            if schema is None:
                schema = lower_schema(decl.get("parameters")) or {"type": "object", "properties": {}}
            fn = {"name": decl.get("name"), "description": decl.get("description", ""), "parameters": schema}
            out.append({"type": "function", "function": fn})
    return out


def _tool_choice(body: Json) -> Any:
    config = get(get(body, "toolConfig"), "functionCallingConfig")
    mode = str(get(config, "mode") or "").upper()
    allowed = get(config, "allowedFunctionNames") or []
    if mode == "ANY" and len(allowed) == 1:
        return {"type": "function", "function": {"name": allowed[0]}}
    return {"AUTO": "auto", "ANY": "required", "NONE": "none"}.get(mode)


def request_to_openai(body: Json, model: str) -> Json:
    messages: list[Json] = []
    system = get(body, "systemInstruction")
    if isinstance(system, dict):
        parts = [str(p.get("text", "")) for p in system.get("parts") or () if isinstance(p, dict)]
        messages.append({"role": "system", "content": blocks.chat_content(parts)})
    elif isinstance(system, str):
        messages.append({"role": "system", "content": system})
    calls = _Calls()
    for content in body.get("contents") or ():
        if isinstance(content, dict):
            messages.extend(_turn(content, calls))
    out: Json = {"model": model, "messages": messages}
    config = get(body, "generationConfig") or {}
    for camel, key in (
        ("maxOutputTokens", "max_tokens"),
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("stopSequences", "stop"),
        ("candidateCount", "n"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    ):
        value = get(config, camel)
        if value is not None:
            out[key] = value
    schema = get(config, "responseJsonSchema") or get(config, "responseSchema")
    if schema is not None:
        json_schema = {"name": "response", "schema": lower_schema(schema)}
        out["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    elif get(config, "responseMimeType") == "application/json":
        out["response_format"] = {"type": "json_object"}
    tools = _tools(body)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body)
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _delta_of(candidate: Json, calls: _Calls, first_index: int) -> tuple[Json, int]:
    """(OpenAI delta, number of tool calls in it) of one Gemini candidate."""
    delta: Json = {}
    text: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[Json] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else text).append(part["text"])
        elif (call := get(part, "functionCall")) is not None:
            arguments = orjson.dumps(call.get("args") or {}).decode()
            fn = {"name": str(call.get("name", "")), "arguments": arguments}
            index = first_index + len(tool_calls)
            tool_calls.append({"index": index, "id": calls.call_id(call), "type": "function", "function": fn})
    if thoughts:
        delta["reasoning_content"] = "".join(thoughts)
    if text:
        delta["content"] = "".join(text)
    if tool_calls:
        delta["tool_calls"] = tool_calls
    return delta, len(tool_calls)


def _finish(candidate: Json, had_tools: bool) -> str | None:
    reason = candidate.get("finishReason")
    if not reason:
        return None
    return "tool_calls" if had_tools and reason == "STOP" else FINISH_TO_OPENAI.get(str(reason), "stop")


def response_to_openai(doc: Json) -> Json:
    choices: list[Json] = []
    for i, candidate in enumerate(doc.get("candidates") or ()):
        if not isinstance(candidate, dict):
            continue
        delta, n_tools = _delta_of(candidate, _Calls(), 0)
        for call in delta.get("tool_calls") or ():
            call.pop("index", None)
        message: Json = {"role": "assistant", "content": delta.get("content")}
        for key in ("tool_calls", "reasoning_content"):
            if key in delta:
                message[key] = delta[key]
        finish = _finish(candidate, n_tools > 0) or "stop"
        choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": None})
    return {"choices": choices}


class StreamToOpenAI:
    """Gemini stream chunks -> chat chunks (first candidate). Gemini sends whole function calls,
    so each becomes one complete tool-call delta."""

    __slots__ = ("_calls", "_started", "_tools")

    def __init__(self) -> None:
        self._calls = _Calls()
        self._tools = 0
        self._started = False

    def read(self, doc: Any) -> list[Json]:
        if not isinstance(doc, dict):
            return []
        out: list[Json] = []
        if not self._started:
            self._started = True
            out.append(
                {
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                    ]
                }
            )
        candidates = doc.get("candidates") or ()
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else None
        if candidate is None:
            return out
        delta, n_tools = _delta_of(candidate, self._calls, self._tools)
        self._tools += n_tools
        finish = _finish(candidate, self._tools > 0)
        if delta or finish:
            out.append({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        return out
