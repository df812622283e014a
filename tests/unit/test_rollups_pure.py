"""The rollups' pure parts: closed days and the grace period, window sums, folding, chart data."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tollway.console.rollup_queries import Series, fold, window_sums
from tollway.usage.rollups import day_start, days, last_closed_day


def test_a_day_closes_after_the_grace_period() -> None:
    assert last_closed_day(datetime(2026, 3, 2, 0, 10, tzinfo=UTC), 900) == date(2026, 2, 28)
    assert last_closed_day(datetime(2026, 3, 2, 0, 15, tzinfo=UTC), 900) == date(2026, 3, 1)
    assert last_closed_day(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 0) == date(2026, 3, 1)
    assert day_start(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert days(date(2026, 2, 27), date(2026, 3, 1)) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]


def test_window_sums_count_today_and_the_days_before() -> None:
    end = date(2026, 3, 10)
    rows = {(date(2026, 3, d),): {"deduction_nano": d} for d in (1, 3, 4, 10)}
    assert window_sums(rows, end, "deduction_nano", (1, 7, 30)) == [10, 14, 18]


def test_fold_and_chart_keep_integers() -> None:
    by = ("day", "model")
    rows = {
        (date(2026, 3, 1), "a"): {"deduction_nano": 1_500_000_000, "calls": 2},
        (date(2026, 3, 1), "b"): {"deduction_nano": 1, "calls": 1},
        (date(2026, 3, 2), ""): {"deduction_nano": 3, "calls": 4},
    }
    assert fold(rows, by, "day") == {"2026-03-01": [1_500_000_001, 3], "2026-03-02": [3, 4]}
    assert fold(rows, by, "model") == {"a": [1_500_000_000, 2], "b": [1, 1], "?": [3, 4]}
    chart = Series({"2026-03-01": [1_500_000_000, 2]}, {"a": [2_000_000_000, 1]}).chart()
    assert chart == {"days": ["2026-03-01"], "day_values": [1.5], "models": ["a"], "model_values": [2.0]}
