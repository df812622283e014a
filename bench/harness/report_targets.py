"""The report's targets table: Tollway against Portkey and LiteLLM, and by how much a target is missed."""

from __future__ import annotations

from typing import Any


def targets(s: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    t, p, lt = s["tollway"], s["portkey"], s["litellm"]
    out = []

    def ratio_row(label: str, mine: float | None, theirs: float | None, need: float) -> dict[str, Any]:
        if not mine or not theirs:
            return {"label": label, "value": "–", "target": f"≥ {need:g}x", "met": "not measured", "gap": ""}
        r = mine / theirs
        met = r >= need
        gap = ""
        if not met:
            want = need * theirs
            gap = (
                f"short by {(need - r) / need * 100:.0f}% of the target: Tollway would need "
                f"{want:,.0f} req/s (+{(want / mine - 1) * 100:.0f}% over {mine:,.0f})"
            )
        return {
            "label": label,
            "value": f"{r:.2f}x",
            "target": f"≥ {need:g}x",
            "met": "yes" if met else "NO",
            "gap": gap,
        }

    out.append(ratio_row("Tollway rps / Portkey rps", t["rps"], p["rps"], 2))
    out.append(ratio_row("Tollway rps / LiteLLM rps", t["rps"], lt["rps"], 20))
    ta, pa = t["added_p50"], p["added_p50"]
    if ta is None or pa is None:
        out.append(
            {
                "label": "Tollway added p50 / Portkey added p50",
                "value": "–",
                "target": "≤ 0.5",
                "met": "not measured",
                "gap": "",
            }
        )
    else:
        limit = 0.5 * pa
        ratio = ta / pa if pa > 0 else float("inf")
        met = ta <= limit
        gap = ""
        if not met:
            gap = (
                f"over by {(ta - limit) * 1000:.0f} µs: Tollway adds {ta * 1000:.0f} µs at the median, "
                f"the target is ≤ {limit * 1000:.0f} µs (half of Portkey's {pa * 1000:.0f} µs); "
                f"needs −{(1 - limit / ta) * 100:.0f}%"
                if ta > 0
                else ""
            )
        out.append(
            {
                "label": "Tollway added p50 / Portkey added p50 (one connection)",
                "value": f"{ratio:.2f}",
                "target": "≤ 0.5",
                "met": "yes" if met else "NO",
                "gap": gap,
            }
        )
    return out


def targets_section(a: Any, s: dict[str, dict[str, Any]]) -> None:
    a("## Targets (issue 2)")
    a("")
    a("| measure | this run | target | met | by how much |")
    a("|---|---:|---:|---|---|")
    for row in targets(s):
        a(f"| {row['label']} | {row['value']} | {row['target']} | {row['met']} | {row['gap']} |")
    a("")
