"""``tollway import new-api|one-api``: a source database built from their schemas with odd data
(negative quota, unlimited and expired and exhausted keys, disabled channels, duplicate names
and e-mails, emoji), imported into a real Tollway on SQLite and PostgreSQL.

What must hold: an imported key authenticates with the secret its clients already send
(``sk-<key>``) through the gateway's own authentication; balances are exact, each one ledger
transfer keyed ``import:<source>:user:<id>``, with any rounding remainder reported; a dry run
writes nothing; a second run changes nothing; ``tollway audit`` is clean afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from newapi_fixture import (
    CODE_PROMO,
    CODE_PROMO_2,
    KEY_AUTO,
    KEY_DISABLED,
    KEY_EXHAUSTED,
    KEY_EXPIRED,
    KEY_LAPTOP,
    KEY_VIP,
    fill_async,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import drop_pg_database
from tollway.app import TollwayApp
from tollway.audit import run_audit
from tollway.errors import AuthenticationFailed
from tollway.migrate.convert import stable_id
from tollway.migrate.importer import run_import
from tollway.migrate.report import report_json
from tollway.migrate.source_schema import Flavour
from tollway.payments.numbers import code_hash
from tollway.services.admin import AdminService
from tollway.settings import Settings
from tollway.store import tables as t

COUNTED = (
    t.accounts,
    t.api_keys,
    t.groups,
    t.channels,
    t.model_prices,
    t.ledger_transfers,
    t.ledger_entries,
    t.redemption_batches,
    t.redemption_codes,
    t.audit_log,
)


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            tbl.name: int((await conn.execute(select(func.count()).select_from(tbl))).scalar_one())
            for tbl in COUNTED
        }


async def _app(db_url: str, tmp_path: Path) -> TollwayApp:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="import-secret",
        hold_sweep_interval_s=60,
        refresh_interval_s=60,
    )
    app = TollwayApp(settings)
    await app.start()
    return app


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[TollwayApp, AdminService, str, str]]:
    """(app, admin, new-api source, one-api source) with sources on the same backend."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    new_api, drop_new = await fill_async(backend, "new-api", tmp_path)
    one_dir = tmp_path / "one"
    one_dir.mkdir()
    one_api, drop_one = await fill_async(backend, "one-api", one_dir)
    app = await _app(db_url, tmp_path)
    try:
        yield app, AdminService(app.engine, app.box, actor="test"), new_api, one_api
    finally:
        await app.stop()
        for url in (drop_new, drop_one):
            if url:
                await asyncio.to_thread(drop_pg_database, url)


def _step(doc: dict[str, Any], kind: str, source_id: int | str) -> dict[str, Any]:
    [row] = [r for r in doc["steps"] if r["kind"] == kind and r["source_id"] == str(source_id)]
    return row


async def test_new_api_import_end_to_end(rig: tuple[TollwayApp, AdminService, str, str]) -> None:
    app, admin, source, _ = rig
    before = await _counts(app.engine)

    dry = report_json(await run_import(admin, source, Flavour.NEW_API, dry_run=True))
    assert await _counts(app.engine) == before, "a dry run writes nothing"
    assert dry["dry_run"] is True and dry["changes"] > 0

    done = report_json(await run_import(admin, source, Flavour.NEW_API))
    assert done["failed"] == []
    assert done["changes"] == dry["changes"], "the dry run announced exactly what the run did"

    # --- accounts and balances ---------------------------------------------------------
    alice, bob, carol, erin = (stable_id("new-api", "user", i) for i in (1, 2, 3, 5))
    accounts = {a["id"]: a for a in [await admin.get_account(i) for i in (alice, bob, carol, erin)]}
    assert accounts[alice]["email"] == "alice@example.com"
    assert accounts[bob]["email"] == "new-api-user-2@import.invalid"  # ALICE@... is taken
    assert accounts[carol]["email"] == "new-api-user-3@import.invalid"  # no e-mail
    assert accounts[erin]["status"] == "suspended"
    assert accounts[alice]["role"] == "customer"
    assert _step(done, "account", 4)["action"] == "skip"  # deleted
    assert (await admin.balance(alice))["cash_nano"] == 10_000_000_000  # 5,000,000 quota = $10
    assert (await admin.balance(carol))["cash_nano"] == 2_000  # 1 quota = 2,000 nano exactly
    assert (await admin.balance(erin))["cash_nano"] == 1_500_000_000
    assert (await admin.balance(bob))["cash_nano"] == 0  # negative quota: no debt
    negative = _step(done, "balance", 2)
    assert negative["action"] == "skip" and "-250000" in negative["reason"]
    assert done["balances"]["total_nano"] == 11_500_002_000
    assert done["balances"]["rounded_down"] == []
    async with app.engine.connect() as conn:
        transfers = list(
            await conn.execute(
                select(
                    t.ledger_transfers.c.idempotency_key,
                    t.ledger_transfers.c.memo,
                    t.ledger_transfers.c.amount_nano,
                ).where(t.ledger_transfers.c.owner_id == alice)
            )
        )
    assert [(r.idempotency_key, r.memo, r.amount_nano) for r in transfers] == [
        ("import:new-api:user:1", "import:new-api:user:1", 10_000_000_000)
    ]

    # --- keys work with the secrets clients already send ----------------------------------
    gateway = app.gateway
    assert gateway is not None
    await gateway.config.refresh(force=True)
    laptop = await gateway.authenticate("sk-" + KEY_LAPTOP)
    assert laptop.account.id == alice and laptop.key.spend_cap_nano is None and laptop.group.name == "default"
    vip = await gateway.authenticate("sk-" + KEY_VIP)
    assert vip.group.name == "vip" and str(vip.group.multiplier) == "0.3"
    assert vip.key.spend_cap_nano == 500_000_000  # 250,000 quota left = $0.50
    assert vip.key.models == frozenset({"gpt-4o", "gpt-4o-mini"})
    assert vip.key.allows_ip("10.1.2.3") and vip.key.allows_ip("192.168.1.5")
    assert not vip.key.allows_ip("8.8.8.8")
    assert "not-an-ip" in " ".join(_step(done, "key", 11)["notes"])
    exhausted = await gateway.authenticate("sk-" + KEY_EXHAUSTED)
    assert exhausted.key.spend_cap_nano == 0 and exhausted.key.name == "\U0001f389 party key"
    auto = await gateway.authenticate("sk-" + KEY_AUTO)
    assert auto.group.name == "\U0001f680fast"
    for secret, words in (
        (KEY_EXPIRED, "expired"),
        (KEY_DISABLED, "disabled"),
        ("sk-" + "x" * 48, "not valid"),
    ):
        with pytest.raises(AuthenticationFailed, match=words):
            await gateway.authenticate(secret if secret.startswith("sk-x") else "sk-" + secret)
    with pytest.raises(AuthenticationFailed):
        await gateway.authenticate(KEY_LAPTOP)  # without the sk- prefix: not the same secret
    assert _step(done, "key", 15)["action"] == "skip"  # its user was deleted
    assert _step(done, "key", 17)["reason"] == "deleted in the source"

    # --- groups, channels, prices, codes --------------------------------------------------
    groups = {g["name"]: g for g in await admin.list_groups()}
    assert {n: g["multiplier"] for n, g in groups.items()} == {
        "default": "1",
        "vip": "0.3",
        "\U0001f680fast": "0.75",
        "svip": "0.1",
    }
    channels = {c["name"]: c for c in await admin.list_channels()}
    assert set(channels) == {"main", "main (new-api #103)", "claude", "gemini \U0001f48e"}
    main = channels["main"]
    assert main["base_url"] == "https://api.openai.com/v1" and main["priority"] == 10
    assert main["weight"] == 15 and main["groups"] == ["default", "vip"]
    assert main["model_map"] == {"my-custom": "gpt-4o-mini"} and main["status"] == "enabled"
    assert channels["claude"]["status"] == "disabled" and channels["claude"]["type"] == "anthropic"
    assert channels["claude"]["base_url"] == "https://proxy.example.com"
    assert channels["gemini \U0001f48e"]["status"] == "disabled"
    assert channels["main (new-api #103)"]["base_url"] == "https://relay.example.com/v1"
    served = gateway.config.channels
    assert {len(c.keys) for c in served if c.name == "main"} == {2}  # both credentials, sealed
    assert _step(done, "channel", 102)["reason"].startswith("channel type 3")

    prices = {p["model"]: p for p in await admin.list_models()}
    assert (prices["gpt-4.1"]["prices"]["input"], prices["gpt-4.1"]["prices"]["output"]) == (
        "3",
        "12",
    )  # ratio 1.5, x4
    assert (prices["my-custom"]["prices"]["input"], prices["my-custom"]["prices"]["output"]) == ("1", "2")
    assert _step(done, "price", "gpt-4o")["action"] == "exists"  # theirs = Tollway's list
    assert _step(done, "price", "dall-e-3")["action"] == "exists"  # $0.04 per call, as Tollway's
    unserved = _step(done, "price", "my-image")
    assert unserved["action"] == "skip" and "no imported channel" in unserved["reason"]
    assert "my-image" not in prices
    claude = _step(done, "price", "claude-sonnet-4-5")  # no CompletionRatio stored for it
    assert claude["action"] == "skip" and "output price is not stored" in claude["reason"]
    assert prices["claude-sonnet-4-5"]["prices"]["output"] == "15"
    differing = {r["model"]: r for r in done["price_differences"]}
    assert set(differing) == {"gpt-4.1", "my-custom", "my-image", "claude-sonnet-4-5"}
    assert differing["gpt-4.1"]["theirs_usd"]["output"] == "12"
    assert differing["gpt-4.1"]["tollway_usd"]["output"] == "8"
    assert differing["gpt-4.1"]["difference_usd"] == {
        "input": "1",
        "output": "4",
        "cache_read": None,
        "per_call": None,
    }
    assert differing["claude-sonnet-4-5"]["difference_usd"]["output"] == "-12"

    async with app.engine.connect() as conn:
        codes = list(
            await conn.execute(select(t.redemption_codes.c.code_hash, t.redemption_codes.c.batch_id))
        )
        batches = list(await conn.execute(select(t.redemption_batches)))
    assert {c.code_hash for c in codes} == {code_hash(CODE_PROMO), code_hash(CODE_PROMO_2)}
    assert [(b.value_nano, b.count, b.kind) for b in batches] == [(2_000_000_000, 2, "cash")]
    assert done["topups"]["count"] == 2 and done["logs"]["count"] == 3

    # --- re-run: nothing new; audit clean ---------------------------------------------------
    after = await _counts(app.engine)
    again = report_json(await run_import(admin, source, Flavour.NEW_API))
    assert again["changes"] == 0 and again["failed"] == []
    assert await _counts(app.engine) == after

    # an imported code redeems once, as the customer typed it on the old site
    from tollway.payments.codes import CodeService
    from tollway.payments.context import PaymentsContext

    codes_service = CodeService(PaymentsContext(app.engine, app.box, app.settings), "test")
    redeemed = await codes_service.redeem(carol, CODE_PROMO)
    assert redeemed["kind"] == "cash" and redeemed["value"] == "2"
    assert (await admin.balance(carol))["cash_nano"] == 2_000_002_000
    with pytest.raises(Exception, match="already been redeemed"):
        await codes_service.redeem(carol, CODE_PROMO)
    [batch] = await codes_service.list_batches()
    assert CODE_PROMO_2 in await codes_service.export_csv(batch["batch_id"])
    report = await run_audit(app.engine)
    assert report.findings == [], report.findings


async def test_one_api_import_rounds_down_and_reports_the_remainder(
    rig: tuple[TollwayApp, AdminService, str, str],
) -> None:
    app, admin, _, source = rig
    await admin.create_account("erin@example.com")  # already a Tollway customer
    done = report_json(await run_import(admin, source, Flavour.ONE_API))
    erin = await admin.get_account(stable_id("one-api", "user", 5))
    assert erin["email"] == "one-api-user-5@import.invalid"  # never merged into another account
    assert done["failed"] == [] and done["quota_per_unit"] == "300000"
    alice = stable_id("one-api", "user", 1)
    # 5,000,000 / 300,000 credits = 16.666666666(6): rounded down once, the rest reported
    assert (await admin.balance(alice))["cash_nano"] == 16_666_666_666
    row = _step(done, "balance", 1)
    assert row["remainder_nano"] == "200000/300000"
    assert any(r["source_id"] == "1" for r in done["balances"]["rounded_down"])
    assert (await admin.balance(stable_id("one-api", "user", 3)))["cash_nano"] == 3_333  # 1 quota
    gateway = app.gateway
    assert gateway is not None
    await gateway.config.refresh(force=True)
    vip = await gateway.authenticate("sk-" + KEY_VIP)
    assert vip.key.models == frozenset({"gpt-4o", "gpt-4o-mini"})  # one-api's ``models`` column
    assert vip.key.allows_ip("10.9.9.9") and not vip.key.allows_ip("11.0.0.1")  # ``subnet``
    assert done["topups"]["count"] == 0 and "top_ups" in " ".join(done["warnings"])
    again = report_json(await run_import(admin, source, Flavour.ONE_API))
    assert again["changes"] == 0
    assert (await run_audit(app.engine)).findings == []


def test_cli_dry_run_then_import_then_nothing_new(db_url: str, tmp_path: Path) -> None:
    from test_cli import Cli

    src_dir = tmp_path / "their data #1"  # a path a SQLite URI must escape
    src_dir.mkdir()
    source, _ = asyncio.run(fill_async("sqlite", "new-api", src_dir))
    cli = Cli(db_url, tmp_path / "data")
    dry = cli.json("import", "new-api", "--from", source, "--dry-run")
    assert dry["dry_run"] is True and dry["changes"] > 0
    assert cli.json("admin", "group", "list")["groups"] == []  # nothing was written
    text = cli.run("import", "new-api", "--from", source, "--dry-run")
    assert text.returncode == 0, text.stderr
    assert "dry run" in text.stdout and "negative quota -250000" in text.stdout
    assert "gpt-4.1" in text.stdout  # the price table
    done = cli.json("import", "new-api", "--from", source)
    assert done["changes"] == dry["changes"] and done["failed"] == []
    again = cli.json("import", "new-api", "--from", source)
    assert again["changes"] == 0
    assert cli.json("audit")["ok"] is True
    missing = cli.run("import", "one-api", "--from", str(tmp_path / "nope.db"), "--json")
    assert missing.returncode == 1 and "no SQLite file" in missing.stdout
    pg = cli.run(
        "import", "new-api", "--from", "postgresql://postgres@127.0.0.1:5432/tollway_no_such_db", "--json"
    )
    assert pg.returncode == 1 and "cannot read the source database" in pg.stdout, pg.stdout
    assert sorted(p.name for p in src_dir.iterdir()) == ["new-api.db"]  # opened read-only: no -wal


async def _call(app: TollwayApp, secret: str, model: str = "gpt-4o-mini") -> tuple[int, Any]:
    """One chat completion through Tollway's data plane (the real ASGI app)."""
    import orjson

    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20})
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {secret}".encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5555),
    }
    sent = [False]
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        else:
            chunks.append(message.get("body", b""))

    assert app.data_plane is not None
    await asyncio.wait_for(app.data_plane(scope, receive, send), 20)
    return status[0], orjson.loads(b"".join(chunks))


async def test_imported_keys_call_through_the_gateway(rig: tuple[TollwayApp, AdminService, str, str]) -> None:
    """A client keeps its key: the same ``sk-...`` calls an imported channel and is billed from
    the imported balance; an exhausted key is refused with 402, an IP-restricted one with 403."""
    from aiohttp import web
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tollway.fake_upstream import FakeConfig, build_app

    app, admin, source, _ = rig
    runner = web.AppRunner(build_app(FakeConfig(chunks=2)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        fake = f"http://127.0.0.1:{runner.addresses[0][1]}"
        writable = source.replace("postgresql://", "postgresql+asyncpg://")
        src = create_async_engine(writable if "://" in writable else f"sqlite+aiosqlite:///{source}")
        async with src.begin() as conn:  # the operator's upstream, here the fake one
            await conn.execute(text("UPDATE channels SET base_url = :u WHERE id = 100"), {"u": fake})
            # alice's exhausted key, so only its cap (not her $10) can refuse the call
            await conn.execute(text("UPDATE tokens SET user_id = 1, \"group\" = 'default' WHERE id = 13"))
        await src.dispose()
        done = report_json(await run_import(admin, source, Flavour.NEW_API))
        assert done["failed"] == []
        assert app.gateway is not None
        await app.gateway.config.refresh(force=True)
        alice = stable_id("new-api", "user", 1)

        status, doc = await _call(app, "sk-" + KEY_LAPTOP)
        assert status == 200, doc
        after = await admin.balance(alice)
        assert 10_000_000_000 - after["cash_nano"] > 0  # billed from the imported balance
        [usage] = await admin.list_usage(alice)
        assert usage["group"] == "default"

        status, doc = await _call(app, "sk-" + KEY_EXHAUSTED)
        assert status == 402, doc  # spend cap 0
        assert "cap" in doc["error"]["message"], doc
        status, doc = await _call(app, "sk-" + KEY_VIP)
        assert status == 403, doc  # 127.0.0.1 is not in its allow list
        assert (await run_audit(app.engine)).findings == []
    finally:
        await runner.cleanup()
