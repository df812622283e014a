"""Per-call and per-character operations with the official ``openai`` SDK: images priced by
model, size and quality times ``n``; speech per character; transcriptions per second; rerank
per search unit. Served by an OpenAI-compatible channel, passed through, billed to the
nano-credit."""

from __future__ import annotations

import json
import struct

import openai
import pytest

from .stack import Stack, assert_request_id_error, http_json, nano
from .surfaces import KEYS, Surfaces, provision_surfaces

TEN = 10_000_000_000


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


def _records(s: Surfaces, account_id: str) -> list[dict[str, object]]:
    return s.stack.p.usage_list(account_id)


@pytest.mark.parametrize(
    ("model", "size", "quality", "n", "unit"),
    [
        ("dall-e-3", "1024x1792", "hd", 2, "0.120"),
        ("dall-e-3", "1024x1024", None, 1, "0.040"),
        ("dall-e-2", "256x256", None, 3, "0.016"),
    ],
    ids=["dall-e-3-hd-tall-x2", "dall-e-3-standard", "dall-e-2-small-x3"],
)
def test_images_are_priced_by_model_size_and_quality_times_n(
    surfaces: Surfaces, model: str, size: str, quality: str | None, n: int, unit: str
) -> None:
    c = surfaces.customer("x1")
    kw = {"quality": quality} if quality else {}
    with surfaces.stack.client(c.secret) as client:
        raw = client.images.with_raw_response.generate(
            model=model, prompt="a lighthouse", n=n, size=size, **kw
        )  # type: ignore[arg-type]
    images = raw.parse()
    assert len(images.data or []) == n
    rec = surfaces.usage(raw.headers["x-request-id"])
    expected = nano((n * 1_000_000, unit))  # n calls x unit price
    assert (rec["calls"], rec["deduction_nano"], rec["endpoint"]) == (n, expected, "images.generations")
    assert rec["lines"] == [
        {"category": "call", "quantity": n, "unit_price_nano": expected // n, "per": "call"}
    ]
    assert surfaces.stack.balance(c.account_id)["cash_nano"] == TEN - expected


def test_images_bill_the_images_returned_and_hold_for_n(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    with surfaces.stack.client(c.secret) as client:
        raw = client.images.with_raw_response.generate(
            model="dall-e-3", prompt="x", n=3, extra_body={"fake": {"chunks": 1}}
        )
    assert len(raw.parse().data or []) == 1
    assert surfaces.usage(raw.headers["x-request-id"])["calls"] == 1
    poor = surfaces.customer("x1", credit="0.1")  # 2 HD tall images cost $0.24
    with surfaces.stack.client(poor.secret) as client, pytest.raises(openai.APIStatusError) as info:
        client.images.generate(model="dall-e-3", prompt="x", n=2, size="1024x1792", quality="hd")
    assert_request_id_error(info.value, 402)
    assert _records(surfaces, poor.account_id) == []


@pytest.mark.parametrize(("model", "price"), [("tts-1", "15"), ("tts-1-hd", "30")])
def test_speech_is_billed_per_character(surfaces: Surfaces, model: str, price: str) -> None:
    c = surfaces.customer("x1")
    text = "Hello from Tollway, with a price per character."
    with surfaces.stack.client(c.secret) as client:
        raw = client.audio.speech.with_raw_response.create(model=model, voice="alloy", input=text)
    assert raw.headers["content-type"] == "audio/mpeg"
    assert raw.content.startswith(b"ID3")
    rec = surfaces.usage(raw.headers["x-request-id"])
    assert rec["tokens"]["input"] == len(text)
    assert rec["deduction_nano"] == nano((len(text), price))


@pytest.mark.parametrize(("documents", "units"), [(3, 1), (150, 2)])
def test_rerank_is_billed_per_search_unit(surfaces: Surfaces, documents: int, units: int) -> None:
    c = surfaces.customer("x1")
    body = {
        "model": "rerank-v3.5",
        "query": "gateway",
        "documents": [f"doc {i}" for i in range(documents)],
        "top_n": 2,
    }
    status, headers, doc = http_json(
        "POST", f"{surfaces.stack.url}/v1/rerank", body, headers={"authorization": f"Bearer {c.secret}"}
    )
    assert status == 200, doc
    assert [r["index"] for r in doc["results"]] == [0, 1]
    rec = surfaces.usage(headers["x-request-id"])
    assert (rec["calls"], rec["deduction_nano"]) == (units, units * 2_000_000)
    (req,) = [
        r
        for r in surfaces.fake_requests("gateway")
        if r["path"] == "/v1/rerank" and len(r["body"]["documents"]) == documents
    ]
    assert {k.lower(): v for k, v in req["headers"].items()}["authorization"] == f"Bearer {KEYS['media']}"


def test_operations_reject_a_model_no_openai_channel_serves(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")  # gemini-2.5-pro is served by a Gemini channel only
    status, _, doc = http_json(
        "POST",
        f"{surfaces.stack.url}/v1/images/generations",
        {"model": "gemini-2.5-pro", "prompt": "x"},
        headers={"authorization": f"Bearer {c.secret}"},
    )
    assert status == 404 and "OpenAI-compatible" in doc["error"]["message"]


def _wav(seconds: int, rate: int = 8_000) -> bytes:
    """A silent 16-bit mono PCM WAV of ``seconds``."""
    data = b"\x00\x00" * rate * seconds
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("response_format", "fake", "seconds", "estimated"),
    [
        ("json", None, 3, False),  # upstream reports {"type": "duration", "seconds": 3}
        ("json", {"native_usage": {"type": "duration", "seconds": 61.5}}, 62, False),
        ("text", None, 3, True),  # a plain-text transcript: billed from the WAV header
    ],
    ids=["reported", "reported-rounded-up", "text-from-the-file"],
)
def test_transcriptions_are_billed_per_second(
    surfaces: Surfaces, response_format: str, fake: dict[str, object] | None, seconds: int, estimated: bool
) -> None:
    c = surfaces.customer("x1")
    extra = {"fake": json.dumps(fake)} if fake else None
    with surfaces.stack.client(c.secret) as client:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1",
            file=("speech.wav", _wav(3), "audio/wav"),
            response_format=response_format,  # type: ignore[arg-type]
            extra_body=extra,
        )
    transcript = raw.parse()
    text = transcript if isinstance(transcript, str) else transcript.text
    assert text.strip() == "The quick brown fox jumps over the lazy"
    rec = surfaces.usage(raw.headers["x-request-id"])
    assert (rec["calls"], rec["estimated"], rec["endpoint"]) == (seconds, estimated, "audio.transcriptions")
    assert rec["deduction_nano"] == seconds * 100_000  # $0.0001 per second
