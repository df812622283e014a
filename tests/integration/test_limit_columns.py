"""Limits take any value up to 2^63 - 1 on both databases (a group's tpm passes 2^31 easily),
and one past that is a clear error naming the field, not an internal error."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.errors import InvalidRequest
from tollway.services.admin import AdminService
from tollway.store.secret_box import SecretBox

BIG = 10_000_000_000  # 10^10 tokens per minute: past a 32-bit column
TOP = 2**63 - 1


async def test_limits_past_32_bits_are_stored_and_read_back(engine: AsyncEngine) -> None:
    admin = AdminService(engine, SecretBox("test"))
    group = await admin.upsert_group("big", create=True, multiplier="1", tpm=BIG, total_concurrency=TOP)
    assert (group["tpm"], group["total_concurrency"]) == (BIG, TOP)
    account = await admin.create_account("big@example.com")
    key = await admin.create_key(account["id"], name="k", group="big", tpm=BIG, rpm=TOP)
    listed = {k["id"]: k for k in await admin.list_keys(account["id"])}
    assert (listed[key["id"]]["tpm"], listed[key["id"]]["rpm"]) == (BIG, TOP)


async def test_a_limit_past_64_bits_is_a_clear_error(engine: AsyncEngine) -> None:
    admin = AdminService(engine, SecretBox("test"))
    with pytest.raises(InvalidRequest, match="tpm must be at most") as refused:
        await admin.upsert_group("huge", create=True, multiplier="1", tpm=TOP + 1)
    assert refused.value.param == "tpm"
