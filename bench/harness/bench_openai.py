"""The OpenAI surface (POST /v1/chat/completions) of every target: warm-up, then throughput,
one-connection latency and sequential streams, each repeated with the targets in rotating order."""

from __future__ import annotations

import traceback
from typing import Any

from harness.bench_runs import usage_snapshot
from harness.measure import Target, run_streams


class OpenAISurface:
    """Part of bench/run.py's ``Bench``: the warm-up and the measurements of the chat completions API."""

    def order(self, rep: int) -> list[Target]:
        ts = [self.targets[n] for n in ("direct", "tollway", "litellm", "portkey") if n in self.targets]
        if not ts:
            return []
        k = rep % len(ts)
        return ts[k:] + ts[:k]  # rotate, so no target always runs first or last

    def warmup(self) -> None:
        print("warm-up", flush=True)
        for t in self.order(0):
            try:
                self.wrk(
                    t, f"warmup-{t.name}", self.args.warmup_seconds, self.args.connections, self.args.threads
                )
                if t.streams:
                    before = usage_snapshot(self) if t.name == "tollway" else None
                    res = run_streams(t, self.stream_body, 3)
                    if before is not None:
                        self.check_billing(
                            f"warmup-stream-{t.name}",
                            before,
                            res["ok"],
                            res["error_count"],
                            stream=True,
                            drained=True,
                        )
            except Exception as exc:
                self.fail_target(t, f"warm-up failed: {exc}")
        for t in list(self.anth_targets.values()):
            try:
                self.wrk(
                    t, f"warmup-{t.name}", self.args.warmup_seconds, self.args.connections, self.args.threads
                )
                self.streams(t, -1, n=3, tag=f"warmup-stream-{t.name}")
            except Exception as exc:
                self.fail_anth(t, f"warm-up failed: {exc}")

    def fail_target(self, t: Target, problem: str) -> None:
        print(f"  {t.name}: {problem}", flush=True)
        self.notes.append(f"{t.name}: {problem.splitlines()[0]}")
        t.available = False
        self.results["targets"].setdefault(t.name, {})["problem"] = problem[:2000]
        self.targets.pop(t.name, None)

    def measure(self) -> None:
        a = self.args
        print(
            f"throughput: {a.runs} x {a.seconds}s, {a.connections} connections, {a.threads} threads",
            flush=True,
        )
        for rep in range(a.runs):
            for t in self.order(rep):
                self._safely(
                    t,
                    "throughput",
                    lambda t=t, rep=rep: self.wrk(
                        t, f"throughput-{t.name}-{rep + 1}", a.seconds, a.connections, a.threads
                    ),
                )
        print(f"latency at one connection: {a.runs} x {a.latency_seconds}s", flush=True)
        for rep in range(a.runs):
            for t in self.order(rep):
                self._safely(
                    t,
                    "latency",
                    lambda t=t, rep=rep: self.wrk(t, f"latency-{t.name}-{rep + 1}", a.latency_seconds, 1, 1),
                )
        print(f"streams: {a.runs} x {a.streams} sequential streams", flush=True)
        for rep in range(a.runs):
            for t in self.order(rep):
                if t.streams:
                    self._safely(t, "streams", lambda t=t, rep=rep: self.streams(t, rep))
        self.measure_anthropic()

    def _safely(self, t: Target, kind: str, fn: Any) -> None:
        if t.name not in self.targets:
            return
        try:
            self.results[kind].setdefault(t.name, []).append(fn())
        except Exception as exc:
            self.fail_target(t, f"{kind} run failed: {exc}\n{traceback.format_exc()}")
