"""SocketServer: register handlers, serve on Ray, cast from the driver, shut down."""

from __future__ import annotations

import inspect
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from .app import AppSpec, Blocking, Handler, is_async
from .errors import ConfigError, NotServingError
from .ops import StartBroadcast, StartRoomcast
from .options import ServerOptions, options_from_kwargs
from .protocol import check_room, encode, socket_room

log = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
MAX_STATIC_BYTES = 64 << 20
H = TypeVar("H", bound=Handler)


class SocketServer:
    """A Sacrificial-Socket server whose sockets live in Ray gateway actors.

    Register handlers, then ``serve()`` (blocking) or ``start()``/``shutdown()``.
    Handlers get ``(socket, payload_bytes)``; ``on_connect``/``on_disconnect`` get
    ``(socket)``. Plain functions run in a thread pool, coroutine functions on the
    gateway's event loop. Handlers are pickled into the gateway actors: keep them free
    of locks, open files and other process-bound state (create those lazily inside).
    """

    def __init__(self, **options: Any) -> None:
        self._spec = AppSpec(options=options_from_kwargs(ServerOptions(), options))
        self._runtime: Any = None
        self._bridges: list[Any] = []
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._metrics: Any = None
        self._drain_requested = False

    # ---- registration ------------------------------------------------------------------

    @overload
    def on(self, event: str, *, blocking: bool = ...) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H, *, blocking: bool = ...) -> H: ...

    def on(self, event: str, handler: Handler | None = None, *, blocking: bool = False) -> Any:
        """Register ``handler(socket, data: bytes)`` for ``event``; a decorator without handler.

        Plain ``def`` handlers run inline on the gateway's loop; one that takes longer than
        the ``blocking_threshold`` option moves to the thread pool after that call. Pass
        ``blocking=True`` for a handler you know blocks (sleeps, blocking I/O): it runs in
        the pool from its first call. Each socket's calls run in arrival order either way.
        """
        if not isinstance(event, str) or not event or "\x02" in event:
            raise ConfigError(f"event name must be a non-empty str without 0x02, got {event!r}")
        if handler is None:
            return lambda fn: self.on(event, fn, blocking=blocking)
        self._check_callable(handler, f"handler for {event!r}")
        self._spec.handlers[event] = self._blocking(handler, blocking, f"handler for {event!r}")
        return handler

    def on_event(self, obj: Any) -> Any:
        """Register an object with ``event_name()`` and ``handle_event(socket, data)``."""
        if not callable(getattr(obj, "event_name", None)) or not callable(
            getattr(obj, "handle_event", None)
        ):
            raise ConfigError("on_event needs an object with event_name() and handle_event(socket, data)")
        self.on(obj.event_name(), obj.handle_event)
        return obj

    @overload
    def on_connect(self, fn: H, *, blocking: bool = ...) -> H: ...
    @overload
    def on_connect(self, fn: None = None, *, blocking: bool = ...) -> Callable[[H], H]: ...

    def on_connect(self, fn: Handler | None = None, *, blocking: bool = False) -> Any:
        """Run ``fn(socket)`` after a socket connects (joined to its id room), before its messages.

        ``blocking`` as for :meth:`on`; a decorator with or without arguments.
        """
        if fn is None:
            return lambda f: self.on_connect(f, blocking=blocking)
        self._check_callable(fn, "on_connect")
        self._spec.on_connect = self._blocking(fn, blocking, "on_connect")
        return fn

    @overload
    def on_disconnect(self, fn: H, *, blocking: bool = ...) -> H: ...
    @overload
    def on_disconnect(self, fn: None = None, *, blocking: bool = ...) -> Callable[[H], H]: ...

    def on_disconnect(self, fn: Handler | None = None, *, blocking: bool = False) -> Any:
        """Run ``fn(socket)`` when a socket closes, after it left its rooms.

        ``blocking`` as for :meth:`on`; a decorator with or without arguments.
        """
        if fn is None:
            return lambda f: self.on_disconnect(f, blocking=blocking)
        self._check_callable(fn, "on_disconnect")
        self._spec.on_disconnect = self._blocking(fn, blocking, "on_disconnect")
        return fn

    @staticmethod
    def _blocking(fn: Handler, blocking: bool, what: str) -> Handler:
        if not blocking:
            return fn
        if is_async(fn):
            raise ConfigError(f"{what}: blocking=True is for plain def handlers; an async handler "
                              "must not block (await the I/O, or make it a plain def handler)")
        return Blocking(fn)

    def set_multihome_backend(self, bridge: Any) -> None:
        """Federate with other instances through ``bridge`` (a sacsock_actors.bridges.Bridge).

        The upstream name; unlike upstream, may be called more than once: every bridge gets
        every cast that starts in this cluster. Works before and while serving.
        """
        from .bridges.base import Bridge

        if not isinstance(bridge, Bridge):
            raise ConfigError(
                f"a bridge must subclass sacsock_actors.bridges.Bridge, got {type(bridge).__name__}"
            )
        with self._lock:
            self._bridges.append(bridge)
            if self._runtime is not None:
                self._runtime.add_bridge(bridge)

    @staticmethod
    def _check_callable(fn: Any, what: str) -> None:
        if not callable(fn):
            raise ConfigError(f"{what} must be callable, got {type(fn).__name__}")

    @property
    def options(self) -> ServerOptions:
        return self._spec.options

    # ---- serving ---------------------------------------------------------------------------

    def start(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        path: str = "/socket",
        gateways: int = 1,
        static_dir: str | Path | None = None,
        *,
        address: str | None = None,
        gateways_per_node: int | None = None,
        placements: list[Any] | None = None,
        runtime_env: dict | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        **options: Any,
    ) -> list[dict[str, Any]]:
        """Start serving without blocking; returns one info dict per gateway.

        ``gateways`` gateways share ``port`` on one node (SO_REUSEPORT);
        ``gateways_per_node`` instead puts that many on every alive node;
        ``placements`` (a list of ``cluster.Placement``) pins each gateway to a node and port.
        Ray is started locally unless it is already initialised or ``address`` is given.
        ``metrics_port`` serves Prometheus metrics of every gateway at
        ``http://metrics_host:metrics_port/metrics`` from this (the driver) process.
        """
        from .cluster import ClusterRuntime  # Ray is imported only when serving

        with self._lock:
            if self._runtime is not None:
                raise NotServingError("already serving; call shutdown() first")
            if options:
                self._spec.options = options_from_kwargs(self._spec.options, options)
            if not path.startswith("/"):
                raise ConfigError(f"path must start with '/', got {path!r}")
            if gateways < 1:
                raise ConfigError("gateways must be >= 1")
            self._spec.static_files = _read_static(static_dir)
            runtime = ClusterRuntime(
                self._spec, host=host, path=path, port=port, gateways=gateways,
                gateways_per_node=gateways_per_node, placements=placements,
                address=address, runtime_env=runtime_env,
            )
            try:
                infos = runtime.start(self._bridges)
                if metrics_port is not None:
                    from .metrics import MetricsServer

                    self._metrics = MetricsServer(runtime.stats, metrics_host, metrics_port).start()
            except BaseException:
                runtime.stop()
                raise
            self._runtime = runtime
            self._stopped.clear()
            return infos

    def serve(
        self,
        *args: Any,
        on_ready: Callable[[], None] | None = None,
        drain_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        """Serve until SIGINT/SIGTERM/SIGHUP/SIGQUIT or ``shutdown()``; then stop cleanly.

        Takes the arguments of :meth:`start`; ``on_ready()`` runs once every gateway listens.
        SIGTERM drains (see :meth:`drain`, up to ``drain_timeout`` s); the others shut down.
        """
        bound = inspect.signature(self.start).bind(*args, **kwargs)
        bound.apply_defaults()
        host, path = bound.arguments["host"], bound.arguments["path"]
        main = threading.current_thread() is threading.main_thread()
        early: list[int] = []  # a signal (Ctrl-C) while starting: acted on once started
        previous = {s: signal.signal(s, lambda signum, frame: early.append(signum))
                    for s in SHUTDOWN_SIGNALS} if main else {}
        try:
            infos = self.start(*args, **kwargs)
        except BaseException:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            raise
        ports = sorted({i["port"] for i in infos})
        url_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        hosts = sorted({i.get("address", url_host) for i in infos}) if host == "node" else [url_host]
        for h in hosts:
            for p in ports:
                print(f"sacsock: serving http://{h}:{p}/ (websocket ws://{h}:{p}{path}, "
                      f"{len(infos)} gateway(s))", flush=True)
        if on_ready is not None:
            on_ready()
        if main:
            for sig in SHUTDOWN_SIGNALS:
                signal.signal(sig, lambda signum, frame: self._signal(signum))
        if early:
            self._signal(early[0])
        while not self._stopped.wait(0.5):
            pass
        if self._drain_requested:
            self._drain_requested = False
            self.drain(drain_timeout)
        self.shutdown()

    def _signal(self, signum: int) -> None:
        drain = signum == signal.SIGTERM
        log.warning("signal %s: %s", signal.Signals(signum).name, "draining" if drain else "shutting down")
        if drain and self._runtime is not None:
            self._drain_requested = True
        self._stopped.set()

    def drain(self, timeout: float = 30.0, node_id: str | None = None) -> None:
        """Graceful stop for rolling upgrades; blocks until done.

        Gateways stop accepting at once (``/healthz`` and upgrades answer 503, so a load
        balancer sends new sockets elsewhere); casts accepted so far reach their sockets,
        which get every queued frame (waiting up to ``timeout`` s for slow readers) before
        their 1001 close; then the bridges, then the actors (and our Ray) stop.
        With ``node_id`` (a Ray node id, as in ``start()``'s infos) only that node's
        gateways drain and the rest keep serving: the clients reconnect through the load
        balancer to another node and rejoin their rooms in their ``onConnect`` handler.
        """
        if timeout < 0:
            raise ConfigError(f"timeout must be >= 0 seconds, got {timeout!r}")
        if node_id is not None:
            self._live().drain(timeout, node_id)
            return
        with self._lock:
            runtime, self._runtime = self._runtime, None
            metrics, self._metrics = self._metrics, None
        self._stopped.set()
        if runtime is None:
            return
        try:
            runtime.drain(timeout)
        finally:
            runtime.stop()  # a no-op after a complete drain; the rest after a failed one
            if metrics is not None:
                metrics.stop()

    def shutdown(self) -> None:
        """Close every socket (1001), shut the bridges down, stop the actors (and our Ray)."""
        with self._lock:
            runtime, self._runtime = self._runtime, None
            metrics, self._metrics = self._metrics, None
        self._stopped.set()
        if metrics is not None:
            metrics.stop()
        if runtime is not None:
            runtime.stop()

    @property
    def serving(self) -> bool:
        return self._runtime is not None

    # ---- casts from the driver --------------------------------------------------------------

    def _live(self) -> Any:
        runtime = self._runtime
        if runtime is None:
            raise NotServingError("the server is not serving; call start() or serve() first")
        return runtime

    def broadcast(self, event: str, data: Any) -> None:
        """Send to every socket of the cluster (and to the bridges). Thread-safe, non-blocking."""
        frame = encode(event, data)
        self._live().cast(StartBroadcast(frame, True))

    def roomcast(self, room: str, event: str, data: Any) -> None:
        """Send to every member of ``room`` in the cluster (and to the bridges)."""
        check_room(room)
        frame = encode(event, data)
        self._live().cast(StartRoomcast(room, frame, True))

    def socketcast(self, socket_id: str, event: str, data: Any) -> None:
        """Send to one socket anywhere in the cluster."""
        self.roomcast(socket_room(socket_id), event, data)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until casts made so far have left the driver and the gateways' queues."""
        self._live().flush(timeout)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-gateway counters: sockets, rooms, ignored frames, handler errors, slow consumers..."""
        return self._live().stats()

    def socket_ids(self) -> list[str]:
        return self._live().socket_ids()


def _read_static(static_dir: str | Path | None) -> dict[str, bytes]:
    """Load a static site into memory so every gateway, on any node, can serve it."""
    if static_dir is None:
        return {}
    root = Path(static_dir)
    if not root.is_dir():
        raise ConfigError(f"static_dir {str(root)!r} is not a directory")
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            total += len(data)
            if total > MAX_STATIC_BYTES:
                raise ConfigError(
                    f"static_dir holds more than {MAX_STATIC_BYTES >> 20} MiB; serve it elsewhere"
                )
            files[path.relative_to(root).as_posix()] = data
    return files

