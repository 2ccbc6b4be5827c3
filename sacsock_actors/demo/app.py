"""Chat: rooms, messages, and who is here, on sacsock_actors.

    sacsock demo --port 8080          # from any directory: the page ships in the package
    open http://127.0.0.1:8080/

On connect the server sends "rooms". Events from the browser (payloads as static/chat.js sends them):

    hello    "<name>"                     set your display name; answered with "welcome"
    rooms    ""                           answered with "rooms": [{name, count}]
    join     "<room>"                     answered with "joined"; the room gets "members"
    leave    "<room>"                     answered with "left"; the room gets "members"
    who      "<room>"                     answered with "members": {room, version, members}
    message  {"room": r, "text": t}       the room gets "message": {room, id, name, text, ts}

Handlers run in the gateway actors, and there may be several of them (``--gateways N``),
each with its own copy of this module's globals. So the list of who is in which room lives
in ONE place: a small named Ray actor running :class:`Directory`, created on first use
by whichever gateway needs it first. The sockets' room memberships themselves are
sacsock rooms, so messages fan out through the server's room shards as usual.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sacsock_actors import Socket, SocketServer

DEFAULT_ROOMS = ("lobby", "random", "help")
MAX_NAME = 32
MAX_ROOM = 40
MAX_TEXT = 2000
DIRECTORY_ACTOR = "sacsock-chat-directory"

server = SocketServer()


class Directory:
    """Display names and room members for the whole cluster. Plain Python (tested alone)."""

    def __init__(self, default_rooms: tuple[str, ...] = DEFAULT_ROOMS) -> None:
        self.default_rooms = tuple(default_rooms)
        self.names: dict[str, str] = {}
        self.rooms: dict[str, dict[str, None]] = {}  # room -> member ids, in joining order
        self.versions: dict[str, int] = {}  # room -> change counter, so clients keep the newest

    def hello(self, sid: str, name: str) -> list[dict]:
        """Set a name; returns the member lists of the rooms ``sid`` is in (they changed)."""
        self.names[sid] = name
        return [self._changed(room) for room, members in self.rooms.items() if sid in members]

    def name_of(self, sid: str) -> str:
        return self.names.get(sid) or "guest-" + sid[:4]

    def join(self, sid: str, room: str) -> dict:
        self.rooms.setdefault(room, {})[sid] = None
        return self._changed(room)

    def leave(self, sid: str, room: str) -> dict | None:
        members = self.rooms.get(room)
        if members is None or sid not in members:
            return None
        del members[sid]
        if not members:
            del self.rooms[room]
        return self._changed(room)

    def drop(self, sid: str) -> list[dict]:
        """Forget a socket that disconnected; returns the member lists that changed."""
        self.names.pop(sid, None)
        changed = [self.leave(sid, room) for room in [r for r, m in self.rooms.items() if sid in m]]
        return [c for c in changed if c is not None]

    def members(self, room: str) -> dict:
        members = self.rooms.get(room, {})
        return {
            "room": room,
            "version": self.versions.get(room, 0),
            "members": [{"id": sid, "name": self.name_of(sid)} for sid in members],
        }

    def room_list(self) -> list[dict]:
        names = list(self.default_rooms) + sorted(r for r in self.rooms if r not in self.default_rooms)
        return [{"name": r, "count": len(self.rooms.get(r, ()))} for r in names]

    def _changed(self, room: str) -> dict:
        self.versions[room] = self.versions.get(room, 0) + 1
        return self.members(room)


# ---- the directory, reached from any gateway ------------------------------------------------

_directory: Any = None  # a Directory, or a handle to the directory actor


async def call(method: str, *args: Any) -> Any:
    """``Directory.<method>(*args)`` on the cluster's one directory actor (a local one without Ray)."""
    global _directory
    import ray

    if not ray.is_initialized():  # imported and driven without a cluster (tests, REPL)
        if _directory is None:
            _directory = Directory()
        return getattr(_directory, method)(*args)
    for attempt in (1, 2):
        if _directory is None:
            _directory = (
                ray.remote(num_cpus=0)(Directory)
                .options(name=DIRECTORY_ACTOR, get_if_exists=True, max_restarts=0)
                .remote()
            )
        try:
            return await getattr(_directory, method).remote(*args)
        except ray.exceptions.RayActorError:
            # Its owner (the gateway that created it) went away; start over, once.
            _directory = None
            if attempt == 2:
                raise


# ---- input checks ----------------------------------------------------------------------------


def clean_name(data: bytes) -> str:
    return " ".join(data.decode("utf-8", "replace").split())[:MAX_NAME]


def clean_room(data: bytes | str) -> str | None:
    """A room name a user may use, or None. Names starting with "__" are reserved: the server
    puts every socket in "__socket_id:<id>", and joining someone's id room would let one
    read their private messages."""
    room = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    room = " ".join(room.split())
    if not room or len(room) > MAX_ROOM or room.startswith("__"):
        return None
    return room


def notice(socket: Socket, text: str) -> None:
    socket.emit("notice", {"level": "error", "text": text})


async def announce(socket: Socket, changed: list[dict]) -> None:
    """Tell each changed room its member list, and everyone the room list."""
    for members in changed:
        socket.roomcast(members["room"], "members", members)
    socket.broadcast("rooms", await call("room_list"))


# ---- handlers ----------------------------------------------------------------------------------


@server.on("hello")
async def hello(socket: Socket, data: bytes) -> None:
    name = clean_name(data) or "guest-" + socket.id[:4]
    changed = await call("hello", socket.id, name)
    socket.emit("welcome", {"id": socket.id, "name": name, "rooms": await call("room_list")})
    for members in changed:
        socket.roomcast(members["room"], "members", members)


@server.on("rooms")
async def rooms(socket: Socket, data: bytes) -> None:
    socket.emit("rooms", await call("room_list"))


@server.on("join")
async def join(socket: Socket, data: bytes) -> None:
    room = clean_room(data)
    if room is None:
        return notice(socket, f"a room name is 1-{MAX_ROOM} characters and does not start with __")
    socket.join(room)
    members = await call("join", socket.id, room)
    socket.emit("joined", {"room": room})
    await announce(socket, [members])


@server.on("leave")
async def leave(socket: Socket, data: bytes) -> None:
    room = clean_room(data)
    if room is None or not socket.in_room(room):
        return
    socket.leave(room)
    socket.emit("left", {"room": room})
    changed = await call("leave", socket.id, room)
    await announce(socket, [changed] if changed else [])


@server.on("who")
async def who(socket: Socket, data: bytes) -> None:
    room = clean_room(data)
    if room is not None:
        socket.emit("members", await call("members", room))


@server.on("message")
async def message(socket: Socket, data: bytes) -> None:
    try:
        msg = json.loads(data)
        room, text = clean_room(msg["room"]), str(msg["text"]).strip()
    except (ValueError, KeyError, TypeError):
        return notice(socket, 'send {"room": ..., "text": ...}')
    if room is None or not socket.in_room(room):
        return notice(socket, f"join {room!r} before writing to it")
    if not text:
        return
    name = await call("name_of", socket.id)
    stamp = int(time.time() * 1000)
    out = {"room": room, "id": socket.id, "name": name, "text": text[:MAX_TEXT], "ts": stamp}
    socket.roomcast(room, "message", out)


@server.on_connect
async def arrived(socket: Socket) -> None:
    socket.emit("rooms", await call("room_list"))


@server.on_disconnect
async def gone(socket: Socket) -> None:
    await announce(socket, await call("drop", socket.id))
