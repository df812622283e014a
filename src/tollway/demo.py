"""``tollway demo``: Tollway on SQLite with the fake upstream behind it, ready to call.

Provisioning is idempotent: running the demo again reuses the group, the account and the
channel, tops the account up to 10 credits if it fell below 1, and issues a fresh key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from typing import Any

from tollway.errors import Conflict
from tollway.settings import Settings

DEMO_EMAIL = "demo@tollway.local"
DEMO_MODELS = "gpt-4o-mini,gpt-4o,claude-sonnet-4-5,text-embedding-3-small"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the fake upstream did not start on port {port}")


async def provision(settings: Settings, fake_port: int) -> dict[str, Any]:
    from tollway.services.admin import AdminService
    from tollway.store.db import make_engine, migrate
    from tollway.store.secret_box import SecretBox

    engine = make_engine(settings.resolved_database_url())
    try:
        await migrate(engine)
        admin = AdminService(
            engine, SecretBox.from_settings(settings.secret_key, settings.data_dir), actor="demo"
        )
        with contextlib.suppress(Conflict):
            await admin.upsert_group(
                "default", create=True, multiplier="1", rpm=600, concurrency=32, label="demo"
            )
        base_url = f"http://127.0.0.1:{fake_port}/v1"
        try:
            await admin.upsert_channel(
                "demo-fake-upstream",
                create=True,
                type="openai",
                base_url=base_url,
                api_key="fake",
                models=DEMO_MODELS,
            )
        except Conflict:
            await admin.upsert_channel(
                "demo-fake-upstream", create=False, base_url=base_url, models=DEMO_MODELS
            )
        from sqlalchemy import select

        from tollway.store.tables import accounts

        async with engine.connect() as conn:
            found = (await conn.execute(select(accounts.c.id).where(accounts.c.email == DEMO_EMAIL))).scalar()
        account_id = (
            str(found)
            if found
            else str((await admin.create_account(DEMO_EMAIL, password="demo-password"))["id"])
        )
        balance = await admin.balance(account_id)
        if balance["available_nano"] < 1_000_000_000:
            await admin.credit(account_id, "10", kind="cash", reason="demo credit")
        key = await admin.create_key(account_id, name=f"demo-{int(time.time())}", group="default")
        return {
            "account_id": account_id,
            "secret": key["secret"],
            "balance": (await admin.balance(account_id)),
        }
    finally:
        await engine.dispose()


def run_demo(settings: Settings, *, port: int = 8080, json_out: bool = False) -> None:
    from tollway.app import serve

    fake_port = _free_port()
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tollway.fake_upstream",
            "--port",
            str(fake_port),
            "--chunk-interval-ms",
            "30",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for(fake_port)
        info = asyncio.run(provision(settings, fake_port))
        base = f"http://127.0.0.1:{port}/v1"
        if json_out:
            print(
                json.dumps(
                    {
                        "base_url": base,
                        "api_key": info["secret"],
                        "account_id": info["account_id"],
                        "available": info["balance"]["available"],
                        "fake_upstream_port": fake_port,
                    }
                )
            )
        else:
            print(_instructions(base, info))
        sys.stdout.flush()
        serve(settings, port=port)
    finally:
        fake.terminate()
        fake.wait(timeout=5)


def _instructions(base: str, info: dict[str, Any]) -> str:
    key = info["secret"]
    return f"""
Tollway demo is starting on {base} (SQLite, fake upstream behind it).
Account {info["account_id"]} has {info["balance"]["available"]} credits. Your API key (shown once):

  {key}

curl:
  curl {base}/chat/completions -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello"}}]}}'

Python (openai SDK):
  from openai import OpenAI
  client = OpenAI(base_url="{base}", api_key="{key}")
  print(client.chat.completions.create(model="gpt-4o-mini",
        messages=[{{"role": "user", "content": "Hello"}}]).choices[0].message.content)

See what it cost:  tollway admin usage {info["account_id"]}
Press Ctrl+C to stop.
"""
