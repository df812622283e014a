"""The report's diagnostics section: the other commit-batching setting and the settlement commit probe."""

from __future__ import annotations

from typing import Any

from harness.report_common import _f


def diagnostics_section(r: dict[str, Any], a: Any, s: dict[str, dict[str, Any]]) -> None:
    d = r.get("diagnostics")
    w = r.get("writer_probe")
    if not d and not w:
        return
    a("## Diagnostics (not headline figures)")
    a("")
    if d:
        if "error" in d:
            a(f"Tollway with `{d.get('setting')}`: failed: {d['error']}")
        else:
            lat, thr = d["latency"], d["throughput"]
            direct = s["direct"]["c1_p50"]
            added = lat["latency_us"]["p50"] / 1000 - direct if direct is not None else None
            a(
                f"Tollway restarted with `{d['setting']}` instead of its default `{d.get('default', 'TOLLWAY_COMMIT_INTERVAL_MS=2')}` "
                "(0: the writer commits as soon as it is free, batching whatever queued during the previous "
                "commit; 2: a batch waits up to 2 ms to fill), one run each:"
            )
            a("")
            a(
                "| setting | req/s (64 conn) | p50 ms | p99 ms | 1-conn p50 ms | 1-conn p99 ms | added p50 ms |"
            )
            a("|---|---:|---:|---:|---:|---:|---:|")
            t = s["tollway"]
            a(
                f"| default ({d.get('default', 'TOLLWAY_COMMIT_INTERVAL_MS=2')}), medians above | {_f(t['rps'], '{:,.0f}')} | {_f(t['p50'])} | {_f(t['p99'])} | "
                f"{_f(t['c1_p50'], '{:.3f}')} | {_f(t['c1_p99'], '{:.3f}')} | {_f(t['added_p50'], '{:.3f}')} |"
            )
            a(
                f"| {d['setting']} | {thr['rps']:,.0f} | {thr['latency_us']['p50'] / 1000:.2f} | "
                f"{thr['latency_us']['p99'] / 1000:.2f} | {lat['latency_us']['p50'] / 1000:.3f} | "
                f"{lat['latency_us']['p99'] / 1000:.3f} | {_f(added, '{:.3f}')} |"
            )
        a("")
    if w:
        if "error" in w:
            a(f"Settlement commit probe failed: {w['error']}")
            a("")
            return
        a(
            "Settlement commit, timed on a copy of this run's database by `bench/harness/writer_probe.py` "
            "(best of 10-50 repeats, ms; a *call* = its hold opened + settled with the usage transfer and usage record):"
        )
        a("")
        a(
            f"- Driver stack: an empty transaction {w['empty_transaction']:.3f} ms; each statement adds about "
            f"{w['per_statement']:.3f} ms (SQLAlchemy → aiosqlite worker-thread hop → sqlite3)."
        )
        a(
            f"- A hold opening committed on its own and then its settlement (a call still open when its "
            f"hold is written, or any call when holds are written at admission): "
            f"{w['tollway_open_then_end_separately']:.3f} ms of commits."
        )
        a("")
        a(
            "| calls per batch | Tollway `SettlementWriter._commit` ms | per call ms | same rows via sqlite3, one thread hop, ms | per call ms |"
        )
        a("|---:|---:|---:|---:|---:|")
        for n in w["tollway_commit_same_batch"]:
            a(
                f"| {n} | {w['tollway_commit_same_batch'][n]:.3f} | {w['tollway_commit_per_call'][n]:.3f} | "
                f"{w['sqlite3_one_hop_same_batch'][n]:.3f} | {w['sqlite3_one_hop_per_call'][n]:.3f} |"
            )
        a("")
