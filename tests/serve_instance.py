"""One `sacsock serve` process of an example app, as the CLI tests run two of them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from sacclient import sacsock_bin

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SERVING = "sacsock: serving"
"""Printed once the gateways listen and the bridges are wired."""


class ServeInstance:
    """``sacsock serve app:server --static static --port PORT *flags`` in ``examples/<example>``,
    with ``INSTANCE=name`` in its environment and a local Ray of its own; its output is
    collected by a thread (``output``)."""

    def __init__(self, example: str, name: str, port: int, *flags: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", INSTANCE=name)
        env.pop("RAY_ADDRESS", None)
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sacsock_bin(), "serve", "app:server", "--static", "static", "--port", str(port), *flags],
            cwd=EXAMPLES / example, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    async def ready(self, bound: float = 180.0) -> None:
        """Wait for the serving line. It is looked for anywhere in the output, not at a
        line start: Ray forwards the actors' log lines to the same stdout from another
        thread, and one may end just as the serving line begins."""
        deadline = time.monotonic() + bound
        while SERVING not in self.output:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"sacsock exited early with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not serving within {bound} s:\n{self.output}")
            await asyncio.sleep(0.2)

    @property
    def output(self) -> str:
        return "".join(list(self.lines))

    def stop(self, bound: float = 60.0) -> str:
        """SIGTERM (a drain), then its whole output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        return self.output
