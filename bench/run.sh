#!/usr/bin/env bash
# One command for the whole benchmark: bench/run.sh [options]  (see bench/README.md)
# Runs bench/run.py with the project's venv (Tollway, its fake upstream, aiohttp).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TOLLWAY_PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "no Python at $PY: create the project venv first (python -m venv .venv && .venv/bin/pip install -e .)" >&2
  exit 2
fi
export BENCH_ENTRY="bench/run.sh"
exec "$PY" bench/run.py "$@"
