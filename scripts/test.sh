#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: lint, Python unit + integration
# (one shared Ray session), CLI, multi-node, JS client (Node + headless Chromium), bench smoke.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ulimit -n 65536 2>/dev/null || true
export SACSOCK_BIN="$PWD/.venv/bin/sacsock"
export PATH="$PWD/.venv/bin:$PATH"
# A busy machine can take Ray's GCS past its default ~20 s start-up window: allow 2 min.
export RAY_gcs_server_port_wait_time_s="${RAY_gcs_server_port_wait_time_s:-120}"
began=$(date +%s)

echo "== ruff"; ruff check .
echo "== mypy (the package, every def typed: [tool.mypy] in pyproject.toml)"; mypy
echo "== python: unit, integration (one Ray session), cli"
python -m pytest -q tests/unit tests/integration tests/cli
echo "== python: multi-node cluster"
python -m pytest -q tests/multinode
echo "== package: sdist/wheel, twine check, the wheel in a fresh venv (sacsock demo in Chromium, serve)"
python -m pytest -q tests/package
echo "== deploy: a real ray up of deploy/cluster.yaml (CI, or SACSOCK_TEST_RAY_UP=1; ~1.5 min)"
python -m pytest -q -rs tests/deploy
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
