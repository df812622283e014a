"""OpenAI-only operations (Responses, images, speech, rerank): usage readers, the Responses
stream tap and pass-through, per-call price variants, and the input bounds of the Gemini and
Responses bodies used to size holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tollway import tokens
from tollway.errors import InvalidRequest
from tollway.money import Ratio
from tollway.pricing import cost
from tollway.pricing.book import PriceBook, entry_from_dict, entry_to_dict
from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.openai import operations, responses

NOW = datetime.now(UTC)


def ev(doc: dict[str, Any]) -> bytes:
    return sse.named_event(str(doc["type"]), doc)


def test_responses_tap_and_passthrough_hold_the_terminal_event() -> None:
    tap = responses.ResponsesTap()
    gate = responses.ResponsesPassThrough()
    usage = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 60}, "output_tokens": 9}
    stream = [
        {"type": "response.created", "response": {}},
        {"type": "response.output_text.delta", "delta": "Hello"},
        {"type": "response.completed", "response": {"usage": usage}},
    ]
    forwarded = b""
    for doc in stream:
        event = ev(doc)
        forwarded += gate.push(event, tap.feed(event))
    assert b"response.completed" not in forwarded and b"Hello" in forwarded
    assert (tap.done, tap.has_output, tap.has_usage) == (True, True, True)
    assert tap.usage(0) == Usage(input_tokens=40, cache_read_tokens=60, output_tokens=9)
    assert gate.tail(Usage()) == ev(stream[2])
    error = sse.parse(sse.data_of(gate.error("cut (request id: r)", "upstream_error")))
    assert error["type"] == "error" and error["error"]["message"].endswith("r)")


def test_responses_tap_without_a_terminal_event_estimates() -> None:
    tap = responses.ResponsesTap()
    tap.feed(ev({"type": "response.output_text.delta", "delta": "abcdefgh"}))
    assert not tap.done
    assert tap.usage(5) == Usage(input_tokens=5, output_tokens=2, estimated=True)


def test_responses_whole_usage_and_text() -> None:
    doc = {
        "usage": {"input_tokens": 10, "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 3}},
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}]},
            {"type": "message", "content": [{"type": "output_text", "text": "hi"}]},
            {"type": "function_call", "name": "f", "arguments": "{}"},
        ],
    }
    assert responses.usage_of(doc) == Usage(input_tokens=10, output_tokens=4, reasoning_tokens=3)
    assert responses.output_text(doc) == "shif{}"
    assert responses.usage_of({}) is None


def test_images_speech_and_rerank_usage() -> None:
    assert operations.IMAGES.usage_of({"data": [{}, {}]}) == Usage(calls=2)
    tokens_too = {"data": [{}], "usage": {"input_tokens": 50, "output_tokens": 4160}}
    assert operations.IMAGES.usage_of(tokens_too) == Usage(input_tokens=50, output_tokens=4160, calls=1)
    assert operations.SPEECH.raw_answer and operations.SPEECH.usage_of({}) is None
    assert operations.speech_usage({"input": "héllo"}) == Usage(input_tokens=5)
    whisper = {"text": "x", "usage": {"type": "duration", "seconds": 9.2}}
    assert operations.TRANSCRIPTIONS.usage_of(whisper) == Usage(calls=10)
    tokens_usage = {"usage": {"type": "tokens", "input_tokens": 30, "output_tokens": 5}}
    assert operations.TRANSCRIPTIONS.usage_of(tokens_usage) == Usage(input_tokens=30, output_tokens=5)
    assert operations.TRANSCRIPTIONS.usage_of({"text": "x"}) is None
    cohere = {"meta": {"billed_units": {"search_units": 2}}}
    assert operations.RERANK.usage_of(cohere) == Usage(calls=2)
    assert operations.RERANK.usage_of({"usage": {"total_tokens": 77}}) == Usage(input_tokens=77, calls=1)


def test_per_call_variants_price_the_call_and_round_trip() -> None:
    entry = PriceBook.bundled().lookup("dall-e-3", NOW)
    assert entry is not None
    hd = cost.with_variant(entry, "hd/1024x1792", "1024x1792")
    assert hd.per_call_nano == 120_000_000
    assert cost.with_variant(entry, "unknown") is entry
    assert cost.hold_cost_nano(hd, 10, 0, Ratio(1, 1), calls=3) == 360_000_000
    assert cost.charge(hd, Usage(calls=2), Ratio(3, 10)).deduction_nano == 72_000_000
    again = entry_from_dict(entry_to_dict(entry), version=entry.version)
    assert again == entry
    with pytest.raises(InvalidRequest) as info:
        entry_from_dict({**entry_to_dict(entry), "per_call_variants": {"hd": 0.5}})
    assert info.value.param == "per_call_variants.hd"
    token_entry = entry_to_dict(PriceBook.bundled().lookup("gpt-4o", NOW))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        entry_from_dict({**token_entry, "per_call_variants": {"x": "1"}})


def test_gemini_input_bounds() -> None:
    text_only = {"contents": [{"role": "user", "parts": [{"text": "abcd"}]}]}
    assert tokens.gemini_input_bounds(text_only) == (4 + 4 + 3, 1 + 4 + 3)
    body = {
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
            {"role": "user", "parts": [{"inline_data": {"mime_type": "audio/wav", "data": "A" * 400}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"n": 12345}}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "f"}]}],
    }
    upper, expected = tokens.gemini_input_bounds(body)
    fixed = tokens.IMAGE_TOKENS_MAX + 300 // 20 + len(b'{"name":"f","args":{"n":12345}}')
    fixed += len(b'[{"functionDeclarations":[{"name":"f"}]}]') + tokens.TOOLS_OVERHEAD_TOKENS
    fixed += 4 * 4 + 3  # system + 3 turns framing, reply priming
    assert (upper, expected) == (3 + fixed, 1 + fixed)


def test_responses_input_bounds() -> None:
    assert tokens.responses_input_bounds({"input": "abcdefgh"}) == (8 + 4 + 3, 2 + 4 + 3)
    items = {
        "instructions": "be",
        "input": [
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "x"}],
            },
            {"type": "function_call_output", "call_id": "c", "output": "ok"},
        ],
    }
    upper, _ = tokens.responses_input_bounds(items)
    assert upper == 2 + 2 + tokens.IMAGE_TOKENS_MAX + 1 + 2 + 3 * 4 + 3


def test_anthropic_tool_use_input_counts_as_json() -> None:
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"n": 12345}}],
            }
        ]
    }
    upper, _ = tokens.chat_input_bounds(body)
    assert upper == 1 + 1 + len(b'{"n":12345}') + 4 + 3


def test_multipart_form_is_read_and_re_encoded_with_the_channel_model() -> None:
    from tollway.relay import multipart

    raw = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\n'
        b"whisper-1\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
        b"RIFF\x00\r\n\x01data\r\n"
        b"--XyZ--\r\n"
    )
    form = multipart.parse(raw, 'multipart/form-data; boundary="XyZ"')
    assert form.field("model") == "whisper-1"
    upload = form.file("file")
    assert upload is not None and (upload.filename, upload.body) == ("a.wav", b"RIFF\x00\r\n\x01data")
    assert form.encode() == raw
    again = multipart.parse(form.encode(model="upstream-whisper"), form.content_type)
    assert again.field("model") == "upstream-whisper" and again.file("file") == upload
    with pytest.raises(InvalidRequest):
        multipart.parse(b"{}", "application/json")


def test_audio_seconds_from_a_wav_header_or_bounded_by_size() -> None:
    import struct

    from tollway.relay.audio_length import seconds_bounds, wav_seconds

    pcm = b"\x00\x00" * 8_000 * 5 + b"\x00\x00"  # 5 s and one sample at 16,000 bytes/s
    fmt = struct.pack("<HHIIHH", 1, 1, 8_000, 16_000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    wav = b"RIFF" + struct.pack("<I", len(body)) + body
    assert wav_seconds(wav) == 6 and seconds_bounds(wav) == (6, 6)
    assert wav_seconds(b"ID3" + b"\x00" * 100) is None
    assert seconds_bounds(b"\x00" * 32_001) == (33, 3)  # 8 kbit/s floor, 128 kbit/s expected


def test_gemini_images_are_counted_in_768px_tiles_for_holds() -> None:
    import base64
    import struct

    from tollway.image_dims import dimensions

    def png(w: int, h: int) -> str:
        return base64.b64encode(
            b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", w, h) + b"\x00" * 9
        ).decode()

    def jpeg(w: int, h: int) -> str:
        app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
        sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, h, w) + b"\x00" * 10
        return base64.b64encode(b"\xff\xd8" + app0 + sof + b"\xff\xd9").decode()

    gif = base64.b64encode(b"GIF89a" + struct.pack("<HH", 300, 200) + b"\x00" * 8).decode()
    webp = base64.b64encode(
        b"RIFF\x00\x00\x00\x00WEBPVP8X"
        + b"\x00" * 8
        + (999).to_bytes(3, "little")
        + (499).to_bytes(3, "little")
    ).decode()
    assert dimensions(png(4000, 3000)) == (4000, 3000)
    assert dimensions(jpeg(1920, 1080)) == (1920, 1080)
    assert dimensions(gif) == (300, 200)
    assert dimensions(webp) == (1000, 500)
    assert dimensions("bm90IGFuIGltYWdl") is None
    assert tokens.gemini_image_tokens(png(4000, 3000)) == 6 * 4 * 258  # 24 tiles beat the allowance
    assert tokens.gemini_image_tokens(png(300, 300)) == tokens.IMAGE_TOKENS_MAX  # never below it
    assert tokens.gemini_image_tokens(png(300, 300), floor=0) == 258
    assert tokens.gemini_image_tokens(jpeg(1920, 1080), floor=0) == 3 * 2 * 258
    body = {
        "contents": [
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": png(4000, 3000)}}]}
        ]
    }
    assert tokens.gemini_input_bounds(body)[0] == 6 * 4 * 258 + 4 + 3
