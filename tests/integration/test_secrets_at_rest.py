"""Secrets at rest, and rotating TOLLWAY_SECRET_KEY.

* Real secrets provisioned through the real services, control API and CLI (API key, console
  password, channel credentials, TOTP secret, session tokens of real sign-ins, a redemption
  code, the admin token, the secret key itself); calls made with them, some failing, with the
  log at debug (SQL with its parameters included) captured in the app's own JSON format. None
  of them is in the SQLite file, its WAL, or the log, raw or form-encoded.
* ``tollway secret-key rotate`` re-seals every sealed column in one transaction; it is
  idempotent, changes nothing when a row opens with neither key, and afterwards a server with
  the new key still calls upstream with the right credential and signs in with two-factor,
  while the old key opens nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from edge_rig import EMAIL, PASSWORD, SECRET_KEY, UPSTREAM_KEY, EdgeRig, Reply, fake_upstream, tollway
from sqlalchemy import select
from test_cli import Cli

from tollway.observability.logs import JsonFormatter
from tollway.security.rotation import SEALED
from tollway.services.totp import TotpService, code_for_step, current_step
from tollway.store.secret_box import SecretBox
from tollway.store.tables import audit_log

ADMIN_TOKEN = "admin-token-at-rest-0123456789abcdef"
CLI_CREDENTIAL = "sk-ant-cli-credential-PLAINTEXT-987654321"
WRONG_PASSWORD = "Wrong-Password-For-The-Log-42"
NEW_KEY = "new-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
CLAUDE = {"model": "claude-sonnet-4-5", "max_tokens": 30, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def log_capture() -> Iterator[io.StringIO]:
    """Every log record at debug, formatted as the server formats them (TOLLWAY_LOG_FORMAT=json)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def cli_for(tmp_path: Path, db_url: str, secret_key: str | None = SECRET_KEY, **env: str) -> Cli:
    cli = Cli(db_url, tmp_path / "data")
    if secret_key is not None:
        cli.env["TOLLWAY_SECRET_KEY"] = secret_key
    cli.env.update(env)
    return cli


async def enroll_totp(rig: EdgeRig, email: str) -> tuple[str, str]:
    account = await rig.admin.create_account(email, password=PASSWORD)
    svc = TotpService(rig.app.engine, rig.app.box)
    secret = await svc.begin(str(account["id"]))
    await svc.confirm(str(account["id"]), code_for_step(secret, current_step() - 1))
    return str(account["id"]), secret


async def chat(rig: EdgeRig, key: str, body: dict[str, Any] = CHAT) -> Reply:
    return await rig.call("POST", "/v1/chat/completions", body, {"authorization": f"Bearer {key}"})


async def make_codes(rig: EdgeRig, count: int) -> list[str]:
    body = {"count": count, "value": "1", "kind": "cash", "label": "at-rest"}
    batch = await rig.call("POST", "/api/admin/codes", body, {"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert batch.status == 201, batch.body
    return list(batch.json()["codes"])


async def api_login(rig: EdgeRig, email: str, password: str, totp: str | None = None) -> Reply:
    body: dict[str, Any] = {"email": email, "password": password}
    if totp is not None:
        body["totp"] = totp
    return await rig.call("POST", "/api/auth/login", body)


async def console_login(rig: EdgeRig) -> str:
    form = f"csrf=tok&email={quote_plus(EMAIL)}&password={quote_plus(PASSWORD)}".encode()
    hdrs = {"content-type": "application/x-www-form-urlencoded", "cookie": "tw_csrf=tok"}
    reply = await rig.call("POST", "/console/login", form, hdrs)
    assert reply.status == 303, reply.body[:300]
    cookie = next(c for c in reply.all("set-cookie") if c.startswith("tw_session="))
    return cookie.split(";", 1)[0].split("=", 1)[1]


def raw_files(tmp_path: Path) -> bytes:
    db = tmp_path / "tollway.db"
    return b"".join(p.read_bytes() for p in (db, db.with_name("tollway.db-wal")) if p.exists())


def assert_absent(secrets: dict[str, str], where: str, data: bytes) -> None:
    for name, secret in secrets.items():
        for form in {secret, quote_plus(secret)}:
            assert form.encode() not in data, f"{name} found in the clear in {where}"


async def test_no_secret_is_stored_or_logged_in_the_clear(tmp_path: Path, log_capture: io.StringIO) -> None:
    db_url = f"sqlite:///{tmp_path / 'tollway.db'}"
    async with fake_upstream() as fake, tollway(tmp_path, fake, admin_token=ADMIN_TOKEN) as rig:
        cli = cli_for(tmp_path, db_url)
        cli.json("admin", "channel", "create", "anth", "--type", "anthropic", "--base-url", fake.url,
                 "--api-key", "-", "--models", "claude-sonnet-4-5", stdin=CLI_CREDENTIAL + "\n")  # fmt: skip
        assert rig.app.gateway is not None
        await rig.app.gateway.config.refresh(force=True)
        _, totp_secret = await enroll_totp(rig, "two@example.test")
        [code] = await make_codes(rig, 1)

        key = {"authorization": f"Bearer {rig.secret}"}
        assert (await rig.call("POST", "/v1/chat/completions", CHAT, key)).status == 200
        assert (await rig.call("POST", "/v1/chat/completions", {**CHAT, "stream": True}, key)).status == 200
        assert (await rig.call("POST", "/v1/messages", CLAUDE, {"x-api-key": rig.secret})).status == 200
        failing = {**CHAT, "fake": {"status": 401}}  # upstream refuses: logged, failed over, ...
        assert (await rig.call("POST", "/v1/chat/completions", failing, key)).status >= 400
        assert (await chat(rig, rig.secret + "x")).status == 401
        assert (await api_login(rig, EMAIL, WRONG_PASSWORD)).status == 401
        session = (await api_login(rig, EMAIL, PASSWORD)).json()["token"]
        two = await api_login(rig, "two@example.test", PASSWORD, code_for_step(totp_secret, current_step()))
        assert two.status == 200, two.body
        two_session = two.json()["token"]
        console_session = await console_login(rig)
        assert (await rig.call("GET", "/api/me", None, {"authorization": f"Bearer {session}"})).status == 200
        page = await rig.call("GET", "/console/keys", None, {"cookie": f"tw_session={console_session}"})
        assert page.status == 200
        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await rig.call("GET", "/api/admin/groups", None, admin)).status == 200
        await asyncio.sleep(0.3)  # settlements committed, the WAL written
        running = raw_files(tmp_path)
    after_stop = raw_files(tmp_path)
    logged = log_capture.getvalue().encode()

    secrets = {
        "API key": rig.secret,
        "console password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "channel credential (service)": UPSTREAM_KEY,
        "channel credential (CLI)": CLI_CREDENTIAL,
        "TOTP secret": totp_secret,
        "API session token": session,
        "two-factor session token": two_session,
        "console session cookie": console_session,
        "redemption code": code,
        "admin token": ADMIN_TOKEN,
        "TOLLWAY_SECRET_KEY": SECRET_KEY,
    }
    # the test reads the right bytes: what is not secret is there in the clear
    for data in (running, after_stop):
        assert EMAIL.encode() in data and b"claude-sonnet-4-5" in data
    # ... and the log has the SQL with its parameters (aiosqlite at debug) and Tollway's own lines
    assert b'"logger":"aiosqlite"' in logged and b"INSERT INTO sessions" in logged
    assert b'"logger":"tollway' in logged
    assert_absent(secrets, "the database while running", running)
    assert_absent(secrets, "the database after the stop", after_stop)
    assert_absent(secrets, "the log", logged)


async def snapshot(rig_engine: Any) -> dict[str, list[tuple[Any, str]]]:
    async with rig_engine.connect() as conn:
        return {
            t.name: [(k, v) for k, v in await conn.execute(select(key, col).order_by(key))]
            for t, key, col in SEALED
        }


async def test_rotating_the_secret_key(db_url: str, tmp_path: Path) -> None:
    async with fake_upstream() as fake:
        async with tollway(tmp_path, fake, database_url=db_url, admin_token=ADMIN_TOKEN) as rig:
            _, totp_secret = await enroll_totp(rig, "two@example.test")
            codes = await make_codes(rig, 2)
            assert (await chat(rig, rig.secret)).status == 200
            assert fake.last_request()["headers"]["Authorization"] == f"Bearer {UPSTREAM_KEY}"
            before = await snapshot(rig.app.engine)
        secret = rig.secret

        # neither key opens the rows: refused, nothing written
        stranger = cli_for(tmp_path, db_url, "a-key-that-never-sealed-anything-0123456789",
                           TOLLWAY_NEW_SECRET_KEY=NEW_KEY + "-other")  # fmt: skip
        refused = stranger.run("secret-key", "rotate", "--json")
        assert refused.returncode == 1 and json.loads(refused.stdout)["error"]["code"] == "conflict"
        too_short = cli_for(tmp_path, db_url, TOLLWAY_NEW_SECRET_KEY="short").run(
            "secret-key", "rotate", "--json"
        )
        assert too_short.returncode == 1 and json.loads(too_short.stdout)["error"]["param"] == "new_key"

        rotate = cli_for(tmp_path, db_url, TOLLWAY_NEW_SECRET_KEY=NEW_KEY)
        first = rotate.json("secret-key", "rotate", "--reason", "yearly")
        assert first["rotated"] == {"channels": 1, "account_totp": 1, "redemption_codes": 2}
        assert first["key_file"] is None  # TOLLWAY_SECRET_KEY is set: the operator changes it
        again = rotate.json("secret-key", "rotate")  # idempotent: a re-run finds it done
        assert again["rotated"] == {"channels": 0, "account_totp": 0, "redemption_codes": 0}
        assert again["already"] == {"channels": 1, "account_totp": 1, "redemption_codes": 2}

        async with tollway(tmp_path, fake, provision=False, database_url=db_url, secret_key=NEW_KEY) as rig:
            after = await snapshot(rig.app.engine)
            old, new = SecretBox(SECRET_KEY), SecretBox(NEW_KEY)
            for table, rows in after.items():
                assert [k for k, _ in rows] == [k for k, _ in before[table]]
                for (_, sealed_before), (_, sealed_after) in zip(before[table], rows, strict=True):
                    assert sealed_after != sealed_before
                    assert old.try_open(sealed_after) is None  # the old key opens nothing now
                    assert new.open(sealed_after) == old.open(sealed_before)
            assert sorted(new.open(v) for _, v in after["redemption_codes"]) == sorted(codes)
            reply = await chat(rig, secret)
            assert reply.status == 200, reply.body
            assert fake.last_request()["headers"]["Authorization"] == f"Bearer {UPSTREAM_KEY}"
            code_now = code_for_step(totp_secret, current_step())
            signed_in = await api_login(rig, "two@example.test", PASSWORD, code_now)
            assert signed_in.status == 200, signed_in.body
            async with rig.app.engine.connect() as conn:
                q = select(audit_log).where(audit_log.c.action == "secret_key.rotate")
                entry = (await conn.execute(q)).one()
            assert entry.reason == "yearly" and entry.actor.startswith("cli:")


def test_rotation_replaces_the_data_directory_key_file(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'tollway.db'}"
    plain = cli_for(tmp_path, db_url, secret_key=None)
    plain.json("admin", "channel", "create", "c", "--type", "openai", "--base-url", "http://127.0.0.1:9/v1",
               "--api-key", "-", "--models", "gpt-4o", stdin=CLI_CREDENTIAL + "\n")  # fmt: skip
    key_path = tmp_path / "data" / "secret.key"
    old_key = key_path.read_text()
    done = cli_for(tmp_path, db_url, secret_key=None, TOLLWAY_NEW_SECRET_KEY=NEW_KEY).json(
        "secret-key", "rotate"
    )
    assert done["rotated"]["channels"] == 1 and done["key_file"] == str(key_path)
    assert key_path.read_text() == NEW_KEY and oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert old_key != NEW_KEY
    listed = plain.json("admin", "channel", "list")  # the CLI now opens it with the new file
    assert listed["channels"][0]["name"] == "c"
    again = cli_for(tmp_path, db_url, None, TOLLWAY_NEW_SECRET_KEY=NEW_KEY).run(
        "secret-key", "rotate", "--json"
    )
    assert again.returncode == 1 and "key in use" in json.loads(again.stdout)["error"]["message"]
