
"""Simplified Chinese for sign-up, password reset and two-factor pages (merged into ``zh_CN.ZH_CN``)."""

ZH_CN_AUTH: dict[str, str] = {
}
