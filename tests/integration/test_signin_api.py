"""Two-factor through the control API and the service, on SQLite and PostgreSQL: ``/api/auth/login``
is no bypass (the ``totp`` field, each step once, throttled), staff without two-factor are refused
(at login and on an older session), racing uses of one code, the operator's reset (CLI, audited)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from test_cli import Cli
from test_control_api import PASSWORD, Api, api, assert_error

from tollway.api.sessions import create_session
from tollway.services.totp import TotpService, code_for_step, current_step
from tollway.store.secret_box import SecretBox
from tollway.store.tables import account_totp, audit_log, sessions

__all__ = ["api"]  # the fixture


def totp_service(engine: AsyncEngine) -> TotpService:
    return TotpService(engine, SecretBox("test-secret-key"), actor="test")


async def enroll(engine: AsyncEngine, account_id: str) -> str:
    """Two-factor on, confirmed with the previous step's code (so the current one is unused)."""
    svc = totp_service(engine)
    secret = await svc.begin(account_id)
    await svc.confirm(account_id, code_for_step(secret, current_step() - 1))
    return secret


def login(api: Api, email: str, totp: str | None = None, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    body = {"email": email, "password": password}
    if totp is not None:
        body["totp"] = totp
    return api.call("POST", "/api/auth/login", None, json=body)


async def test_login_asks_for_the_code_and_takes_each_step_once(api: Api) -> None:
    account = await api.account("two@example.com")
    assert (await login(api, "two@example.com")).status_code == 200  # no two-factor yet
    secret = await enroll(api.engine, account)
    async with api.engine.connect() as conn:
        sealed = (await conn.execute(select(account_totp.c.secret))).scalar_one()
    assert secret not in sealed  # sealed with the SecretBox

    assert_error(await login(api, "two@example.com"), 401, "totp_required", "totp")
    wrong = "000000" if code_for_step(secret, current_step()) != "000000" else "111111"
    assert_error(await login(api, "two@example.com", wrong), 401, "invalid_totp_code", "totp")
    # the wrong password is still the same answer as an unknown email, code or not
    r = await login(api, "two@example.com", code_for_step(secret, current_step()), "wrong password")
    assert_error(r, 401, "invalid_credentials")

    code = code_for_step(secret, current_step())
    r = await login(api, "two@example.com", code)
    assert r.status_code == 200, r.text
    assert (await api.ok("GET", "/api/me", r.json()["token"]))["id"] == account
    assert_error(await login(api, "two@example.com", code), 401, "invalid_totp_code", "totp")  # used
    # the next step's code is inside the drift window and not used yet
    assert (await login(api, "two@example.com", code_for_step(secret, current_step() + 1))).status_code == 200
    # an older step than the last accepted one is refused even inside the window
    r = await login(api, "two@example.com", code_for_step(secret, current_step() - 1))
    assert_error(r, 401, "invalid_totp_code", "totp")


async def test_wrong_codes_are_throttled_like_passwords(api: Api) -> None:
    account = await api.account("slow@example.com")
    secret = await enroll(api.engine, account)
    right = {code_for_step(secret, current_step() + o) for o in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in right)
    for _ in range(4):
        assert_error(await login(api, "slow@example.com", wrong), 401, "invalid_totp_code", "totp")
    assert_error(await login(api, "slow@example.com", "", "bad password"), 401, "invalid_credentials")
    r = await login(api, "slow@example.com", code_for_step(secret, current_step()))
    assert_error(r, 429, "rate_limit_exceeded")  # even the right code waits out the window


async def test_staff_without_two_factor_are_refused(api: Api) -> None:
    body = {"email": "new-admin@example.com", "password": PASSWORD, "role": "admin"}
    doc = await api.ok("POST", "/api/admin/accounts", json=body)
    r = await login(api, "new-admin@example.com")
    assert_error(r, 403, "totp_enrollment_required", "totp")
    assert "/console/login" in r.json()["error"]["message"]
    # no session was made, and a session from before the rule is refused too
    async with api.engine.begin() as conn:
        assert (await conn.execute(select(sessions.c.token_hash))).first() is None
        token, _ = await create_session(conn, str(doc["id"]), ttl_s=60)
    assert_error(await api.call("GET", "/api/admin/groups", token), 403, "totp_enrollment_required", "totp")
    secret = await enroll(api.engine, str(doc["id"]))
    assert (await api.call("GET", "/api/admin/groups", token)).status_code == 200
    r = await login(api, "new-admin@example.com", code_for_step(secret, current_step()))
    assert r.status_code == 200, r.text


async def test_racing_uses_of_one_code_let_one_through(api: Api) -> None:
    account = await api.account("race@example.com")
    secret = await enroll(api.engine, account)
    svc = totp_service(api.engine)
    code = code_for_step(secret, current_step())
    results = await asyncio.gather(*(svc.verify(account, code) for _ in range(8)))
    assert results.count(True) == 1


async def test_customer_turns_two_factor_off_with_password_and_code(api: Api) -> None:
    account = await api.account("off@example.com")
    staff = await api.account("staff-off@example.com", "support")
    secret = await enroll(api.engine, account)
    svc = totp_service(api.engine)
    from tollway.errors import AuthenticationFailed, InvalidRequest

    for password, code in (("wrong password", code_for_step(secret, current_step())), (PASSWORD, "000001")):
        try:
            await svc.disable(account, password=password, code=code)
        except AuthenticationFailed:
            pass
        else:
            raise AssertionError("turned off without the password and a right code")
    assert (await svc.status(account)).enabled
    await svc.disable(account, password=PASSWORD, code=code_for_step(secret, current_step() + 1))
    assert not (await svc.status(account)).enabled
    staff_secret = api.totp_secrets["staff-off@example.com"]
    try:
        await svc.disable(staff, password=PASSWORD, code=code_for_step(staff_secret, current_step()))
    except InvalidRequest as exc:
        assert "staff" in str(exc)
    else:
        raise AssertionError("staff turned two-factor off")


def test_cli_totp_reset_ends_sessions_and_is_audited(db_url: str, tmp_path: Path) -> None:
    cli = Cli(db_url, tmp_path / "data")
    cli.env["TOLLWAY_SECRET_KEY"] = "test-secret-key"
    admin = cli.json("admin", "account", "create", "--email", "lost@example.com", "--role", "admin")

    async def setup() -> None:
        from tollway.settings import normalise_database_url
        from tollway.store.db import make_engine

        engine = make_engine(normalise_database_url(db_url))
        try:
            await enroll(engine, admin["id"])
            async with engine.begin() as conn:
                await create_session(conn, admin["id"], ttl_s=60)
        finally:
            await engine.dispose()

    asyncio.run(setup())
    doc = cli.json("admin", "account", "totp-reset", "lost@example.com", "--reason", "lost phone")
    assert doc["id"] == admin["id"] and doc["email"] == "lost@example.com"
    assert (doc["totp"], doc["was"], doc["sessions_ended"]) == ("off", "on", 1)
    missing = cli.run("admin", "account", "totp-reset", "nobody@example.com", "--json")
    assert missing.returncode == 1 and '"not_found"' in missing.stdout and "Traceback" not in missing.stderr

    async def audited() -> list[tuple[str, str]]:
        from tollway.settings import normalise_database_url
        from tollway.store.db import make_engine

        engine = make_engine(normalise_database_url(db_url))
        try:
            async with engine.connect() as conn:
                q = select(audit_log.c.action, audit_log.c.reason)
                q = q.where(audit_log.c.action == "account.totp_reset")
                return [(r.action, r.reason) for r in await conn.execute(q)]
        finally:
            await engine.dispose()

    assert asyncio.run(audited()) == [("account.totp_reset", "lost phone")]
