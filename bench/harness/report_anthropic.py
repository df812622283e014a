"""The report's Anthropic-surface section (POST /v1/messages)."""

from __future__ import annotations

from typing import Any

from harness.report_common import _f, _med

ANTH_ORDER = ("direct-messages", "tollway-messages", "tollway-translated")
ANTH_LABEL = {
    "direct-messages": "direct: fake's /v1/messages",
    "tollway-messages": "Tollway /v1/messages → anthropic channel (pass-through)",
    "tollway-translated": "Tollway /v1/messages → OpenAI channel (translated)",
}
# the direct baseline each is compared with: the fake in the shape Tollway calls upstream
ANTH_BASE = {"tollway-messages": "direct-messages", "tollway-translated": "direct"}


def summarise_anthropic(r: dict[str, Any], s: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    src = r.get("anthropic") or {}
    for name in ANTH_ORDER:
        d = src.get(name) or {}
        thr, lat, st = d.get("throughput", []), d.get("latency", []), d.get("streams", [])
        gw = "fake-upstream" if name.startswith("direct") else "tollway"
        out[name] = {
            "rps": _med([x["rps"] for x in thr]),
            "p50": _med([x["latency_us"]["p50"] / 1000 for x in thr]),
            "p99": _med([x["latency_us"]["p99"] / 1000 for x in thr]),
            "c1_p50": _med([x["latency_us"]["p50"] / 1000 for x in lat]),
            "c1_p99": _med([x["latency_us"]["p99"] / 1000 for x in lat]),
            "cpu_gw": _med([x["cpu_us_per_ok"].get(gw) for x in thr]),
            "ttfc": _med([x["ttfc_p50_ms"] for x in st]),
            "total": _med([x["total_p50_ms"] for x in st]),
            "events": _med([x["events_per_stream"] for x in st]),
            "n_thr": len(thr),
            "n_lat": len(lat),
            "n_st": len(st),
            "problem": d.get("problem"),
        }
    for name, base in ANTH_BASE.items():
        x = out[name]
        b = out[base] if base in out else s.get(base, {})
        for k in ("c1_p50", "c1_p99", "ttfc", "total"):
            mine, theirs = x.get(k), b.get(k)
            x[f"added_{k}"] = None if mine is None or theirs is None else mine - theirs
    return out


def anthropic_section(r: dict[str, Any], a: Any, s: dict[str, dict[str, Any]]) -> None:
    src = r.get("anthropic") or {}
    cfg = r.get("config", {})
    req = r.get("request", {})
    a("## Anthropic surface")
    a("")
    if not src:
        a(
            "Not measured in this run (no Anthropic-surface results: Tollway not among the targets, or an older run)."
        )
        a("")
        return
    x = summarise_anthropic(r, s)
    a(
        "`POST /v1/messages` (Anthropic Messages API; `x-api-key` auth, `anthropic-version: 2023-06-01`) "
        f'with `{req.get("messages_non_stream", "?")}` (streamed: the same with `"stream": true`). Three '
        "targets: the fake upstream's own `/v1/messages` called directly; Tollway passing the call through "
        "to a channel of type `anthropic` pointing at the fake (base URL `http://127.0.0.1:FAKE`, model "
        "`claude-haiku-4-5`); and Tollway serving `claude-sonnet-4-5`, which only the OpenAI-type channel "
        "offers, so Tollway translates the Anthropic request to an OpenAI chat completion upstream and the "
        "answer (or stream) back to Anthropic shape. Same methods, windows and number of runs as above "
        f"({cfg.get('runs')} runs, medians; rotating order among these three). Streams: time to the first "
        "`event:`/`data:` line and to the `message_stop` event. Added latency: pass-through vs the fake's "
        "`/v1/messages` direct; translated vs the fake's `/v1/chat/completions` direct (the call Tollway makes "
        "upstream; the *direct* rows of the tables above, measured earlier in the run)."
    )
    a("")
    a(
        "| target | req/s (64 conn) | p50 ms | p99 ms | 1-conn p50 ms | 1-conn p99 ms | added p50 ms | added p99 ms | Tollway CPU µs/req |"
    )
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ANTH_ORDER:
        y = x[name]
        if not (y["n_thr"] or y["n_lat"]):
            prob = f" ({y['problem'].splitlines()[0][:200]})" if y.get("problem") else ""
            a(f"| {ANTH_LABEL[name]} | not measured{prob} | | | | | | | |")
            continue
        d = name.startswith("direct")
        a(
            f"| {ANTH_LABEL[name]} | {_f(y['rps'], '{:,.0f}')} | {_f(y['p50'])} | {_f(y['p99'])} | "
            f"{_f(y['c1_p50'], '{:.3f}')} | {_f(y['c1_p99'], '{:.3f}')} | "
            f"{'—' if d else _f(y.get('added_c1_p50'), '{:.3f}')} | {'—' if d else _f(y.get('added_c1_p99'), '{:.3f}')} | "
            f"{'—' if d else _f(y['cpu_gw'], '{:.0f}')} |"
        )
    a("")
    a(
        "| stream target | first event p50 ms | added first event ms | whole stream p50 ms | added whole stream ms | events / stream |"
    )
    a("|---|---:|---:|---:|---:|---:|")
    for name in ANTH_ORDER:
        y = x[name]
        if not y["n_st"]:
            a(f"| {ANTH_LABEL[name]} | not measured | | | | |")
            continue
        d = name.startswith("direct")
        a(
            f"| {ANTH_LABEL[name]} | {_f(y['ttfc'], '{:.3f}')} | {'—' if d else _f(y.get('added_ttfc'), '{:.3f}')} | "
            f"{_f(y['total'])} | {'—' if d else _f(y.get('added_total'), '{:.3f}')} | {_f(y['events'], '{:.0f}')} |"
        )
    a("")
    a("Every run:")
    a("")
    a(
        "| run | req/s or ok streams | p50 ms / first event p50 ms | p99 ms / whole stream p50 ms | 200 | non-200 |"
    )
    a("|---|---:|---:|---:|---:|---:|")
    for kind in ("throughput", "latency", "streams"):
        for name in ANTH_ORDER:
            for i, y in enumerate((src.get(name) or {}).get(kind, []), 1):
                if kind == "streams":
                    a(
                        f"| streams-{name}-{i} | {y['ok']}/{y['n']} | {_f(y['ttfc_p50_ms'], '{:.3f}')} | "
                        f"{_f(y['total_p50_ms'])} | {y['ok']} | {y['error_count']} |"
                    )
                else:
                    lat = y["latency_us"]
                    a(
                        f"| {kind}-{name}-{i} | {y['rps']:,.0f} | {lat['p50'] / 1000:.3f} | {lat['p99'] / 1000:.3f} | "
                        f"{y['ok']} | {y['failed']} |"
                    )
    a("")
    a(
        "These runs (warm-ups included) are in the billing check below, each as its own row "
        "(`*-tollway-messages-*`, `*-tollway-translated-*`)."
    )
    a("")
