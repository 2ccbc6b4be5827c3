#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: lint, Python unit + integration
# (one shared Ray session), CLI, multi-node, JS client (Node + headless Chromium), bench smoke.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ulimit -n 65536 2>/dev/null || true
export SACSOCK_BIN="$PWD/.venv/bin/sacsock"
export PATH="$PWD/.venv/bin:$PATH"
began=$(date +%s)

echo "== ruff"; ruff check .
echo "== python: unit, integration (one Ray session), cli"
python -m pytest -q tests/unit tests/integration tests/cli examples/chat
echo "== python: multi-node cluster"
python -m pytest -q tests/multinode
if [ -d tests/bench ]; then
  echo "== benchmark smoke run"
  python -m pytest -q tests/bench
fi
echo "== interop with the Go server"
python -m pytest -q tests/interop
echo "== clientjs: node unit tests"
(cd clientjs && npm test --silent)
echo "== clientjs: end to end in headless Chromium"
(cd clientjs && npm run --silent test:e2e)
echo "== all tests passed in $(( $(date +%s) - began )) s"
