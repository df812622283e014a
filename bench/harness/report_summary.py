"""The report's summary tables: throughput, latency, CPU and streaming, medians of the runs."""

from __future__ import annotations

from typing import Any

from harness.report_common import LABEL, ORDER, _f, _med


def summarise(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s: dict[str, dict[str, Any]] = {}
    for name in ORDER:
        thr = r["throughput"].get(name, [])
        lat = r["latency"].get(name, [])
        st = r["streams"].get(name, [])
        gw = "fake-upstream" if name == "direct" else name
        s[name] = {
            "rps": _med([x["rps"] for x in thr]),
            "p50": _med([x["latency_us"]["p50"] / 1000 for x in thr]),
            "p99": _med([x["latency_us"]["p99"] / 1000 for x in thr]),
            "c1_p50": _med([x["latency_us"]["p50"] / 1000 for x in lat]),
            "c1_p99": _med([x["latency_us"]["p99"] / 1000 for x in lat]),
            "c1_rps": _med([x["rps"] for x in lat]),
            "cpu_gw": _med([x["cpu_us_per_ok"].get(gw) for x in thr]),
            "cpu_fake": _med([x["cpu_us_per_ok"].get("fake-upstream") for x in thr]),
            "cpu_wrk": _med([x["cpu_us_per_ok"].get("wrk") for x in thr]),
            "ttfc": _med([x["ttfc_p50_ms"] for x in st]),
            "total": _med([x["total_p50_ms"] for x in st]),
            "n_thr": len(thr),
            "n_lat": len(lat),
            "n_st": len(st),
        }
    d = s["direct"]
    for name in ORDER:
        x = s[name]
        x["added_p50"] = None if x["c1_p50"] is None or d["c1_p50"] is None else x["c1_p50"] - d["c1_p50"]
        x["added_p99"] = None if x["c1_p99"] is None or d["c1_p99"] is None else x["c1_p99"] - d["c1_p99"]
        x["added_ttfc"] = None if x["ttfc"] is None or d["ttfc"] is None else x["ttfc"] - d["ttfc"]
        x["added_total"] = None if x["total"] is None or d["total"] is None else x["total"] - d["total"]
    return s


def summary_section(a: Any, s: dict[str, dict[str, Any]]) -> None:
    a("## Summary (medians of the runs)")
    a("")
    a(
        "| target | req/s (64 conn) | p50 ms | p99 ms | 1-conn p50 ms | 1-conn p99 ms | added p50 ms | added p99 ms | gateway CPU µs/req | fake CPU µs/req | wrk CPU µs/req |"
    )
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ORDER:
        x = s[name]
        if not (x["n_thr"] or x["n_lat"]):
            a(f"| {LABEL[name]} | not measured | | | | | | | | | |")
            continue
        added50 = "—" if name == "direct" else _f(x["added_p50"], "{:.3f}")
        added99 = "—" if name == "direct" else _f(x["added_p99"], "{:.3f}")
        gw = "—" if name == "direct" else _f(x["cpu_gw"], "{:.0f}")
        a(
            f"| {LABEL[name]} | {_f(x['rps'], '{:,.0f}')} | {_f(x['p50'])} | {_f(x['p99'])} | "
            f"{_f(x['c1_p50'], '{:.3f}')} | {_f(x['c1_p99'], '{:.3f}')} | {added50} | {added99} | {gw} | "
            f"{_f(x['cpu_fake'], '{:.0f}')} | {_f(x['cpu_wrk'], '{:.0f}')} |"
        )
    a("")
    a(
        "Added latency = the target's median one-connection latency minus direct's. CPU µs/req = CPU "
        "seconds used by the process (all threads) during the throughput runs / 200 responses."
    )
    a("")
    a("### Streaming (one connection, medians of the runs)")
    a("")
    a("| target | first chunk p50 ms | added first chunk ms | whole stream p50 ms | added whole stream ms |")
    a("|---|---:|---:|---:|---:|")
    for name in ORDER:
        x = s[name]
        if name == "portkey":
            a("| Portkey gateway | not measured: Portkey's streaming fails on Node 20 | | | |")
            continue
        if not x["n_st"]:
            a(f"| {LABEL[name]} | not measured | | | |")
            continue
        add_t = "—" if name == "direct" else _f(x["added_ttfc"], "{:.3f}")
        add_w = "—" if name == "direct" else _f(x["added_total"], "{:.3f}")
        a(f"| {LABEL[name]} | {_f(x['ttfc'], '{:.3f}')} | {add_t} | {_f(x['total'], '{:.2f}')} | {add_w} |")
    a("")
