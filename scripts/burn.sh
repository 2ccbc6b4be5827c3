#!/usr/bin/env bash
# The whole suite N times in a row (default 5) on fresh clones of HEAD while two busy
# loops load both cores (issue 12: no flaky tests). Not part of CI: about 18 min a run on 2 cores.
#   bash scripts/burn.sh [N]      # logs and a summary line per run in burn-results/
# Each run is `CI=true bash .ci/run` in its own clone (with ../shared beside it, as CI has),
# pytest naming every test as it ends (PASSED/FAILED) and stopping at the first failure
# with its report (-x: a run stopped later by hand would never print why), then the 60
# slowest steps of each stage (--durations: where a loaded machine spends the time). Run nothing
# else on the machine meanwhile.
set -u
cd "$(dirname "$0")/.."
repo=$PWD
rev=$(git rev-parse HEAD)
out="$repo/burn-results"
mkdir -p "$out"
burn() { while :; do :; done; }
burn & b1=$!
burn & b2=$!
trap 'kill $b1 $b2 2>/dev/null' EXIT
for i in $(seq 1 "${1:-5}"); do
  # a new directory each run (a stopped run's processes may still hold the last one),
  # beside the repo so that ../shared is beside it as in CI
  dir="$(dirname "$repo")/burn-clone-$$-$i"
  if ! git clone -q "$repo" "$dir" || ! git -C "$dir" checkout -q "$rev"; then
    echo "run $i: could not clone $rev into $dir" | tee -a "$out/summary.txt"
    exit 2
  fi
  began=$(date +%s)
  (cd "$dir" && CI=true PYTEST_ADDOPTS="-v -v -x --durations=60" bash .ci/run) > "$out/run$i.log" 2>&1
  rc=$?
  failed=$(grep -c " FAILED" "$out/run$i.log")
  echo "run $i ${rev:0:7} rc=$rc failed_tests=$failed $(( $(date +%s) - began )) s" | tee -a "$out/summary.txt"
  rm -rf "$dir"
done
