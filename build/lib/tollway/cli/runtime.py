"""Running a command: settings, a migrated engine, the admin service, errors at the edge.

Every command builds its own engine from :class:`Settings`, applies pending migrations (they
are idempotent), does its work and disposes of the engine. Domain errors become exit code 1
with a one-line message; nothing prints a traceback unless ``TOLLWAY_DEBUG`` is set.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from tollway.cli.output import Render, emit, fail, fail_with
from tollway.errors import TollwayError

if TYPE_CHECKING:  # the heavy imports wait until a command runs, so --help is instant
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.services.admin import AdminService
    from tollway.settings import Settings

T = TypeVar("T")


def cli_actor() -> str:
    """The audit log's actor for CLI changes: ``cli:<OS user>``."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in a bare container
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def load_settings(*, json_out: bool) -> Settings:
    from pydantic import ValidationError

    from tollway.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        fail_with(
            "invalid_settings",
            f"TOLLWAY_{field.upper()}: {first['msg']}",
            field,
            json_out=json_out,
        )
    except (OSError, ValueError) as exc:  # TOLLWAY_CONFIG_FILE unreadable or malformed
        fail_with("invalid_settings", f"cannot read the settings: {exc}", None, json_out=json_out)


async def _with_engine(settings: Settings, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    from tollway.store.db import make_engine, migrate

    engine = make_engine(settings.resolved_database_url(), pool_size=2)
    try:
        await migrate(engine)
        return await action(engine)
    finally:
        await engine.dispose()


def run_guarded(json_out: bool, thunk: Callable[[], T]) -> T:
    """Run ``thunk``; turn any error into the one-line message and exit code 1."""
    try:
        return thunk()
    except typer.Exit:
        raise
    except TollwayError as exc:
        fail(exc, json_out=json_out)
    except Exception as exc:
        if os.environ.get("TOLLWAY_DEBUG"):
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        fail_with(
            "internal_error",
            f"{type(exc).__name__}: {first_line} (set TOLLWAY_DEBUG=1 for the traceback)",
            None,
            json_out=json_out,
        )


def run_engine(
    json_out: bool,
    action: Callable[[AsyncEngine, Settings], Awaitable[T]],
    render: Render,
    *,
    to_json: Callable[[T], Any] | None = None,
) -> T:
    """Run ``action`` with a migrated engine and print its result (``to_json`` converts a
    result that is not JSON-ready for ``--json``)."""
    settings = load_settings(json_out=json_out)

    async def call(engine: AsyncEngine) -> T:
        return await action(engine, settings)

    result = run_guarded(json_out, lambda: asyncio.run(_with_engine(settings, call)))
    emit(to_json(result) if json_out and to_json else result, json_out=json_out, render=render)
    return result


def run_admin(
    json_out: bool,
    action: Callable[[AdminService], Awaitable[T]],
    render: Render,
) -> T:
    """Run ``action`` with an :class:`AdminService` acting as ``cli:<user>``; print its result."""

    from tollway.services.admin import AdminService
    from tollway.store.secret_box import SecretBox

    async def call(engine: AsyncEngine, settings: Settings) -> T:
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        return await action(AdminService(engine, box, actor=cli_actor()))

    return run_engine(json_out, call, render)
