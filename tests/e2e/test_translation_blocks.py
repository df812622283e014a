"""Text block boundaries survive translation (issue 14), with the official SDKs: multi-block
system prompts, content-part lists and tool results sent from every surface to a channel of
every other shape, and exactly what the fake upstream received compared. Several blocks stay
several parts where the target takes a list; a Gemini ``functionResponse`` takes one string,
so there the blocks are joined with a blank line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.genai import types

from .stack import Stack
from .surfaces import Surfaces, provision_surfaces


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


CLAUDE_SYSTEM = (
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are an interactive CLI tool.",
)
RULES = ("Rule one.", "Rule two.", "Rule three.")
ARGS = '{"city":"Paris"}'
WEATHER_TOOL = {"type": "object", "properties": {"city": {"type": "string"}}}


def _text(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": t} for t in texts]


def _user(tag: str) -> tuple[str, str]:
    return (f"Weather in Paris? {tag}", "Answer briefly.")


# ---- the clients: each sends its surface's multi-block conversation, streamed or not


def _anthropic(s: Surfaces, secret: str, model: str, tag: str, stream: bool) -> None:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 200,
        "system": [
            {"type": "text", "text": CLAUDE_SYSTEM[0]},
            {"type": "text", "text": CLAUDE_SYSTEM[1], "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [{"name": "weather", "description": "Weather", "input_schema": WEATHER_TOOL}],
        "messages": [
            {"role": "user", "content": _text(*_user(tag))},
            {
                "role": "assistant",
                "content": [
                    *_text("Checking.", "One moment."),
                    {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": _text("18C", "sunny")}
                ],
            },
        ],
    }
    with s.anthropic(secret) as client:
        if stream:
            with client.messages.stream(**body) as st:
                assert st.get_final_message().content
        else:
            assert client.messages.create(**body).content


def _chat(s: Surfaces, secret: str, model: str, tag: str, stream: bool) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ARGS}}
    messages: Any = [
        {"role": "system", "content": RULES[0]},
        {"role": "developer", "content": _text(*RULES[1:])},
        {"role": "user", "content": _text(*_user(tag))},
        {"role": "assistant", "content": _text("Checking.", "One moment."), "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": _text("18C", "sunny")},
    ]
    tools: Any = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER_TOOL}}]
    with s.stack.client(secret) as client:
        if stream:
            chunks = list(
                client.chat.completions.create(model=model, messages=messages, tools=tools, stream=True)
            )
            assert chunks
        else:
            assert client.chat.completions.create(model=model, messages=messages, tools=tools).choices


def _gemini(s: Surfaces, secret: str, model: str, tag: str, stream: bool) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text=t) for t in _user(tag)]),
        types.Content(
            role="model",
            parts=[
                types.Part.from_text(text="Checking."),
                types.Part.from_text(text="One moment."),
                types.Part.from_function_call(name="weather", args={"city": "Paris"}),
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name="weather", response={"temp": "18C", "sky": "sunny"})
            ],
        ),
    ]
    system = types.Content(parts=[types.Part.from_text(text=t) for t in RULES[:2]])
    config = types.GenerateContentConfig(system_instruction=system)
    client = s.genai(secret)
    if stream:
        assert list(client.models.generate_content_stream(model=model, contents=contents, config=config))
    else:
        assert client.models.generate_content(model=model, contents=contents, config=config).candidates


def _responses(s: Surfaces, secret: str, model: str, tag: str, stream: bool) -> None:
    texts = [{"type": "input_text", "text": t} for t in _user(tag)]
    items: Any = [
        {"role": "developer", "content": [{"type": "input_text", "text": t} for t in RULES[1:]]},
        {"role": "user", "content": texts},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": t} for t in ("Checking.", "One moment.")],
        },
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": ARGS},
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": [{"type": "input_text", "text": "18C"}, {"type": "input_text", "text": "sunny"}],
        },
    ]
    kw: dict[str, Any] = {"model": model, "instructions": RULES[0], "input": items}
    with s.stack.client(secret) as client:
        if stream:
            assert [e.type for e in client.responses.create(stream=True, **kw)][-1] == "response.completed"
        else:
            assert client.responses.create(**kw).status == "completed"


# ---- what each channel must receive


def _to_openai(system: list[dict[str, Any]], tag: str, call_id: str, result: Any) -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": ARGS}}
    return {
        "messages": [
            *system,
            {"role": "user", "content": _text(*_user(tag))},
            {"role": "assistant", "content": _text("Checking.", "One moment."), "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": result},
        ]
    }


def _to_anthropic(system: tuple[str, ...], tag: str, call_id: str, result: Any) -> dict[str, Any]:
    use = {"type": "tool_use", "id": call_id, "name": "weather", "input": {"city": "Paris"}}
    return {
        "system": _text(*system),
        "messages": [
            {"role": "user", "content": _text(*_user(tag))},
            {"role": "assistant", "content": [*_text("Checking.", "One moment."), use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": result}]},
        ],
    }


def _to_gemini(system: tuple[str, ...], tag: str) -> dict[str, Any]:
    response = {"name": "weather", "response": {"result": "18C\n\nsunny"}}
    return {
        "systemInstruction": {"parts": [{"text": t} for t in system]},
        "contents": [
            {"role": "user", "parts": [{"text": t} for t in _user(tag)]},
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"text": "One moment."},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                ],
            },
            {"role": "user", "parts": [{"functionResponse": response}]},
        ],
    }


Client = Callable[[Surfaces, str, str, str, bool], None]
Expect = Callable[[str], dict[str, Any]]
GEMINI_RESULT = '{"temp":"18C","sky":"sunny"}'
PAIRS: dict[str, tuple[Client, str, str, str, Expect]] = {
    # id: (client, group, model, upstream path, expected upstream body fields)
    "anthropic->openai": (
        _anthropic,
        "x1",
        "claude-opus-4-5",
        "/v1/chat/completions",
        lambda tag: _to_openai(
            [{"role": "system", "content": _text(*CLAUDE_SYSTEM)}], tag, "toolu_01", _text("18C", "sunny")
        ),
    ),
    "anthropic->gemini": (
        _anthropic,
        "gx",
        "claude-haiku-4-5",
        "models/",
        lambda t: _to_gemini(CLAUDE_SYSTEM, t),
    ),
    "openai->anthropic": (
        _chat,
        "anth",
        "claude-opus-4-5",
        "/v1/messages",
        lambda tag: _to_anthropic(RULES, tag, "call_1", _text("18C", "sunny")),
    ),
    "openai->gemini": (_chat, "x1", "gemini-2.5-pro", "models/", lambda tag: _to_gemini(RULES, tag)),
    "gemini->openai": (
        _gemini,
        "x1",
        "gemini-2.0-flash",
        "/v1/chat/completions",
        lambda tag: _to_openai(
            [{"role": "system", "content": _text(*RULES[:2])}], tag, "call_1_weather", GEMINI_RESULT
        ),
    ),
    "gemini->anthropic": (
        _gemini,
        "anth",
        "claude-opus-4-5",
        "/v1/messages",
        lambda tag: _to_anthropic(RULES[:2], tag, "call_1_weather", GEMINI_RESULT),
    ),
    "responses->anthropic": (
        _responses,
        "anth",
        "claude-opus-4-5",
        "/v1/messages",
        lambda tag: _to_anthropic(RULES, tag, "call_1", _text("18C", "sunny")),
    ),
    "responses->gemini": (_responses, "x1", "gemini-2.5-pro", "models/", lambda tag: _to_gemini(RULES, tag)),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("pair", list(PAIRS))
def test_text_blocks_keep_their_boundaries(surfaces: Surfaces, pair: str, stream: bool) -> None:
    client, group, model, path, expect = PAIRS[pair]
    c = surfaces.customer(group)
    tag = f"blocks-{c.key_id}"
    client(surfaces, c.secret, model, tag, stream)
    (req,) = surfaces.fake_requests(tag)
    assert path in req["path"]
    expected = expect(tag)
    assert {k: req["body"].get(k) for k in expected} == expected
