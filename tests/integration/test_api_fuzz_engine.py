"""The fuzz engine (api_fuzz.py) against a deliberately broken toy API: it must report the 500,
the undocumented status and the undocumented content type — and nothing on a sound route."""

from __future__ import annotations

import httpx2
from api_fuzz import fuzz
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.testclient import TestClient


def toy_app() -> FastAPI:
    app = FastAPI()

    @app.get("/crash/{n}")
    async def crash(n: int) -> dict[str, int]:
        if n % 2:
            raise RuntimeError("odd")  # an unhandled exception: a 500
        return {"n": n}

    @app.get("/teapot")
    async def teapot() -> JSONResponse:
        return JSONResponse({"ok": False}, status_code=418)  # documented: 200 only

    @app.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("not json")  # documented: application/json

    @app.get("/sound/{n}")
    async def sound(n: int) -> dict[str, int]:
        return {"n": n}

    return app


def test_the_engine_reports_server_errors_and_undocumented_answers() -> None:
    app = toy_app()
    client = TestClient(app, raise_server_exceptions=False)

    def send(method: str, url: str, headers: dict[str, str], body: bytes) -> httpx2.Response:
        return client.request(method, url, headers=headers, content=body)

    report = fuzz(app.openapi(), send, {}, base_url="http://testserver", examples=30)
    assert len(report.operations) == 4
    found = {(f.operation, f.check) for f in report.distinct()}
    assert ("GET /crash/{n}", "ServerError") in found
    assert ("GET /teapot", "UndefinedStatusCode") in found
    assert ("GET /text", "UndefinedContentType") in found
    assert not [f for f in found if f[0] == "GET /sound/{n}"]
    assert report.statuses[500] >= 1
