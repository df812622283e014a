"""Tollway benchmark: the fake upstream direct, through Tollway, LiteLLM Proxy and Portkey.

One command (``bench/run.sh``, which runs this file with the project's venv) installs what is
missing, starts every server on loopback, measures them side by side in one run, checks that
Tollway billed every call it answered, profiles Tollway under load, and writes bench/RESULTS.md.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import procs, report
from harness import profile as prof
from harness.bench_anthropic import AnthropicSurface
from harness.bench_consts import BENCH, ROOT
from harness.bench_openai import OpenAISurface
from harness.bench_runs import Runs
from harness.bench_setup import Setup
from harness.bench_tollway import TollwayExtras
from harness.measure import Target


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="repetitions of each measurement (median)")
    p.add_argument("--seconds", type=int, default=15, help="throughput window per run (s)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads for the throughput runs")
    p.add_argument("--latency-seconds", type=int, default=10, help="one-connection window (s)")
    p.add_argument("--warmup-seconds", type=int, default=3)
    p.add_argument("--streams", type=int, default=30, help="sequential streams per run")
    p.add_argument("--chunks", type=int, default=16, help="content chunks per fake stream")
    p.add_argument("--chunk-interval-ms", type=float, default=10.0, help="fake stream pacing")
    p.add_argument("--profile-seconds", type=int, default=8, help="per py-spy recording; 0 = none")
    p.add_argument(
        "--no-diagnostics",
        dest="diagnostics",
        action="store_false",
        help="skip the extra Tollway run with TOLLWAY_COMMIT_INTERVAL_MS=0",
    )
    p.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="skip timing the settlement commit on a copy of the database",
    )
    p.add_argument(
        "--targets",
        default="direct,tollway,litellm,portkey",
        help="comma-separated subset of direct,tollway,litellm,portkey",
    )
    p.add_argument("--skip-install", action="store_true", help="fail instead of installing")
    p.add_argument("--reinstall", action="store_true", help="reinstall LiteLLM / Portkey / py-spy")
    p.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="where to write the report")
    p.add_argument(
        "--rereport",
        metavar="OUT_DIR",
        help="measure nothing: re-analyse the profiles in OUT_DIR (bench/out/<stamp>) and rewrite the report "
        "from its results.json",
    )
    return p.parse_args()


def median(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


class Bench(Setup, OpenAISurface, AnthropicSurface, Runs, TollwayExtras):
    """One benchmark run; its steps live in the harness/bench_*.py parts it is made of."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.out = BENCH / "out" / self.stamp
        self.out.mkdir(parents=True, exist_ok=True)
        self.logs = self.out / "logs"
        self.logs.mkdir()
        self.python = sys.executable  # the project's venv: Tollway, the fake, aiohttp
        self.procs: list[procs.Proc] = []
        self.targets: dict[str, Target] = {}
        self.notes: list[str] = []
        entry = os.environ.get("BENCH_ENTRY", "python bench/run.py")
        self.results: dict[str, Any] = {
            "command": " ".join([entry, *map(shlex.quote, sys.argv[1:])]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "out_dir": str(self.out.relative_to(ROOT)),
            "config": {k: v for k, v in vars(args).items() if k != "results"},
            "throughput": {},
            "latency": {},
            "streams": {},
            "anthropic": {},
            "billing": {"runs": []},
            "targets": {},
            "notes": self.notes,
        }
        self.tollway_data = self.out / "tollway-data"
        self.account_id = ""

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()


def rereport(out_dir: Path, results_path: Path) -> int:
    results = json.loads((out_dir / "results.json").read_text())
    p = results.get("profile") or {}
    for kind in ("gil", "threads"):
        q = p.get(kind)
        if q and "raw_file" in q:
            fresh = prof.analyse(
                ROOT / q["raw_file"], p["seconds"], 200, requests=q.get("requests_while_sampled")
            )
            p[kind] = {**q, **fresh}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report.write(results, results_path)
    print(f"rewrote {results_path} from {out_dir}/results.json")
    return 0


def main() -> int:
    args = parse_args()
    if args.rereport:
        return rereport(Path(args.rereport).resolve(), Path(args.results))
    bench = Bench(args)
    started = time.monotonic()
    print(f"output: {bench.out.relative_to(ROOT)}", flush=True)
    try:
        bench.install()
        bench.bodies()
        bench.start_all()
        bench.warmup()
        bench.measure()
        bench.profile()
        bench.diagnostics()
        bench.finish_tollway()
    except KeyboardInterrupt:
        bench.notes.append("interrupted")
        raise
    except Exception as exc:
        bench.notes.append(f"the run stopped early: {exc!r}")
        traceback.print_exc()
    finally:
        bench.stop_all()
        bench.results["wall_seconds"] = round(time.monotonic() - started, 1)
        (bench.out / "results.json").write_text(json.dumps(bench.results, indent=1, default=str))
        path = Path(args.results)
        report.write(bench.results, path)
        print(
            f"wrote {path} and {bench.out.relative_to(ROOT)}/results.json ({bench.results['wall_seconds']}s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
