"""The public status page (issue 4): ``GET /status`` (HTML) and ``GET /status.json``, per model,
availability over the last 24 hours from the usage records and the serving state now; never a
channel name, a base URL or a credential."""

from __future__ import annotations

import time
import urllib.request

import openai
import pytest

from .calls import fake
from .stack import Stack, http_json

MODEL = "gpt-4o-mini"
CHANNEL = "zz-status-secret-channel"
API_KEY = "sk-status-page-must-not-leak"


def test_status_page_counts_calls_and_hides_channels(stack: Stack) -> None:
    stack.p.create_group("st", multiplier="1")
    stack.p.create_channel(
        CHANNEL, base_url=f"{stack.fake_url}/v1", api_key=API_KEY, models=MODEL, priority=50, groups="st"
    )
    cust = stack.customer(group="st", credit="10")
    time.sleep(0.6)  # the server picks the new channel up
    client = stack.client(cust.secret)
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert client.chat.completions.create(**ask, extra_body=fake()).choices[0].message.content
    with pytest.raises(openai.APIStatusError) as err:  # every channel answers 500: one failed call
        client.chat.completions.create(**ask, extra_body=fake(status=500))
    # its record is written after the answer: wait for it (the page caches its history 30 s)
    assert stack.usage(err.value.response.headers["x-request-id"], wait=5)["status"] == "upstream_failed"

    status, headers, doc = http_json("GET", f"{stack.url}/status.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert doc["window_hours"] == 24 and doc["history_available"] is True
    models = {m["model"]: m for m in doc["models"]}
    m = models[MODEL]
    assert len(m["hours"]) == 24
    assert m["calls_24h"] == 3 and sum(h["calls"] for h in m["hours"]) == 3
    assert sum(h["ok"] for h in m["hours"]) == 2  # (the calls may straddle an hour boundary)
    assert m["availability_24h"] == pytest.approx(2 / 3, abs=1e-3)
    assert m["state"] in ("operational", "degraded")

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{stack.url}/status", timeout=10) as resp:
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/html")
        page = resp.read().decode()
    assert "<table" in page and MODEL in page and "66.67%" in page
    assert "<link" not in page and "<script" not in page  # no outside assets
    raw_json = http_json("GET", f"{stack.url}/status.json")[2]
    for body in (page, str(raw_json)):
        for secret in (CHANNEL, API_KEY, stack.fake_url, "127.0.0.1", "fo-primary", "fo-backup"):
            assert secret not in body, secret
