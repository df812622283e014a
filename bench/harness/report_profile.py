"""The report's profile section: where Tollway's time goes, from the py-spy recordings."""

from __future__ import annotations

from typing import Any

from harness.report_common import _f


def profile_section(r: dict[str, Any], a: Any) -> None:
    p = r.get("profile")
    cfg = r.get("config", {})
    a("## Where Tollway's time goes (py-spy)")
    a("")
    if not p:
        a("Not profiled in this run.")
        a("")
        return
    if "error" in p:
        a(f"Profiling failed: {p['error']}")
        a("")
        return
    a(
        f"Two `py-spy record --threads --format raw` recordings of {p['seconds']} s at 200 Hz on the Tollway "
        f"process while wrk drove it with {cfg.get('connections')} connections ({p.get('load_rps', 0):,.0f} req/s "
        "over the whole load, sampling included). **GIL** (`--gil`): only the thread holding the GIL is "
        "sampled, i.e. the serial Python work that caps what one worker can do. **All threads** "
        "(`--nonblocking`): CPU samples of every thread, including the SQLite worker thread (aiosqlite), "
        "whose wait for work is counted as idle and left out. On this shared 2-core machine a thread that "
        "is runnable but waiting for a core is also sampled, so the all-threads figures overstate CPU."
    )
    a("")
    for kind, title in (("gil", "GIL holder"), ("threads", "All threads")):
        q = p.get(kind)
        if not q:
            continue
        if "error" in q:
            a(f"**{title}**: failed: {q['error']}")
            a("")
            continue
        pr = q.get("per_request") or {}
        a(
            f"### {title} ({q['samples']} samples; {q.get('requests_while_sampled', '?')} calls settled while "
            f"sampling; raw stacks: `{q.get('raw_file')}`, opens in speedscope.app)"
        )
        a("")
        busy = ", ".join(f"{t} {f:.2f}" for t, f in sorted(q["busy_fraction"].items(), key=lambda kv: -kv[1]))
        what = "holding the GIL" if kind == "gil" else "busy"
        a(f"Fraction of the time each thread was {what} (1.0 = all of it): {busy}.")
        if pr:
            a(f"That is **{pr['us_per_request_total']:.0f} µs per call** {what} in total.")
        entry = q.get("at_function_entry") or {}
        if entry.get("MainThread"):
            a(
                f"{entry['MainThread'] * 100:.0f}% of the MainThread samples sit on the first line of a "
                "function (or in a generated dataclass `__init__`), where CPython checks for a pending "
                "GIL drop request: a sign of the GIL being handed to another thread (here the aiosqlite "
                "worker) and waited for, rather than work in those functions."
            )
        a("")
        a("Self time by library / Tollway module (% of samples" + ("; µs per call" if pr else "") + "):")
        a("")
        for t, rows in q["areas"].items():
            per = dict(pr.get("areas", {}).get(t, [])) if pr else {}
            a(
                f"- **{t}**: "
                + ", ".join(
                    f"{name} {pct:.1f}%" + (f" ({per[name]:.0f} µs)" if name in per else "")
                    for name, _, pct in rows[:12]
                )
            )
        a("")
        a(
            "Where in Tollway: each sample charged to its deepest `src/tollway` frame (the Tollway code the "
            "library time below it is spent for); samples with no Tollway frame are charged to the library "
            "at the top of the stack (event loop callbacks, protocol handlers, driver)."
        )
        a("")
        per_t = dict(pr.get("under_tollway", [])) if pr else {}
        a("| % samples | µs per call | charged to |")
        a("|---:|---:|---|")
        for name, _, pct in q["under_tollway"][:22]:
            a(f"| {pct:.1f} | {_f(per_t.get(name), '{:.0f}')} | `{name}` |")
        a("")
        a("<details><summary>Top functions by self and by inclusive time</summary>")
        a("")
        a("| % self | function |")
        a("|---:|---|")
        for name, _, pct in q["self"][:20]:
            a(f"| {pct:.1f} | `{name}` |")
        a("")
        a("| % inclusive | function |")
        a("|---:|---|")
        for name, _, pct in q["inclusive"][:30]:
            a(f"| {pct:.1f} | `{name}` |")
        a("")
        if q.get("idle_samples"):
            a("Samples counted as idle: " + "; ".join(f"`{k}` ×{n}" for k, n in q["idle_samples"]))
            a("")
        a("</details>")
        a("")
