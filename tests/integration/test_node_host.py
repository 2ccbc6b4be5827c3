"""host="node" (`sacsock serve --host node`): each gateway binds its own Ray node's address."""

from __future__ import annotations

import socket

import pytest
import ray
from sacclient import SacClient

from sacsock_actors import SocketServer

pytestmark = pytest.mark.integration


async def test_host_node_binds_the_ray_node_address(serve):
    server = SocketServer()

    @server.on("echo")
    async def echo(sock, data):
        sock.emit("echo", data)

    served = serve(server, host="node")
    node_ip = ray.util.get_node_ip_address()
    assert [i["address"] for i in served.infos] == [node_ip]
    client = await SacClient.connect(f"http://{node_ip}:{served.port}/socket")
    assert (await client.call("echo", "hi")).text == "hi"
    await client.close()
    if node_ip != "127.0.0.1":  # bound to the node's address only, not every address
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", served.port), timeout=5):
            pass
