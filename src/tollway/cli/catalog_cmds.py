"""``tollway admin group|model|channel ...``: groups, model prices, upstream channels."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from tollway.cli.options import Concurrency, JsonFlag, Reason, Rpm, Tpm, check_price, secret_arg
from tollway.cli.output import record_renderer, rows_renderer
from tollway.cli.runtime import run_admin
from tollway.services.admin import AdminService

group_app = typer.Typer(help="Groups: multiplier, allowed models, limits.", no_args_is_help=True)
model_app = typer.Typer(help="Model prices (USD per million tokens, or per call).")
channel_app = typer.Typer(help="Upstream channels (credentials are never shown).")
model_app.info.no_args_is_help = True
channel_app.info.no_args_is_help = True

GROUP_COLUMNS = ("name", "multiplier", "models", "rpm", "tpm", "concurrency", "total_concurrency")
MODEL_COLUMNS = (
    "model",
    "provider",
    "mode",
    "prices.input",
    "prices.output",
    "prices.cache_write_5m",
    "prices.cache_write_1h",
    "prices.cache_read",
    "per_call",
    "version",
)
CHANNEL_COLUMNS = ("name", "type", "base_url", "models", "groups", "priority", "weight", "status")


class ChannelTypeOpt(str, Enum):
    openai = "openai"
    anthropic = "anthropic"
    gemini = "gemini"


Name = Annotated[str, typer.Argument(help="Group name.")]
Models = Annotated[
    str | None, typer.Option("--models", help="Comma-separated models (empty = all priced).")
]
TotalConcurrency = Annotated[
    int | None,
    typer.Option("--total-concurrency", help="Cap on the whole group's concurrent requests."),
]
Label = Annotated[str | None, typer.Option("--label", help="Label, e.g. recommended.")]


# --- groups ---------------------------------------------------------------------------------


def _group(name: str, create: bool, json_out: bool, **values: Any) -> None:
    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.upsert_group(name, create=create, **values)

    run_admin(json_out, action, record_renderer(f"group {name}"))


@group_app.command("create")
def group_create(
    name: Name,
    multiplier: Annotated[str, typer.Option("--multiplier", help="Exact decimal, e.g. 0.3.")],
    models: Models = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrency: Concurrency = None,
    total_concurrency: TotalConcurrency = None,
    label: Label = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Create a group."""
    _group(name, True, json_out, multiplier=multiplier, models=models, rpm=rpm, tpm=tpm,
           concurrency=concurrency, total_concurrency=total_concurrency, label=label,
           reason=reason)


@group_app.command("update")
def group_update(
    name: Name,
    multiplier: Annotated[str | None, typer.Option("--multiplier", help="Exact decimal.")] = None,
    models: Models = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrency: Concurrency = None,
    total_concurrency: TotalConcurrency = None,
    label: Label = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Change a group; options not given keep their value."""
    _group(name, False, json_out, multiplier=multiplier, models=models, rpm=rpm, tpm=tpm,
           concurrency=concurrency, total_concurrency=total_concurrency, label=label,
           reason=reason)


@group_app.command("list")
def group_list(json_out: JsonFlag = False) -> None:
    """List groups."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return {"groups": await svc.list_groups()}

    run_admin(json_out, action, rows_renderer("groups", GROUP_COLUMNS, empty="no groups"))


# --- models ---------------------------------------------------------------------------------

Usd = Annotated[str | None, typer.Option(help="USD per million tokens (decimal).")]


@model_app.command("set")
def model_set(
    name: Annotated[str, typer.Argument(help="Model name as clients ask for it.")],
    input: Usd = None,
    output: Usd = None,
    cache_write_5m: Annotated[
        str | None, typer.Option("--cache-write-5m", help="USD/MTok, 5-minute cache write.")
    ] = None,
    cache_write_1h: Annotated[
        str | None, typer.Option("--cache-write-1h", help="USD/MTok, 1-hour cache write.")
    ] = None,
    cache_read: Usd = None,
    per_call: Annotated[
        str | None, typer.Option("--per-call", help="USD per call (per-call billing).")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Provider name.")] = None,
    context_window: Annotated[int | None, typer.Option(help="Context window, tokens.")] = None,
    max_output: Annotated[
        int | None, typer.Option("--max-output", help="Maximum output tokens.")
    ] = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Set the operator's price for a model from now on (categories not given are kept)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        prices = {
            "input": input,
            "output": output,
            "cache_write_5m": cache_write_5m,
            "cache_write_1h": cache_write_1h,
            "cache_read": cache_read,
            "per_call": per_call,
        }
        for param, value in prices.items():
            check_price(value, param=param)
        return await svc.set_model_price(
            name,
            **prices,
            provider=provider,
            context_window=context_window,
            max_output_tokens=max_output,
            reason=reason,
        )

    run_admin(json_out, action, record_renderer(f"model {name}"))


@model_app.command("list")
def model_list(json_out: JsonFlag = False) -> None:
    """List every priced model with its current price (bundled or operator)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return {"models": await svc.list_models()}

    run_admin(json_out, action, rows_renderer("models", MODEL_COLUMNS, empty="no models"))


# --- channels -------------------------------------------------------------------------------

ChannelName = Annotated[str, typer.Argument(help="Channel name.")]
Groups = Annotated[
    str | None, typer.Option("--groups", help="Comma-separated groups served (empty = all).")
]
Priority = Annotated[int | None, typer.Option(help="Higher tiers are tried first.")]
Weight = Annotated[int | None, typer.Option(help="Weight inside a priority tier.")]
MapOpt = Annotated[
    str | None, typer.Option("--map", help="Model-name mapping, from=to,from2=to2.")
]
Enabled = Annotated[bool | None, typer.Option("--enable/--disable", help="Serve traffic or not.")]
ApiKeyHelp = "Upstream credential; '-' reads it from stdin. Stored encrypted, never shown."


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
    json_out: JsonFlag = False,
) -> None:
    """Create a channel."""
    _channel(name, True, json_out, type=type.value, base_url=base_url, api_key=api_key,
             models=models, groups_=groups, priority=priority, weight=weight,
             model_map=model_map, enabled=enabled)


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
    json_out: JsonFlag = False,
) -> None:
    """Change a channel; options not given keep their value."""
    _channel(name, False, json_out, type=None if type is None else type.value,
             base_url=base_url, api_key=api_key, models=models, groups_=groups,
             priority=priority, weight=weight, model_map=model_map,
             enabled=enabled)


@channel_app.command("list")
def channel_list(json_out: JsonFlag = False) -> None:
    """List channels (without credentials)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return {"channels": await svc.list_channels()}

    run_admin(json_out, action, rows_renderer("channels", CHANNEL_COLUMNS, empty="no channels"))
