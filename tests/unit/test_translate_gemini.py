"""Gemini generateContent <-> OpenAI chat (the pivot): requests, whole responses, streams."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.pricing.model import Usage
from tollway.providers import translate
from tollway.providers.base import Shape
from tollway.providers.gemini.from_pivot import request_from_openai
from tollway.providers.gemini.to_pivot import StreamToOpenAI, request_to_openai, response_to_openai

GEMINI_REQUEST: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "contents": [
        {
            "role": "user",
            "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/jpeg", "data": "QUJD"}}],
        },
        {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 20}}}]},
        {"role": "model", "parts": [{"text": "hmm", "thought": True}, {"text": "It is 20."}]},
        {"role": "user", "parts": [{"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]},
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                }
            ]
        },
        {"googleSearch": {}},
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
    "generationConfig": {
        "maxOutputTokens": 300,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["X"],
        "responseMimeType": "application/json",
    },
}


def test_gemini_request_to_openai() -> None:
    out = request_to_openai(GEMINI_REQUEST, "gemini-2.5-pro")
    msgs = out["messages"]
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    assert msgs[1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}
    call = msgs[2]["tool_calls"][0]
    assert call["function"] == {"name": "weather", "arguments": '{"city":"Paris"}'}
    assert msgs[3] == {"role": "tool", "tool_call_id": call["id"], "content": '{"temp":20}'}  # paired by name
    assert msgs[4] == {"role": "assistant", "content": "It is 20."}  # thoughts are not replayed
    assert msgs[5]["content"][0] == {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}
    assert out["tools"][0]["function"]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    }
    assert len(out["tools"]) == 1  # googleSearch has no OpenAI equivalent
    assert out["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert (out["max_tokens"], out["temperature"], out["top_p"], out["stop"]) == (300, 0.5, 0.9, ["X"])
    assert out["response_format"] == {"type": "json_object"}
    assert out["model"] == "gemini-2.5-pro"


def test_snake_case_fields_are_accepted() -> None:
    body = {
        "system_instruction": {"parts": [{"text": "S"}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generation_config": {"max_output_tokens": 5},
    }
    out = request_to_openai(body, "m")
    assert out["messages"][0]["content"] == "S" and out["max_tokens"] == 5


def test_openai_request_to_gemini() -> None:
    pivot = {
        "messages": [
            {"role": "system", "content": "S"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"ok":true}'},
            {"role": "tool", "tool_call_id": "c1", "content": "plain text"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "temperature": 0.1,
        "stop": "END",
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    out = translate.request_from_pivot(Shape.GEMINI, pivot, model="ignored", stream=True, max_output=777)
    assert out["systemInstruction"] == {"parts": [{"text": "S"}]}
    assert out["contents"][0] == {
        "role": "user",
        "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "AA"}}],
    }
    assert out["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}],
    }
    responses = out["contents"][2]["parts"]
    assert responses == [
        {"functionResponse": {"name": "f", "response": {"ok": True}}},
        {"functionResponse": {"name": "f", "response": {"result": "plain text"}}},
    ]
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {"name": "f", "description": "", "parametersJsonSchema": {"type": "object"}}
            ]
        }
    ]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    config = out["generationConfig"]
    assert (config["maxOutputTokens"], config["temperature"], config["stopSequences"]) == (777, 0.1, ["END"])
    assert (config["responseMimeType"], config["responseJsonSchema"]) == (
        "application/json",
        {"type": "object"},
    )


def test_round_trip_gemini_openai_gemini() -> None:
    pivot = request_to_openai(GEMINI_REQUEST, "m")
    back = request_from_openai(pivot, max_tokens=300)
    roles = [c["role"] for c in back["contents"]]
    assert roles == ["user", "model", "user", "model", "user"]
    assert back["contents"][1]["parts"] == [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]
    assert back["contents"][2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"temp": 20}}}
    ]


def test_gemini_response_to_openai_and_back() -> None:
    doc = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "plan", "thought": True},
                        {"text": "A"},
                        {"functionCall": {"name": "f", "args": {}}},
                    ]
                },
                "finishReason": "STOP",
            }
        ]
    }
    pivot = response_to_openai(doc)
    message = pivot["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("A", "plan")
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert pivot["choices"][0]["finish_reason"] == "tool_calls"
    usage = Usage(input_tokens=5, cache_read_tokens=5, output_tokens=7, reasoning_tokens=3)
    back = orjson.loads(translate.response_from_pivot(Shape.GEMINI, pivot, usage, "g"))
    assert back["candidates"][0]["content"]["parts"][0] == {"text": "plan", "thought": True}
    assert back["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 4,
        "totalTokenCount": 17,
        "cachedContentTokenCount": 5,
        "thoughtsTokenCount": 3,
    }
    max_tokens = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]}
    assert response_to_openai(max_tokens)["choices"][0]["finish_reason"] == "length"


def test_gemini_stream_chunks_to_openai() -> None:
    reader = StreamToOpenAI()
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "a", "args": {"x": 1}}}]}}]},
        {
            "candidates": [
                {"content": {"parts": [{"functionCall": {"name": "b", "args": {}}}]}, "finishReason": "STOP"}
            ]
        },
    ]
    out = [c["choices"][0] for doc in chunks for c in reader.read(doc)]
    assert out[0]["delta"] == {"role": "assistant", "content": ""}
    assert out[1]["delta"] == {"content": "Hi"}
    assert [call["index"] for o in out[2:] for call in o["delta"]["tool_calls"]] == [0, 1]
    assert out[-1]["finish_reason"] == "tool_calls"


def test_gemini_to_anthropic_through_the_pivot() -> None:
    stream = translate.surface_stream(Shape.ANTHROPIC, Shape.GEMINI, model="claude", client_wants_usage=True)
    out = stream.push(b"", {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]})
    out += stream.push(b"", {"candidates": [{"content": {"parts": []}, "finishReason": "MAX_TOKENS"}]})
    out += stream.tail(Usage(input_tokens=3, output_tokens=4))
    assert out.startswith(b"event: message_start")
    assert b'"stop_reason":"max_tokens"' in out and out.endswith(b'data: {"type":"message_stop"}\n\n')
