"""The console's pure parts: exact arithmetic text, CSV quoting, catalogues (throttling is in
tests/unit/test_throttle.py)."""

from __future__ import annotations

from tollway.console.customer import line_cost, surprises
from tollway.console.i18n.build import msgids
from tollway.console.i18n.zh_CN import ZH_CN
from tollway.console.stats import _csv_line
from tollway.console.web import _translations, make_env, times


def test_line_cost_is_exact_decimal_text() -> None:
    assert line_cost({"quantity": 5, "unit_price_nano": 150_000_000, "per": "mtok"}) == "0.00000075"
    assert line_cost({"quantity": 1, "unit_price_nano": 40_000_000, "per": "call"}) == "0.04"
    assert line_cost({"quantity": 0, "unit_price_nano": 1, "per": "mtok"}) == "0"


def test_effective_price_is_exact() -> None:
    assert times("0.15", "0.3") == "0.045"
    assert times("3", "1") == "3"


def test_csv_quoting() -> None:
    assert _csv_line(["a", 'b"c', "d,e"]) == 'a,"b""c","d,e"\r\n'


def test_surprises_explained() -> None:
    rec = {
        "tokens": {"cache_write_5m": 10},
        "model_billed": "b",
        "model_requested": "a",
        "estimated": True,
        "lines": [{"category": "image_input"}],
        "multiplier": "0.3",
        "status": "ok",
    }
    assert surprises(rec) == ["cache_write", "other_model", "estimated", "image", "multiplier"]
    plain = {**rec, "tokens": {}, "model_billed": "a", "estimated": False, "lines": [], "multiplier": "1"}
    assert surprises(plain) == []
    cached = {**plain, "tokens": {"cache_read": 900}, "tier": "above_200k"}
    assert surprises(cached) == ["cache_read", "tier"]


def test_every_message_translated_and_compiled() -> None:
    ids = msgids()
    assert ids and not [m for m in ids if m not in ZH_CN]
    zh = _translations()["zh_CN"]
    assert all(zh.gettext(m) == ZH_CN[m] for m in ids), (
        "messages.mo is stale: python -m tollway.console.i18n.build"
    )


def test_templates_render_percent_signs() -> None:
    msg = next(m for m in ZH_CN if "30%%" in m)
    for lang, expected in (("en", "pays 30% of"), ("zh_CN", "30%")):
        out = make_env(lang, _translations()).from_string('{{ _("' + msg + '") }}').render()
        assert expected in out and "%%" not in out
