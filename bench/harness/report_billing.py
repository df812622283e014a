"""The report's billing check: Tollway's usage records against its successful responses."""

from __future__ import annotations

from typing import Any


def billing_section(r: dict[str, Any], a: Any) -> None:
    a("## Billing check (Tollway)")
    a("")
    b = r.get("billing", {})
    runs = b.get("runs", [])
    if runs:
        n_eq = sum(1 for x in runs if x["equal"])
        a(
            f"Usage records read from the SQLite file before and after every run that went through Tollway "
            f"(warm-ups, measurements, profile): **{n_eq} of {len(runs)} runs** have exactly one `ok` usage "
            "record per successful (200) response."
        )
        a("")
        a(
            "| run | 200 responses | failed | new `ok` usage records | all new records | holds active after | equal |"
        )
        a("|---|---:|---:|---:|---:|---:|---|")
        for x in runs:
            a(
                f"| {x['run']} | {x['successful_responses']} | {x['failed_responses']} | {x['usage_records_ok']} | "
                f"{x['usage_records_all']} | {x['holds_active_after']} | {'yes' if x['equal'] else '**NO**'} |"
            )
        a("")
    fin = b.get("final_counts")
    if fin:
        a(
            f"After Tollway stopped: {fin['total']} usage records ({', '.join(f'{k} {val}' for k, val in fin.items() if ':' in k)}), "
            f"{fin['holds_active']} holds still active, deductions total {fin['deduction_nano_sum']} nano-credits."
        )
    if "spent_equals_deductions" in b:
        a(
            f"Balance: {b['balance'].get('available', '?')} credits available of {int(1e6)} credited; spent "
            f"{b['spent_nano']} nano = sum of the records' deductions: **{'yes' if b['spent_equals_deductions'] else 'NO'}**."
        )
    au = b.get("audit")
    if au:
        rep = au.get("report") or {}
        a("")
        a(
            f"Audit ({au.get('via')}): **{'passed' if au.get('ok') else 'FAILED'}**"
            + (f"; findings: {rep.get('findings')}" if rep.get("findings") else "")
            + (f"; stats: {rep.get('stats')}" if rep.get("stats") else "")
            + (f"; error: {au.get('error')}" if au.get("error") else "")
        )
    a("")
