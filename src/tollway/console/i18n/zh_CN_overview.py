
"""Simplified Chinese for the staff overview and the rolled-up charts (merged into ``zh_CN.ZH_CN``)."""

ZH_CN_OVERVIEW: dict[str, str] = {
}
