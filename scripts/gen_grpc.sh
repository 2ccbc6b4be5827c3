#!/usr/bin/env bash
# Regenerate the gRPC bridge's protobuf and gRPC stubs from its .proto (needs the `test`
# extra: grpcio-tools, pinned in pyproject.toml so the output is reproducible).
# usage: gen_grpc.sh [OUT_DIR]   (default: the package itself)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}
python=${PYTHON:-.venv/bin/python}
"$python" -m grpc_tools.protoc -I. --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  sacsock_actors/bridges/proto/transport.proto
