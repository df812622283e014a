"""Dates at the edge of the calendar are refused, not a 500 (found by the fuzzing: an expiry of
``0001-01-01T00:00:00+01:01`` overflowed when turned into UTC, inside request validation)."""

from __future__ import annotations

import pytest

from tollway.cli.dates import parse_expiry
from tollway.console.staff_common import utc_datetime
from tollway.errors import InvalidRequest


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:01", "9999-12-31T23:59:59-00:01"])
def test_an_expiry_outside_utc_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="out of range"):
        parse_expiry(text)
    with pytest.raises(InvalidRequest, match="out of range"):
        utc_datetime({"when": text}, "when")


def test_the_calendar_edges_that_exist_in_utc_still_parse() -> None:
    assert parse_expiry("0001-01-01T00:00:00+00:00").year == 1
    assert parse_expiry("9999-12-31").isoformat() == "9999-12-31T23:59:59+00:00"
