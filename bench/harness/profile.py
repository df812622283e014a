"""Where Tollway's time goes: py-spy samples of the server under wrk load, summarised.

``py-spy record --threads -f raw`` writes collapsed stacks ("thread (tid): name;frame;...;leaf N").
Idle samples (a thread blocked in epoll or a lock) are not recorded, so the counts are CPU time.
The summary gives, per thread, self time by library / Tollway module, the top functions by self
and by inclusive time, and the Tollway functions the time is spent under (the deepest Tollway
frame of each sample: the place in src/ to change).
"""

from __future__ import annotations

import linecache
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def record(
    py_spy: Path, pid: int, seconds: int, out: Path, rate: int = 200, extra: tuple[str, ...] = ()
) -> str | None:
    """Sample ``pid`` for ``seconds``; returns an error text, or None."""
    argv = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(rate),
        "--threads",
        "--format",
        "raw",
        "--output",
        str(out),
        *extra,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0 or not out.exists():
        return f"py-spy failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-600:]}"
    return None


def _parse_frame(text: str) -> tuple[str, str, str]:
    m = FRAME.match(text.strip())
    if not m:
        return text.strip(), "", ""
    return m["func"], m["file"], m["line"] or ""


# A leaf line that blocks (GIL released, waiting for work) is idle time that py-spy can still
# report as active: e.g. aiosqlite's worker thread in ``tx.get()``, or a thread that is runnable
# but waiting for a CPU on a busy machine. Such samples are counted apart as idle.
IDLE_LINE = re.compile(r"^(?!.*\bawait\b).*(\b(tx|queue|_queue|q)\.get\(\)|\.wait\(\)|\.acquire\(\))")
_line_cache: dict[tuple[str, str], str] = {}


def _source_line(file: str, line: str) -> str:
    key = (file, line)
    if key not in _line_cache:
        text = ""
        if line.isdigit() and file and not file.startswith("<"):
            for base in _search_path():
                cand = Path(base) / file
                if cand.is_file():
                    text = linecache.getline(str(cand), int(line))
                    break
        _line_cache[key] = text.strip()
    return _line_cache[key]


def _search_path() -> list[str]:
    """sys.path plus where tollway lives (an editable install is found by a finder, not a path)."""
    extra = []
    try:
        import tollway

        extra.append(str(Path(tollway.__file__).resolve().parent.parent))
    except ImportError:
        pass
    return [*extra, *sys.path]


def _is_entry(func: str, file: str) -> bool:
    """Frames every sample has (start-up, CLI, serve): not a place in the hot path."""
    return file.startswith(("tollway/cli/", "tollway/__main__")) or (
        file == "tollway/app.py" and func == "serve"
    )


BOOTSTRAP = (
    "typer/",
    "click/",
    "<frozen runpy>",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "tollway/cli/",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "threading.py",
    "uvloop/",
)


def _is_bootstrap(func: str, file: str) -> bool:
    """Frames at the bottom of every stack; left out of the inclusive ranking."""
    return file.startswith(BOOTSTRAP) or (file == "tollway/app.py" and func == "serve")


def _area(file: str) -> str:
    if file.startswith("tollway/"):
        return file  # per module
    if not file or file.startswith("<"):
        return "python internals"
    if file == "asyncio/runners.py":
        return "event loop (uvloop C code under Runner.run)"
    top = file.split("/", 1)[0]
    return {
        "asyncio": "asyncio (stdlib)",
        "concurrent": "asyncio (stdlib)",
        "threading.py": "threading (stdlib)",
        "queue.py": "threading (stdlib)",
    }.get(top, top.removesuffix(".py"))


def analyse(
    raw: Path, seconds: float, rate: int, top: int = 25, requests: int | None = None
) -> dict[str, Any]:
    per_thread: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    area_self: dict[str, Counter[str]] = defaultdict(Counter)
    under_tollway: Counter[str] = Counter()
    under_tollway_lines: Counter[str] = Counter()
    at_entry: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        head, _, rest = stack.partition(";")
        thread = head.split(": ", 1)[1] if ": " in head else head
        thread = re.sub(r"-\d+", "-N", thread)  # Thread-3 (_connection_worker_thread) -> Thread-N
        frames = [_parse_frame(f) for f in rest.split(";")] if rest else []
        if not frames:
            continue
        func, file, lineno = frames[-1]
        if IDLE_LINE.search(_source_line(file, lineno)):
            idle[f"{thread}: {file}:{lineno} {_source_line(file, lineno)}"] += n
            continue
        total += n
        per_thread[thread] += n
        self_fn[f"{file}:{func}"] += n
        area_self[thread][_area(file)] += n
        src = _source_line(file, lineno)
        if file == "<string>" or src.startswith(("def ", "async def ")):
            at_entry[thread] += n
        for key in {f"{fl}:{fn}" for fn, fl, _ in frames if not _is_bootstrap(fn, fl)}:
            incl_fn[key] += n
        deepest = next(
            (
                (fn, fl, ln)
                for fn, fl, ln in reversed(frames)
                if fl.startswith("tollway/") and not _is_entry(fn, fl)
            ),
            None,
        )
        if deepest is None:
            under_tollway[f"(no Tollway frame) {_area(file)}"] += n
        else:
            under_tollway[f"{deepest[1]}:{deepest[0]}"] += n
            under_tollway_lines[f"{deepest[1]}:{deepest[2]} ({deepest[0]})"] += n

    def pct(counter: Counter[str], k: int) -> list[tuple[str, int, float]]:
        return [(name, n, 100.0 * n / total if total else 0.0) for name, n in counter.most_common(k)]

    per_req = None
    if requests:
        per_req = {
            "requests": requests,
            "us_per_request_total": total / rate / requests * 1e6,
            "areas": {
                t: [(name, n / rate / requests * 1e6) for name, n in c.most_common(12)]
                for t, c in area_self.items()
            },
            "under_tollway": [
                (name, n / rate / requests * 1e6) for name, n in under_tollway.most_common(top)
            ],
        }
    return {
        "per_request": per_req,
        "idle_samples": idle.most_common(5),
        "samples": total,
        "seconds": seconds,
        "rate": rate,
        "busy_fraction": {t: n / (seconds * rate) for t, n in per_thread.items()},
        # Samples whose leaf is a function's first line (or a generated dataclass __init__): where
        # CPython checks for a pending GIL drop request. Many of them mean the GIL is being
        # handed back and forth between threads, not work in those functions.
        "at_function_entry": {t: n / per_thread[t] for t, n in at_entry.items() if per_thread[t]},
        "threads": pct(per_thread, 10),
        "areas": {t: pct(c, 15) for t, c in area_self.items()},
        "self": pct(self_fn, top),
        "inclusive": pct(incl_fn, top),
        "under_tollway": pct(under_tollway, top),
        "under_tollway_lines": pct(under_tollway_lines, top),
    }
