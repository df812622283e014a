"""Body limits, content types and output caps (docs/surfaces.md "Limits") through a real server
with the official SDKs: each refusal is the SDK's own exception, in the surface's envelope, and
leaves no usage record and the balance whole. The server runs with small limits so a body
over them stays quick to send; it is still sent whole by the SDK while Tollway answers early.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors, types

from .stack import Stack, running_stack
from .surfaces import Surfaces, provision_surfaces

LIMIT = 100_000
ENV = {
    "TOLLWAY_MAX_BODY_BYTES": str(LIMIT),
    "TOLLWAY_ANTHROPIC_MAX_BODY_BYTES": str(LIMIT),
    "TOLLWAY_GEMINI_MAX_BODY_BYTES": str(LIMIT),
    "TOLLWAY_UPLOAD_MAX_BODY_BYTES": str(2 * LIMIT),
    "TOLLWAY_BODY_READ_TIMEOUT_S": "0.5",
}
BIG = "word " * (400 * 1024)  # 2 MB of prompt, 20 times the limit
TEN = 10_000_000_000


@pytest.fixture(scope="module")
def surfaces(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Surfaces]:
    backend = "sqlite" if module_db_url.startswith("sqlite") else "postgres"
    with running_stack(backend, module_db_url, tmp_path_factory.mktemp("limits"), ENV) as stack:
        yield provision_surfaces(stack)


def _untouched(stack: Stack, account_id: str) -> None:
    assert stack.p.usage_list(account_id) == []
    bal = stack.balance(account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (TEN, 0)


def test_openai_sdk_over_the_limit_is_a_413_status_error(surfaces: Surfaces) -> None:
    c = surfaces.stack.customer(group="x1")
    with pytest.raises(openai.APIStatusError) as info:
        surfaces.stack.client(c.secret).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": BIG}]
        )
    assert info.value.status_code == 413
    body: Any = info.value.body
    assert body["type"] == "invalid_request_error" and body["code"] == "payload_too_large"
    assert f"limit of {LIMIT} bytes" in body["message"]
    assert info.value.response.headers["x-request-id"] in body["message"]
    _untouched(surfaces.stack, c.account_id)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_sdk_over_the_limit_is_request_too_large(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("anth")
    kw: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": BIG}],
    }
    with surfaces.anthropic(c.secret) as client, pytest.raises(anthropic.RequestTooLargeError) as info:
        if stream:
            with client.messages.stream(**kw) as st:
                st.get_final_message()
        else:
            client.messages.create(**kw)
    body: Any = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == "request_too_large"
    _untouched(surfaces.stack, c.account_id)


def test_genai_over_the_limit_is_a_413_client_error(surfaces: Surfaces) -> None:
    c = surfaces.stack.customer(group="x1")
    with pytest.raises(errors.ClientError) as info:
        client = surfaces.genai(c.secret)  # held: a client closes when collected
        client.models.generate_content(model="gemini-2.5-pro", contents=BIG)
    assert (info.value.code, info.value.status) == (413, "INVALID_ARGUMENT")
    assert f"limit of {LIMIT} bytes" in (info.value.message or "")
    _untouched(surfaces.stack, c.account_id)


def test_output_cap_above_the_models_is_each_sdks_bad_request(surfaces: Surfaces) -> None:
    c = surfaces.customer("anth")
    with surfaces.anthropic(c.secret) as client, pytest.raises(anthropic.BadRequestError) as a:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=10**9, messages=[{"role": "user", "content": "hi"}]
        )
    assert "max_tokens: 1000000000 > 64000" in a.value.message
    with pytest.raises(openai.BadRequestError) as o:
        surfaces.stack.client(c.secret).chat.completions.create(
            model="gpt-4o-mini", max_tokens=10**9, messages=[{"role": "user", "content": "hi"}]
        )
    assert o.value.param == "max_tokens" and "at most 16384 completion tokens" in o.value.message
    config = types.GenerateContentConfig(max_output_tokens=10**9)
    client = surfaces.genai(c.secret)
    with pytest.raises(errors.ClientError) as g:
        client.models.generate_content(model="gemini-2.5-pro", contents="hi", config=config)
    assert (g.value.code, g.value.status) == (400, "INVALID_ARGUMENT")
    _untouched(surfaces.stack, c.account_id)


@pytest.mark.parametrize(
    ("path", "ct"),
    [
        ("/v1/chat/completions", "text/plain"),
        ("/v1/messages", "application/x-www-form-urlencoded"),
        ("/v1beta/models/gemini-2.5-pro:generateContent", "text/plain"),
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_curl_style_bodies_that_are_not_json_are_415(surfaces: Surfaces, path: str, ct: str) -> None:
    c = surfaces.customer("anth")
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    headers = {"content-type": ct, "x-api-key": c.secret, "x-goog-api-key": c.secret}
    req = urllib.request.Request(f"{surfaces.stack.url}{path}", data=body, method="POST", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(req, timeout=10)
    status, doc = info.value.code, json.loads(info.value.read())
    assert status == 415, doc
    text = str(doc)
    assert "must be JSON (Content-Type: application/json)" in text and "(request id: req_" in text
    _untouched(surfaces.stack, c.account_id)


def test_a_slow_body_is_408_on_the_wire(surfaces: Surfaces) -> None:
    host, port = surfaces.stack.url.removeprefix("http://").rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"model": '
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.decode("latin-1")
    assert head.startswith("HTTP/1.1 408"), head
    assert 0.4 < time.monotonic() - started < 3  # answered, then the connection closed
    assert "\r\nconnection: close\r\n" in head.lower()
    assert "did not arrive within 0.5 seconds" in head
