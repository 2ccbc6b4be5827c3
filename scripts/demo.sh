#!/usr/bin/env bash
# Set up (first run only) and run the chat demo on a local Ray; prints the URL to open.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
exec .venv/bin/sacsock demo "$@"
