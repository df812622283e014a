"""Hostile bodies on every /v1 surface (docs/security.md, "Hostile bodies"): invalid JSON,
100k-deep nesting, huge strings and numbers, NUL bytes, invalid UTF-8, wrong content types,
wrongly typed fields, broken multipart uploads — through the whole app on SQLite, with an
OpenAI, an Anthropic and a Gemini channel on the fake upstream, native and translated.

Every answer is below 500; every refusal is a 4xx in the surface's own error envelope; what
Tollway must refuse never reaches upstream; no refusal is charged and no hold stays open.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from edge_rig import EdgeRig, Fake, Reply, fake_upstream, tollway
from hostile_cases import SURFACES, TRANSCRIPTIONS, Case, Surface, all_cases
from sqlalchemy import select

from tollway.fake_upstream import STATE_KEY
from tollway.store.tables import usage_records

CASES = all_cases()


@pytest.fixture
async def rigged(tmp_path: Path) -> AsyncIterator[tuple[EdgeRig, Fake]]:
    async with fake_upstream() as fake, tollway(tmp_path, fake) as rig:
        channels: list[tuple[str, str, str, str]] = [
            ("anth", "anthropic", fake.url, "claude-sonnet-4-5"),
            ("gem", "gemini", fake.url, "gemini-2.5-pro"),
            ("translated", "openai", f"{fake.url}/v1", "claude-haiku-4-5,gemini-2.0-flash"),
            ("media", "openai", f"{fake.url}/v1", "dall-e-3,tts-1,whisper-1,rerank-v3.5"),
        ]
        for name, kind, base, models in channels:
            await rig.admin.upsert_channel(
                name, create=True, type=kind, base_url=base, api_key=f"k-{name}", models=models
            )
        assert rig.app.gateway is not None
        await rig.app.gateway.config.refresh(force=True)
        yield rig, fake


async def send(rig: EdgeRig, case: Case) -> Reply:
    headers = {"authorization": f"Bearer {rig.secret}", "x-api-key": rig.secret, "x-goog-api-key": rig.secret}
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    return await rig.call("POST", case.surface.path, case.body, headers)


def assert_envelope(surface: Surface, reply: Reply) -> None:
    """The error body of the surface that was called, as its SDK parses it."""
    doc: Any = orjson.loads(reply.body)
    if surface.shape == "anthropic":
        assert doc["type"] == "error" and isinstance(doc["error"]["type"], str)
        assert doc["error"]["message"]
    elif surface.shape == "gemini":
        assert doc["error"]["code"] == reply.status and isinstance(doc["error"]["status"], str)
        assert doc["error"]["message"]
    else:
        assert isinstance(doc["error"]["type"], str) and doc["error"]["message"]


async def test_valid_bodies_are_served(rigged: tuple[EdgeRig, Fake]) -> None:
    """The baseline: each surface's valid body is a 200 (the hostile variants start from it)."""
    rig, _ = rigged
    for surface in SURFACES:
        reply = await send(rig, Case(surface, "valid", orjson.dumps(surface.body)))
        assert reply.status == 200, (surface.name, reply.body[:300])


async def test_hostile_bodies_get_a_4xx_in_the_surfaces_shape_and_cost_nothing(
    rigged: tuple[EdgeRig, Fake],
) -> None:
    rig, fake = rigged
    state = fake.app[STATE_KEY]
    before = await rig.admin.balance(rig.account_id)
    started = time.monotonic()
    findings: list[str] = []
    refused_ids: list[str] = []

    for case in (c for c in CASES if c.refused):  # first what Tollway itself must refuse
        seen = state.requests
        reply = await send(rig, case)
        if not 400 <= reply.status < 500:
            findings.append(f"{case.surface.name} / {case.label}: {reply.status} {reply.body[:120]!r}")
            continue
        assert_envelope(case.surface, reply)
        assert state.requests == seen, f"{case.surface.name} / {case.label} reached upstream"
        refused_ids.append(reply.one("x-request-id"))
    assert not findings, "\n".join(findings)
    assert await rig.admin.balance(rig.account_id) == before  # not one nano-credit, no hold

    served = 0
    for case in (c for c in CASES if not c.refused):  # then wrong types: refused or upstream's call
        reply = await send(rig, case)
        if reply.status >= 500 or reply.status < 200:
            findings.append(f"{case.surface.name} / {case.label}: {reply.status} {reply.body[:120]!r}")
        elif reply.status >= 400:
            assert_envelope(case.surface, reply)
            refused_ids.append(reply.one("x-request-id"))
        else:
            served += 1
    assert not findings, "\n".join(findings)
    assert time.monotonic() - started < 60

    async with rig.app.engine.connect() as conn:
        charged = (
            await conn.execute(
                select(usage_records.c.trace_id, usage_records.c.deduction_nano).where(
                    usage_records.c.trace_id.in_(refused_ids), usage_records.c.deduction_nano != 0
                )
            )
        ).all()
    assert charged == []
    after = await rig.admin.balance(rig.account_id)
    assert after["held_nano"] == 0
    assert len(CASES) > 700 and len(refused_ids) > 400 and served > 0  # the sizes docs/security.md quotes


async def test_deep_nesting_is_refused_before_it_is_walked(rigged: tuple[EdgeRig, Fake]) -> None:
    rig, _ = rigged
    deep = (
        b'{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":'
        + b"[" * 200
        + b"]" * 200
        + b"}]}"
    )
    reply = await send(rig, Case(SURFACES[0], "deep", deep))
    assert reply.status == 400 and "deeper than 128" in reply.json()["error"]["message"]
    fine = b'{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"' + b"[" * 5000 + b'"}]}'
    assert (await send(rig, Case(SURFACES[0], "brackets in a string", fine))).status == 200
    upload = await send(rig, Case(TRANSCRIPTIONS, "json", b"{}"))
    assert upload.status == 415
