"""``python -m tollway.fake_upstream --port 9100 [--chunks 8 ...]``"""

from __future__ import annotations

import argparse

from tollway.fake_upstream.config import FakeConfig
from tollway.fake_upstream.server import run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tollway.fake_upstream")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--chunk-interval-ms", type=float, default=0.0)
    p.add_argument("--api-key", default=None)
    p.add_argument("--no-record", action="store_true", help="do not keep recent requests")
    a = p.parse_args(argv)
    config = FakeConfig(
        latency_ms=a.latency_ms,
        chunks=a.chunks,
        chunk_interval_ms=a.chunk_interval_ms,
        api_key=a.api_key,
        record=not a.no_record,
    )
    run(a.host, a.port, config)


if __name__ == "__main__":
    main()
