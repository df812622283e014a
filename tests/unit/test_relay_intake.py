"""The intake rules (docs/surfaces.md "Limits, content types and output caps") as functions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tollway.errors import InvalidRequest, UnsupportedMediaType
from tollway.pricing.book import PriceBook
from tollway.providers.base import Shape
from tollway.relay.intake import body_rule, check_content_type
from tollway.relay.output_cap import check_output_cap, output_limit
from tollway.settings import Settings


def _scope(ct: str | None) -> dict[str, object]:
    return {"headers": [] if ct is None else [(b"content-type", ct.encode())]}


@pytest.mark.parametrize(
    ("path", "limit", "upload"),
    [
        ("/v1/chat/completions", 32 * 1024 * 1024, False),
        ("/v1/responses", 32 * 1024 * 1024, False),
        ("/v1/messages", 32_000_000, False),
        ("/v1/messages/count_tokens", 32_000_000, False),
        ("/v1beta/models/gemini-2.5-pro:generateContent", 20_000_000, False),
        ("/v1/models/gemini-2.5-pro:streamGenerateContent", 20_000_000, False),
        ("/v1/audio/transcriptions", 25 * 1024 * 1024, True),
    ],
)
def test_each_surface_has_its_providers_limit(path: str, limit: int, upload: bool, tmp_path: Path) -> None:
    rule = body_rule(path, Settings(data_dir=tmp_path))
    assert (rule.limit, rule.upload) == (limit, upload)


@pytest.mark.parametrize(
    "ct", [None, "application/json", "Application/JSON; charset=utf-8", "application/vnd.x+json", "text/json"]
)
def test_json_and_no_content_type_are_read_as_json(ct: str | None, tmp_path: Path) -> None:
    check_content_type(_scope(ct), body_rule("/v1/messages", Settings(data_dir=tmp_path)))


@pytest.mark.parametrize("ct", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
def test_anything_else_is_415(ct: str, tmp_path: Path) -> None:
    rule = body_rule("/v1/chat/completions", Settings(data_dir=tmp_path))
    if not ct:  # an empty header is no content type: read as JSON
        check_content_type(_scope(ct), rule)
        return
    with pytest.raises(UnsupportedMediaType) as info:
        check_content_type(_scope(ct), rule)
    assert info.value.status == 415 and info.value.param == "content-type"
    assert ("curl: -H" in info.value.message) == ("urlencoded" in ct)


@pytest.mark.parametrize("ct", [None, "application/json"])
def test_an_upload_must_be_multipart(ct: str | None, tmp_path: Path) -> None:
    rule = body_rule("/v1/audio/transcriptions", Settings(data_dir=tmp_path))
    check_content_type(_scope("multipart/form-data; boundary=x"), rule)
    with pytest.raises(UnsupportedMediaType):
        check_content_type(_scope(ct), rule)


def test_output_cap_rejects_above_the_books_cap_and_holds_at_it() -> None:
    entry = PriceBook.bundled().lookup("gpt-4o-mini", datetime.now(UTC))
    assert entry is not None and entry.max_output_tokens == 16_384
    check_output_cap(Shape.OPENAI_CHAT, "gpt-4o-mini", 16_384, "max_tokens", entry, "reject")
    check_output_cap(Shape.OPENAI_CHAT, "gpt-4o-mini", None, "max_tokens", entry, "reject")
    check_output_cap(Shape.OPENAI_CHAT, "gpt-4o-mini", 10**9, "max_tokens", entry, "clamp")
    with pytest.raises(InvalidRequest) as info:
        check_output_cap(Shape.OPENAI_CHAT, "gpt-4o-mini", 16_385, "max_tokens", entry, "reject")
    assert (info.value.status, info.value.param) == (400, "max_tokens")
    assert (output_limit(10**9, entry), output_limit(None, entry), output_limit(5, entry)) == (
        16_384,
        16_384,
        5,
    )
