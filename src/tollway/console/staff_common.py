"""What the admin pages (groups, models and prices, channels, settings) share: who may see
them (staff), who may change them (admins only: a support or customer POST is 404, before
the form is even read), and reading form fields into the services' types with plain-word
errors."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from tollway.accounts.model import Role
from tollway.console.staff import StaffOnly
from tollway.console.web import Viewer, Web
from tollway.errors import InvalidRequest

Form = dict[str, str]


async def staff_viewer(web: Web, request: Request) -> Viewer:
    v = await web.viewer(request)
    if not v.staff:
        raise StaffOnly("not found")
    return v


async def admin_viewer(web: Web, request: Request) -> Viewer:
    """Support may read these pages but not change anything: their POSTs are "not found"."""
    v = await staff_viewer(web, request)
    if v.role is not Role.ADMIN:
        raise StaffOnly("not found")
    return v


def text(form: Form, name: str) -> str | None:
    """A text field; None when left empty (the service keeps the current value)."""
    value = form.get(name, "").strip()
    return value or None


def whole(form: Form, name: str, label: str, *, blank: int | None = None) -> int | None:
    """A whole-number field; ``blank`` when empty."""
    value = form.get(name, "").strip()
    if not value:
        return blank
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{label} must be a whole number, got {value!r}", param=name) from None


def seconds(form: Form, name: str, label: str) -> float:
    """Seconds (a timeout); empty means the global setting (0 for the service)."""
    value = form.get(name, "").strip()
    if not value:
        return 0.0
    try:
        out = float(value)  # a duration, not money
    except ValueError:
        raise InvalidRequest(f"{label} must be a number of seconds, got {value!r}", param=name) from None
    return out


def checked(form: Form, name: str) -> bool:
    return form.get(name, "") in ("1", "on", "true", "yes")


def utc_datetime(form: Form, name: str) -> datetime | None:
    """A ``datetime-local`` (or date) field read as UTC; None when empty."""
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"the date is not a date and time (YYYY-MM-DD HH:MM), got {value!r}", param=name
        ) from None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC instant
        raise InvalidRequest(f"the date is out of range, got {value!r}", param=name) from None
