"""``tollway admin group|model ...``: groups and model prices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tollway.cli.options import Concurrency, JsonFlag, Reason, Rpm, Tpm, check_price
from tollway.cli.output import record_renderer, rows_renderer
from tollway.cli.runtime import run_admin

if TYPE_CHECKING:
    from tollway.services.admin import AdminService

group_app = typer.Typer(help="Groups: multiplier, allowed models, limits.", no_args_is_help=True)
model_app = typer.Typer(help="Model prices (USD per million tokens, or per call).")
model_app.info.no_args_is_help = True

GROUP_COLUMNS = ("name", "multiplier", "models", "rpm", "tpm", "concurrency", "total_concurrency")
MODEL_COLUMNS = (
    "model",
    "provider",
    ("prices.input", "input"),
    ("prices.output", "output"),
    ("prices.cache_write_5m", "write 5m"),
    ("prices.cache_write_1h", "write 1h"),
    ("prices.cache_read", "read"),
    ("per_call", "per call"),
)


Name = Annotated[str, typer.Argument(help="Group name.")]
Models = Annotated[str | None, typer.Option("--models", help="Comma-separated models (empty = all priced).")]
TotalConcurrency = Annotated[
    int | None,
    typer.Option("--total-concurrency", help="Cap on the whole group's concurrent requests."),
]
Label = Annotated[str | None, typer.Option("--label", help="Label, e.g. recommended.")]
Sticky = Annotated[
    bool | None,
    typer.Option(
        "--sticky/--no-sticky",
        help="Sticky routing: an account's calls for a model keep to one channel while it is healthy.",
    ),
]


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
    sticky: Sticky = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Create a group."""
    _group(
        name,
        True,
        json_out,
        multiplier=multiplier,
        models=models,
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        total_concurrency=total_concurrency,
        label=label,
        sticky=sticky,
        reason=reason,
    )


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
    sticky: Sticky = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Change a group; options not given keep their value."""
    _group(
        name,
        False,
        json_out,
        multiplier=multiplier,
        models=models,
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        total_concurrency=total_concurrency,
        label=label,
        sticky=sticky,
        reason=reason,
    )


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
    max_output: Annotated[int | None, typer.Option("--max-output", help="Maximum output tokens.")] = None,
    reason: Reason = "",
    json_out: JsonFlag = False,
) -> None:
    """Set the operator's price for a model from now on (categories not given are kept)."""

    async def action(svc: AdminService) -> dict[str, Any]:
        return await svc.set_model_price(
            name,
            input=check_price(input, param="input"),
            output=check_price(output, param="output"),
            cache_write_5m=check_price(cache_write_5m, param="cache_write_5m"),
            cache_write_1h=check_price(cache_write_1h, param="cache_write_1h"),
            cache_read=check_price(cache_read, param="cache_read"),
            per_call=check_price(per_call, param="per_call"),
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
