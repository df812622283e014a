# ruff: noqa: E501  (a translation table: one message per line reads better than wrapped strings)
"""Simplified Chinese for the staff pages for groups, models and prices, channels and settings (merged into ``zh_CN.ZH_CN``)."""

ZH_CN_STAFF: dict[str, str] = {
}
