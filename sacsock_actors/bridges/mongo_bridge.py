"""MongoBridge: federate over MongoDB, document-compatible with Go ``ssmongo``.

    from sacsock_actors.bridges import MongoBridge
    server.set_multihome_backend(MongoBridge("mongodb://user:secret@10.0.0.5:27017"))

Like upstream it polls (no change streams): every instance of a server group keeps a presence
document in ``SSMultihome.ss.activeServers``; a cast becomes one document per other server
of the group in ``ss.roomcasts`` / ``ss.broadcasts``; each server polls for the documents
addressed to it and marks them read. The documents are in ``mongo_codec``. The bridge runs
in the cluster's BridgeActor, so the whole Ray cluster is one instance with one server name.
It uses pymongo's own asyncio client (``AsyncMongoClient``).

Better than upstream:

- Publishing is batched per tick: while one insert is in flight the next casts queue up;
  a tick inserts every document of the tick with one unordered ``insert_many`` per
  collection, addressed to the group's active servers as the last poll read them (read
  with every poll, alongside its finds: a server that joins or leaves is addressed or
  dropped from the next poll on, one interval at most; upstream reads them per cast,
  which costs every cast a round trip). Order is not lost: every document carries a
  client-made ``_id`` (increasing in this process) and readers sort by ``(Expire, _id)``.
- Receiving: one ``find`` per collection per poll, both collections at once, merged in
  ``(Expire, _id)`` order (so a Python publisher's roomcasts and broadcasts keep their
  order); marking read is one ``update_many`` by ``_id`` list per collection, sent with the
  next poll's ``find`` (so a poll costs one round trip per collection); a backlog (more
  than 64 documents) is marked first, in one unordered bulk write of ``_id`` updates. The poll interval
  is fixed: backing off while idle would break the latency goal (p50 <= interval/2).

Faults (MongoDB down at start or later): ``start()`` returns within ``start_wait`` seconds;
local serving is never affected. Casts wait in a bounded buffer (``buffer_limit``); beyond
it they are dropped and counted (``dropped_buffer_full``). Polling and inserting retry with
capped exponential backoff with jitter; after a reconnect the indexes and the presence
document are written again. Delivery is AT-MOST-ONCE per cast and target, and a cast lost
only when the buffer overflows (or this process ends):

- an insert that failed is retried with the SAME ``_id``s; copies that did reach MongoDB
  are refused as duplicate keys, so a retry never makes a second document;
- a document is delivered once: its ``_id`` is remembered from delivery until MongoDB has
  confirmed it read, and a later poll that still finds it (marking failed) skips it.

Malformed documents (``mongo_codec.REASONS``) are counted per reason, logged (rate-limited),
marked read and skipped. Credentials in the URL are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter, deque
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import BulkWriteError, ConfigurationError, InvalidURI, PyMongoError
from pymongo.uri_parser import parse_uri

from ..errors import ConfigError
from ..logs import Throttle
from .base import Bridge, Cast, Deliver
from .mongo_codec import (
    ACTIVE_SERVERS,
    BROADCASTS,
    COLLECTIONS,
    DATABASE,
    DEFAULT_SERVER_GROUP,
    EXPIRE_AFTER,
    INDEXES,
    PRESENCE_EVERY,
    REASONS,
    RECEIVE_SORT,
    ROOMCASTS,
    InvalidDocument,
    MongoCodec,
    mark_read_update,
    mask_url,
    utcnow,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "mongodb://127.0.0.1:27017"
_SCHEMES = ("mongodb://", "mongodb+srv://")
_ERRORS = (PyMongoError, OSError, asyncio.TimeoutError)
_DUPLICATE_KEY = 11000
_PIPELINE_MARKS = 64  # read marks sent alongside the next poll's finds up to this many


class MongoBridge(Bridge):
    """A Bridge over MongoDB (see the module docstring).

    ``server_name`` must be unique in the group (default: 32 random hex chars, as upstream).
    ``poll_interval`` is upstream's poll frequency in seconds. Tunables are keyword-only:
    ``buffer_limit`` casts wait while MongoDB is away; ``op_timeout`` bounds one operation
    (and server selection); reconnect delays grow from ``reconnect_min`` to
    ``reconnect_max`` seconds; ``start_wait`` bounds how long ``start()`` waits for the
    first contact; ``max_batch`` documents at most are read per collection per poll.
    """

    name = "mongo"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        server_group: str = DEFAULT_SERVER_GROUP,
        server_name: str | None = None,
        poll_interval: float = 0.25,
        database: str = DATABASE,
        buffer_limit: int = 10_000,
        op_timeout: float = 5.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
        start_wait: float = 10.0,
        max_batch: int = 1000,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(_SCHEMES):
            raise ConfigError(
                f"a MongoDB URL must start with mongodb:// or mongodb+srv://, got {mask_url(str(url))!r}"
            )
        if url.startswith("mongodb://"):  # +srv would resolve DNS here; the client checks it
            try:
                parse_uri(url)
            except (InvalidURI, ConfigurationError, ValueError) as exc:
                raise ConfigError(f"bad MongoDB URL {mask_url(url)!r}: {_masked(exc, url)}") from None
        if not server_group:
            raise ConfigError("server_group must not be empty")
        if server_name is not None and not server_name:
            raise ConfigError("server_name must not be empty (None: generate one)")
        if not poll_interval > 0:
            raise ConfigError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        if not database:
            raise ConfigError("database must not be empty")
        if buffer_limit < 1 or max_batch < 1:
            raise ConfigError("buffer_limit and max_batch must be >= 1")
        if not 0 < reconnect_min <= reconnect_max:
            raise ConfigError("need 0 < reconnect_min <= reconnect_max")
        self.url = url
        self.server_group = server_group
        self.server_name = server_name or secrets.token_hex(16)
        self.poll_interval = float(poll_interval)
        self.database = database
        self.buffer_limit = buffer_limit
        self.op_timeout = op_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.start_wait = start_wait
        self.max_batch = max_batch
        self.codec = MongoCodec(server_group, self.server_name)
        self._reset_runtime()

    _CONFIG = ("url", "server_group", "server_name", "poll_interval", "database", "buffer_limit",
               "op_timeout", "reconnect_min", "reconnect_max", "start_wait", "max_batch")

    def _reset_runtime(self) -> None:
        self.counts: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self._client: Any = None
        self._db: Any = None
        self._deliver: Deliver | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping: asyncio.Event | None = None
        self._up: asyncio.Event | None = None  # set while MongoDB answers
        self._first_attempt: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None  # casts are waiting
        self._outbox: deque[Cast] = deque()
        self._retry: list[tuple[str, list[dict[str, Any]]]] = []  # a failed tick, same _ids
        self._retry_casts = 0
        # _id -> (poll number its read mark was confirmed in, or -1; when delivered)
        self._seen: dict[str, dict[ObjectId, tuple[int, float]]] = {ROOMCASTS: {}, BROADCASTS: {}}
        self._poll_no = 0
        self._to_mark: dict[str, list[ObjectId]] = {ROOMCASTS: [], BROADCASTS: []}
        self._ever_up = False
        self._needs_setup = True
        self._peers = 0
        self._targets: list[str] | None = None  # the other servers of the group, last poll
        self._throttle = Throttle(log)

    # the bridge is pickled into its actor: only the configuration travels
    def __getstate__(self) -> dict[str, Any]:
        return {k: self.__dict__[k] for k in self._CONFIG}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.codec = MongoCodec(self.server_group, self.server_name)
        self._reset_runtime()

    def __repr__(self) -> str:
        return (f"MongoBridge({mask_url(self.url)!r}, server_group={self.server_group!r}, "
                f"server_name={self.server_name!r}, poll_interval={self.poll_interval!r})")

    @property
    def connected(self) -> bool:
        """True while MongoDB answers the polls."""
        return self._up is not None and self._up.is_set()

    # ---- Bridge interface -----------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        if self._tasks:
            return
        self._deliver = deliver
        self._stopping = asyncio.Event()
        self._up = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._wake = asyncio.Event()
        ms = int(self.op_timeout * 1000)
        self._client = AsyncMongoClient(
            self.url, tz_aware=True, retryWrites=False, appname="sacsock_actors",
            serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms,
        )
        self._db = self._client[self.database]
        log.info("mongo bridge: server %s in group %s, url %s, poll every %.3f s",
                 self.server_name, self.server_group, mask_url(self.url), self.poll_interval)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll_loop()), loop.create_task(self._publish_loop()),
                       loop.create_task(self._presence_loop())]
        try:
            await asyncio.wait_for(self._first_attempt.wait(), self.start_wait)
        except asyncio.TimeoutError:
            pass
        if not self.connected:
            log.warning("mongo bridge: MongoDB at %s not reachable yet; serving anyway, still trying",
                        mask_url(self.url))

    async def publish(self, casts: list[Cast]) -> None:
        """Queue casts for the next tick (never waits on MongoDB)."""
        room = self.buffer_limit - len(self._outbox) - self._retry_casts
        if len(casts) > room:
            dropped = len(casts) - max(room, 0)
            self.counts["dropped_buffer_full"] += dropped
            self._throttle.log(logging.WARNING, "full", "mongo bridge: buffer of %d casts full; %d dropped",
                               self.buffer_limit, dropped)
            casts = casts[: max(room, 0)]
        self._outbox.extend(casts)
        if casts and self._wake is not None:
            self._wake.set()

    async def shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._wake is not None:
            self._wake.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            # the publisher drains what it holds (bounded by op_timeout) before it ends
            done, pending = await asyncio.wait(tasks, timeout=self.op_timeout + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._db is not None and self.connected:
            try:
                await asyncio.wait_for(
                    self._db[ACTIVE_SERVERS].delete_many(self.codec.presence_key()), self.op_timeout)
            except _ERRORS as exc:
                log.warning("mongo bridge: could not remove the presence document: %r", exc)
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except _ERRORS as exc:
                log.debug("closing the mongo client: %r", exc)
        if self._up is not None:
            self._up.clear()
        nonzero = {k: v for k, v in self.stats().items() if v}
        log.info("mongo bridge %s stopped: %s", self.server_name, nonzero)

    def stats(self) -> dict[str, Any]:
        out = {k: self.counts[k] for k in (
            "published", "documents_inserted", "inserts", "received", "delivered", "duplicates_skipped",
            "polls", "reconnects", "dropped_buffer_full", "dropped_no_peers", "publish_errors",
            "poll_errors", "mark_errors", "unencodable", "documents_refused", "presence_errors",
        )}
        out["invalid"] = sum(self.invalid.values())
        for reason in REASONS:
            out[f"invalid_{reason}"] = self.invalid[reason]
        out["buffered"] = len(self._outbox) + self._retry_casts
        out["peers"] = self._peers
        out["connected"] = int(self.connected)
        return out

    # ---- connection state -----------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        return min(self.reconnect_max, self.reconnect_min * 2 ** min(failures, 30)) * random.uniform(0.5, 1.0)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when stopping."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    def _went_down(self, what: str, exc: BaseException) -> None:
        assert self._up is not None
        if self._up.is_set():
            log.warning("mongo bridge: lost MongoDB at %s (%s: %r); retrying with backoff",
                        mask_url(self.url), what, exc)
            self._up.clear()
            self._needs_setup = True
        else:
            self._throttle.log(logging.WARNING, "down", "mongo bridge: MongoDB at %s unreachable (%s: %r)",
                               mask_url(self.url), what, exc)

    async def _setup(self) -> None:
        """Indexes (as upstream) and our presence document; after every (re)connect."""
        for name in COLLECTIONS:
            for keys, options in INDEXES:
                await self._db[name].create_index(keys, **options)
        await self._beat()
        self._needs_setup = False

    async def _beat(self) -> None:
        await self._db[ACTIVE_SERVERS].update_one(
            self.codec.presence_key(), self.codec.presence_update(utcnow()), upsert=True)

    def _came_up(self) -> None:
        assert self._up is not None and self._first_attempt is not None
        if not self._up.is_set():
            if self._ever_up:
                self.counts["reconnects"] += 1
                log.warning("mongo bridge: MongoDB at %s is back", mask_url(self.url))
            else:
                log.info("mongo bridge: connected to %s", mask_url(self.url))
            self._ever_up = True
            self._up.set()
        self._first_attempt.set()

    async def _presence_loop(self) -> None:
        """Refresh our presence document every minute, as upstream (the poller writes it first)."""
        assert self._up is not None
        while not await self._sleep(PRESENCE_EVERY):
            if not self._up.is_set() or self._needs_setup:
                continue  # the poller writes it when MongoDB is back
            try:
                await asyncio.wait_for(self._beat(), self.op_timeout)
            except _ERRORS as exc:
                self.counts["presence_errors"] += 1
                self._went_down("presence", exc)

    # ---- receiving ------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        assert self._stopping is not None and self._first_attempt is not None
        failures = 0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            began = loop.time()
            try:
                if self._needs_setup:
                    await asyncio.wait_for(self._setup(), self.op_timeout * 4)
                more = await asyncio.wait_for(self._poll_once(), self.op_timeout)
                self._came_up()
                failures = 0
                if more:
                    continue  # a full batch: read on at once
                delay = max(0.0, self.poll_interval - (loop.time() - began))  # a fixed rate
            except _ERRORS as exc:
                self.counts["poll_errors"] += 1
                self._went_down("poll", exc)
                self._first_attempt.set()
                delay = self._backoff(failures)
                failures += 1
            except Exception:  # noqa: BLE001 - a bug must not end federation for good
                log.exception("mongo bridge: poll failed")
                delay = self._backoff(failures)
                failures += 1
            if await self._sleep(delay):
                return

    async def _poll_once(self) -> bool:
        """One poll: mark what the last poll delivered, read both collections, deliver in order."""
        self.counts["polls"] += 1
        self._poll_no += 1
        marks = [self._mark(name) for name in (ROOMCASTS, BROADCASTS) if self._to_mark[name]]
        if sum(map(len, self._to_mark.values())) > _PIPELINE_MARKS:
            # a backlog: mark first, then read on (a long $nin list would cost more)
            await asyncio.gather(*marks)
            marks = []
        # the finds skip what the marks sent alongside them mark read (not applied yet, maybe)
        rooms_skip, broads_skip = list(self._to_mark[ROOMCASTS]), list(self._to_mark[BROADCASTS])
        results = await asyncio.gather(
            self._find(ROOMCASTS, rooms_skip), self._find(BROADCASTS, broads_skip), self._load_peers(),
            *marks)
        rooms, broads = results[0], results[1]
        self._prune_seen()
        if not rooms and not broads:
            return False
        merged = [(d, ROOMCASTS) for d in rooms] + [(d, BROADCASTS) for d in broads]
        merged.sort(key=_order_key)
        for doc, name in merged:
            self._on_document(name, doc)
        return len(rooms) >= self.max_batch or len(broads) >= self.max_batch

    async def _load_peers(self) -> list[str]:
        """The other servers of the group (from presence documents)."""
        docs = await self._db[ACTIVE_SERVERS].find(
            self.codec.peers_filter(), {"ServerName": 1, "_id": 0}).to_list()
        self._targets = targets = self.codec.peer_names(docs)
        self._peers = len(targets)
        return targets

    async def _find(self, name: str, skip: list[ObjectId]) -> list[dict[str, Any]]:
        query = self.codec.unread_filter()
        if skip:
            query["_id"] = {"$nin": skip}
        cursor = self._db[name].find(query, sort=RECEIVE_SORT,
                                     limit=self.max_batch, batch_size=self.max_batch)
        return await cursor.to_list()

    async def _mark(self, name: str) -> None:
        ids, self._to_mark[name] = self._to_mark[name], []
        update = mark_read_update(utcnow())
        try:
            if len(ids) <= _PIPELINE_MARKS:  # the steady state: one statement
                await self._db[name].update_many({"_id": {"$in": ids}}, update)
            else:  # a backlog: still one round trip, but _id point updates (a long $in is a
                # scan per document on some servers, e.g. the in-memory test server)
                await self._db[name].bulk_write([UpdateOne({"_id": oid}, update) for oid in ids],
                                                ordered=False)
        except _ERRORS:
            self.counts["mark_errors"] += 1
            self._to_mark[name].extend(ids)  # again with the next poll; still skipped if found
            raise
        seen, poll_no = self._seen[name], self._poll_no
        for oid in ids:
            if oid in seen:
                seen[oid] = (poll_no, seen[oid][1])

    def _prune_seen(self) -> None:
        """Forget delivered ids no find can return any more: marked read before this poll's
        finds began, or older than a document's life (the TTL index has removed them)."""
        horizon = time.monotonic() - EXPIRE_AFTER.total_seconds() - 60
        for name, seen in self._seen.items():
            gone = [o for o, (marked, t) in seen.items() if 0 <= marked < self._poll_no or t < horizon]
            for oid in gone:
                del seen[oid]
            if gone and self._to_mark[name]:
                self._to_mark[name] = [o for o in self._to_mark[name] if o in seen]

    def _on_document(self, name: str, doc: dict[str, Any]) -> None:
        oid = doc.get("_id")
        seen = self._seen[name]
        if oid in seen:  # delivered before; its read mark is not confirmed or not visible yet
            self.counts["duplicates_skipped"] += 1
            return
        self.counts["received"] += 1
        if oid is not None:
            seen[oid] = (-1, time.monotonic())
            self._to_mark[name].append(oid)
        try:
            if oid is None:
                raise InvalidDocument("bad_field", "document without _id")
            cast = self.codec.decode(name, doc)
        except InvalidDocument as exc:
            self.invalid[exc.reason] += 1
            self._throttle.log(logging.WARNING, f"invalid:{exc.reason}",
                               "mongo bridge: skipped an invalid document in %s: %s (_id %s)", name, exc, oid)
            return
        self.counts["delivered"] += 1
        assert self._deliver is not None
        self._deliver(cast)

    # ---- publishing -------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        assert self._stopping is not None and self._wake is not None and self._up is not None
        failures = 0
        while True:
            if not self._outbox and not self._retry:
                if self._stopping.is_set():
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._up.is_set() and failures:
                # MongoDB is away: wait for the poller to see it back (or for our backoff)
                if self._stopping.is_set():
                    self._drop_all("shutdown while MongoDB is down")
                    return
                try:
                    await asyncio.wait_for(self._up.wait(), self._backoff(failures))
                except asyncio.TimeoutError:
                    pass
            try:
                await asyncio.wait_for(self._tick(), self.op_timeout)
                failures = 0
            except _ERRORS as exc:
                self.counts["publish_errors"] += 1
                self._went_down("insert", exc)
                failures += 1
                if self._stopping.is_set():
                    self._drop_all("shutdown")
                    return
            except Exception:  # noqa: BLE001 - a bug must not end federation for good
                log.exception("mongo bridge: publishing failed; dropping that tick")
                self._drop_retry()
                failures += 1

    def _drop_all(self, why: str) -> None:
        n = len(self._outbox) + self._retry_casts
        if n:
            self.counts["dropped_buffer_full"] += n
            log.warning("mongo bridge: %d buffered casts dropped (%s)", n, why)
        self._outbox.clear()
        self._drop_retry()

    def _drop_retry(self) -> None:
        self._retry, self._retry_casts = [], 0

    async def _tick(self) -> None:
        """Insert one tick: the failed tick again (same _ids), else every cast queued now."""
        if not self._retry:
            casts = list(self._outbox)  # taken off the queue only once the tick is built
            # the group as of the last poll (read alongside its finds, so publishing waits
            # for one round trip, not two); before the first poll, read it now
            targets = self._targets if self._targets is not None else await self._load_peers()
            for _ in casts:
                self._outbox.popleft()
            if not targets:
                self.counts["dropped_no_peers"] += len(casts)  # nobody else in the group
                return
            now = utcnow()
            by_coll: dict[str, list[dict[str, Any]]] = {ROOMCASTS: [], BROADCASTS: []}
            for cast in casts:
                try:
                    coll, docs = self.codec.encode(cast, targets, now)
                except ValueError as exc:
                    self.counts["unencodable"] += 1
                    self._throttle.log(logging.WARNING, "encode", "mongo bridge: cast not published: %s", exc)
                    continue
                for doc in docs:
                    doc["_id"] = ObjectId()  # ours, increasing: order and idempotent retries
                by_coll[coll].extend(docs)
            self._retry = [(c, d) for c, d in by_coll.items() if d]
            self._retry_casts = len(casts)
        await asyncio.gather(*(self._insert(c, d) for c, d in self._retry))
        self.counts["published"] += self._retry_casts
        self._drop_retry()

    async def _insert(self, name: str, docs: list[dict[str, Any]]) -> None:
        self.counts["inserts"] += 1
        try:
            result = await self._db[name].insert_many(docs, ordered=False)
            self.counts["documents_inserted"] += len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [e for e in errors if e.get("code") != _DUPLICATE_KEY]
            self.counts["documents_inserted"] += exc.details.get("nInserted", 0)
            if others:
                self.counts["documents_refused"] += len(others)
                self._throttle.log(logging.WARNING, "refused", "mongo bridge: %d documents refused: %s",
                                   len(others), others[0].get("errmsg"))


def _order_key(item: tuple[dict[str, Any], str]) -> tuple:
    doc = item[0]
    expire: Any = doc.get("Expire")
    oid = doc.get("_id")
    ts = expire.timestamp() if hasattr(expire, "timestamp") else 0.0
    return (ts, str(oid) if isinstance(oid, ObjectId) else "")


def _masked(exc: BaseException, url: str) -> str:
    """An exception's text with the URL's password (if it appears) hidden."""
    text = str(exc)
    try:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(url.replace(",", "%2C")).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***").replace(unquote(password), "***")
    return text
