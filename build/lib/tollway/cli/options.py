"""Options shared by many commands, and small input helpers."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tollway.errors import InvalidRequest
from tollway.money import MoneyFormatError, usd_per_mtok_to_nano

JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document to stdout.")]
Rpm = Annotated[int | None, typer.Option("--rpm", help="Requests per minute (0 = unlimited).")]
Tpm = Annotated[int | None, typer.Option("--tpm", help="Tokens per minute (0 = unlimited).")]
Concurrency = Annotated[
    int | None, typer.Option("--concurrency", help="Concurrent requests (0 = unlimited).")
]
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded in the audit log.")]


def secret_arg(value: str | None, *, param: str) -> str | None:
    """``-`` reads the value from stdin, keeping it out of the shell history and ``ps``."""
    if value != "-":
        return value
    text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        raise InvalidRequest(f"{param}: nothing was read from stdin", param=param)
    return text


def check_price(value: str | None, *, param: str) -> str | None:
    """Validate a USD price early so the error names the option, not just "price"."""
    if value is not None:
        try:
            usd_per_mtok_to_nano(value, field=param)
        except MoneyFormatError as exc:
            raise InvalidRequest(str(exc), param=param) from exc
    return value
