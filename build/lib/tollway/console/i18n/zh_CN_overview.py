"""Simplified Chinese for the staff overview and the rolled-up charts (merged into ``zh_CN.ZH_CN``)."""

ZH_CN_OVERVIEW: dict[str, str] = {
    "Overview": "概览",
    "Today": "今天",
    (
        "UTC days up to today (%(day)s). Closed days come from the daily rollups, "
        "today from the usage records."
    ): "按 UTC 日期统计，截至今天（%(day)s）。已结束的日期取自每日汇总，今天取自调用记录。",
    "Revenue (credits from credited orders)": "收入（已入账订单的额度）",
    "Credited orders": "已入账订单",
    "Paid": "实付金额",
    "Spend (deducted)": "消费（已扣费）",
    "Official cost": "官方成本",
    "Failed calls": "失败调用",
    "Error rate": "错误率",
    "Active accounts": "活跃账户",
    (
        "Failed calls exclude clients that disconnected and requests the upstream refused as "
        "invalid (the status page's rule)."
    ): "失败调用不含客户端断开的调用，也不含上游判定为无效请求而拒绝的调用（与状态页规则相同）。",
    "Channel health": "渠道健康",
    "Breakers now": "当前熔断器状态",
    "Calls today": "今日调用",
    "Failed today": "今日失败",
    "By model (30 days)": "按模型（30 天）",
}
