"""``tollway serve|audit|demo|fake-upstream``: running things.

The modules behind these commands are imported inside each command so that the CLI starts
fast and every other command works whatever is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tollway.cli.options import JsonFlag
from tollway.cli.output import print_json
from tollway.cli.runtime import load_settings, run_engine, run_guarded

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.audit import AuditReport
    from tollway.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default TOLLWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TOLLWAY_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    json_out: JsonFlag = False,
) -> None:
    """Run the gateway: data plane (/v1), control API (/api) and console."""
    settings = load_settings(json_out=json_out)
    bind_host = host or settings.host
    bind_port = port or settings.port
    if json_out:
        print_json({"url": f"http://{bind_host}:{bind_port}", "workers": workers})

    def start() -> None:
        from tollway.serving import serve as serve_app  # a refusal: "error: ...", exit 1

        serve_app(settings, bind_host, bind_port, workers)

    run_guarded(json_out, start)


def audit(json_out: JsonFlag = False) -> None:
    """Check every ledger invariant; exit 1 naming each violation."""

    async def action(engine: AsyncEngine, _settings: Settings) -> AuditReport:
        from tollway.audit import run_audit

        return await run_audit(engine)

    def render(console: Console, report: AuditReport) -> None:
        if report.ok:
            console.print("audit passed: every invariant holds")
        else:
            console.print(f"audit failed: {len(report.findings)} finding(s)")
        for finding in report.findings:
            console.print(f"[bold red]{escape(finding.code)}[/bold red]: {escape(finding.message)}")

    report = run_engine(json_out, action, render, to_json=lambda r: r.to_json())
    if not report.ok:
        raise typer.Exit(1)


def demo(
    port: Annotated[int, typer.Option(help="Port for Tollway.")] = 8080,
    json_out: JsonFlag = False,
) -> None:
    """Start Tollway on SQLite with a fake upstream, an account with credit and a key."""
    settings = load_settings(json_out=json_out)

    def start() -> None:
        from tollway.demo import run_demo

        run_demo(settings, port=port, json_out=json_out)

    run_guarded(json_out, start)


def fake_upstream(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="Delay before the first byte.")] = 0.0,
    chunks: Annotated[int, typer.Option(min=0, help="Content chunks per stream.")] = 8,
    chunk_interval_ms: Annotated[float, typer.Option(help="Pause between chunks.")] = 0.0,
    api_key: Annotated[str | None, typer.Option(help="Require this bearer key (default: any).")] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not keep recent requests (benchmarks).")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Run an OpenAI-compatible fake upstream for tests, demos and benchmarks."""

    def start() -> None:
        from tollway.fake_upstream import FakeConfig, run

        config = FakeConfig(
            latency_ms=latency_ms,
            chunks=chunks,
            chunk_interval_ms=chunk_interval_ms,
            api_key=api_key,
            record=not no_record,
        )
        if json_out:
            print_json({"url": f"http://{host}:{port}/v1", "record": config.record})
        run(host, port, config)

    run_guarded(json_out, start)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("audit")(audit)
    app.command("demo")(demo)
    app.command("fake-upstream")(fake_upstream)
