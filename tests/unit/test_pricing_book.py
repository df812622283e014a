"""The bundled price book, effective dating, overrides, (de)serialisation, no floats."""

from __future__ import annotations

import io
import tokenize
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from tollway.errors import InvalidRequest
from tollway.pricing.book import PriceBook, entry_from_dict, entry_to_dict
from tollway.pricing.model import BillingMode, PriceEntry, TokenPrices

SRC = Path(__file__).resolve().parents[2] / "src" / "tollway"
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)

REQUIRED_MODELS = {
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini",
    "gpt-5", "gpt-5-mini", "gpt-5-nano", "text-embedding-3-small", "text-embedding-3-large",
    "dall-e-3", "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1",
    "claude-sonnet-4", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
    "gemini-2.0-flash", "deepseek-chat", "deepseek-reasoner",
}  # fmt: skip


def _raw_book() -> dict[str, Any]:
    data = (resources.files("tollway.pricing") / "data" / "pricebook.json").read_bytes()
    doc = orjson.loads(data)
    assert isinstance(doc, dict)
    return doc


def _entry(model: str, start: datetime, input_nano: int, *, version: str = "operator") -> PriceEntry:
    return PriceEntry(
        model=model,
        provider="test",
        mode=BillingMode.TOKEN,
        effective_from=start,
        tokens=TokenPrices(input=input_nano, output=input_nano),
        version=version,
    )


# ----------------------------------------------------------------- bundled content


def test_bundled_book_is_versioned_and_covers_the_common_models() -> None:
    book = PriceBook.bundled()
    assert book.version == "2026-11-01"
    assert len(book.models()) >= 24
    assert set(book.models()) >= REQUIRED_MODELS
    providers = {book.history(m)[-1].provider for m in book.models()}
    assert {"openai", "anthropic", "google", "deepseek"} <= providers


def test_every_bundled_entry_has_source_retrieved_and_positive_prices() -> None:
    book = PriceBook.bundled()
    for model in book.models():
        for entry in book.history(model):
            assert entry.source_url.startswith("https://"), model
            date.fromisoformat(entry.retrieved)
            assert entry.version == book.version
            if entry.mode is BillingMode.CALL:
                assert entry.per_call_nano is not None and entry.per_call_nano > 0, model
                continue
            assert entry.tokens is not None, model
            assert entry.tokens.input > 0, model
            if entry.max_output_tokens > 0:  # embeddings produce no output tokens
                assert entry.tokens.output > 0, model
            for tier in entry.tiers:
                assert tier.prices.input > 0 and tier.prices.output > 0, model


def test_claude_opus_4_5_prices_are_exact() -> None:
    entry = PriceBook.bundled().lookup("claude-opus-4-5", NOW)
    assert entry is not None
    assert entry.tokens == TokenPrices(
        input=5_000_000_000,
        output=25_000_000_000,
        cache_write_5m=6_250_000_000,
        cache_write_1h=10_000_000_000,
        cache_read=500_000_000,
    )
    assert entry.tiers == ()


def test_gemini_2_5_pro_has_its_long_context_tier() -> None:
    entry = PriceBook.bundled().lookup("gemini-2.5-pro", NOW)
    assert entry is not None and entry.tokens is not None
    assert (entry.tokens.input, entry.tokens.output) == (1_250_000_000, 10_000_000_000)
    (tier,) = entry.tiers
    assert tier.above_prompt_tokens == 200_000
    assert (tier.prices.input, tier.prices.output) == (2_500_000_000, 15_000_000_000)
    assert tier.prices.cache_read == 250_000_000


def test_openai_entries_have_cache_read_but_no_cache_write() -> None:
    entry = PriceBook.bundled().lookup("gpt-4o", NOW)
    assert entry is not None and entry.tokens is not None
    assert entry.tokens.cache_read == 1_250_000_000
    assert entry.tokens.cache_write_5m is None and entry.tokens.cache_write_1h is None


def test_bundled_json_has_no_float_and_prices_are_decimal_strings() -> None:
    doc = _raw_book()

    def walk(value: Any, path: str) -> None:
        assert not isinstance(value, float), path
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("prices", "per_call"):
                    leaves = item.values() if isinstance(item, dict) else [item]
                    assert all(isinstance(v, str) for v in leaves), path
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(doc, "$")
    assert doc["version"] == "2026-11-01"


# ----------------------------------------------------------------- effective dating


def test_an_override_effective_tomorrow_does_not_apply_today() -> None:
    book = PriceBook.bundled()
    today = book.lookup("gpt-4o", NOW)
    assert today is not None
    override = _entry("gpt-4o", NOW + timedelta(days=1), 7)
    book2 = book.with_overrides([override])
    assert book2.lookup("gpt-4o", NOW) == today
    assert book2.lookup("gpt-4o", NOW + timedelta(days=1)) == override
    assert book2.lookup("gpt-4o", NOW + timedelta(days=30)) == override


def test_a_record_at_an_old_time_keeps_the_old_price() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    old = _entry("m", start, 1, version="v1")
    new = _entry("m", start + timedelta(days=100), 2, version="v1")
    book = PriceBook([new, old], version="v1")
    assert book.lookup("m", start + timedelta(days=50)) == old
    assert book.lookup("m", start + timedelta(days=100)) == new
    assert book.lookup("m", start - timedelta(seconds=1)) is None
    assert book.lookup("unknown", NOW) is None


def test_bundled_sonnet_4_gains_its_long_context_tier_on_2025_08_12() -> None:
    book = PriceBook.bundled()
    before = book.lookup("claude-sonnet-4", datetime(2025, 8, 11, tzinfo=UTC))
    after = book.lookup("claude-sonnet-4", datetime(2025, 8, 12, tzinfo=UTC))
    assert before is not None and after is not None
    assert before.tiers == ()
    assert [t.name for t in after.tiers] == [">200k"]


def test_override_wins_over_a_newer_bundled_entry() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    b1 = _entry("m", t0, 1, version="v")
    b2 = _entry("m", t0 + timedelta(days=20), 2, version="v")
    override = _entry("m", t0 + timedelta(days=10), 9)
    book = PriceBook([b1, b2], version="v").with_overrides([override])
    assert book.lookup("m", t0 + timedelta(days=5)) == b1
    assert book.lookup("m", t0 + timedelta(days=15)) == override
    assert book.lookup("m", t0 + timedelta(days=25)) == override
    assert book.history("m") == (b1, override)


def test_overrides_accumulate_and_same_date_replaces() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    book = PriceBook([_entry("m", t0, 1)], version="v")
    first = _entry("m", t0 + timedelta(days=1), 5)
    second = _entry("m", t0 + timedelta(days=2), 6)
    replacement = _entry("m", t0 + timedelta(days=1), 7)
    book = book.with_overrides([first]).with_overrides([second])
    assert book.lookup("m", t0 + timedelta(days=1, hours=1)) == first
    book = book.with_overrides([replacement])
    assert book.lookup("m", t0 + timedelta(days=1, hours=1)) == replacement
    assert book.lookup("m", t0 + timedelta(days=3)) == second
    assert book.overrides() == [replacement, second]


def test_override_for_a_new_model_is_listed() -> None:
    book = PriceBook.bundled().with_overrides([_entry("my-model", NOW, 3)])
    assert "my-model" in book.models()
    assert "my-model" not in PriceBook.bundled().models()


def test_naive_datetimes_are_taken_as_utc() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    book = PriceBook([_entry("m", start, 1)], version="v")
    assert book.lookup("m", datetime(2025, 1, 1)) is not None
    assert book.lookup("m", datetime(2024, 12, 31, 23, 59)) is None
    # 2025-01-01 01:00 at UTC+2 is 2024-12-31 23:00 UTC: not yet in force
    assert book.lookup("m", datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=2)))) is None


# ----------------------------------------------------------------- (de)serialisation


def test_every_bundled_entry_round_trips_through_dicts() -> None:
    book = PriceBook.bundled()
    for model in book.models():
        for entry in book.history(model):
            data = entry_to_dict(entry)
            assert orjson.loads(orjson.dumps(data)) == data
            assert entry_from_dict(data) == entry


def test_entry_to_dict_writes_decimal_strings() -> None:
    entry = PriceBook.bundled().lookup("claude-opus-4-5", NOW)
    assert entry is not None
    data = entry_to_dict(entry)
    assert data["prices"] == {
        "input": "5",
        "output": "25",
        "cache_write_5m": "6.25",
        "cache_write_1h": "10",
        "cache_read": "0.5",
    }
    assert data["effective_from"].endswith("Z")
    call = PriceBook.bundled().lookup("dall-e-3", NOW)
    assert call is not None
    assert entry_to_dict(call)["per_call"] == "0.04"


def _minimal(**changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "model": "m",
        "provider": "p",
        "mode": "token",
        "effective_from": "2026-01-01T00:00:00Z",
        "prices": {"input": "1.25", "output": "10"},
    }
    d.update(changes)
    return d


def test_entry_from_dict_defaults_to_operator_version() -> None:
    entry = entry_from_dict(_minimal())
    assert entry.version == "operator"
    assert entry.tokens == TokenPrices(1_250_000_000, 10_000_000_000)
    assert entry.effective_from == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"prices": {"input": 1.25, "output": "10"}}, "prices.input"),
        ({"prices": {"input": "1.25", "output": "10", "cache_reads": "1"}}, "prices"),
        ({"prices": {"input": "1.25"}}, "prices.output"),
        ({"prices": {"input": "-1", "output": "1"}}, "prices.input"),
        ({"prices": {"input": "0.0000000001", "output": "1"}}, "prices.input"),
        ({"effective_from": "2026-01-01T00:00:00"}, "effective_from"),
        ({"effective_from": "yesterday"}, "effective_from"),
        ({"mode": "call"}, "per_call"),
        ({"mode": "minute"}, "mode"),
        ({"model": ""}, "model"),
        ({"tiers": [{"name": ">1k", "prices": {"input": "1", "output": "1"}}]},
         "tiers[0].above_prompt_tokens"),
    ],
)  # fmt: skip
def test_entry_from_dict_refuses_bad_input_naming_the_field(changes: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        entry_from_dict(_minimal(**changes))
    assert info.value.param == param


def test_entry_from_dict_sorts_tiers_and_accepts_per_call() -> None:
    tiers = [
        {"name": ">200k", "above_prompt_tokens": 200_000, "prices": {"input": "3", "output": "3"}},
        {"name": ">100k", "above_prompt_tokens": 100_000, "prices": {"input": "2", "output": "2"}},
    ]
    entry = entry_from_dict(_minimal(tiers=tiers))
    assert [t.name for t in entry.tiers] == [">100k", ">200k"]
    call = entry_from_dict(_minimal(mode="call", prices=None, per_call="0.5"))
    assert call.per_call_nano == 500_000_000


# ----------------------------------------------------------------- no float in money code


def _python_files() -> list[Path]:
    return [*sorted((SRC / "pricing").glob("*.py")), SRC / "money.py", SRC / "tokens.py"]


def test_no_float_in_pricing_money_or_token_code() -> None:
    """No ``float`` name (except in isinstance guards that refuse floats), no float
    literal, and no true division in pricing/token code (money.py divides Decimals)."""
    offenders: list[str] = []
    for path in _python_files():
        source = path.read_text()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            where = f"{path.name}:{tok.start[0]}"
            guard = "isinstance(" in tok.line
            if tok.type == tokenize.NAME and tok.string == "float" and not guard:
                offenders.append(f"{where} float")
            elif tok.type == tokenize.NUMBER:
                try:
                    int(tok.string, 0)
                except ValueError:
                    offenders.append(f"{where} literal {tok.string}")
            elif tok.type == tokenize.OP and tok.string in ("/", "/=") and path.name != "money.py":
                offenders.append(f"{where} true division")
    assert offenders == []


@pytest.mark.parametrize(
    ("document", "param"),
    [
        (b"not json", "pricebook"),
        (b'{"version": "v"}', "models"),
        (b'{"version": "", "models": []}', "version"),
        (b'{"version": "v", "models": [{"model": "m"}]}', "prices"),
    ],
)
def test_from_json_refuses_malformed_books(document: bytes, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        PriceBook.from_json(document)
    assert info.value.param == param


def test_from_json_stamps_the_book_version_on_entries() -> None:
    doc = {"version": "v9", "models": [_minimal(version="ignored")]}
    book = PriceBook.from_json(orjson.dumps(doc))
    entry = book.lookup("m", NOW)
    assert book.version == "v9"
    assert entry is not None and entry.version == "v9"
