"""Renaming and deleting keys through ``/api/me/keys``: scoped to the caller's account, audited,
and a deleted key stops authenticating at once while its usage records stay."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from test_cli import Cli
from test_control_api import Api, api, assert_error, insert_usage

from tollway.store.tables import audit_log

__all__ = ["api"]  # the fixture, imported for pytest


async def test_rename_and_delete_my_keys(api: Api) -> None:
    await api.ok("POST", "/api/admin/groups", json={"name": "default", "multiplier": "1"})
    a = await api.account("carol@example.com")
    b = await api.account("dave@example.com")
    b_key = await api.ok("POST", f"/api/admin/accounts/{b}/keys", json={"name": "b", "group": "default"})
    token = await api.login("carol@example.com")
    key = await api.ok("POST", "/api/me/keys", token, json={"name": "laptop", "group": "default"})
    trace = await insert_usage(api.engine, a, key["id"])

    renamed = await api.ok("PATCH", f"/api/me/keys/{key['id']}", token, json={"name": "ci runner"})
    assert renamed["name"] == "ci runner"
    assert_error(
        await api.call("PATCH", f"/api/me/keys/{key['id']}", token, json={"name": ""}),
        422,
        "unprocessable_entity",
        "name",
    )
    # another account's key: 404 for both, and nothing changes
    r = await api.call("PATCH", f"/api/me/keys/{b_key['id']}", token, json={"name": "mine now"})
    assert_error(r, 404, "not_found", "key_id")
    assert_error(await api.call("DELETE", f"/api/me/keys/{b_key['id']}", token), 404, "not_found", "key_id")
    b_now = await api.ok("GET", f"/api/admin/keys/{b_key['id']}")
    assert (b_now["name"], b_now["status"]) == ("b", "enabled")

    deleted = await api.ok("DELETE", f"/api/me/keys/{key['id']}", token)
    assert deleted["status"] == "deleted"
    assert (await api.ok("GET", "/api/me/keys", token))["keys"] == []
    # gone for the customer: a second delete or a rename is 404, the usage record stays
    assert_error(await api.call("DELETE", f"/api/me/keys/{key['id']}", token), 404, "not_found", "key_id")
    r = await api.call("PATCH", f"/api/me/keys/{key['id']}", token, json={"name": "back"})
    assert_error(r, 404, "not_found", "key_id")
    assert (await api.ok("GET", f"/api/me/usage/{trace}", token))["trace_id"] == trace
    # a deleted key cannot be enabled again by staff either
    r = await api.call("POST", f"/api/admin/keys/{key['id']}/enable")
    assert_error(r, 404, "not_found", "key_id")

    async with api.engine.connect() as conn:
        actions = list(
            (
                await conn.execute(select(audit_log.c.action).where(audit_log.c.target == f"key:{key['id']}"))
            ).scalars()
        )
    assert actions == ["key.create", "key.rename", "key.deleted"]


def test_cli_renames_and_deletes_keys(db_url: str, tmp_path: Path) -> None:
    cli = Cli(db_url, tmp_path / "data")
    assert cli.json("migrate")["migrated"] is True
    _group, account = cli.json_many(
        ("admin", "group", "create", "default", "--multiplier", "1", "--json"),
        ("admin", "account", "create", "--email", "erin@example.com", "--json"),
    )
    key = cli.json("admin", "key", "create", account["id"], "--name", "ci", "--group", "default")
    assert cli.json("admin", "key", "rename", key["id"], "nightly")["name"] == "nightly"
    assert cli.json("admin", "key", "delete", key["id"])["status"] == "deleted"
    assert cli.json("admin", "key", "list", account["id"])["keys"] == []
    refused = cli.run("admin", "key", "enable", key["id"], "--json")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
