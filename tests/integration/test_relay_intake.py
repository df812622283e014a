"""What the data plane refuses before any hold (docs/surfaces.md "Limits", "Content types",
"Output caps"), through Tollway's real ASGI app on a real database, per surface:

* 413 for a body over the surface's limit: on Content-Length without reading a byte, else as
  soon as the counted chunks pass it; multipart uploads have their own limit;
* 408 for a body that does not arrive within the body-read timeout;
* 415 for a JSON surface sent something else (text/plain, a form), and for an upload that is
  not multipart; a request without Content-Type is read as JSON;
* 400 for an output cap above the price book's cap of the model (policy ``reject``), or the
  call forwarded unchanged with the hold sized at the cap (``clamp``).

Every refusal leaves no hold, no usage record, an untouched balance and no rate budget used
(the group allows one request per minute, and a good call still passes afterwards).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tollway import tokens
from tollway.app import TollwayApp
from tollway.fake_upstream import STATE_KEY, FakeConfig, build_app
from tollway.money import Ratio
from tollway.pricing import cost
from tollway.services.admin import AdminService
from tollway.settings import Settings

LIMIT = 4_000  # bytes, every JSON surface in these tests
UPLOAD_LIMIT = 6_000
TEN = 10_000_000_000
GEMINI = "/v1beta/models/gemini-2.5-pro:generateContent"
MSG = [{"role": "user", "content": "hi"}]
BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "gpt-4o", "messages": MSG},
    "/v1/messages": {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": MSG},
    GEMINI: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}
SURFACES = list(BODIES)
IDS = ["openai", "anthropic", "gemini"]


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    receives: int = 0  # how many times the app asked for more of the body

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Rig:
    app: TollwayApp
    admin: AdminService
    fake: Any  # the fake upstream's aiohttp application
    account_id: str = ""
    secret: str = ""

    async def send(
        self,
        path: str,
        chunks: list[bytes],
        headers: dict[str, str] | None = None,
        *,
        stall: bool = False,
    ) -> Answer:
        """One request through the data plane: the body in ``chunks``; ``stall`` keeps the
        body open after them (a slow client)."""
        hdrs = {"x-api-key": self.secret, "x-goog-api-key": self.secret, **(headers or {})}
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": b"",
            "headers": [(k.encode(), v.encode()) for k, v in hdrs.items() if v is not None],
            "client": ("127.0.0.1", 5555),
        }
        answer = Answer()
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            answer.receives += 1
            if pending:
                chunk = pending.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(pending) or stall}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            else:
                answer.body += message.get("body", b"")

        assert self.app.data_plane is not None
        await asyncio.wait_for(self.app.data_plane(scope, receive, send), 10)
        return answer

    async def json(self, path: str, body: dict[str, Any], ct: str | None = "application/json") -> Answer:
        return await self.send(path, [orjson.dumps(body)], {"content-type": ct} if ct else None)

    async def assert_nothing_left(self, *, then_serve: bool = True) -> None:
        """No hold, no usage record, the balance untouched; and (``then_serve``) the one request
        the group allows per minute is still there: refusals use up no rate budget."""
        assert self.app.gateway is not None
        assert not self.app.gateway.biller.holds
        assert await self.admin.list_usage(self.account_id) == []
        balance = await self.admin.balance(self.account_id)
        assert (balance["cash_nano"], balance["held_nano"]) == (TEN, 0)
        if then_serve:
            good = await self.json("/v1/chat/completions", BODIES["/v1/chat/completions"])
            assert good.status == 200, good.body


async def _rig(db_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Rig]:
    from aiohttp import web

    fake_app = build_app(FakeConfig(chunks=2))
    runner = web.AppRunner(fake_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="intake-secret",
        hold_sweep_interval_s=60,
        refresh_interval_s=60,
        max_body_bytes=LIMIT,
        anthropic_max_body_bytes=LIMIT,
        gemini_max_body_bytes=LIMIT,
        upload_max_body_bytes=UPLOAD_LIMIT,
        body_read_timeout_s=0.3,
        **overrides,
    )
    app = TollwayApp(settings)
    await app.start()
    admin = AdminService(app.engine, app.box)
    await admin.upsert_group("g", create=True, multiplier="1", rpm=1)
    for name, kind, base, models in (
        ("oai", "openai", f"{fake_url}/v1", "gpt-4o,whisper-1"),
        ("anth", "anthropic", fake_url, "claude-sonnet-4-5"),
        ("gem", "gemini", fake_url, "gemini-2.5-pro"),
    ):
        await admin.upsert_channel(name, create=True, type=kind, base_url=base, api_key="k", models=models)
    account = await admin.create_account("intake@example.test")
    await admin.credit(account["id"], "10", kind="cash", reason="test")
    key = await admin.create_key(account["id"], name="k", group="g")
    assert app.gateway is not None
    await app.gateway.config.refresh(force=True)
    try:
        yield Rig(app, admin, fake_app, str(account["id"]), str(key["secret"]))
    finally:
        await app.stop()
        await runner.cleanup()


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(db_url, tmp_path):
        yield r


@pytest.fixture
async def clamp_rig(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in _rig(db_url, tmp_path, output_cap_policy="clamp"):
        yield r


def _kind(path: str, doc: dict[str, Any]) -> tuple[int, str]:
    """(status in the body, the surface's error type) from the surface's own envelope."""
    if path == "/v1/messages":
        assert doc["type"] == "error" and doc["request_id"].startswith("req_")
        return 0, doc["error"]["type"]
    if path == GEMINI:
        return doc["error"]["code"], doc["error"]["status"]
    return 0, doc["error"]["type"]


def _padded(path: str, size: int) -> bytes:
    return orjson.dumps({**BODIES[path], "metadata_pad": "x" * size})


@pytest.mark.parametrize("path", SURFACES, ids=IDS)
async def test_declared_length_over_the_limit_is_413_before_a_byte_is_read(rig: Rig, path: str) -> None:
    body = _padded(path, LIMIT)
    a = await rig.send(path, [body], {"content-type": "application/json", "content-length": str(len(body))})
    assert a.status == 413
    assert a.receives == 0
    assert a.headers["connection"] == "close"  # the unread rest of the body ends the connection
    expected = {"/v1/messages": (0, "request_too_large"), GEMINI: (413, "INVALID_ARGUMENT")}
    assert _kind(path, a.json()) == expected.get(path, (0, "invalid_request_error"))
    assert f"limit of {LIMIT} bytes" in a.body.decode()
    await rig.assert_nothing_left()


@pytest.mark.parametrize("path", SURFACES, ids=IDS)
async def test_chunked_body_stops_being_read_at_the_first_chunk_over_the_limit(rig: Rig, path: str) -> None:
    body = _padded(path, 10 * LIMIT)
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    a = await rig.send(path, chunks, {"content-type": "application/json"})
    assert a.status == 413
    assert a.receives == LIMIT // 1000 + 1  # not one chunk more
    assert a.headers["x-request-id"] in a.body.decode()
    await rig.assert_nothing_left()


@pytest.mark.parametrize("path", SURFACES, ids=IDS)
async def test_body_under_the_limit_in_chunks_is_served(rig: Rig, path: str) -> None:
    body = _padded(path, LIMIT - 400)
    assert len(body) <= LIMIT
    a = await rig.send(
        path, [body[:1000], body[1000:2000], body[2000:]], {"content-type": "application/json"}
    )
    assert a.status == 200, a.body


@pytest.mark.parametrize("path", SURFACES, ids=IDS)
async def test_a_body_that_stalls_is_408(rig: Rig, path: str) -> None:
    a = await rig.send(path, [b'{"model": '], {"content-type": "application/json"}, stall=True)
    assert a.status == 408
    assert a.headers["connection"] == "close"
    expected = {"/v1/messages": (0, "timeout_error"), GEMINI: (408, "DEADLINE_EXCEEDED")}
    assert _kind(path, a.json()) == expected.get(path, (0, "invalid_request_error"))
    assert "did not arrive within 0.3 seconds" in a.body.decode()
    await rig.assert_nothing_left()


@pytest.mark.parametrize(
    "ct", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"]
)
@pytest.mark.parametrize("path", SURFACES, ids=IDS)
async def test_a_json_surface_given_anything_but_json_is_415(rig: Rig, path: str, ct: str) -> None:
    a = await rig.json(path, BODIES[path], ct=ct)
    assert a.status == 415
    expected = {"/v1/messages": (0, "invalid_request_error"), GEMINI: (415, "INVALID_ARGUMENT")}
    assert _kind(path, a.json()) == expected.get(path, (0, "invalid_request_error"))
    text = a.body.decode()
    assert "must be JSON (Content-Type: application/json)" in text
    assert ("-H 'content-type: application/json'" in text) == ct.endswith("urlencoded")
    await rig.assert_nothing_left()


@pytest.mark.parametrize("ct", [None, "application/json; charset=utf-8", "application/vnd.api+json"])
async def test_json_without_content_type_or_with_parameters_is_read_as_json(rig: Rig, ct: str | None) -> None:
    a = await rig.json("/v1/chat/completions", BODIES["/v1/chat/completions"], ct=ct)
    assert a.status == 200, a.body


def _form(size: int) -> tuple[bytes, str]:
    boundary = "tollwayboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'.encode()
        + b"Content-Type: audio/mpeg\r\n\r\n"
        + b"\0" * size
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def test_uploads_have_their_own_limit(rig: Rig) -> None:
    body, ct = _form(UPLOAD_LIMIT)  # over the upload limit, streamed in chunks
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    a = await rig.send("/v1/audio/transcriptions", chunks, {"content-type": ct})
    assert a.status == 413 and f"limit of {UPLOAD_LIMIT} bytes" in a.body.decode()
    assert a.receives == UPLOAD_LIMIT // 1000 + 1
    await rig.assert_nothing_left(then_serve=False)  # the upload below is the minute's one request
    body, ct = _form(LIMIT)  # over the JSON limit, under the upload one: served
    a = await rig.send("/v1/audio/transcriptions", [body], {"content-type": ct})
    assert a.status == 200, a.body


async def test_an_upload_that_is_not_multipart_is_415(rig: Rig) -> None:
    a = await rig.json("/v1/audio/transcriptions", {"model": "whisper-1"})
    assert a.status == 415
    assert "takes a multipart/form-data upload, not application/json" in a.body.decode()
    await rig.assert_nothing_left()


CAPS = [
    ("/v1/chat/completions", {"max_tokens": 10**9}, "max_tokens", "max_tokens is too large: 1000000000."),
    (
        "/v1/chat/completions",
        {"max_completion_tokens": 10**9},
        "max_completion_tokens",
        "supports at most 16384",
    ),
    ("/v1/messages", {"max_tokens": 10**9}, None, "max_tokens: 1000000000 > 64000, which is the maximum"),
    (GEMINI, {"generationConfig": {"maxOutputTokens": 10**9}}, None, "to 65537 (exclusive)"),
]


@pytest.mark.parametrize(
    ("path", "extra", "param", "text"), CAPS, ids=["chat", "chat-completion", "anth", "gem"]
)
async def test_output_cap_above_the_models_is_400_in_the_providers_words(
    rig: Rig, path: str, extra: dict[str, Any], param: str | None, text: str
) -> None:
    a = await rig.json(path, {**BODIES[path], **extra})
    assert a.status == 400
    doc = a.json()
    assert text in a.body.decode()
    if param is not None:
        assert doc["error"]["param"] == param
    if path == GEMINI:
        assert doc["error"]["status"] == "INVALID_ARGUMENT"
    await rig.assert_nothing_left()


async def test_output_cap_at_the_models_is_served(rig: Rig) -> None:
    a = await rig.json("/v1/chat/completions", {**BODIES["/v1/chat/completions"], "max_tokens": 16_384})
    assert a.status == 200, a.body


async def test_clamp_policy_forwards_the_cap_unchanged_and_holds_at_the_models(clamp_rig: Rig) -> None:
    rig = clamp_rig
    assert rig.app.gateway is not None
    body = {**BODIES["/v1/messages"], "max_tokens": 10**9}
    a = await rig.json("/v1/messages", body)
    assert a.status == 200, a.body
    sent = [r["body"] for r in rig.fake[STATE_KEY].recorded if r["path"] == "/v1/messages"]
    assert [b["max_tokens"] for b in sent] == [10**9]  # forwarded unchanged, for upstream to judge
    entry = rig.app.gateway.config.prices.lookup("claude-sonnet-4-5", datetime.now(UTC))
    assert entry is not None and entry.max_output_tokens == 64_000
    record = (await rig.admin.list_usage(rig.account_id))[0]
    upper = tokens.chat_input_bounds(body)[0]
    assert record["hold_nano"] == cost.hold_cost_nano(entry, upper, 64_000, Ratio(1, 1))  # held at the cap
