"""Tollway-only parts of a run: the py-spy profile under load, the diagnostics run with the
other commit-batching setting, and the final checks of its books (ledger audit, balance,
settlement commit probe)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

from harness import procs, tollway_side
from harness import profile as prof
from harness.bench_consts import BENCH, ROOT
from harness.bench_runs import usage_snapshot
from harness.measure import Target


class TollwayExtras:
    """Part of bench/run.py's ``Bench``: profile, diagnostics and the end-of-run checks."""

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
