"""Text block boundaries survive every translation (issue 14): several blocks stay several
parts where the target takes a list, and are joined with a blank line where it takes a string."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.providers import translate
from tollway.providers.base import Json, Shape


def _through(surface: Shape, channel: Shape, body: Json) -> Json:
    pivot = translate.request_to_pivot(surface, body, "m")
    return translate.request_from_pivot(channel, pivot, model="m", stream=False, max_output=100)


def _text(*texts: str) -> list[Json]:
    return [{"type": "text", "text": t} for t in texts]


ANTHROPIC: Json = {
    "model": "m",
    "max_tokens": 100,
    "system": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "You are an interactive CLI tool.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather?"}, {"type": "text", "text": "Be short."}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "text", "text": "One moment."},
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": _text("18C", "sunny")}],
        },
    ],
}
SYSTEM = ("You are Claude Code, Anthropic's official CLI for Claude.", "You are an interactive CLI tool.")


def test_anthropic_to_openai_keeps_parts() -> None:
    sent = _through(Shape.ANTHROPIC, Shape.OPENAI_CHAT, ANTHROPIC)
    assert sent["messages"] == [
        {"role": "system", "content": _text(*SYSTEM)},
        {"role": "user", "content": _text("Weather?", "Be short.")},
        {
            "role": "assistant",
            "content": _text("Checking.", "One moment."),
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": _text("18C", "sunny")},
    ]


def test_anthropic_to_gemini_keeps_parts_and_joins_the_tool_result() -> None:
    sent = _through(Shape.ANTHROPIC, Shape.GEMINI, ANTHROPIC)
    assert sent["systemInstruction"] == {"parts": [{"text": SYSTEM[0]}, {"text": SYSTEM[1]}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "Weather?"}, {"text": "Be short."}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {"text": "One moment."},
                {"functionCall": {"name": "weather", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "weather", "response": {"result": "18C\n\nsunny"}}}],
        },
    ]


def test_anthropic_error_result_prefixes_its_first_block() -> None:
    body: Json = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "is_error": True,
                        "content": _text("no", "route"),
                    }
                ],
            }
        ]
    }
    pivot = translate.request_to_pivot(Shape.ANTHROPIC, body, "m")
    assert pivot["messages"] == [
        {"role": "tool", "tool_call_id": "t", "content": _text("Error: no", "route")}
    ]


CHAT: Json = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Rule one."},
        {"role": "developer", "content": _text("Rule two.", "Rule three.")},
        {"role": "user", "content": _text("Weather?", "Be short.")},
        {
            "role": "assistant",
            "content": _text("Checking.", "One moment."),
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": _text("18C", "sunny")},
    ],
}


def test_openai_to_anthropic_keeps_blocks() -> None:
    sent = _through(Shape.OPENAI_CHAT, Shape.ANTHROPIC, CHAT)
    assert sent["system"] == _text("Rule one.", "Rule two.", "Rule three.")
    assert sent["messages"] == [
        {"role": "user", "content": _text("Weather?", "Be short.")},
        {
            "role": "assistant",
            "content": [
                *_text("Checking.", "One moment."),
                {"type": "tool_use", "id": "c1", "name": "weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c1", "content": _text("18C", "sunny")}],
        },
    ]


def test_openai_to_gemini_keeps_parts_and_joins_the_tool_result() -> None:
    sent = _through(Shape.OPENAI_CHAT, Shape.GEMINI, CHAT)
    assert sent["systemInstruction"] == {
        "parts": [{"text": "Rule one."}, {"text": "Rule two."}, {"text": "Rule three."}]
    }
    assert sent["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"text": "One moment."},
            {"functionCall": {"name": "weather", "args": {}}},
        ],
    }
    assert sent["contents"][2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"result": "18C\n\nsunny"}}}
    ]


def test_openai_single_parts_stay_strings_and_empty_blocks_are_dropped() -> None:
    body: Json = {
        "messages": [
            {"role": "system", "content": _text("Only rule.", "")},
            {"role": "tool", "tool_call_id": "c", "content": _text("42")},
        ]
    }
    sent = _through(Shape.OPENAI_CHAT, Shape.ANTHROPIC, body)
    assert sent["system"] == "Only rule."
    assert sent["messages"][0]["content"] == [{"type": "tool_result", "tool_use_id": "c", "content": "42"}]


GEMINI: Json = {
    "systemInstruction": {"parts": [{"text": "Rule one."}, {"text": "Rule two."}]},
    "contents": [
        {"role": "user", "parts": [{"text": "Weather?"}, {"text": "Be short."}]},
        {"role": "model", "parts": [{"text": "Checking."}, {"text": "One moment."}]},
        {"role": "user", "parts": [{"text": "Thanks."}]},
    ],
}


def test_gemini_to_openai_keeps_parts() -> None:
    sent = _through(Shape.GEMINI, Shape.OPENAI_CHAT, GEMINI)
    assert sent["messages"] == [
        {"role": "system", "content": _text("Rule one.", "Rule two.")},
        {"role": "user", "content": _text("Weather?", "Be short.")},
        {"role": "assistant", "content": _text("Checking.", "One moment.")},
        {"role": "user", "content": "Thanks."},
    ]


def test_gemini_to_anthropic_keeps_blocks() -> None:
    sent = _through(Shape.GEMINI, Shape.ANTHROPIC, GEMINI)
    assert sent["system"] == _text("Rule one.", "Rule two.")
    assert [m["content"] for m in sent["messages"]] == [
        _text("Weather?", "Be short."),
        _text("Checking.", "One moment."),
        _text("Thanks."),
    ]


RESPONSES: Json = {
    "model": "m",
    "instructions": "Rule one.",
    "input": [
        {
            "role": "developer",
            "content": [
                {"type": "input_text", "text": "Rule two."},
                {"type": "input_text", "text": "Rule three."},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather?"},
                {"type": "input_text", "text": "Be short."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Checking."},
                {"type": "output_text", "text": "One moment."},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_text", "text": "18C"}, {"type": "input_text", "text": "sunny"}],
        },
    ],
}


def test_responses_to_pivot_keeps_parts() -> None:
    pivot = translate.request_to_pivot(Shape.OPENAI_RESPONSES, RESPONSES, "m")
    assert [(m["role"], m["content"]) for m in pivot["messages"]] == [
        ("system", "Rule one."),
        ("developer", _text("Rule two.", "Rule three.")),
        ("user", _text("Weather?", "Be short.")),
        ("assistant", _text("Checking.", "One moment.")),
        ("assistant", None),
        ("tool", _text("18C", "sunny")),
    ]


def test_responses_to_anthropic_keeps_blocks() -> None:
    sent = _through(Shape.OPENAI_RESPONSES, Shape.ANTHROPIC, RESPONSES)
    assert sent["system"] == _text("Rule one.", "Rule two.", "Rule three.")
    assert sent["messages"][1]["content"][:2] == _text("Checking.", "One moment.")
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": _text("18C", "sunny")}
    ]


def test_responses_to_gemini_keeps_parts_and_joins_the_tool_result() -> None:
    sent = _through(Shape.OPENAI_RESPONSES, Shape.GEMINI, RESPONSES)
    assert sent["systemInstruction"]["parts"] == [
        {"text": "Rule one."},
        {"text": "Rule two."},
        {"text": "Rule three."},
    ]
    assert sent["contents"][1]["parts"][:2] == [{"text": "Checking."}, {"text": "One moment."}]
    assert sent["contents"][2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"result": "18C\n\nsunny"}}}
    ]


@pytest.mark.parametrize(
    ("output", "expected"),
    [("plain", "plain"), ({"ok": True}, '{"ok":true}'), ([{"type": "input_text", "text": "one"}], "one")],
)
def test_responses_function_output_shapes(output: Any, expected: Any) -> None:
    body: Json = {"input": [{"type": "function_call_output", "call_id": "c", "output": output}]}
    pivot = translate.request_to_pivot(Shape.OPENAI_RESPONSES, body, "m")
    assert pivot["messages"] == [{"role": "tool", "tool_call_id": "c", "content": expected}]


def test_responses_keep_their_output_text_whole() -> None:
    """A response's text blocks are one answer (Anthropic splits at citations): concatenated,
    as the stream of it is."""
    doc: Json = {"content": _text("The sky is ", "blue", "."), "stop_reason": "end_turn"}
    pivot = translate.response_to_pivot(Shape.ANTHROPIC, doc)
    assert pivot["choices"][0]["message"]["content"] == "The sky is blue."
