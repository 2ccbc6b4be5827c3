"""Run the upstream Go Sacrificial-Socket server (``../shared/peers/gopeer``) as a bench peer.

    python bench/servers/go_server.py --port 8082 --binary PATH

The binary is built by ``bench/run.py`` (``bash ../shared/peers/build.sh``). Its handlers
have other names than the bench app's; the load generator's ``gopeer`` protocol maps them
(see bench/loadgen/proto.go). No multihome backend. Prints ``READY {...}`` once the port
accepts connections; ends the Go process on SIGTERM/SIGINT or when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"go server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"go server did not listen on {port} within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()
    env = dict(os.environ, GOMAXPROCS=os.environ.get("GOMAXPROCS", str(len(os.sched_getaffinity(0)))))
    proc = subprocess.Popen([args.binary, "-addr", f"127.0.0.1:{args.port}", "-backend", "none"],
                            stdout=sys.stderr, env=env)
    try:
        wait_port(args.port, proc)
        print("READY " + json.dumps({"pid": os.getpid(), "port": args.port, "pids": {"server": proc.pid}}),
              flush=True)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        while not stop.wait(0.5):
            if proc.poll() is not None:
                raise SystemExit(f"go server exited with {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
