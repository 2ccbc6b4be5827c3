"""The ``sacsock`` command: ``sacsock serve MODULE:ATTR`` and ``sacsock demo``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import ConfigError
from .server import SocketServer

log = logging.getLogger("sacsock")


def load_app(target: str) -> tuple[SocketServer, Any]:
    """Import ``MODULE:ATTR`` from the current directory (as uvicorn does)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected MODULE:ATTR (like app:server), got {target!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    module = importlib.import_module(module_name)
    server = getattr(module, attr, None)
    if not isinstance(server, SocketServer):
        raise ConfigError(f"{target} is {type(server).__name__}, not a SocketServer")
    return server, module


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sacsock", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; 'node': its Ray node's address)")
        p.add_argument("--port", type=int, default=port)
        p.add_argument("--path", default="/socket", help="websocket path (default /socket)")
        p.add_argument("--gateways", type=int, default=1, help="gateway actors sharing the port")
        p.add_argument("--gateways-per-node", type=int, default=None,
                       help="put this many gateways on every node of the cluster instead")
        p.add_argument("--address", default=None,
                       help="Ray cluster to attach to ('auto' or ray://...); default: start a local Ray")
        p.add_argument("--room-shards", type=int, default=None)
        p.add_argument("--shard-placement", choices=("auto", "spread"), default=None,
                       help="spread: shards round-robin over the nodes (re-created elsewhere if one dies)")
        p.add_argument("--max-message-size", type=int, default=None, help="bytes (default 1 MiB)")
        p.add_argument("--allowed-origin", action="append", default=None,
                       help="origin allowed besides same-origin; repeat, or '*' for any")
        p.add_argument("--redis", default=None, metavar="URL",
                       help="federate over Redis (redis://[:password@]host:port/db or rediss://...)")
        p.add_argument("--mongo", default=None, metavar="URL",
                       help="federate over MongoDB (mongodb://[user:password@]host:port/...)")
        p.add_argument("--mongo-poll", type=float, default=None, metavar="SECONDS",
                       help="MongoDB bridge poll interval (default 0.25)")
        p.add_argument("--server-group", default=None, help="bridge server group (Redis, MongoDB)")
        p.add_argument("--server-name", default=None, help="bridge server name (default: random)")
        grpc = p.add_argument_group("gRPC bridge (a peer mesh with Go ssgrpc instances)")
        grpc.add_argument("--grpc-listen", default=None, metavar="HOST:PORT",
                          help="serve the gRPC bridge here (one listener for the whole cluster)")
        grpc.add_argument("--grpc-peer", action="append", default=None, metavar="[CN@]HOST:PORT",
                          help="a peer to send casts to; repeat for each")
        grpc.add_argument("--grpc-cert", default=None, metavar="FILE", help="shared TLS certificate (PEM)")
        grpc.add_argument("--grpc-key", default=None, metavar="FILE", help="its private key (PEM)")
        grpc.add_argument("--grpc-shared-key-file", default=None, metavar="FILE",
                          help=f"file holding the HS256 token key (or set {GRPC_KEY_ENV})")
        grpc.add_argument("--grpc-insecure", action="store_true",
                          help="plaintext, no authentication: development only")
        p.add_argument("--metrics-port", type=int, default=None,
                       help="serve Prometheus metrics of every gateway at :PORT/metrics (default: off)")
        p.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics port")
        p.add_argument("--access-log", action="store_true",
                       help="log one line per HTTP request and upgrade (default: off)")
        p.add_argument("--gateway-transport", choices=("stream", "ray"), default=None,
                       help="casts between gateways: an authenticated TCP stream per pair, or Ray calls")
        p.add_argument("--drain-timeout", type=float, default=30.0,
                       help="on SIGTERM, seconds to let queued frames flush before the 1001 closes")
        p.add_argument("-v", "--verbose", action="store_true")

    serve = sub.add_parser("serve", help="serve MODULE:ATTR (a SocketServer)")
    serve.add_argument("app", help="MODULE:ATTR, imported from the current directory")
    serve.add_argument("--static", default=None, help="directory of static files served at /")
    common(serve, 8080)
    demo = sub.add_parser("demo", help="run the chat demo (shipped in the package) on a local Ray")
    common(demo, 8080)
    return parser


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.room_shards is not None:
        opts["room_shards"] = args.room_shards
    if args.shard_placement is not None:
        opts["shard_placement"] = args.shard_placement
    if args.max_message_size is not None:
        opts["max_message_size"] = args.max_message_size
    if args.allowed_origin:
        opts["allowed_origins"] = tuple(args.allowed_origin)
    if args.access_log:
        opts["access_log"] = True
    if args.gateway_transport is not None:
        opts["gateway_transport"] = args.gateway_transport
    return opts


def _redis_bridge(args: argparse.Namespace) -> Any:
    try:
        from .bridges import RedisBridge
    except ImportError as exc:
        raise ConfigError(f"--redis needs redis-py: pip install 'sacsock_actors[redis]' ({exc})") from None
    kwargs = {"server_group": args.server_group} if args.server_group else {}
    return RedisBridge(args.redis, server_name=args.server_name, **kwargs)


def _mongo_bridge(args: argparse.Namespace) -> Any:
    try:
        from .bridges import MongoBridge
    except ImportError as exc:
        raise ConfigError(f"--mongo needs pymongo: pip install 'sacsock_actors[mongo]' ({exc})") from None
    kwargs: dict[str, Any] = {"server_group": args.server_group} if args.server_group else {}
    if args.mongo_poll is not None:
        kwargs["poll_interval"] = args.mongo_poll
    return MongoBridge(args.mongo, server_name=args.server_name, **kwargs)


GRPC_KEY_ENV = "SACSOCK_GRPC_SHARED_KEY"


def _grpc_shared_key(args: argparse.Namespace) -> bytes | None:
    """From --grpc-shared-key-file (one trailing newline dropped) or the environment; never
    from a flag value, so it shows in no process list and no log."""
    if args.grpc_shared_key_file:
        try:
            key = Path(args.grpc_shared_key_file).read_bytes()
        except OSError as exc:
            # the path is not echoed: a key mistakenly given in its place must not be printed
            raise ConfigError(f"cannot read the file given to --grpc-shared-key-file: "
                              f"{exc.strerror}") from None
        key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
        if not key:
            raise ConfigError("the file given to --grpc-shared-key-file is empty")
        return key
    env = os.environ.get(GRPC_KEY_ENV)
    return env.encode("utf-8") if env else None


def _grpc_bridge(args: argparse.Namespace) -> Any:
    try:
        from .bridges import GrpcBridge
    except ImportError as exc:
        raise ConfigError(f"--grpc-listen needs grpcio: pip install 'sacsock_actors[grpc]' ({exc})") from None
    if args.grpc_insecure:
        return GrpcBridge(args.grpc_listen, args.grpc_peer or [], insecure=True)
    key = _grpc_shared_key(args)
    if not (args.grpc_cert and args.grpc_key and key):
        raise ConfigError(f"the gRPC bridge needs --grpc-cert, --grpc-key and a shared key "
                          f"(--grpc-shared-key-file or {GRPC_KEY_ENV}); or --grpc-insecure for development")
    return GrpcBridge(args.grpc_listen, args.grpc_peer or [], cert_file=args.grpc_cert,
                      key_file=args.grpc_key, shared_key=key)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    began = time.monotonic()
    try:
        if args.command == "demo":
            from . import demo  # the chat example, shipped in the package

            server, _ = load_app(demo.APP)
            static = str(demo.STATIC_DIR)
        else:
            server, _ = load_app(args.app)
            static = args.static
        if args.redis:
            server.set_multihome_backend(_redis_bridge(args))
        if args.mongo:
            server.set_multihome_backend(_mongo_bridge(args))
        elif args.mongo_poll is not None:
            raise ConfigError("--mongo-poll needs --mongo URL")
        if args.grpc_listen:
            server.set_multihome_backend(_grpc_bridge(args))
        elif args.grpc_peer or args.grpc_insecure or args.grpc_cert or args.grpc_key:
            raise ConfigError("the --grpc-* options need --grpc-listen HOST:PORT")
        server.serve(
            host=args.host, port=args.port, path=args.path, gateways=args.gateways,
            static_dir=static, address=args.address, gateways_per_node=args.gateways_per_node,
            on_ready=lambda: log.info("ready in %.1f s", time.monotonic() - began),
            metrics_port=args.metrics_port, metrics_host=args.metrics_host,
            drain_timeout=args.drain_timeout,
            **_options(args),
        )
    except ConfigError as exc:
        print(f"sacsock: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
