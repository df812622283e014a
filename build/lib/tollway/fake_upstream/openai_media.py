"""OpenAI-shaped per-call endpoints: ``/v1/images/generations`` (``n`` images, ``url`` or
``b64_json``), ``/v1/audio/speech`` (audio bytes, no usage), ``/v1/audio/transcriptions``
(multipart; ``usage`` ``{"type": "duration", "seconds"}``) and ``/v1/rerank`` (Cohere-style
``meta.billed_units.search_units``, or any ``native_usage`` such as Jina's
``{"total_tokens": N}``)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import orjson
from aiohttp import web

from tollway.fake_upstream.openai_shape import error_response
from tollway.fake_upstream.prologue import Reject, prologue
from tollway.fake_upstream.state import FakeState

_JSON = "application/json"
_PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class MediaShape:
    def __init__(self, state: FakeState) -> None:
        self.state = state
        key = state.config.api_key
        self._expected = None if key is None else f"Bearer {key}"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/images/generations", self.images)
        router.add_post("/v1/audio/speech", self.speech)
        router.add_post("/v1/audio/transcriptions", self.transcriptions)
        router.add_post("/v1/rerank", self.rerank)

    async def _start(self, request: web.Request, form: bool = False) -> tuple[str, dict[str, Any], Any]:
        rid = f"req_fake{self.state.next_id()}"
        expected = self._expected
        body, scenario = await prologue(
            self.state,
            request,
            authorized=lambda r: expected is None or r.headers.get("Authorization") == expected,
            error=lambda s, m: error_response(s, m, request_id=rid),
            form=form,
        )
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise Reject(error_response(400, "'model' is required.", request_id=rid))
        return rid, body, scenario

    async def images(self, request: web.Request) -> web.StreamResponse:
        try:
            rid, body, scenario = await self._start(request)
        except Reject as rej:
            return rej.response
        raw_n = body.get("n")
        n = raw_n if isinstance(raw_n, int) else 1
        if scenario.chunks < n:  # a scenario may make upstream return fewer images
            n = scenario.chunks
        as_b64 = body.get("response_format") == "b64_json"
        item: dict[str, Any] = (
            {"b64_json": base64.b64encode(_PNG_1X1).decode()}
            if as_b64
            else {"url": "https://fake.invalid/image.png"}
        )
        item["revised_prompt"] = body.get("prompt")
        doc: dict[str, Any] = {"created": int(time.time()), "data": [dict(item) for _ in range(n)]}
        if scenario.native_usage is not None:
            doc["usage"] = dict(scenario.native_usage)
        return web.Response(body=orjson.dumps(doc), headers={"Content-Type": _JSON, "x-request-id": rid})

    async def speech(self, request: web.Request) -> web.StreamResponse:
        try:
            rid, body, _ = await self._start(request)
        except Reject as rej:
            return rej.response
        raw_text = body.get("input")
        text = raw_text if isinstance(raw_text, str) else ""
        audio = b"ID3" + hashlib.sha256(text.encode()).digest() * 4  # deterministic "mp3" bytes
        return web.Response(body=audio, headers={"Content-Type": "audio/mpeg", "x-request-id": rid})

    async def rerank(self, request: web.Request) -> web.StreamResponse:
        try:
            rid, body, scenario = await self._start(request)
        except Reject as rej:
            return rej.response
        raw_docs, raw_top = body.get("documents"), body.get("top_n")
        documents: list[Any] = raw_docs if isinstance(raw_docs, list) else []
        top_n = raw_top if isinstance(raw_top, int) else len(documents)
        results = [{"index": i, "relevance_score": round(1.0 / (i + 1), 4)} for i in range(len(documents))]
        doc: dict[str, Any] = {"id": rid, "results": results[:top_n]}
        if scenario.native_usage is not None:
            doc["usage"] = dict(scenario.native_usage)
        else:
            units = max(1, -(-len(documents) // 100))
            doc["meta"] = {"api_version": {"version": "2"}, "billed_units": {"search_units": units}}
        return web.Response(body=orjson.dumps(doc), headers={"Content-Type": _JSON, "x-request-id": rid})

    async def transcriptions(self, request: web.Request) -> web.StreamResponse:
        """A multipart upload; the transcript as JSON with ``usage`` (default: one second per
        16,000 bytes of audio) or, for ``response_format=text``, as plain text without it."""
        try:
            rid, body, scenario = await self._start(request, form=True)
        except Reject as rej:
            return rej.response
        upload = body.get("file")
        if not isinstance(upload, dict):
            return error_response(400, "'file' is required.", request_id=rid)
        text = "".join(scenario.words(scenario.chunks))
        if body.get("response_format") == "text":
            return web.Response(text=text, headers={"Content-Type": "text/plain", "x-request-id": rid})
        usage = {"type": "duration", "seconds": max(1, int(upload["size"]) // 16_000)}
        doc: dict[str, Any] = {"text": text, "usage": dict(scenario.native_usage or usage)}
        return web.Response(body=orjson.dumps(doc), headers={"Content-Type": _JSON, "x-request-id": rid})
