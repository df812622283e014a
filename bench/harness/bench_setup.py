"""Set-up of a benchmark run: installing the tools, the request bodies, starting every server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import envs, procs, tollway_side
from harness.bench_consts import (
    ANTHROPIC_MODEL,
    ANTHROPIC_VARIANTS,
    ANTHROPIC_VERSION,
    BENCH,
    FAKE_KEY,
    LITELLM_KEY,
    MESSAGES_PATH,
    MODEL,
    PROMPT,
    ROOT,
    TRANSLATED_MODEL,
)
from harness.measure import Target


class Setup:
    """Part of bench/run.py's ``Bench``: everything before the first measurement."""

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
        # the Anthropic surface: one body (and body file for wrk) per model
        self.anth_body_files: dict[str, Path] = {}
        self.anth_stream_bodies: dict[str, bytes] = {}
        for model in (ANTHROPIC_MODEL, TRANSLATED_MODEL):
            body = {"model": model, "max_tokens": 16, "messages": msg}
            f = self.out / f"body-messages-{model}.json"
            f.write_bytes(json.dumps(body).encode())
            self.anth_body_files[model] = f
            self.anth_stream_bodies[model] = json.dumps({**body, "stream": True}).encode()
        self.results["request"]["messages_non_stream"] = self.anth_body_files[ANTHROPIC_MODEL].read_text()
        self.results["request"]["messages_stream"] = self.anth_stream_bodies[ANTHROPIC_MODEL].decode()
        self.anth_targets: dict[str, Target] = {}

    def _anth_target(self, name: str, base: str, key: str, gateway: str, proc: Any = None) -> Target:
        model = ANTHROPIC_VARIANTS[name][0]
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        return Target(
            name,
            base,
            headers,
            proc,
            path=MESSAGES_PATH,
            body_file=self.anth_body_files[model],
            wire="anthropic",
            gateway=gateway,
        )

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
        if "tollway" in wanted:  # the baseline of Tollway's Anthropic pass-through
            self.anth_targets["direct-messages"] = self._anth_target(
                "direct-messages", direct.base, FAKE_KEY, "direct"
            )
        self.fake_anthropic_base = f"http://127.0.0.1:{fake_port}"  # as the Anthropic SDK takes it
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
            prov = tollway_side.provision(
                self.python,
                self.tollway_data,
                fake_base,
                f"{MODEL},{TRANSLATED_MODEL}",  # the translated model: OpenAI channel only
                anthropic=(self.fake_anthropic_base, ANTHROPIC_MODEL),
            )
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
            for name in ("tollway-messages", "tollway-translated"):
                self.anth_targets[name] = self._anth_target(name, t.base, prov.secret, "tollway", proc)
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
