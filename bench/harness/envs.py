"""Installing what the benchmark needs, each into its own place under bench/.envs/ (gitignored):

- wrk from Debian's packages (apt-get), if it is not on PATH;
- LiteLLM Proxy: ``python -m venv bench/.envs/litellm && pip install 'litellm[proxy]'``;
- the Portkey gateway: ``npm install @portkey-ai/gateway`` into bench/.envs/portkey;
- py-spy (for the profile of Tollway under load): a venv in bench/.envs/tools.

Each step is skipped when its result is already there (``--reinstall`` forces it).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
ENVS = BENCH / ".envs"
LITELLM_VENV = ENVS / "litellm"
PORTKEY_DIR = ENVS / "portkey"
TOOLS_VENV = ENVS / "tools"
PORTKEY_BIN = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def _run(argv: list[str], log: Path, cwd: Path | None = None) -> None:
    print(f"  $ {' '.join(argv)}", flush=True)
    with open(log, "ab") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(argv)}\n{tail}")


def ensure_wrk(log: Path) -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("installing wrk (apt-get)", flush=True)
        try:
            _run(["apt-get", "install", "-y", "wrk"], log)
        except RuntimeError:
            _run(["apt-get", "update"], log)
            _run(["apt-get", "install", "-y", "wrk"], log)
        wrk = shutil.which("wrk")
        if wrk is None:
            raise RuntimeError("wrk is still not on PATH after apt-get install wrk")
    return wrk


def _venv(path: Path, packages: list[str], marker: Path, log: Path, reinstall: bool) -> None:
    if marker.exists() and not reinstall:
        return
    print(f"creating {path.relative_to(ROOT)} and installing {' '.join(packages)}", flush=True)
    if not (path / "bin" / "python").exists():
        _run([sys.executable if _is_plain_python() else "python3", "-m", "venv", str(path)], log)
    _run([str(path / "bin" / "pip"), "install", "-q", *packages], log)


def _is_plain_python() -> bool:
    return sys.prefix == sys.base_prefix


def ensure_litellm(log: Path, reinstall: bool = False) -> Path:
    _venv(LITELLM_VENV, ["litellm[proxy]"], LITELLM_VENV / "bin" / "litellm", log, reinstall)
    return LITELLM_VENV / "bin" / "litellm"


def ensure_portkey(log: Path, reinstall: bool = False) -> Path:
    if PORTKEY_BIN.exists() and not reinstall:
        return PORTKEY_BIN
    print("installing @portkey-ai/gateway (npm) into bench/.envs/portkey", flush=True)
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    if not (PORTKEY_DIR / "package.json").exists():
        (PORTKEY_DIR / "package.json").write_text('{"name": "tollway-bench-portkey", "private": true}\n')
    _run(["npm", "install", "--no-audit", "--no-fund", "@portkey-ai/gateway"], log, cwd=PORTKEY_DIR)
    if not PORTKEY_BIN.exists():
        raise RuntimeError(f"npm install did not produce {PORTKEY_BIN}")
    return PORTKEY_BIN


def ensure_pyspy(log: Path, reinstall: bool = False) -> Path | None:
    try:
        _venv(TOOLS_VENV, ["py-spy"], TOOLS_VENV / "bin" / "py-spy", log, reinstall)
    except RuntimeError as exc:
        print(f"  py-spy unavailable ({exc}); the profile will be skipped", flush=True)
        return None
    return TOOLS_VENV / "bin" / "py-spy"


def _out(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (proc.stdout or proc.stderr).strip()


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": _out(["nproc"]),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "os": _os_name(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__(),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def versions(wrk: str, tollway_python: str) -> dict[str, str]:
    commit = _out(["git", "rev-parse", "HEAD"], cwd=ROOT)
    dirty = [
        ln[3:] for ln in _out(["git", "status", "--porcelain", "--", "src"], cwd=ROOT).splitlines() if ln
    ]
    hot = (
        "relay/",
        "billing/",
        "store/",
        "limits/",
        "ledger/",
        "pricing/",
        "catalog/",
        "accounts/",
        "app.py",
    )
    hot_dirty = [d for d in dirty if any(d.startswith(f"src/tollway/{h}") for h in hot)]
    tollway = commit
    if dirty:
        tollway += f" + uncommitted changes in {len(dirty)} files of src/ (work in progress by others); " + (
            f"in the data-plane / billing code: {', '.join(hot_dirty[:8])}"
            + (f" and {len(hot_dirty) - 8} more" if len(hot_dirty) > 8 else "")
            if hot_dirty
            else "none in the data-plane / billing code"
        )
    portkey = "not installed"
    pkg = PORTKEY_BIN.parent.parent / "package.json"
    if pkg.exists():
        portkey = json.loads(pkg.read_text())["version"]
    litellm = _out(
        [
            str(LITELLM_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ]
    )
    return {
        "tollway": tollway,
        "tollway_python": _out([tollway_python, "--version"]),
        "litellm": litellm,
        "litellm_python": _out([str(LITELLM_VENV / "bin" / "python"), "--version"]),
        "portkey_gateway": portkey,
        "node": _out(["node", "--version"]),
        "wrk": _out([wrk, "-v"]).splitlines()[0] if _out([wrk, "-v"]) else "unknown",
        "py-spy": _out([str(TOOLS_VENV / "bin" / "py-spy"), "--version"]),
    }
