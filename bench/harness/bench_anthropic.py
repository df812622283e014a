"""The Anthropic surface (POST /v1/messages): the fake direct, Tollway's pass-through and
Tollway's translation to the OpenAI channel."""

from __future__ import annotations

import traceback

from harness.bench_consts import ANTHROPIC_VARIANTS
from harness.measure import Target


class AnthropicSurface:
    """Part of bench/run.py's ``Bench``: the measurements of the Messages API."""

    def fail_anth(self, t: Target, problem: str) -> None:
        print(f"  {t.name}: {problem}", flush=True)
        self.notes.append(f"{t.name}: {problem.splitlines()[0]}")
        self.results["anthropic"].setdefault(t.name, {})["problem"] = problem[:2000]
        self.anth_targets.pop(t.name, None)

    def measure_anthropic(self) -> None:
        """The Anthropic surface (POST /v1/messages): the fake direct, Tollway's pass-through to an
        anthropic channel, and Tollway translating to the OpenAI channel; throughput, one-connection
        latency and sequential streams, the same methods as above, targets in rotating order."""
        a = self.args
        names = [n for n in ANTHROPIC_VARIANTS if n in self.anth_targets]
        if not names:
            return
        print(f"Anthropic surface ({', '.join(names)}): {a.runs} runs", flush=True)
        for kind in ("throughput", "latency", "streams"):
            for rep in range(a.runs):
                live = [n for n in names if n in self.anth_targets]
                if not live:
                    return
                k = rep % len(live)
                for name in live[k:] + live[:k]:
                    t = self.anth_targets.get(name)
                    if t is None:
                        continue
                    try:
                        if kind == "throughput":
                            res = self.wrk(
                                t, f"throughput-{name}-{rep + 1}", a.seconds, a.connections, a.threads
                            )
                        elif kind == "latency":
                            res = self.wrk(t, f"latency-{name}-{rep + 1}", a.latency_seconds, 1, 1)
                        else:
                            res = self.streams(t, rep)
                    except Exception as exc:
                        self.fail_anth(t, f"{kind} run failed: {exc}\n{traceback.format_exc()}")
                        continue
                    self.results["anthropic"].setdefault(name, {}).setdefault(kind, []).append(res)
