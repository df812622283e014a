"""Rotating ``TOLLWAY_SECRET_KEY``: every sealed column re-sealed with a new key, in one transaction.

Rows the new key already opens are left alone, so the rotation is idempotent and resumable: a
run that failed changed nothing (one transaction), and a second run after a success (or after
a crash before the key file was replaced) finds everything done. A row neither key opens stops
the rotation, naming it, and nothing is written. Rows are locked (``FOR UPDATE`` on PostgreSQL)
so a channel saved meanwhile waits for the commit; pending sign-in cookies (sealed, never
stored) simply stop working and their owners sign in again.

When the key lives in the data directory (TOLLWAY_SECRET_KEY unset), the new key replaces the
file after the commit; otherwise the operator sets TOLLWAY_SECRET_KEY to the new key and
restarts every server (docs/security.md, "Rotating the secret key").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.errors import Conflict, InvalidRequest
from tollway.store.config_repo import write_audit
from tollway.store.secret_box import SecretBox
from tollway.store.tables import account_totp, channels, redemption_codes

# Every column SecretBox seals: (table, its key column, the sealed column).
SEALED: tuple[tuple[Table, Column[Any], Column[Any]], ...] = (
    (channels, channels.c.id, channels.c.credential_enc),
    (account_totp, account_totp.c.account_id, account_totp.c.secret),
    (redemption_codes, redemption_codes.c.id, redemption_codes.c.code_enc),
)
MIN_KEY_CHARS = 32


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # re-sealed now, per table
    already: dict[str, int] = field(default_factory=dict)  # sealed with the new key before
    key_file: str | None = None  # the data directory's key file, replaced after the commit

    def as_json(self) -> dict[str, Any]:
        return {"rotated": self.rotated, "already": self.already, "key_file": self.key_file}


def check_new_key(new_key: str, old_key: str) -> str:
    key = new_key.strip()
    if len(key) < MIN_KEY_CHARS:
        raise InvalidRequest(
            f"the new key is too short: at least {MIN_KEY_CHARS} characters", param="new_key"
        )
    if key == old_key.strip():
        raise InvalidRequest("the new key is the key in use", param="new_key")
    return key


async def rotate_secret_key(
    engine: AsyncEngine, old: SecretBox, new: SecretBox, *, actor: str, reason: str = ""
) -> RotationReport:
    """Re-seal every sealed column with ``new`` in one transaction (see the module docstring)."""
    report = RotationReport()
    async with engine.begin() as conn:
        for table, key_col, sealed_col in SEALED:
            rotated, already = await _rotate_table(conn, table, key_col, sealed_col, old, new)
            name = str(table.name)  # a quoted_name: not a plain str to orjson
            report.rotated[name] = rotated
            report.already[name] = already
        if any(report.rotated.values()):
            await write_audit(
                conn,
                actor=actor,
                action="secret_key.rotate",
                target="secret_key",
                reason=reason,
                after={"rotated": report.rotated},
            )
    return report


async def _rotate_table(
    conn: AsyncConnection,
    table: Table,
    key_col: Column[Any],
    sealed_col: Column[Any],
    old: SecretBox,
    new: SecretBox,
) -> tuple[int, int]:
    rows = (await conn.execute(select(key_col, sealed_col).order_by(key_col).with_for_update())).all()
    rotated = already = 0
    for row_key, sealed in rows:
        if new.try_open(sealed) is not None:
            already += 1
            continue
        plain = old.try_open(sealed)
        if plain is None:
            raise Conflict(
                f"{table.name} {row_key}: neither the current key nor the new one opens it; "
                "nothing was changed"
            )
        await conn.execute(update(table).where(key_col == row_key).values({sealed_col.name: new.seal(plain)}))
        rotated += 1
    return rotated, already


def replace_key_file(path: Path, new_key: str) -> None:
    """Write the new key next to the old file, then move it over (readable by the owner only)."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new_key)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
