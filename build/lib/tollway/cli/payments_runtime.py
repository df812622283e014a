"""Running a payments command: a migrated engine and a :class:`PaymentsContext` acting as
``cli:<user>`` (providers configured from the same settings as the server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from tollway.cli.output import Render
from tollway.cli.runtime import cli_actor, run_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.payments.context import PaymentsContext
    from tollway.settings import Settings

T = TypeVar("T")


def run_payments(
    json_out: bool,
    action: Callable[[PaymentsContext, str], Awaitable[T]],
    render: Render,
    *,
    to_json: Callable[[T], object] | None = None,
) -> T:
    from tollway.payments.context import PaymentsContext
    from tollway.store.secret_box import SecretBox

    async def call(engine: AsyncEngine, settings: Settings) -> T:
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        return await action(PaymentsContext.build(engine, box, settings), cli_actor())

    return run_engine(json_out, call, render, to_json=to_json)
