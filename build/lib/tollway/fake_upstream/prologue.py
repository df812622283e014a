"""What every fake endpoint does before it answers, whatever the wire shape: record the
request, check the key, resolve the scenario, wait, and apply injected failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from tollway.fake_upstream.scenario import SCENARIO_HEADER, Scenario, ScenarioError, resolve
from tollway.fake_upstream.state import FakeState

# (status, message or None for the shape's default) -> the shape's error response
ErrorFactory = Callable[[int, str | None], web.Response]


class Reject(Exception):
    """Answer with ``response`` instead of the normal reply."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def prologue(
    state: FakeState,
    request: web.Request,
    *,
    authorized: Callable[[web.Request], bool],
    error: ErrorFactory,
    form: bool = False,
) -> tuple[Any, Scenario]:
    """(parsed body, scenario), or :class:`Reject` with the shape's error response. A
    ``form`` (multipart upload) becomes a dict: text fields as strings (``fake`` parsed as
    JSON), files as ``{"filename", "size", "data"}``."""
    body: Any = None
    raw = b""
    bad_json = False
    if form:
        body = await _form(request)
        bad_json = body is None
    else:
        raw = await request.read() if request.body_exists else b""
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad_json = True
    state.record(request, body)
    if not authorized(request):
        raise Reject(error(401, None))
    if bad_json:
        raise Reject(error(400, "We could not parse the JSON body of your request."))
    try:
        scenario = resolve(state.default_scenario, body, request.headers.get(SCENARIO_HEADER), raw or None)
    except ScenarioError as exc:
        raise Reject(error(400, str(exc))) from None
    delay = scenario.delay_s
    if delay > 0:
        await asyncio.sleep(delay)
    status = state.failure_status(scenario)
    if status is not None:
        raise Reject(error(status, None))
    return body, scenario


async def _form(request: web.Request) -> dict[str, Any] | None:
    try:
        post = await request.post()
    except ValueError:
        return None
    out: dict[str, Any] = {}
    for key, value in post.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bytes | bytearray):
            out[key] = {"filename": None, "size": len(value), "head": bytes(value[:16]).hex()}
        else:
            data = value.file.read()
            out[key] = {"filename": value.filename, "size": len(data), "head": data[:16].hex()}
    if isinstance(out.get("fake"), str):
        try:
            out["fake"] = orjson.loads(out["fake"])
        except orjson.JSONDecodeError:
            return None
    return out
