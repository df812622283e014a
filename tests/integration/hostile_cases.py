"""The hostile request bodies of test_hostile_bodies: per /v1 surface, a valid body, the fields
Tollway itself reads, and generators of malformed, deep, huge and wrongly typed variants."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

JSON = "application/json"
MSGS = [{"role": "user", "content": "hi"}]
GEMINI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "generationConfig": {"maxOutputTokens": 20},
}


@dataclass(frozen=True)
class Surface:
    name: str
    path: str
    shape: str  # openai | anthropic | gemini
    body: dict[str, Any]
    fields: tuple[str, ...]  # fields Tollway reads (wrong types must be its own 400)
    text_field: str  # where a huge string or NUL bytes go


SURFACES = (
    Surface("chat", "/v1/chat/completions", "openai",
            {"model": "gpt-4o", "messages": MSGS, "max_tokens": 20},
            ("model", "messages", "max_tokens", "max_completion_tokens", "stream", "n"), "model"),
    Surface("embeddings", "/v1/embeddings", "openai",
            {"model": "text-embedding-3-small", "input": "hi"}, ("model", "input", "dimensions"), "model"),
    Surface("responses", "/v1/responses", "openai",
            {"model": "gpt-4o", "input": "hi", "max_output_tokens": 20},
            ("model", "input", "max_output_tokens", "stream", "instructions"), "model"),
    Surface("images", "/v1/images/generations", "openai",
            {"model": "dall-e-3", "prompt": "a cat", "n": 1, "size": "1024x1024"},
            ("model", "prompt", "n", "size", "quality"), "model"),
    Surface("speech", "/v1/audio/speech", "openai",
            {"model": "tts-1", "input": "hi", "voice": "alloy"}, ("model", "input", "voice"), "model"),
    Surface("rerank", "/v1/rerank", "openai",
            {"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"]},
            ("model", "query", "documents", "top_n"), "model"),
    Surface("messages", "/v1/messages", "anthropic",
            {"model": "claude-sonnet-4-5", "max_tokens": 20, "messages": MSGS},
            ("model", "messages", "max_tokens", "stream", "system"), "model"),
    Surface("count_tokens", "/v1/messages/count_tokens", "anthropic",
            {"model": "claude-sonnet-4-5", "messages": MSGS}, ("model", "messages", "system"), "model"),
    Surface("gemini", "/v1beta/models/gemini-2.5-pro:generateContent", "gemini",
            GEMINI_BODY,
            ("contents", "generationConfig", "systemInstruction"), "contents"),
    # translated: these models are served by an OpenAI-compatible channel
    Surface("messages->openai", "/v1/messages", "anthropic",
            {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": MSGS},
            ("model", "messages", "max_tokens", "stream", "system", "tools", "tool_choice"), "model"),
    Surface("gemini->openai", "/v1beta/models/gemini-2.0-flash:generateContent", "gemini",
            GEMINI_BODY,
            ("contents", "generationConfig", "systemInstruction", "tools"), "contents"),
)  # fmt: skip

WRONG_VALUES: tuple[Any, ...] = (
    12345,
    -1,
    0,
    1.5,
    "twenty",
    True,
    None,
    [],
    [1, "x"],
    {"a": 1},
    2**63,
    10**30,
)


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()  # integers past 64 bits too


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@dataclass(frozen=True)
class Case:
    surface: Surface
    label: str
    body: bytes
    content_type: str | None = JSON
    # Tollway itself must refuse it (it is not JSON, not an object, too deep, the wrong
    # content type...). A wrongly typed field Tollway does not read goes to the provider,
    # which judges it (the fake upstream is lenient and may serve it).
    refused: bool = True


def text_value(s: Surface, text: str) -> Any:
    """``text`` where the surface takes text: the model name, or a Gemini part."""
    return text if s.text_field == "model" else [{"parts": [{"text": text}]}]


def raw_cases(s: Surface) -> Iterator[Case]:
    def with_(field: str, value: Any) -> bytes:
        return dumps({**s.body, field: value})

    yield from (
        Case(s, "empty body", b""),
        Case(s, "truncated JSON", b'{"model": "gpt-4o", "messages": ['),
        Case(s, "not an object: array", b"[]"),
        Case(s, "not an object: null", b"null"),
        Case(s, "not an object: string", b'"hello"'),
        Case(s, "not an object: number", b"42"),
        Case(s, "trailing garbage", dumps(s.body) + b"}}"),
        Case(s, "100k-deep array", nested(100_000)),
        Case(s, "100k-deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        Case(s, "1000-deep value in a field", with_(s.fields[-1], "X").replace(b'"X"', nested(1000))),
        Case(s, "NUL byte outside strings", dumps(s.body)[:-1] + b"\x00}"),
        Case(s, "invalid UTF-8", dumps(s.body)[:-1] + b',"x":"\xff\xfe"}'),
        Case(s, "lone surrogate escape", dumps(s.body)[:-1] + b',"x":"\\ud800"}'),
        Case(s, "huge number", dumps(s.body)[:-1] + b',"max_tokens":1e999}'),
        Case(s, "huge integer literal", dumps(s.body)[:-1] + b',"n":' + b"9" * 5000 + b"}"),
        Case(s, "NUL in a string", with_(s.text_field, text_value(s, "gpt\x00-4o")), refused=False),
        Case(s, "5 MB string", with_(s.text_field, text_value(s, "m " * 2_500_000)), refused=False),
        Case(s, "text/plain", dumps(s.body), "text/plain"),
        Case(s, "form-encoded", b"model=gpt-4o", "application/x-www-form-urlencoded"),
        Case(s, "multipart for a JSON route", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
        Case(s, "duplicate keys, last one wrong", dumps(s.body)[:-1] + f',"{s.fields[0]}":[]}}'.encode()),
    )  # fmt: skip
    for field in s.fields:
        for value in WRONG_VALUES:
            if s.body.get(field) == value:
                continue
            yield Case(s, f"{field}={json.dumps(value)[:20]}", with_(field, value), refused=False)


TRANSCRIPTIONS = Surface("transcriptions", "/v1/audio/transcriptions", "openai", {}, (), "model")


def multipart(*parts: tuple[str, bytes, str | None]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--B\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n" + value + b"\r\n"
    return out + b"--B--\r\n"


def upload_cases() -> Iterator[Case]:
    s, mp = TRANSCRIPTIONS, "multipart/form-data; boundary=B"
    audio = ("file", b"RIFF\x24\x00\x00\x00WAVEfmt ", "a.wav")
    model: tuple[str, bytes, str | None] = ("model", b"whisper-1", None)
    yield from (
        Case(s, "JSON body", dumps({"model": "whisper-1"})),
        Case(s, "no boundary", multipart(("model", b"whisper-1", None)), "multipart/form-data"),
        Case(s, "no Content-Type", multipart(("model", b"whisper-1", None)), None),
        Case(s, "garbage", b"\x00\xff" * 1000, mp),
        Case(s, "unterminated", b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper", mp),
        Case(s, "no file", multipart(("model", b"whisper-1", None)), mp),
        Case(s, "no model", multipart(audio), mp),
        Case(s, "NUL in the model", multipart(("model", b"whisper\x00-1", None), audio), mp, refused=False),
        Case(s, "invalid UTF-8 model", multipart(("model", b"\xff\xfe", None), audio), mp),
        Case(s, "1 MB model name", multipart(("model", b"m" * 1_000_000, None), audio), mp),
        Case(s, "10k fields", multipart(*((f"f{i}", b"x", None) for i in range(10_000))), mp),
        Case(s, "file is not audio", multipart(model, ("file", b"\x00" * 100, "a.wav")), mp, refused=False),
    )  # fmt: skip


def all_cases() -> list[Case]:
    return [c for s in SURFACES for c in raw_cases(s)] + list(upload_cases())
