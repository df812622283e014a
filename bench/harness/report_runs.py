"""The report's per-run tables: every wrk run and every stream run."""

from __future__ import annotations

from typing import Any

from harness.report_common import ORDER, _f


def runs_section(r: dict[str, Any], a: Any) -> None:
    a("## Every run")
    a("")
    a(
        "CPU columns are CPU seconds during the run; *idle gateways* = the benchmark's other gateways, "
        "waiting; *others* = CPU used on the machine by processes outside the benchmark (busy time from "
        "/proc/stat minus every benchmark process), a measure of interference."
    )
    a("")
    a(
        "| run | req/s | p50 ms | p90 ms | p99 ms | max ms | 200 | non-200 | socket errors | gateway CPU s | fake CPU s | wrk CPU s | idle gateways CPU s | others CPU s | steal % |"
    )
    a("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    diag = r.get("diagnostics") or {}
    for kind in ("throughput", "latency", "diagnostics"):
        for name in ORDER:
            runs = r[kind].get(name, []) if kind != "diagnostics" else []
            if kind == "diagnostics" and name == "tollway":
                runs = [diag[k] for k in ("latency", "throughput") if k in diag]
            for i, x in enumerate(runs, 1):
                lat = x["latency_us"]
                cpu = x["cpu_s"]
                errs = {k: val for k, val in x["errors"].items() if val and k != "status"}
                gw = cpu.get(name, "—") if name != "direct" else "—"
                if kind == "diagnostics":
                    gw = next((v for k, v in cpu.items() if k.startswith("tollway")), "—")
                sysd = x.get("system", {})
                others = (
                    sysd.get("busy_cpu_s", 0) - sum(v for v in cpu.values() if isinstance(v, (int, float)))
                    if sysd
                    else None
                )
                idle_gw = sum(
                    v
                    for k, v in cpu.items()
                    if not k.startswith(name)
                    and k not in ("fake-upstream", "wrk")
                    and isinstance(v, (int, float))
                )
                label = (
                    f"{kind}-{name}-{i}"
                    if kind != "diagnostics"
                    else f"{diag.get('tag', 'diag')}-{['latency', 'throughput'][i - 1] if len(runs) == 2 else i}"
                )
                a(
                    f"| {label} | {x['rps']:,.0f} | {lat['p50'] / 1000:.3f} | {lat['p90'] / 1000:.3f} | "
                    f"{lat['p99'] / 1000:.3f} | {lat['max'] / 1000:.1f} | {x['ok']} | {x['failed']} | "
                    f"{errs or ''} | {gw} | {cpu.get('fake-upstream', '')} | {cpu.get('wrk', '')} | "
                    f"{idle_gw:.2f} | {_f(others, '{:.2f}')} | {_f(sysd.get('steal_pct'), '{:.1f}')} |"
                )
    a("")
    a(
        "| stream run | ok | first chunk p50 ms | p90 ms | whole stream p50 ms | p90 ms | data events / stream |"
    )
    a("|---|---:|---:|---:|---:|---:|---:|")
    for name in ORDER:
        for i, x in enumerate(r["streams"].get(name, []), 1):
            a(
                f"| streams-{name}-{i} | {x['ok']}/{x['n']} | {_f(x['ttfc_p50_ms'], '{:.3f}')} | "
                f"{_f(x['ttfc_p90_ms'], '{:.3f}')} | {_f(x['total_p50_ms'])} | {_f(x['total_p90_ms'])} | "
                f"{_f(x['events_per_stream'], '{:.0f}')} |"
            )
    a("")
