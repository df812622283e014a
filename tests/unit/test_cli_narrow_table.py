"""``tollway admin usage`` in a narrow terminal: one line per record, the trace id whole."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tollway.cli.money_cmds import render_usage_rows

TRACES = [f"req_{i:024x}" for i in range(3)]


def _rows(model: str = "claude-sonnet-4-5") -> list[dict[str, object]]:
    return [
        {
            "trace_id": t,
            "created_at": "2026-12-07T13:12:03.123456+00:00",
            "model_billed": model,
            "deduction": "0.000123456",
            "status": "settled",
            "tokens": {"input": 12_000, "cache_read": 0, "output": 300},
        }
        for t in TRACES
    ]


def _render(width: int, rows: list[dict[str, object]]) -> list[str]:
    buf = io.StringIO()
    render_usage_rows(Console(file=buf, width=width, highlight=False, soft_wrap=False), {"usage": rows})
    return buf.getvalue().splitlines()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_narrow_terminal_keeps_one_line_per_record_and_whole_trace_ids(width: int) -> None:
    lines = _render(width, _rows())
    assert all(len(line) <= width for line in lines)
    body = [line for line in lines if line.startswith("req_")]
    assert [line.split()[0] for line in body] == TRACES  # never wrapped, never cut
    note = " ".join(" ".join(lines).split())  # the note may wrap; the table never does
    assert note.endswith(f"left out at {width} columns; --json shows every field)")


def test_80_columns_show_time_amount_and_a_cut_model_name() -> None:
    lines = _render(80, _rows())
    first = next(line for line in lines if line.startswith("req_"))
    assert "2026-12-07 13:12:03" in first and "0.000123456" in first  # an amount is never cut
    assert "claude-sonne…" in first
    assert lines[-1].startswith("(status, in, cached, out left out")


def test_a_wide_terminal_shows_every_column_and_no_note() -> None:
    lines = _render(160, _rows())
    header = ["trace_id", "time", "(UTC)", "deduction", "model", "status", "in", "cached", "out"]
    assert lines[0].split() == header
    assert "claude-sonnet-4-5" in lines[2] and "left out" not in lines[-1]


def test_an_amount_that_does_not_fit_whole_is_left_out_not_cut() -> None:
    lines = _render(58, _rows())
    assert "0.000" not in "\n".join(lines)
    assert "(deduction, model, status, in, cached, out left out" in " ".join(" ".join(lines).split())
