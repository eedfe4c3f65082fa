"""The live tail behind ``GET /api/projects/{id}/events/stream`` (SPEC §8).

Each process keeps one ``LiveTail``. Subscribers get a bounded queue of
ready-to-send Server-Sent-Event frames; publishing never waits on them: a
subscriber whose queue is full is dropped with an ``overflow`` frame (it can
reconnect), so a slow reader never slows ingestion and memory stays bounded.

Events committed by *any* process reach every subscriber:

- PostgreSQL: the writer's transaction sends ``pg_notify`` with the ids it
  stored (an ``after_insert`` step, so a notification exists exactly when
  the commit does). A process with subscribers LISTENs and fetches the
  events other processes stored by id; its own commits are handed over in
  memory by the writer's commit listener.

  Only while someone listens: PostgreSQL serialises every transaction that
  sent a NOTIFY, from its commit until the commit is flushed, so writer
  connections that notify cannot overlap their commits (the bench's
  single-event rates on PostgreSQL ×1 were 13–43 % higher without it). A
  listening process keeps a row in ``tail_listeners`` (renewed while it
  has subscribers, gone when it has none or expired if it died), and a
  writer's transaction notifies when it sees one. A new listener's
  subscribers are ready once the row is committed *and* every writer
  transaction already running then has ended: those may have looked
  before the row existed, every later one sees it.
- SQLite: writers are serialised (``BEGIN IMMEDIATE``) and ``events`` is a
  rowid table, so rowids grow in commit order. A process with subscribers
  polls ``rowid > last seen`` every ``poll_seconds``; that covers its own
  commits and those of every other process alike.

Nothing runs (no LISTEN connection, no poll) while a process has no subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import func, literal_column, select

from eventdock.core.errors import StoreUnavailable, Unavailable
from eventdock.core.events import Event, public
from eventdock.store.database import Database
from eventdock.store.events import _COLUMNS, StoredEvent
from eventdock.store.tables import events

log = logging.getLogger("eventdock.tail")

CHANNEL = "eventdock_tail"
LISTENER_TTL_S = 60  # a listener row outlives its process by at most this
_LISTENER_RENEW_S = 15
_WRITERS_WAIT_S = 10  # at most this long for writer transactions older than a new listener
_PAYLOAD_BYTES = 7800  # NOTIFY payloads must stay under 8000 bytes
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
OVERFLOW = b"event: overflow\ndata: {\"error\": \"subscriber too slow: events were dropped; reconnect\"}\n\n"
# The database went away: the stream ends, and an EventSource reconnects after ``retry`` ms.
UNAVAILABLE = b"retry: 1000\nevent: unavailable\ndata: {\"error\": \"the database is unavailable; reconnect\"}\n\n"


def frame(event_id: str, public: dict[str, Any]) -> bytes:
    """One SSE message: the event id (when it is safe on one line) and one ``data:`` line."""
    head = b"" if ("\n" in event_id or "\r" in event_id) else b"id: " + event_id.encode() + b"\n"
    return head + b"data: " + _encode(public) + b"\n\n"


@dataclass(eq=False)
class Subscriber:
    project_id: str
    name: str | None
    queue: asyncio.Queue[bytes]
    floor: int = 0  # SQLite: only rows after this rowid
    closed: bool = False


@dataclass
class LiveTail:
    db: Database
    queue_size: int = 10_000
    poll_seconds: float = 0.1
    origin: str = field(default_factory=lambda: uuid.uuid4().hex)
    subscribers: dict[str, set[Subscriber]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._wanted = asyncio.Event()
        self._ready = asyncio.Event()
        self._pending: deque[tuple[str, list[str]]] = deque()
        self._pending_wake = asyncio.Event()
        # Set while the follower is failing (the database is unavailable): subscribing then answers 503.
        self._failure: Unavailable | None = None

    # -- publishing ------------------------------------------------------------

    def attach(self, writer: Any) -> None:
        """Hook into the writer: commit listener, and on PostgreSQL the NOTIFY step."""
        if not self.db.is_sqlite:
            writer.listeners.append(self._on_local_commit)
            writer.after_insert.append(self.publish_step)

    def publish_step(self, conn: Any, stored: list[Event], records: Sequence[Any]) -> None:
        if not stored:
            return
        # A fresh snapshot (READ COMMITTED): a listener that registered
        # before this statement is seen; see _register for the others.
        if not conn.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM tail_listeners WHERE expires_at > now())").scalar():
            return
        payloads: list[str] = []
        by_project: dict[str, list[str]] = {}
        for e in stored:
            by_project.setdefault(e.project_id, []).append(e.id)
        for project_id, ids in by_project.items():
            head = len(self.origin) + len(project_id) + 12
            chunk: list[str] = []
            size = head
            for event_id in ids:
                cost = len(_encode(event_id)) + 1
                if chunk and size + cost > _PAYLOAD_BYTES:
                    payloads.append(_encode([self.origin, project_id, chunk]).decode())
                    chunk, size = [], head
                chunk.append(event_id)
                size += cost
            payloads.append(_encode([self.origin, project_id, chunk]).decode())
        conn.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', p) FROM unnest($1::text[]) AS t(p)", (payloads,))

    def _on_local_commit(self, stored: Sequence[Event]) -> None:
        if not self.subscribers:
            return
        by_project: dict[str, list[tuple[str, bytes]]] = {}
        for e in stored:
            if e.project_id in self.subscribers:
                by_project.setdefault(e.project_id, []).append((e.name, frame(e.id, public(e))))
        for project_id, frames in by_project.items():
            self._deliver(project_id, frames)

    def _deliver(self, project_id: str, frames: list[tuple[str, bytes]], rowids: list[int] | None = None) -> None:
        for sub in list(self.subscribers.get(project_id, ())):
            for index, (name, data) in enumerate(frames):
                if sub.name is not None and sub.name != name:
                    continue
                if rowids is not None and rowids[index] <= sub.floor:
                    continue
                try:
                    sub.queue.put_nowait(data)
                except asyncio.QueueFull:
                    self._overflow(sub)
                    break

    def _overflow(self, sub: Subscriber, last: bytes = OVERFLOW) -> None:
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(last)
        sub.closed = True
        self._remove(sub)

    # -- subscribing -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self, project_id: str, name: str | None = None) -> AsyncIterator[Subscriber]:
        """A subscription that receives every event committed after this returns.

        Raises ``StoreUnavailable`` (before the stream starts: 503) when the
        database cannot be followed now."""
        if self._failure is not None:
            raise self._failure
        sub = Subscriber(project_id=project_id, name=name, queue=asyncio.Queue(self.queue_size + 1))
        if self.db.is_sqlite:
            async with self.db.read() as conn:
                sub.floor = int((await conn.execute(select(func.coalesce(func.max(literal_column("rowid")), 0)).select_from(events))).scalar_one())
        self.subscribers.setdefault(project_id, set()).add(sub)
        self._wanted.set()
        try:
            if not self.db.is_sqlite:
                await self._ready.wait()  # LISTEN is in place: nothing committed from now on is missed
                if sub.closed and self._failure is not None:  # ... or the follower failed instead
                    raise self._failure
            yield sub
        finally:
            self._remove(sub)

    def _remove(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.project_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.project_id]

    # -- following other processes -------------------------------------------------

    async def run(self) -> None:
        """Background task: follow the database while this process has subscribers."""
        while True:
            await self._wanted.wait()
            try:
                if self.db.is_sqlite:
                    await self._poll_sqlite()
                else:
                    await self._listen_postgres()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - drop the subscribers, they reconnect
                fault = exc if isinstance(exc, StoreUnavailable) else self.db.fault(exc)
                if fault is None:
                    log.exception("live tail follower failed")
                for subs in list(self.subscribers.values()):
                    for sub in list(subs):
                        self._overflow(sub, UNAVAILABLE if fault is not None else OVERFLOW)
                # Wake subscribers still waiting for LISTEN, and answer new ones 503 for a while.
                self._failure = fault or Unavailable("The live tail failed; reconnect.")
                self._ready.set()
                await asyncio.sleep(1)
                self._failure = None
            self._ready.clear()
            if not self.subscribers:
                self._wanted.clear()

    async def _poll_sqlite(self) -> None:
        last = min((s.floor for subs in self.subscribers.values() for s in subs), default=0)
        rowid = literal_column("rowid")
        while self.subscribers:
            projects = sorted(self.subscribers)
            query = (
                select(rowid, *_COLUMNS)
                .select_from(events)
                .where(rowid > last, events.c.project_id.in_(projects))
                .order_by(rowid)
                .limit(5000)
            )
            async with self.db.read() as conn:
                rows = (await conn.execute(query)).all()
            by_project: dict[str, tuple[list[tuple[str, bytes]], list[int]]] = {}
            for row in rows:
                e = StoredEvent(*row[1:])
                frames, rowids = by_project.setdefault(e.project_id, ([], []))
                frames.append((e.name, frame(e.id, public(e))))
                rowids.append(row[0])
            for project_id, (frames, rowids) in by_project.items():
                self._deliver(project_id, frames, rowids)
            if rows:
                last = rows[-1][0]
            if len(rows) < 5000:
                await asyncio.sleep(self.poll_seconds)

    async def _listen_postgres(self) -> None:
        import asyncpg

        dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn, server_settings={"application_name": "eventdock-tail"})
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            await self._register(conn)
            self._ready.set()
            renewed = time.monotonic()
            while self.subscribers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._pending_wake.wait(), timeout=1.0)
                if conn.is_closed():  # the server went away: nothing more will be heard here
                    raise ConnectionResetError("the database closed the live tail's connection")
                self._pending_wake.clear()
                while self._pending:
                    project_id, ids = self._pending.popleft()
                    await self._fetch_and_deliver(project_id, ids)
                if time.monotonic() - renewed > _LISTENER_RENEW_S:
                    await self._announce(conn)
                    renewed = time.monotonic()
        finally:
            self._ready.clear()  # before any await: a newcomer must wait for the next LISTEN
            self._pending.clear()
            try:
                with contextlib.suppress(Exception):
                    await conn.execute("DELETE FROM tail_listeners WHERE origin = $1", self.origin)
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            finally:
                if not conn.is_closed():  # cancelled on the way out (shutdown): never leave it open
                    conn.terminate()

    async def _announce(self, conn: Any) -> None:
        await conn.execute(
            "INSERT INTO tail_listeners (origin, expires_at) VALUES ($1, now() + make_interval(secs => $2)) "
            "ON CONFLICT (origin) DO UPDATE SET expires_at = EXCLUDED.expires_at",
            self.origin,
            float(LISTENER_TTL_S),
        )

    async def _register(self, conn: Any) -> None:
        """Become a listener (LISTEN is already in place), then wait out older writers.

        A writer transaction that checked ``tail_listeners`` before the row
        was committed sends no notification; it is running now or already
        committed. Waiting until every transaction of this database that
        holds an id now has ended means nothing commits unnotified after
        the subscribers are ready.
        """
        # Rows of processes that died without deleting theirs: writers
        # ignore them once expired; nothing else would ever remove them.
        await conn.execute("DELETE FROM tail_listeners WHERE expires_at < now()")
        await self._announce(conn)
        running = await _transactions_holding_ids(conn)
        deadline = time.monotonic() + _WRITERS_WAIT_S
        while running:
            await asyncio.sleep(0.005)
            running = await _transactions_holding_ids(conn, among=running)
            if running and time.monotonic() > deadline:
                log.warning("live tail: %d transactions older than this listener still run; not waiting longer", len(running))
                return

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin, project_id, ids = _decode(payload)
        except (msgspec.DecodeError, ValueError):
            return
        if origin == self.origin or project_id not in self.subscribers:
            return
        if len(self._pending) >= 1000:  # the fetcher fell behind: drop, never grow without bound
            for sub in list(self.subscribers.get(project_id, ())):
                self._overflow(sub)
            return
        self._pending.append((project_id, ids))
        self._pending_wake.set()

    async def _fetch_and_deliver(self, project_id: str, ids: list[str]) -> None:
        if project_id not in self.subscribers:
            return
        async with self.db.read() as conn:
            rows = await conn.execute(select(*_COLUMNS).where(events.c.project_id == project_id, events.c.id.in_(ids)))
            found = {r.id: StoredEvent(*r) for r in rows}
        frames = [(found[i].name, frame(i, public(found[i]))) for i in ids if i in found]
        self._deliver(project_id, frames)


async def _transactions_holding_ids(conn: Any, among: list[str] | None = None) -> list[str]:
    """Other sessions' transaction ids in this database (of ``among`` only, if given)."""
    rows = await conn.fetch(
        "SELECT backend_xid::text FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND ($1::text[] IS NULL OR backend_xid::text = ANY($1::text[]))",
        among,
    )
    return [row[0] for row in rows]


async def start_live_tail(services: Any) -> list[asyncio.Task[None]]:
    """Start-up hook: one ``LiveTail`` per process, on ``services.extras["live_tail"]``."""
    tail = LiveTail(services.db)
    tail.attach(services.writer)
    services.extras["live_tail"] = tail
    return [asyncio.create_task(tail.run(), name="eventdock-live-tail")]
