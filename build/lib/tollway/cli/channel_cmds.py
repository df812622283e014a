"""``tollway admin channel ...``: upstream channels (credentials are never shown)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollway.cli.options import JsonFlag, secret_arg
from tollway.cli.output import record_renderer, rows_renderer
from tollway.cli.runtime import run_admin

if TYPE_CHECKING:
    from tollway.services.admin import AdminService

channel_app = typer.Typer(help="Upstream channels (credentials are never shown).")
channel_app.info.no_args_is_help = True

CHANNEL_COLUMNS = ("name", "type", "base_url", "models", "groups", "priority", "weight", "status")


class ChannelTypeOpt(StrEnum):
    openai = "openai"
    anthropic = "anthropic"
    gemini = "gemini"


ChannelName = Annotated[str, typer.Argument(help="Channel name.")]
Groups = Annotated[str | None, typer.Option("--groups", help="Comma-separated groups served (empty = all).")]
Priority = Annotated[int | None, typer.Option(help="Higher tiers are tried first.")]
Weight = Annotated[int | None, typer.Option(help="Weight inside a priority tier.")]
MapOpt = Annotated[str | None, typer.Option("--map", help="Model-name mapping, from=to,from2=to2.")]
Enabled = Annotated[bool | None, typer.Option("--enable/--disable", help="Serve traffic or not.")]
ApiKeyHelp = (
    "Upstream credential(s), comma-separated for several (rotated, each with its own breaker); "
    "'-' reads it from stdin. Stored encrypted, never shown."
)
ConnectT = Annotated[float | None, typer.Option("--connect-timeout", help="Seconds; 0 = global setting.")]
FirstByteT = Annotated[
    float | None, typer.Option("--first-byte-timeout", help="Seconds; 0 = global setting.")
]
IdleT = Annotated[float | None, typer.Option("--idle-timeout", help="Seconds; 0 = global setting.")]


def _channel(name: str, create: bool, json_out: bool, **values: Any) -> None:
    async def action(svc: AdminService) -> dict[str, Any]:
        values["api_key"] = secret_arg(values["api_key"], param="api_key")
        return await svc.upsert_channel(name, create=create, **values)

    run_admin(json_out, action, record_renderer(f"channel {name}"))


@channel_app.command("create")
def channel_create(
    name: ChannelName,
    type: Annotated[ChannelTypeOpt, typer.Option("--type", help="Provider API type.")],
    base_url: Annotated[str, typer.Option(help="As the provider's SDK takes it.")],
    api_key: Annotated[str, typer.Option(help=ApiKeyHelp)],
    models: Annotated[str, typer.Option(help="Comma-separated models served.")],
    groups: Groups = None,
    priority: Priority = None,
    weight: Weight = None,
    model_map: MapOpt = None,
    enabled: Enabled = None,
    connect_timeout: ConnectT = None,
    first_byte_timeout: FirstByteT = None,
    idle_timeout: IdleT = None,
    json_out: JsonFlag = False,
) -> None:
    """Create a channel."""
    _channel(
        name,
        True,
        json_out,
        type=type.value,
        base_url=base_url,
        api_key=api_key,
        models=models,
        groups_=groups,
        priority=priority,
        weight=weight,
        model_map=model_map,
        enabled=enabled,
        connect_timeout=connect_timeout,
        first_byte_timeout=first_byte_timeout,
        idle_timeout=idle_timeout,
    )


@channel_app.command("update")
def channel_update(
    name: ChannelName,
    type: Annotated[ChannelTypeOpt | None, typer.Option("--type", help="Provider type.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Base URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help=ApiKeyHelp)] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated models.")] = None,
    groups: Groups = None,
    priority: Priority = None,
    weight: Weight = None,
    model_map: MapOpt = None,
    enabled: Enabled = None,
    connect_timeout: ConnectT = None,
    first_byte_timeout: FirstByteT = None,
    idle_timeout: IdleT = None,
    json_out: JsonFlag = False,
) -> None:
    """Change a channel; options not given keep their value."""
    _channel(
        name,
        False,
        json_out,
        type=None if type is None else type.value,
        base_url=base_url,
        api_key=api_key,
        models=models,
        groups_=groups,
        priority=priority,
        weight=weight,
        model_map=model_map,
        enabled=enabled,
        connect_timeout=connect_timeout,
        first_byte_timeout=first_byte_timeout,
        idle_timeout=idle_timeout,
    )


@channel_app.command("list")
def channel_list(json_out: JsonFlag = False) -> None:
    """List channels (without credentials)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return {"channels": await svc.list_channels()}

    run_admin(json_out, action, rows_renderer("channels", CHANNEL_COLUMNS, empty="no channels"))
