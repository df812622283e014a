"""What the CLI prints: one JSON document with ``--json``, otherwise rich tables and text.

Errors are one line: ``{"error": {...}}`` on stdout with ``--json`` (scripts parse stdout),
else ``error: ...`` on stderr. Either way the exit code is 1; usage errors (typer) exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NoReturn

import orjson
import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tollway.errors import TollwayError

Json = dict[str, Any]
Render = Callable[[Console, Any], None]
MIN_CUT_WIDTH = 6  # a column cut to fewer characters than this is left out instead


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def print_json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n")
    sys.stdout.flush()


def emit(doc: Any, *, json_out: bool, render: Render) -> None:
    if json_out:
        print_json(doc)
    else:
        render(stdout_console(), doc)


def error_doc(code: str, message: str, param: str | None) -> Json:
    return {"error": {"code": code, "message": message, "param": param}}


def fail(exc: TollwayError, *, json_out: bool) -> NoReturn:
    fail_with(exc.code, exc.message, exc.param, json_out=json_out)


def fail_with(code: str, message: str, param: str | None, *, json_out: bool) -> NoReturn:
    message = " ".join(message.split())  # one line, whatever the source said
    if json_out:
        print_json(error_doc(code, message, param))
    else:
        suffix = f" (param: {param})" if param else ""
        sys.stderr.write(f"error: {message}{suffix}\n")
    raise typer.Exit(1)


# --- readable rendering ---------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, Mapping):
        if not value:
            return "-"
        return orjson.dumps(value).decode("utf-8")
    return str(value)


def render_record(console: Console, doc: Mapping[str, Any], *, title: str | None = None) -> None:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in doc.items():
        table.add_row(escape(key), escape(cell(value)))
    console.print(table)


Column = str | tuple[str, str]  # a path into each row ("tokens.input"), or (path, header)


def render_rows(
    console: Console,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    if not rows:
        console.print(escape(empty))
        return
    paths = [c if isinstance(c, str) else c[0] for c in columns]
    table = Table(title=title)
    for column in columns:
        header = column if isinstance(column, str) else column[1]
        table.add_column(escape(header), overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell(_dig(row, path))) for path in paths))
    console.print(table)


def _dig(row: Mapping[str, Any], path: str) -> Any:
    """``"tokens.input"`` reads ``row["tokens"]["input"]``."""
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def record_renderer(title: str | None = None) -> Render:
    def render(console: Console, doc: Any) -> None:
        render_record(console, doc, title=title)

    return render


def rows_renderer(key: str, columns: Sequence[Column], *, empty: str) -> Render:
    """Render ``doc[key]`` (a list of records) as a table."""

    def render(console: Console, doc: Any) -> None:
        render_rows(console, doc[key], columns, empty=empty)

    return render


def render_narrow_rows(
    console: Console,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    may_cut: Collection[str] = (),
    empty: str = "nothing to show",
) -> None:
    """A table that fits ``console.width`` without wrapping a cell. The first column (an id to
    copy) is never wrapped or cut; the others are shown whole, left to right, while they fit; the
    next one is shown cut with an ellipsis if it is in ``may_cut`` and a few characters of it
    fit; the rest are left out, and a last line names them (``--json`` has everything)."""
    if not rows:
        console.print(escape(empty))
        return
    paths = [c if isinstance(c, str) else c[0] for c in columns]
    headers = [escape(c if isinstance(c, str) else c[1]) for c in columns]
    cells = [[escape(cell(_dig(row, path))) for path in paths] for row in rows]
    widths = [max(cell_len(h), *(cell_len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    gap = 3  # padding on both sides of the (blank) column rule
    used, shown, cut = widths[0], 1, None
    while shown < len(columns) and used + gap + widths[shown] <= console.width:
        used += gap + widths[shown]
        shown += 1
    room = console.width - used - gap
    if shown < len(columns) and paths[shown] in may_cut and room >= MIN_CUT_WIDTH:
        cut, shown = room, shown + 1
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for i, header in enumerate(headers[:shown]):
        last_cut = cut is not None and i == shown - 1
        table.add_column(
            header,
            no_wrap=True,
            overflow="ellipsis" if last_cut else "ignore",
            width=cut if last_cut else widths[i],
        )
    for r in cells:
        table.add_row(*r[:shown])
    console.print(table)
    if shown < len(columns):
        left_out = ", ".join(headers[shown:])
        console.print(f"({left_out} left out at {console.width} columns; --json shows every field)")
