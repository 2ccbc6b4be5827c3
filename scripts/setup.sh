#!/usr/bin/env bash
# Idempotent set-up of everything the demo (--demo) or the whole test suite needs on a
# fresh Debian machine: Python venv in .venv with the package, and for tests also
# redis-server and Chromium (Debian packages) and the JS client's npm dev dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

python=""
for candidate in python3.12 python3.11 python3.10 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    python=$candidate; break
  fi
done
[ -n "$python" ] || { echo "setup: Python >= 3.10 is needed" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras="redis"
[ "$mode" = "--demo" ] || extras="test,redis,mongo,grpc,bench"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras//,/-}"
if [ ! -f "$stamp" ]; then  # install once per pyproject.toml and set of extras
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi

[ "$mode" = "--demo" ] && exit 0

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v java >/dev/null || missing+=(default-jdk-headless)  # the MongoDB-wire test server
command -v mvn >/dev/null || missing+=(maven)
# deploy tests: nginx in front of the nodes; sshd and rsync for the real `ray up`
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v rsync >/dev/null || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian"
  sudo_ apt-get update -q
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# the MongoDB-wire test server (tests/mongo_server: mongo-java-server from Maven Central),
# rebuilt only when its sources change; offline first, so a warm ~/.m2 needs no network
mongo_jar=tests/mongo_server/target/testmongo-1.jar
if [ ! -f "$mongo_jar" ] || [ -n "$(find tests/mongo_server/pom.xml tests/mongo_server/src -newer "$mongo_jar" -type f)" ]; then
  echo "setup: building the MongoDB-wire test server (tests/mongo_server)"
  (cd tests/mongo_server && { mvn -q -B -o package >/dev/null 2>&1 || mvn -q -B package; })
fi
if command -v npm >/dev/null; then
  (cd clientjs && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "setup: npm not found; the JS client tests need Node.js >= 20" >&2
  exit 1
fi
