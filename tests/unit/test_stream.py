"""Gateway streams over real localhost TCP in one event loop (no Ray: the Ray path is a
recording fake). Handshake, refusal, order across path switches, loss and reconnect."""

import asyncio
import time
from collections import Counter

import pytest

from sacsock_actors import streamcodec as codec
from sacsock_actors.batching import Outbox
from sacsock_actors.gateways.stream import PeerStream, StreamLost, StreamServer
from sacsock_actors.ops import Deliver, DeliverAll

SECRET = b"s" * 32


async def until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


class Peer:
    """A receiving gateway: its stream server and what reached it by either path."""

    def __init__(self, secret: bytes = SECRET, **kw) -> None:
        self.got: list = []
        self.via_ray = 0
        self.stats: Counter[str] = Counter()
        self.server = StreamServer(secret, self.got.extend, self.stats, **kw)
        self.address = None

    async def start(self):
        self.address = list(await self.server.start("127.0.0.1"))

    async def ray_receive(self, batch):
        self.via_ray += len(batch)
        self.got.extend(batch)

    async def ask(self):
        return self.address


def link(peer: Peer, secret: bytes = SECRET, **kw) -> tuple[PeerStream, Counter]:
    stats: Counter[str] = Counter()
    stream = PeerStream("gw-0", "gw-1", secret, peer.ray_receive, peer.ask, stats, **kw)
    return stream, stats


def casts(a: int, b: int) -> list:
    return [Deliver("r", f"{i}".encode()) for i in range(a, b)]


async def test_casts_go_over_ray_until_the_stream_is_up_then_over_it():
    peer = Peer()
    await peer.start()
    stream, stats = link(peer)
    await stream.send(casts(0, 3))  # lazily starts connecting; this batch goes over Ray
    assert peer.via_ray == 3 and stats["stream_fallback_batches"] == 1
    await until(lambda: stream.is_open)
    await stream.send(casts(3, 5) + [DeliverAll(b"all")])
    assert peer.got == casts(0, 5) + [DeliverAll(b"all")]
    assert peer.via_ray == 3
    assert stats["stream_batches_out"] == 1 and stats["stream_ops_out"] == 3
    assert peer.stats["stream_accepted"] == 1 and peer.stats["stream_batches_in"] == 1
    stream.close()
    peer.server.close()


async def test_order_holds_across_the_switch_to_the_stream():
    peer = Peer()
    await peer.start()
    stream, stats = link(peer)
    out = Outbox(stream.send)
    for i in range(2000):
        out.put(Deliver("r", str(i).encode()))
        if i % 50 == 0:
            await asyncio.sleep(0)  # let batches go while more are put
    await out.flush()
    assert peer.got == casts(0, 2000)
    assert peer.via_ray > 0 and stats["stream_ops_out"] > 0, (peer.via_ray, stats)
    stream.close()
    peer.server.close()


async def test_a_wrong_secret_is_refused_counted_and_casts_still_arrive_over_ray():
    peer = Peer()
    await peer.start()
    stream, stats = link(peer, b"w" * 32, backoff_base=0.01, backoff_cap=0.02)
    for i in range(5):
        await stream.send(casts(i, i + 1))
        await until(lambda: stream._connecting is None)
    await until(lambda: peer.stats["stream_auth_failed"] >= 1)
    assert not stream.is_open
    assert peer.got == casts(0, 5) and peer.via_ray == 5
    assert stats["stream_connect_failures"] >= 1
    assert peer.stats["stream_batches_in"] == 0
    stream.close()
    peer.server.close()


async def test_a_server_without_the_secret_is_not_trusted():
    taken: list[bytes] = []

    async def impostor(reader, writer):  # challenges, takes the answer, cannot prove the key
        writer.write(codec.challenge(b"n" * 16))
        taken.append(await reader.read(400))
        writer.write(b"p" * codec.MAC_SIZE)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    real = Peer()
    real.address = list(server.sockets[0].getsockname()[:2])
    stream, stats = link(real)
    await stream.send(casts(0, 1))
    await until(lambda: stats["stream_connect_failures"] >= 1)
    assert stats["stream_auth_failed"] == 1 and not stream.is_open
    assert taken and real.got == casts(0, 1)
    await stream.send(casts(1, 2))  # still over Ray, nothing sent to the impostor
    assert real.got == casts(0, 2)
    stream.close()
    server.close()


@pytest.mark.parametrize(
    "data", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"SSG1" + b"\0" * 16 + b"\x03gw1" + b"\0" * 32]
)
async def test_unauthenticated_clients_are_closed_and_counted(data):
    peer = Peer()
    await peer.start()
    reader, writer = await asyncio.open_connection(*peer.address)
    assert (await reader.readexactly(codec.CHALLENGE_SIZE))[:4] == codec.MAGIC
    writer.write(data)
    assert await reader.read() == b""  # closed by the server
    assert peer.stats["stream_auth_failed"] == 1 and peer.got == []
    writer.close()
    peer.server.close()


async def test_a_silent_client_is_closed_after_the_handshake_timeout():
    peer = Peer(handshake_timeout=0.2)
    await peer.start()
    reader, writer = await asyncio.open_connection(*peer.address)
    await asyncio.wait_for(reader.read(), 20)  # challenge, then EOF
    await until(lambda: peer.stats["stream_auth_failed"] == 1)
    writer.close()
    peer.server.close()


async def test_bad_batch_after_the_handshake_closes_and_counts():
    peer = Peer()
    await peer.start()
    reader, writer = await asyncio.open_connection(*peer.address)
    nonce = codec.parse_challenge(await reader.readexactly(codec.CHALLENGE_SIZE))
    writer.write(codec.response(SECRET, nonce, b"c" * 16, "gw-9"))
    await reader.readexactly(codec.MAC_SIZE)
    writer.write(b"\0\0\0\x0d" + b"\0" * 12 + b"\x07")  # one op of an unknown kind
    assert await reader.read() == b""
    assert peer.stats["stream_bad_frames"] == 1 and peer.got == []
    writer.close()
    peer.server.close()


async def test_a_batch_unacked_when_the_stream_breaks_fails_then_ray_then_reconnect():
    peer = Peer()
    await peer.start()
    stream, stats = link(peer, backoff_base=0.01, backoff_cap=0.05)
    await stream.send(casts(0, 1))
    await until(lambda: stream.is_open)

    def die(ops):  # the peer goes away while applying: no ack
        peer.server.close()

    peer.server.apply = die
    with pytest.raises(StreamLost):
        await stream.send(casts(1, 2))  # the Outbox counts this batch lost
    assert stats["stream_disconnects"] == 1 and not stream.is_open
    # a restarted peer: a new listener on a new port, asked for over Ray
    peer2 = Peer()
    await peer2.start()
    peer.address = peer2.address
    await stream.send(casts(2, 3))  # over Ray meanwhile
    assert peer.got[-1:] == casts(2, 3)
    await until(lambda: stream._connecting is None and time.monotonic() >= stream._retry_at)
    deadline = time.monotonic() + 20
    while not stream.is_open:
        assert time.monotonic() < deadline
        await stream.send([])
        await asyncio.sleep(0.02)
    await stream.send(casts(3, 4))
    assert peer2.got[-1:] == casts(3, 4)
    assert stats["stream_connects"] == 2
    stream.close()
    peer2.server.close()


def test_secrets_never_show_in_reprs():
    async def main():
        peer = Peer()
        stream, _ = link(peer)
        assert "s" * 16 not in repr(stream) + repr(peer.server)

    asyncio.run(main())


async def test_too_many_pending_handshakes_are_closed_at_once(monkeypatch):
    from sacsock_actors.gateways import stream as stream_mod

    monkeypatch.setattr(stream_mod, "MAX_PENDING_HANDSHAKES", 2)
    peer = Peer()
    await peer.start()
    waiting = [await asyncio.open_connection(*peer.address) for _ in range(2)]
    for reader, _ in waiting:
        await reader.readexactly(codec.CHALLENGE_SIZE)
    reader, writer = await asyncio.open_connection(*peer.address)
    assert await asyncio.wait_for(reader.read(), 20) == b""  # no challenge: closed
    assert peer.stats["stream_auth_failed"] == 1
    for _, w in [*waiting, (reader, writer)]:
        w.close()
    peer.server.close()


async def test_closing_a_stream_mid_handshake_leaves_no_connection_open():
    answered, ended = asyncio.Event(), asyncio.Event()

    async def stalls(reader, writer):  # challenges, takes the answer, never proves itself
        writer.write(codec.challenge(b"n" * 16))
        await reader.read(400)
        answered.set()
        await reader.read()  # until the other side closes
        ended.set()
        writer.close()

    server = await asyncio.start_server(stalls, "127.0.0.1", 0)
    peer = Peer()
    peer.address = list(server.sockets[0].getsockname()[:2])
    stream, stats = link(peer)
    await stream.send(casts(0, 1))  # over Ray; starts connecting
    await asyncio.wait_for(answered.wait(), 20)  # connected, waiting for the server's proof
    stream.close()
    await asyncio.wait_for(ended.wait(), 20)
    assert stats["stream_connects"] == 0 and peer.got == casts(0, 1)
    server.close()
