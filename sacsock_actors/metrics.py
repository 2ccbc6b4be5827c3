"""Prometheus text exposition of ``SocketServer.stats()``, served by the driver process.

``render(stats)`` is pure: it turns the per-gateway, per-bridge and driver counters into
the Prometheus text format (version 0.0.4), one sample per gateway (label ``gateway``) or
bridge (label ``bridge``). ``MetricsServer`` serves it at ``/metrics`` from a thread of the
driver, on its own address (127.0.0.1 by default), never on the public websocket port.

One scrape of the driver covers every gateway of the cluster: gateways share their
public port (SO_REUSEPORT), so a scrape of a gateway's port would reach a random one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "sacsock_"

#: gateway values that are levels, not running totals
GAUGES = {"sockets": "Sockets connected now", "rooms": "Rooms held now (socket id rooms included)"}
#: help text of the best-known counters (any other counter is exported too)
HELP = {
    "connected": "Sockets accepted",
    "disconnected": "Sockets closed",
    "messages_in": "Websocket messages received from sockets",
    "frames_out": "Frames queued to sockets (messages out)",
    "roomcasts": "Roomcasts started on this gateway",
    "broadcasts": "Broadcasts started on this gateway",
    "handler_errors": "Handler calls that raised",
    "slow_consumers_closed": "Sockets closed for not reading their frames",
    "casts_lost": "Casts that could not be handed to another actor",
    "casts_dropped_backlog": "Casts dropped for a peer gateway or bridge max_peer_backlog behind",
    "ray_calls_out": "Ray calls made to other actors (batches)",
    "ray_ops_out": "Ops sent to other actors in those calls",
    "read_errors": "Sockets closed on a read error (1009 and others)",
    "rejected_origin": "Upgrades refused by the origin check",
    "refused_draining": "Upgrades refused while draining",
    "ignored_frames": "Frames without an event name",
    "unknown_events": "Messages for an event without a handler",
}
_NAME_OK = re.compile(r"[^a-zA-Z0-9_]")


def _metric(name: str) -> str:
    return PREFIX + _NAME_OK.sub("_", name)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """The Prometheus text for ``SocketServer.stats()`` output.

    Gateways (keys other than ``driver`` and ``bridge-*``) give ``sacsock_sockets`` and
    ``sacsock_rooms`` gauges and ``sacsock_<counter>_total`` counters labelled
    ``gateway``; bridges give ``sacsock_bridge_<counter>_total`` labelled ``bridge``; the
    driver gives ``sacsock_driver_casts_lost_total``. Non-numeric values are skipped, an
    unreachable actor shows as ``sacsock_up{...} 0``.
    """
    families: dict[str, tuple[str, str, list[str]]] = {}

    def add(name: str, kind: str, help_: str, labels: str, value: float) -> None:
        family = families.setdefault(name, (kind, help_, []))
        family[2].append(f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}")

    for key in sorted(stats):
        values = stats[key]
        if key == "driver":
            for name, value in sorted(values.items()):
                if _number(value):
                    add(_metric(f"driver_{name}_total"), "counter", "Driver casts lost", "", value)
            continue
        bridge = key.startswith("bridge-")
        labels = f'{"bridge" if bridge else "gateway"}="{_label(key)}"'
        up = 0 if "error" in values else 1
        add(_metric("up"), "gauge", "1 if the actor answered the scrape", labels, up)
        for name, value in sorted(values.items()):
            if not _number(value):
                continue
            if bridge:
                add(_metric(f"bridge_{name}_total"), "counter", f"Bridge counter {name}", labels, value)
            elif name in GAUGES:
                add(_metric(name), "gauge", GAUGES[name], labels, value)
            else:
                add(_metric(f"{name}_total"), "counter", HELP.get(name, f"Gateway counter {name}"),
                    labels, value)
    lines: list[str] = []
    for name, (kind, help_, samples) in families.items():
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class MetricsServer:
    """``GET /metrics`` (Prometheus text of ``stats()``) from a daemon thread of the driver."""

    def __init__(self, stats: Callable[[], Mapping[str, Mapping[str, Any]]], host: str, port: int) -> None:
        handler = type("_Handler", (_Handler,), {"stats": staticmethod(stats)})
        try:
            self._http = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc}") from None
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="sacsock-metrics", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics at http://%s:%d/metrics", self._http.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    stats: Callable[[], Mapping[str, Mapping[str, Any]]]

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        if self.path.split("?", 1)[0] != "/metrics":
            self._reply(404, "text/plain", b"only /metrics here\n")
            return
        try:
            body = render(self.stats()).encode()
        except Exception as exc:  # noqa: BLE001 - a failed scrape is a 503, logged
            log.warning("metrics scrape failed: %r", exc)
            self._reply(503, "text/plain", b"stats unavailable\n")
            return
        self._reply(200, CONTENT_TYPE, body)

    def _reply(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("metrics: " + format, *args)
