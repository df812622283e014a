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
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from harness import envs, procs, report, tollway_side  # noqa: E402
from harness import profile as prof  # noqa: E402
from harness.measure import Target, run_streams, run_wrk  # noqa: E402

MODEL = "gpt-4o-mini"
PROMPT = "Say hello in one short sentence."
LITELLM_KEY = "sk-bench-litellm"  # bench/litellm.yaml's master_key
FAKE_KEY = "sk-fake-upstream"  # the fake accepts any key; sent anyway, as a client would


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


class Bench:
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
            "billing": {"runs": []},
            "targets": {},
            "notes": self.notes,
        }
        self.tollway_data = self.out / "tollway-data"
        self.account_id = ""

    # --- set-up --------------------------------------------------------------------------

    def install(self) -> None:
        log = self.logs / "install.log"
        wanted = set(self.args.targets.split(","))
        if self.args.skip_install:
            self.wrk_bin = envs.shutil.which("wrk") or "wrk"
        else:
            self.wrk_bin = envs.ensure_wrk(log)
        self.litellm_bin = envs.ensure_litellm(log, self.args.reinstall) if "litellm" in wanted else None
        self.portkey_bin = envs.ensure_portkey(log, self.args.reinstall) if "portkey" in wanted else None
        self.py_spy = (
            envs.ensure_pyspy(log, self.args.reinstall)
            if self.args.profile_seconds > 0 and not self.args.skip_install
            else (
                envs.TOOLS_VENV / "bin" / "py-spy" if (envs.TOOLS_VENV / "bin" / "py-spy").exists() else None
            )
        )
        self.results["machine"] = envs.machine()
        self.results["versions"] = envs.versions(self.wrk_bin, self.python)

    def bodies(self) -> None:
        msg = [{"role": "user", "content": PROMPT}]
        self.body = json.dumps({"model": MODEL, "messages": msg, "max_tokens": 16}).encode()
        self.stream_body = json.dumps(
            {"model": MODEL, "messages": msg, "max_tokens": 16, "stream": True}
        ).encode()
        self.body_file = self.out / "body.json"
        self.body_file.write_bytes(self.body)
        self.results["request"] = {"non_stream": self.body.decode(), "stream": self.stream_body.decode()}

    def start_all(self) -> None:
        wanted = self.args.targets.split(",")
        fake_port, tw_port, ll_port, pk_port = procs.free_ports(4)
        fake_base = f"http://127.0.0.1:{fake_port}/v1"
        print(f"starting the fake upstream on {fake_port}", flush=True)
        fake = procs.start(
            "fake-upstream",
            [
                self.python,
                "-m",
                "tollway.fake_upstream",
                "--host",
                "127.0.0.1",
                "--port",
                str(fake_port),
                "--no-record",
                "--chunks",
                str(self.args.chunks),
                "--chunk-interval-ms",
                str(self.args.chunk_interval_ms),
            ],
            self.logs,
        )
        self.procs.append(fake)
        self.fake = fake
        direct = Target("direct", f"http://127.0.0.1:{fake_port}", {"Authorization": f"Bearer {FAKE_KEY}"})
        procs.wait_until(fake, procs.chat_ok(direct.url, direct.headers, self.body), 30, "ready")
        self.targets["direct"] = direct
        self.results["targets"]["direct"] = {"how": "python -m tollway.fake_upstream --no-record"}

        if "tollway" in wanted:
            self._start_tollway(tw_port, fake_base)
        if "litellm" in wanted:
            self._start_litellm(ll_port, fake_base)
        if "portkey" in wanted:
            self._start_portkey(pk_port, fake_port)

    def _guard(self, name: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:
            msg = f"{name} could not be started: {exc}"
            print(msg, flush=True)
            self.notes.append(msg.splitlines()[0])
            self.results["targets"][name] = {"available": False, "problem": str(exc)[:2000]}

    def _start_tollway(self, port: int, fake_base: str) -> None:
        def go() -> None:
            print(f"provisioning Tollway ({self.tollway_data.relative_to(ROOT)})", flush=True)
            prov = tollway_side.provision(self.python, self.tollway_data, fake_base, MODEL)
            self.account_id = prov.account_id
            self.notes.extend(prov.notes)
            t = Target("tollway", f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {prov.secret}"})
            print(f"starting Tollway on {port}", flush=True)
            proc, how, notes = tollway_side.start_tollway(
                self.python, port, self.tollway_data, self.logs, procs.chat_ok(t.url, t.headers, self.body)
            )
            self.notes.extend(notes)
            self.procs.append(proc)
            t.proc = proc
            self.targets["tollway"] = t
            self.results["targets"]["tollway"] = {
                "how": how,
                "provisioned_via": prov.via,
                "database": "SQLite (embedded default), WAL",
                "limits": f"group/account/key rpm={tollway_side.RPM} tpm={tollway_side.TPM} "
                f"concurrency={tollway_side.CONCURRENCY}",
            }

        self._guard("tollway", go)

    def _start_litellm(self, port: int, fake_base: str) -> None:
        def go() -> None:
            assert self.litellm_bin is not None
            print(f"starting LiteLLM on {port}", flush=True)
            argv = [
                str(self.litellm_bin),
                "--config",
                str(BENCH / "litellm.yaml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ]
            # LITELLM_LOCAL_MODEL_COST_MAP: use the bundled cost map instead of fetching it from
            # GitHub at start (no internet here; the fetch only delays start-up).
            env = {"BENCH_FAKE_BASE": fake_base, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
            proc = procs.start("litellm", argv, self.logs, env=env)
            self.procs.append(proc)
            t = Target(
                "litellm", f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {LITELLM_KEY}"}, proc
            )
            procs.wait_until(proc, procs.chat_ok(t.url, t.headers, self.body), 180, "ready")
            self.targets["litellm"] = t
            self.results["targets"]["litellm"] = {
                "how": "litellm --config bench/litellm.yaml --host 127.0.0.1 --port P --num_workers 1 "
                "(no database; master_key auth)"
            }

        self._guard("litellm", go)

    def _start_portkey(self, port: int, fake_port: int) -> None:
        def go() -> None:
            assert self.portkey_bin is not None
            print(f"starting Portkey on {port}", flush=True)
            argv = [
                "node",
                "--require",
                str(BENCH / "portkey_loopback.cjs"),
                str(self.portkey_bin),
                f"--port={port}",
                "--headless",
            ]
            proc = procs.start("portkey", argv, self.logs)
            self.procs.append(proc)
            headers = {
                "Authorization": f"Bearer {FAKE_KEY}",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": f"http://127.0.0.1:{fake_port}/v1",
            }
            t = Target("portkey", f"http://127.0.0.1:{port}", headers, proc, streams=False)
            procs.wait_until(proc, procs.chat_ok(t.url, t.headers, self.body), 60, "ready")
            self.targets["portkey"] = t
            self.results["targets"]["portkey"] = {
                "how": "node <@portkey-ai/gateway bin> --port=P --headless (bound to 127.0.0.1 by "
                "bench/portkey_loopback.cjs); routed by x-portkey-provider: openai + "
                "x-portkey-custom-host",
                "streams": "not measured: Portkey's streaming fails on Node 20",
            }

        self._guard("portkey", go)

    # --- measuring -----------------------------------------------------------------------

    def order(self, rep: int) -> list[Target]:
        ts = [self.targets[n] for n in ("direct", "tollway", "litellm", "portkey") if n in self.targets]
        if not ts:
            return []
        k = rep % len(ts)
        return ts[k:] + ts[:k]  # rotate, so no target always runs first or last

    def wrk(self, t: Target, tag: str, seconds: int, connections: int, threads: int) -> dict[str, Any]:
        # CPU of every benchmark process (the target, the fake, the idle gateways), to tell
        # contention inside the benchmark from interference by the rest of the machine.
        cpu_procs: list[procs.Proc] = []
        for p in [self.fake, *([t.proc] if t.proc else []), *self.procs]:
            if p.alive() and all(p is not q for q in cpu_procs):
                cpu_procs.append(p)
        before = usage_snapshot(self) if t.name == "tollway" else None
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

    def _safely(self, t: Target, kind: str, fn: Any) -> None:
        if t.name not in self.targets:
            return
        try:
            self.results[kind].setdefault(t.name, []).append(fn())
        except Exception as exc:
            self.fail_target(t, f"{kind} run failed: {exc}\n{traceback.format_exc()}")

    def streams(self, t: Target, rep: int) -> dict[str, Any]:
        before = usage_snapshot(self) if t.name == "tollway" else None
        res = run_streams(t, self.stream_body, self.args.streams)
        if before is not None:
            self.check_billing(
                f"streams-{t.name}-{rep + 1}",
                before,
                res["ok"],
                res["error_count"],
                stream=True,
                drained=True,
            )
        print(
            f"  streams-{t.name}-{rep + 1:<16} first chunk p50 {res['ttfc_p50_ms']:7.2f} ms  "
            f"total p50 {res['total_p50_ms']:7.2f} ms  ok {res['ok']}/{res['n']}",
            flush=True,
        )
        if res["error_count"]:
            self.notes.append(f"streams-{t.name}-{rep + 1}: {res['error_count']} errors: {res['errors'][:3]}")
        (self.out / f"streams-{t.name}-{rep + 1}.json").write_text(json.dumps(res, indent=1))
        return res

    def profile(self) -> None:
        """Two py-spy recordings of Tollway under the throughput load: which code holds the GIL
        (--gil: the serial Python work that caps one worker), and every thread's CPU samples."""
        t = self.targets.get("tollway")
        secs = self.args.profile_seconds
        if t is None or secs <= 0:
            return
        if self.py_spy is None:
            self.results["profile"] = {"error": "py-spy is not installed"}
            return
        print(
            f"profiling Tollway with py-spy (2 x {secs}s) under {self.args.connections} connections",
            flush=True,
        )
        tag = "profile-tollway"
        before = usage_snapshot(self)
        env = dict(
            os.environ,
            BENCH_BODY_FILE=str(self.body_file),
            BENCH_PATH="/v1/chat/completions",
            BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in t.headers.items()),
            BENCH_SECONDS=str(2 * secs + 6),
            BENCH_RESULT=str(self.out / f"{tag}.json"),
            BENCH_CONNS=str(self.args.connections // self.args.threads),
        )
        from harness.measure import LUA

        load = subprocess.Popen(
            [
                self.wrk_bin,
                f"-t{self.args.threads}",
                f"-c{self.args.connections}",
                f"-d{2 * secs + 8}s",
                "--timeout",
                "30s",
                "-s",
                str(LUA),
                t.base,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert t.proc is not None
        out: dict[str, Any] = {}
        time.sleep(2)
        for kind, extra in (("gil", ("--gil",)), ("threads", ("--nonblocking",))):
            raw = self.out / f"tollway-profile-{kind}.txt"
            n0 = usage_snapshot(self)["total"]
            err = prof.record(self.py_spy, t.proc.pid, secs, raw, extra=extra)
            n1 = usage_snapshot(self)["total"]
            if err:
                out[kind] = {"error": err}
                self.notes.append(f"py-spy ({kind}): {err}")
                continue
            out[kind] = prof.analyse(raw, secs, 200, requests=n1 - n0)
            out[kind]["raw_file"] = str(raw.relative_to(ROOT))
            out[kind]["requests_while_sampled"] = n1 - n0
            out[kind]["flags"] = " ".join(extra)
        load.wait(timeout=2 * secs + 60)
        doc = json.loads((self.out / f"{tag}.json").read_text())
        self.check_billing(
            tag,
            before,
            doc["ok"],
            doc["failed"],
            stream=False,
            drained=doc["parked"] >= self.args.connections,
        )
        out["load_rps"] = doc["ok"] / (doc["window_s"] or 1)
        out["seconds"] = secs
        self.results["profile"] = out

    def diagnostics(self) -> None:
        """Tollway again with the other commit-batching setting (TOLLWAY_COMMIT_INTERVAL_MS 0 if
        the default waits, 2 if the default commits as soon as the writer is free): how much the
        batching window costs or saves. Not a headline figure."""
        t = self.targets.get("tollway")
        if t is None or t.proc is None or not self.args.diagnostics:
            return
        try:
            from tollway.settings import Settings

            default = float(Settings.model_fields["commit_interval_ms"].default)
        except Exception:
            default = 2.0
        other = "0" if default > 0 else "2"
        setting = f"TOLLWAY_COMMIT_INTERVAL_MS={other}"
        tag = f"diag-interval{other}"
        print(f"diagnostics: Tollway with {setting} (default: {default:g})", flush=True)
        t.proc.stop(timeout=30)
        port = int(t.base.rsplit(":", 1)[1])
        env = {"TOLLWAY_DATA_DIR": str(self.tollway_data), "TOLLWAY_COMMIT_INTERVAL_MS": other}
        argv = tollway_side.serve_commands(self.python, port)[0][1]
        proc = procs.start(f"tollway-interval{other}", argv, self.logs, env=env)
        self.procs.append(proc)
        diag = Target("tollway", t.base, t.headers, proc)
        res: dict[str, Any] = {
            "setting": setting,
            "default": f"TOLLWAY_COMMIT_INTERVAL_MS={default:g}",
            "tag": tag,
        }
        try:
            procs.wait_until(proc, procs.chat_ok(diag.url, diag.headers, self.body), 60, "ready")
            a = self.args
            self.wrk(diag, f"{tag}-warmup", a.warmup_seconds, a.connections, a.threads)
            res["latency"] = self.wrk(diag, f"{tag}-latency", a.latency_seconds, 1, 1)
            res["throughput"] = self.wrk(diag, f"{tag}-throughput", a.seconds, a.connections, a.threads)
        except Exception as exc:
            res["error"] = str(exc)[:1000]
            self.notes.append(f"diagnostics failed: {str(exc).splitlines()[0]}")
        finally:
            proc.stop(timeout=30)
        self.results["diagnostics"] = res

    def finish_tollway(self) -> None:
        t = self.targets.get("tollway")
        if t is None or t.proc is None:
            return
        t.proc.stop(timeout=30)  # a clean stop flushes the settlement writer
        final = tollway_side.usage_counts(self.tollway_data)
        billing = self.results["billing"]
        billing["final_counts"] = final
        billing["all_runs_equal"] = all(r["equal"] for r in billing["runs"])
        print("auditing Tollway's ledger", flush=True)
        billing["audit"] = tollway_side.audit(self.python, self.tollway_data)
        bal = tollway_side.balance(self.python, self.tollway_data, self.account_id)
        if bal is not None:
            spent = (
                int(float(tollway_side.CREDIT)) * 10**9
                - int(bal["cash_nano"])
                - int(bal.get("voucher_nano", 0))
            )
            billing["balance"] = bal
            billing["spent_nano"] = spent
            billing["spent_equals_deductions"] = spent == final["deduction_nano_sum"]
        if self.args.probe:
            print("probing the settlement commit on a copy of the database", flush=True)
            copy = self.out / "probe.db"
            shutil.copyfile(tollway_side.db_path(self.tollway_data), copy)
            proc = subprocess.run(
                [self.python, str(BENCH / "harness" / "writer_probe.py"), str(copy)],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=ROOT,
            )
            try:
                self.results["writer_probe"] = json.loads(proc.stdout)
            except json.JSONDecodeError:
                self.results["writer_probe"] = {"error": (proc.stderr or proc.stdout)[-1000:]}
            copy.unlink(missing_ok=True)

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()


def usage_snapshot(b: Bench) -> dict[str, int]:
    return tollway_side.usage_counts(b.tollway_data)


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
