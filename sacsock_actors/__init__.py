"""sacsock_actors: a Sacrificial-Socket websocket server on Ray.

    from sacsock_actors import SocketServer

    server = SocketServer()

    @server.on("echo")
    def echo(socket, data: bytes):
        socket.emit("echo", data.decode())

    server.serve(port=8080)
"""

from ._version import __version__
from .errors import (
    ConfigError,
    EncodeError,
    InvalidEventName,
    InvalidRoomName,
    LimitExceeded,
    NotServingError,
    SacSockError,
)
from .gateways.socket import Socket
from .options import ServerOptions, allow_origins, same_origin
from .server import SocketServer

__all__ = [
    "ConfigError",
    "EncodeError",
    "InvalidEventName",
    "InvalidRoomName",
    "LimitExceeded",
    "NotServingError",
    "SacSockError",
    "ServerOptions",
    "Socket",
    "SocketServer",
    "allow_origins",
    "same_origin",
    "__version__",
]
