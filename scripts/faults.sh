#!/usr/bin/env bash
# The full-size fault and fuzz runs of issue 12 (CI runs the same tests smaller):
# a room of 240 sockets over 2 gateways flooded while a gateway, a shard, the bridge actor
# and redis-server are killed; 100,000 malformed messages against a live gateway.
# Writes bench/results/faults.json (recovery times) and bench/results/faults.txt (summary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ulimit -n 65536 2>/dev/null || true
export PATH="$PWD/.venv/bin:$PATH"
export SACSOCK_FAULT_SOCKETS=${SACSOCK_FAULT_SOCKETS:-240}
export SACSOCK_FUZZ_MESSAGES=${SACSOCK_FUZZ_MESSAGES:-100000}
export SACSOCK_FAULT_REPORT=bench/results/faults.json
export SACSOCK_FAULT_RECOVERY_S=${SACSOCK_FAULT_RECOVERY_S:-5}  # the issue's bound (the suite's is 30 s)
began=$(date +%s)
python -m pytest -q -s -p no:cacheprovider tests/integration/test_faults_load.py \
  tests/integration/test_faults.py tests/integration/test_fuzz_live.py > /tmp/sacsock-faults.log 2>&1 || {
  tail -50 /tmp/sacsock-faults.log; exit 1; }
{
  echo "sockets=$SACSOCK_FAULT_SOCKETS fuzz_messages=$SACSOCK_FUZZ_MESSAGES took=$(( $(date +%s) - began ))s"
  grep -E "^(gateway kill|shard kill|bridge actor kill|redis kill):|[0-9]+ passed" /tmp/sacsock-faults.log
} | tee bench/results/faults.txt
