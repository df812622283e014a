"""One measured run of one target: a wrk run (throughput, or latency at one connection) or a
series of sequential streams, each checked against Tollway's usage records when it went
through Tollway."""

from __future__ import annotations

import json
import resource
from typing import Any

from harness import procs, tollway_side
from harness.bench_consts import ANTHROPIC_VARIANTS
from harness.measure import Target, run_streams, run_wrk


class Runs:
    """Part of bench/run.py's ``Bench``: a single measured run and its billing check."""

    def wrk(self, t: Target, tag: str, seconds: int, connections: int, threads: int) -> dict[str, Any]:
        # CPU of every benchmark process (the target, the fake, the idle gateways), to tell
        # contention inside the benchmark from interference by the rest of the machine.
        cpu_procs: list[procs.Proc] = []
        for p in [self.fake, *([t.proc] if t.proc else []), *self.procs]:
            if p.alive() and all(p is not q for q in cpu_procs):
                cpu_procs.append(p)
        before = usage_snapshot(self) if t.via == "tollway" else None
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        doc = run_wrk(
            self.wrk_bin,
            t,
            body_file=self.body_file,
            seconds=seconds,
            connections=connections,
            threads=threads,
            out_dir=self.out,
            tag=tag,
            cpu_procs=cpu_procs,
        )
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        doc["cpu_s"]["wrk"] = round(wrk_cpu, 3)
        doc["cpu_us_per_ok"]["wrk"] = wrk_cpu * 1e6 / doc["ok"] if doc["ok"] else None
        if before is not None:
            self.check_billing(tag, before, doc["ok"], doc["failed"], stream=False, drained=doc["drained"])
        lat = doc["latency_us"]
        print(
            f"  {tag:<28} {doc['rps']:>9.1f} req/s  p50 {lat['p50'] / 1000:7.2f} ms  "
            f"p99 {lat['p99'] / 1000:7.2f} ms  ok {doc['ok']}  failed {doc['failed']}",
            flush=True,
        )
        if doc["failed"] or not doc["drained"]:
            self.notes.append(
                f"{tag}: {doc['failed']} non-200 responses {doc['non_200']}, errors {doc['errors']}, "
                f"drained={doc['drained']}"
            )
        return doc

    def check_billing(
        self, tag: str, before: dict[str, int], ok: int, failed: int, *, stream: bool, drained: bool
    ) -> None:
        after = usage_snapshot(self)
        key = "ok:stream" if stream else "ok:json"
        delta_ok = after.get(key, 0) - before.get(key, 0)
        delta_total = after["total"] - before["total"]
        entry = {
            "run": tag,
            "successful_responses": ok,
            "failed_responses": failed,
            "usage_records_ok": delta_ok,
            "usage_records_all": delta_total,
            "holds_active_after": after["holds_active"],
            "drained": drained,
            "equal": delta_ok == ok,
        }
        self.results["billing"]["runs"].append(entry)
        if not entry["equal"]:
            msg = f"BILLING MISMATCH in {tag}: {ok} successful responses, {delta_ok} ok usage records"
            print("  " + msg, flush=True)
            self.notes.append(msg)

    def streams(self, t: Target, rep: int, n: int | None = None, tag: str | None = None) -> dict[str, Any]:
        before = usage_snapshot(self) if t.via == "tollway" else None
        body = self.stream_body
        if t.wire == "anthropic":
            body = self.anth_stream_bodies[ANTHROPIC_VARIANTS[t.name][0]]
        res = run_streams(t, body, n or self.args.streams)
        if before is not None:
            self.check_billing(
                tag or f"streams-{t.name}-{rep + 1}",
                before,
                res["ok"],
                res["error_count"],
                stream=True,
                drained=True,
            )
        label = tag or f"streams-{t.name}-{rep + 1}"
        ttfc, total = res["ttfc_p50_ms"], res["total_p50_ms"]
        print(
            f"  {label:<28} first chunk p50 {ttfc if ttfc is None else round(ttfc, 2)} ms  "
            f"total p50 {total if total is None else round(total, 2)} ms  ok {res['ok']}/{res['n']}",
            flush=True,
        )
        if res["error_count"]:
            self.notes.append(f"{label}: {res['error_count']} errors: {res['errors'][:3]}")
            if not res["ok"]:
                raise RuntimeError(f"{label}: every stream failed: {res['errors'][:3]}")
        (self.out / f"{label}.json").write_text(json.dumps(res, indent=1))
        return res


def usage_snapshot(b: Any) -> dict[str, int]:
    return tollway_side.usage_counts(b.tollway_data)
