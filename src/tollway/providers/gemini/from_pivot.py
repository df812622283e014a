"""OpenAI chat (the pivot) -> a Gemini generateContent request (the model is in the URL).

System messages become ``systemInstruction``; assistant turns are ``model`` turns; tool calls
become ``functionCall`` parts and ``tool`` messages ``functionResponse`` parts (named after
the call they answer); data-URI images become ``inlineData``, other URLs ``fileData``. Tool
parameters are sent as ``parametersJsonSchema`` (full JSON Schema, as OpenAI clients write it).
Each text part stays one Gemini part; a ``functionResponse`` holds one string, so the parts of
a tool message are joined with blank lines there.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.providers import blocks
from tollway.providers.base import Json

FINISH_TO_GEMINI = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "tool_calls": "STOP"}


def _text_parts(content: Any) -> list[Json]:
    return [{"text": t} for t in blocks.texts(content) if t]


def _url_part(url: str) -> Json:
    if url.startswith("data:") and ";base64," in url:
        mime, data = url[5:].split(";base64,", 1)
        return {"inlineData": {"mimeType": mime or "image/png", "data": data}}
    return {
        "fileData": {
            "fileUri": url,
            "mimeType": "image/jpeg" if url.endswith((".jpg", ".jpeg")) else "image/png",
        }
    }


def _user_parts(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[Json] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text"):
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                parts.append(_url_part(url))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            mime = "audio/mp3" if audio.get("format") == "mp3" else "audio/wav"
            parts.append({"inlineData": {"mimeType": mime, "data": str(audio.get("data", ""))}})
        elif kind == "file":
            data = (part.get("file") or {}).get("file_data")
            if isinstance(data, str):
                parts.append(_url_part(data))
    return parts


def _append(contents: list[Json], role: str, parts: list[Json]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _args(arguments: Any) -> Json:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _generation_config(pivot: Json, max_tokens: int) -> Json:
    config: Json = {"maxOutputTokens": max_tokens}
    for key, camel in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if pivot.get(key) is not None:
            config[camel] = pivot[key]
    stop = pivot.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = pivot.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is not None:
            config["responseJsonSchema"] = schema
    return config


def _tool_config(choice: Any) -> Json | None:
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if isinstance(choice, dict) and (name := (choice.get("function") or {}).get("name")):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def request_from_openai(pivot: Json, *, max_tokens: int) -> Json:
    system: list[Json] = []
    contents: list[Json] = []
    names: dict[str, str] = {}  # tool call id -> function name (functionResponse needs the name)
    for message in pivot.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content")))
        elif role == "assistant":
            parts = _text_parts(message.get("content"))
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                names[str(call.get("id", ""))] = str(fn.get("name", ""))
                parts.append(
                    {"functionCall": {"name": fn.get("name", ""), "args": _args(fn.get("arguments"))}}
                )
            _append(contents, "model", parts)
        elif role in ("tool", "function"):
            call_id = str(message.get("tool_call_id") or "")
            name = names.get(call_id) or str(message.get("name") or call_id)
            text = blocks.joined(blocks.texts(message.get("content")))
            try:
                response = orjson.loads(text) if text else {}
            except orjson.JSONDecodeError:
                response = None
            if not isinstance(response, dict):
                response = {"result": text}
            _append(contents, "user", [{"functionResponse": {"name": name, "response": response}}])
        else:
            _append(contents, "user", _user_parts(message.get("content")))
    out: Json = {"contents": contents, "generationConfig": _generation_config(pivot, max_tokens)}
    if system:
        out["systemInstruction"] = {"parts": system}
    declarations = [
        {
            "name": fn.get("name"),
            "description": fn.get("description", ""),
            "parametersJsonSchema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        for t in pivot.get("tools") or ()
        if isinstance(t, dict) and isinstance(fn := t.get("function"), dict)
    ]
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        config = _tool_config(pivot.get("tool_choice"))
        if config is not None:
            out["toolConfig"] = config
    return out
