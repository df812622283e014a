"""The price book: bundled official list prices, effective-dated, overridable by the operator.

Prices travel as decimal strings in USD per million tokens (or USD per call) and are held as
integer nano-credits (:func:`tollway.money.usd_per_mtok_to_nano`). Every model keeps its price
history sorted by ``effective_from``, so a record priced last month is re-priced with last
month's entry, never today's.

Operator overrides win over bundled entries for the same model from the override's
``effective_from`` on (even over a newer bundled entry shipped later): the operator chose that
price, a software upgrade must not silently change it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson

from tollway.errors import InvalidRequest
from tollway.money import MoneyFormatError, nano_to_credits, usd_per_mtok_to_nano
from tollway.pricing.model import BillingMode, LongContextTier, PriceEntry, TokenPrices

PRICE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
BUNDLED_RESOURCE = "pricebook.json"
OPERATOR_VERSION = "operator"


# ---------------------------------------------------------------------------- parsing


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _text(d: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(f"{path}{key}: expected a non-empty string", f"{path}{key}")
    return value.strip()


def _count(d: Mapping[str, Any], key: str, path: str, default: int) -> int:
    value = d.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(f"{path}{key}: expected a non-negative integer", f"{path}{key}")
    return value


def _money(value: Any, param: str) -> int:
    """A decimal string (or exact integer) in USD -> nano-credits; floats are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(f'{param}: prices must be decimal strings such as "2.50"', param)
    try:
        return usd_per_mtok_to_nano(value, field=param)
    except MoneyFormatError as exc:
        raise _fail(str(exc), param) from exc


def _when(value: Any, param: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise _fail(f"{param}: {value!r} is not an ISO 8601 datetime", param) from exc
    else:
        raise _fail(f"{param}: expected an ISO 8601 datetime string", param)
    if parsed.tzinfo is None:
        raise _fail(f"{param}: must carry a timezone (e.g. 2026-01-01T00:00:00Z)", param)
    return parsed.astimezone(UTC)


def _prices(value: Any, path: str) -> TokenPrices:
    if not isinstance(value, Mapping):
        raise _fail(f"{path}: expected an object of decimal strings", path)
    unknown = sorted(set(value) - set(PRICE_FIELDS))
    if unknown:
        raise _fail(f"{path}: unknown price categories {unknown}", path)
    for key in ("input", "output"):
        if value.get(key) is None:
            raise _fail(f"{path}.{key}: required", f"{path}.{key}")
    optional = {
        key: _money(value[key], f"{path}.{key}")
        for key in ("cache_write_5m", "cache_write_1h", "cache_read")
        if value.get(key) is not None
    }
    return TokenPrices(
        input=_money(value["input"], f"{path}.input"),
        output=_money(value["output"], f"{path}.output"),
        **optional,
    )


def _tiers(value: Any) -> tuple[LongContextTier, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail("tiers: expected a list", "tiers")
    tiers = []
    for i, raw in enumerate(value):
        path = f"tiers[{i}]."
        if not isinstance(raw, Mapping):
            raise _fail(f"tiers[{i}]: expected an object", f"tiers[{i}]")
        tiers.append(
            LongContextTier(
                name=_text(raw, "name", path),
                above_prompt_tokens=_count(raw, "above_prompt_tokens", path, -1),
                prices=_prices(raw.get("prices"), f"{path}prices"),
            )
        )
    return tuple(sorted(tiers, key=lambda t: t.above_prompt_tokens))


def _variants(value: Any) -> tuple[tuple[str, int], ...]:
    """``{"hd/1024x1792": "0.120", ...}`` -> sorted (key, nano) pairs."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _fail("per_call_variants: expected an object of decimal strings", "per_call_variants")
    out = []
    for key, price in value.items():
        if not isinstance(key, str) or not key.strip():
            raise _fail("per_call_variants: keys must be non-empty strings", "per_call_variants")
        out.append((key.strip(), _money(price, f"per_call_variants.{key}")))
    return tuple(sorted(out))


def entry_from_dict(d: Mapping[str, Any], *, version: str | None = None) -> PriceEntry:
    """Parse and validate one price-book entry (bundled JSON, store row or API body).

    Raises :class:`~tollway.errors.InvalidRequest` naming the offending field. Unknown
    top-level keys (notes, verification, ids added by the store) are ignored; unknown price
    categories are refused, because a typo there would silently bill at the input price.
    """
    if not isinstance(d, Mapping):
        raise _fail("price entry: expected an object", "entry")
    mode_text = _text(d, "mode", "") if d.get("mode") is not None else "token"
    try:
        mode = BillingMode(mode_text)
    except ValueError as exc:
        raise _fail("mode: expected 'token' or 'call'", "mode") from exc
    tokens = _prices(d["prices"], "prices") if d.get("prices") is not None else None
    per_call = _money(d["per_call"], "per_call") if d.get("per_call") is not None else None
    if mode is BillingMode.TOKEN and tokens is None:
        raise _fail("prices: required for mode 'token'", "prices")
    if mode is BillingMode.CALL and per_call is None:
        raise _fail("per_call: required for mode 'call'", "per_call")
    variants = _variants(d.get("per_call_variants"))
    if variants and per_call is None:
        raise _fail("per_call_variants: only per-call entries can have variants", "per_call_variants")
    tiers = _tiers(d.get("tiers"))
    if tiers and tokens is None:
        raise _fail("tiers: only token prices can have long-context tiers", "tiers")
    return PriceEntry(
        model=_text(d, "model", ""),
        provider=_text(d, "provider", ""),
        mode=mode,
        effective_from=_when(d.get("effective_from"), "effective_from"),
        tokens=tokens,
        per_call_nano=per_call,
        per_call_variants=variants,
        tiers=tiers,
        context_window=_count(d, "context_window", "", 128_000),
        max_output_tokens=_count(d, "max_output_tokens", "", 16_384),
        source_url=_text(d, "source_url", "", required=False),
        retrieved=_text(d, "retrieved", "", required=False),
        version=version or _text(d, "version", "", required=False) or OPERATOR_VERSION,
    )


def _prices_to_dict(p: TokenPrices) -> dict[str, str]:
    values: dict[str, int | None] = {key: getattr(p, key) for key in PRICE_FIELDS}
    return {key: nano_to_credits(v) for key, v in values.items() if v is not None}


def entry_to_dict(e: PriceEntry) -> dict[str, Any]:
    """The JSON-ready form of an entry; prices as exact decimal strings in USD (per MTok)."""
    out: dict[str, Any] = {
        "model": e.model,
        "provider": e.provider,
        "mode": e.mode.value,
        "effective_from": e.effective_from.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if e.tokens is not None:
        out["prices"] = _prices_to_dict(e.tokens)
    if e.per_call_nano is not None:
        out["per_call"] = nano_to_credits(e.per_call_nano)
    if e.per_call_variants:
        out["per_call_variants"] = {key: nano_to_credits(v) for key, v in e.per_call_variants}
    out["tiers"] = [
        {"name": t.name, "above_prompt_tokens": t.above_prompt_tokens,
         "prices": _prices_to_dict(t.prices)}
        for t in e.tiers
    ]  # fmt: skip
    out.update(
        context_window=e.context_window,
        max_output_tokens=e.max_output_tokens,
        source_url=e.source_url,
        retrieved=e.retrieved,
        version=e.version,
    )
    return out


# ---------------------------------------------------------------------------- the book


def _utc(when: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the only zone Tollway stores)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _index(entries: Iterable[PriceEntry]) -> dict[str, list[PriceEntry]]:
    """Per model, sorted by effective_from; for equal effective_from the later one wins."""
    by_model: dict[str, dict[datetime, PriceEntry]] = {}
    for entry in entries:
        start = _utc(entry.effective_from)
        if entry.effective_from.tzinfo is not UTC:
            entry = replace(entry, effective_from=start)
        by_model.setdefault(entry.model, {})[start] = entry
    return {model: [dated[k] for k in sorted(dated)] for model, dated in by_model.items()}


class PriceBook:
    """An immutable, effective-dated view of bundled entries plus operator overrides."""

    __slots__ = ("_base", "_overrides", "_starts", "_timeline", "_version")

    def __init__(
        self,
        entries: Iterable[PriceEntry],
        *,
        version: str,
        overrides: Iterable[PriceEntry] = (),
    ) -> None:
        self._version = version
        self._base = _index(entries)
        self._overrides = _index(overrides)
        self._timeline: dict[str, tuple[PriceEntry, ...]] = {}
        self._starts: dict[str, tuple[datetime, ...]] = {}
        for model in self._base.keys() | self._overrides.keys():
            base = self._base.get(model, [])
            mine = self._overrides.get(model, [])
            if mine:
                first = mine[0].effective_from
                base = [b for b in base if b.effective_from < first]
            timeline = tuple(base + mine)
            self._timeline[model] = timeline
            self._starts[model] = tuple(e.effective_from for e in timeline)

    @classmethod
    def from_json(cls, data: bytes | str) -> PriceBook:
        """Parse a price-book document ``{"version": ..., "models": [...]}``."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"price book: invalid JSON ({exc})", param="pricebook") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
            raise InvalidRequest("price book: expected {version, models: [...]}", param="models")
        version = doc.get("version")
        if not isinstance(version, str) or not version:
            raise InvalidRequest("price book: version must be a non-empty string", param="version")
        return cls((entry_from_dict(d, version=version) for d in doc["models"]), version=version)

    @classmethod
    def bundled(cls) -> PriceBook:
        """The price book shipped with Tollway (parsed once per process)."""
        return _load_bundled()

    @property
    def version(self) -> str:
        return self._version

    def lookup(self, model: str, at: datetime) -> PriceEntry | None:
        """The entry in force for ``model`` at ``at`` (None: unknown model or not yet priced)."""
        starts = self._starts.get(model)
        if not starts:
            return None
        i = bisect.bisect_right(starts, _utc(at))
        return self._timeline[model][i - 1] if i else None

    def history(self, model: str) -> tuple[PriceEntry, ...]:
        """Every entry that is or was in force for ``model``, oldest first."""
        return self._timeline.get(model, ())

    def models(self) -> list[str]:
        return sorted(self._timeline)

    def overrides(self) -> list[PriceEntry]:
        return [e for model in sorted(self._overrides) for e in self._overrides[model]]

    def with_overrides(self, entries: Iterable[PriceEntry]) -> PriceBook:
        """A new book in which ``entries`` take precedence from their effective_from on.

        Overrides accumulate across calls; an override for the same model and
        effective_from as an earlier one replaces it.
        """
        base = [e for model in self._base for e in self._base[model]]
        return PriceBook(base, version=self._version, overrides=[*self.overrides(), *entries])


@cache
def _load_bundled() -> PriceBook:
    data_dir = resources.files("tollway.pricing").joinpath("data")
    return PriceBook.from_json(data_dir.joinpath(BUNDLED_RESOURCE).read_bytes())
