"""Expiry dates as operators type them.

``YYYY-MM-DD`` means *the end of that day in UTC* (23:59:59), so ``--expires 2030-01-31``
still works on 31 January; a full ISO-8601 datetime (``2030-01-31T12:00:00+08:00``,
``...Z``) is taken as given, and one without a zone is taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tollway.errors import InvalidRequest

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_expiry(text: str, *, param: str = "expires") -> datetime:
    value = text.strip()
    try:
        if _DATE_ONLY.match(value):
            day = datetime.strptime(value, "%Y-%m-%d")
            return day.replace(hour=23, minute=59, second=59, tzinfo=UTC)
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{param}: {text!r} is not a date (YYYY-MM-DD) or an ISO-8601 datetime",
            param=param,
        ) from exc
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before the first UTC instant
        raise InvalidRequest(f"{param}: {text!r} is out of range", param=param) from exc


def parse_optional_expiry(text: str | None, *, param: str = "expires") -> datetime | None:
    return None if text is None else parse_expiry(text, param=param)
