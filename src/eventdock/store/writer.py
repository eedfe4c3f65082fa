"""The group-commit writer (SPEC §3.2).

Every request hands its events to ``GroupCommitWriter.submit`` and waits.
A writer task takes whatever requests are queued and stores them in one
transaction. It does not wait for more when the worker has no transaction
in flight: the requests that arrive meanwhile gather by themselves while
that commit runs, and a timed wait there would only leave the database
idle (single events on SQLite went from ~7.5 k to ~10.5 k req/s when the
2 ms wait went, bench/PROFILE.md). Only while another of the worker's
connections is committing (PostgreSQL) does the next batch wait up to
``max_wait_ms`` to gather.

A transaction holds identity resolution, the event rows, new event
definitions and schema violations. It is one synchronous function, run in
one call on the writer's connection (``writer_connection.py``: on SQLite in
a process of the worker's own, one frame out and one back). Only after COMMIT returns
are the requests' futures resolved, so a success status always means
"durably stored".

SQLite admits one writing transaction at a time, so a process has one
writer task. On PostgreSQL ``WriterSettings.connections`` tasks, each with
its own connection, take turns at the queue: while one waits for its
COMMIT, the next batch is already being written.

A request's events are never split across transactions. If a batch fails,
each request in it is retried in a transaction of its own, so one request
cannot fail its neighbours. The queue is bounded by events: once
``max_queue_events`` wait, requests are refused with ``Unavailable`` (503),
before their bodies are parsed. A batch that fails because the database
is unavailable (``StoreUnavailable``) fails whole, with 503, and is not
retried request by request: none of its requests is at fault.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy.engine import Connection

from eventdock.config import WriterSettings
from eventdock.core.errors import StoreUnavailable, Unavailable
from eventdock.core.events import Event
from eventdock.store import events as event_rows
from eventdock.store.database import Database
from eventdock.store.writer_connection import WriterConnection, connect_writer

log = logging.getLogger("eventdock.writer")

# A step that runs inside the batch transaction before/after the rows are
# written: identity resolution (fills Event.profile_id), quarantine records.
# Steps see the events that are new (duplicates already dropped) and every
# record the batch's requests carry. They are plain functions: the whole
# transaction runs in one call. On SQLite that call is made in the writer's
# own process, so there a step must be a module-level function (it travels
# by name). A step reads an event's ``properties_json``: ``properties`` is
# None there, and mostly already before (``Pipeline.commit`` lets go of it).
TransactionStep = Callable[[Connection, list[Event], list[Any]], None]
CommitListener = Callable[[Sequence[Event]], None]


class Submission(msgspec.Struct):
    """One request's share of a transaction."""

    events: list[Event]
    # Extra records written in the same transaction (e.g. schema violations);
    # their meaning belongs to the step that writes them.
    records: list[Any]
    future: asyncio.Future[None] | None = None

    @property
    def size(self) -> int:
        return max(1, len(self.events) + len(self.records))


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        settings: WriterSettings,
        *,
        before_insert: Sequence[TransactionStep] = (),
        after_insert: Sequence[TransactionStep] = (),
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.before_insert = list(before_insert)
        self.after_insert = list(after_insert)
        self.listeners: list[CommitListener] = []
        self._on_batch = on_batch
        self._queue: deque[Submission] = deque()
        self._queued = 0
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._opened: list[asyncio.Future[None]] = []
        # SQLite admits one writing transaction at a time.
        self._connections = 1 if db.is_sqlite else max(1, settings.connections)
        self._closing = False
        self._known_definitions: set[tuple[str, str]] = set()
        # flush_usage callers waiting for a writer task to write the counters.
        self._usage_waiters: list[asyncio.Future[None]] = []
        # (project, name) -> (count, latest timestamp) since the last flush.
        self.usage: dict[tuple[str, str], tuple[int, int]] = {}

    @property
    def queued_events(self) -> int:
        """Events waiting for a transaction."""
        return self._queued

    @property
    def in_flight_events(self) -> int:
        """Events in the transactions running now (at most one per writer connection)."""
        return self._in_flight

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._opened = [asyncio.get_running_loop().create_future() for _ in range(self._connections)]
            self._tasks = [
                asyncio.create_task(self._run(connect_writer(self.db), opened), name=f"eventdock-writer-{n}")
                for n, opened in enumerate(self._opened)
            ]

    async def opened(self) -> None:
        """Return once every writer connection has tried to open (SQLite: its
        process is up), so that a server answers only once it can write."""
        await asyncio.gather(*self._opened)

    async def stop(self) -> None:
        """Commit what is queued and write the usage counters, then stop."""
        self._closing = True
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks)

    # -- submitting ---------------------------------------------------------

    def ensure_room(self) -> None:
        """Raise ``Unavailable`` when the queue is full or the writer is stopping (before a request is read, before it is parsed, and at submit)."""
        if self._closing:
            raise Unavailable("The server is shutting down.")
        if self._queued >= self.settings.max_queue_events:
            raise Unavailable("The write queue is full.", retry_after=1)

    async def submit(self, events: list[Event], records: list[Any] | None = None) -> None:
        """Store ``events`` (and ``records``) durably; return after COMMIT."""
        # The very test that admitted the request before it was parsed, so a
        # request admitted there is not refused here after its parsing was
        # paid for: the request that fills the queue is taken whole, and what
        # waits stays under max_queue_events plus one request.
        self.ensure_room()
        submission = Submission(events=events, records=records or [])
        submission.future = asyncio.get_running_loop().create_future()
        self._queue.append(submission)
        self._queued += submission.size
        self._wake.set()
        await submission.future

    # -- the writer task ----------------------------------------------------

    async def _run(self, conn: WriterConnection, opened: asyncio.Future[None]) -> None:
        try:
            try:
                await conn.open()
            except StoreUnavailable:
                pass  # the store logs it; the first transaction tries again, and answers 503 if it must
            except Exception:  # noqa: BLE001 - the first transaction tries again, and fails its requests if it must
                log.exception("opening the writer connection failed")
            finally:
                opened.set_result(None)
            while True:
                if self._usage_waiters:
                    await self._write_usage(conn)
                if not self._queue:
                    if self._closing:
                        await self._write_last_usage(conn)
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._in_flight and self.settings.max_wait_ms > 0 and len(self._queue) < self.settings.max_batch_requests:
                    # Another of this worker's transactions is committing, so
                    # there is no hurry: let the batch gather. With none in
                    # flight, waiting would only leave the database idle.
                    await asyncio.sleep(self.settings.max_wait_ms / 1000)
                    if not self._queue:  # another writer task took it
                        continue
                # The batch is taken once the connection could begin: while
                # it waits (SQLite: another worker commits), requests gather.
                # This task is the queue's only consumer on SQLite, so what
                # was queued is still there.
                await conn.ready()
                batch = self._take()
                size = sum(s.size for s in batch)
                self._in_flight += size
                try:
                    await self._commit_batch(conn, batch)
                finally:
                    self._in_flight -= size
                    conn.release()  # never idle holding the lock ready() took
        finally:
            await conn.close()

    def _take(self) -> list[Submission]:
        batch: list[Submission] = []
        events = 0
        # The events in flight stay within max_batch_events however many
        # connections write at once (each has its share; a request is whole).
        limit_events = max(1, self.settings.max_batch_events // self._connections)
        limit_requests = max(1, self.settings.max_batch_requests)
        while self._queue and len(batch) < limit_requests:
            nxt = self._queue[0]
            if batch and events + nxt.size > limit_events:
                break
            self._queue.popleft()
            batch.append(nxt)
            events += nxt.size
        self._queued -= events
        return batch

    async def _commit_batch(self, conn: WriterConnection, batch: list[Submission]) -> None:
        started = time.perf_counter()
        try:
            stored = await self._transaction(conn, batch)
        except Exception as exc:  # noqa: BLE001 - isolate, then report per request
            if isinstance(exc, StoreUnavailable):
                # The database is unavailable or full: no request of the
                # batch is at fault, none is retried alone, none is
                # acknowledged. The store has logged it once.
                for submission in batch:
                    _settle(submission, exc)
                return
            if len(batch) == 1:
                log.exception("write transaction failed")
                _settle(batch[0], exc)
                return
            log.warning("batch of %d requests failed (%s); retrying one by one", len(batch), exc)
            for submission in batch:
                await self._commit_batch(conn, [submission])
            return
        elapsed = time.perf_counter() - started
        if self.db.health.troubled:
            self.db.health.wrote()
        for e in stored:
            e.stored = True
        self._after_commit(stored)
        if self._on_batch is not None:
            self._on_batch(len(batch), len(stored), elapsed)
        for submission in batch:
            _settle(submission, None)
        for listener in self.listeners:
            try:
                listener(stored)
            except Exception:  # noqa: BLE001 - a listener never fails a write
                log.exception("commit listener failed")

    async def _transaction(self, conn: WriterConnection, batch: list[Submission]) -> list[Event]:
        """One transaction for the batch; returns the events newly stored."""
        events = event_rows.unique_events([e for s in batch for e in s.events])
        records = [r for s in batch for r in s.records]
        unknown = {(e.project_id, e.name) for e in events} - self._known_definitions
        written = await conn.run(BatchTransaction(events, records, unknown, self.before_insert, self.after_insert))
        if written.new_names:
            self._known_definitions = self._known_definitions.union(written.new_names)
        return written.apply(events)

    def _after_commit(self, stored: list[Event]) -> None:
        usage = self.usage
        for e in stored:
            key = (e.project_id, e.name)
            count, latest = usage.get(key, (0, 0))
            usage[key] = (count + 1, e.timestamp_ms if e.timestamp_ms > latest else latest)

    def forget_definitions(self, project_id: str | None = None) -> None:
        """Drop cached knowledge of which definitions exist (after a delete)."""
        if project_id is None:
            self._known_definitions = set()
        else:
            self._known_definitions = {k for k in self._known_definitions if k[0] != project_id}

    async def flush_usage(self) -> None:
        """Write the usage counters gathered since the last flush (SPEC §3.3: volume, last_seen_at).

        On a writer connection, in a transaction of its own between batches,
        never on a connection beside the writer's: on SQLite a second writer
        meets the group-commit writer in SQLite's busy handler, which sleeps
        up to 100 ms between tries, whichever of the two waits. The writer
        connection also takes the cross-process writer lock, so with several
        workers the flush queues behind their writers instead of polling.
        """
        if not self.usage:
            return
        if self._tasks and not self._closing:
            done = asyncio.get_running_loop().create_future()
            self._usage_waiters.append(done)
            self._wake.set()
            await done
            return
        # No writer task: stopped, and its last write of the counters failed
        # (stop() writes them), or never started. A connection of the same kind.
        conn = connect_writer(self.db)
        try:
            await self._write_usage(conn)
        finally:
            await conn.close()

    async def _write_last_usage(self, conn: WriterConnection) -> None:
        """At stop, on this connection before it closes (not on a new one
        afterwards). If it fails the counters stay in ``usage``, for a later
        ``flush_usage`` to try again."""
        if not self.usage:  # the usual case, and every connection but the first to get here
            return
        try:
            await self._write_usage(conn)
        except StoreUnavailable as exc:
            log.warning("the usage counters (volume, last_seen_at) could not be written at stop: %s", exc.message)
        except Exception:  # noqa: BLE001 - stopping goes on; the counters are kept
            log.exception("writing the usage counters at stop failed")

    async def _write_usage(self, conn: WriterConnection) -> None:
        usage, self.usage = self.usage, {}
        waiters, self._usage_waiters = self._usage_waiters, []
        error: BaseException | None = None
        try:
            if usage:
                await conn.run(functools.partial(event_rows.record_usage, usage=usage))
        except Exception as exc:  # noqa: BLE001 - put it back and try again next time
            error = exc
            for key, (count, latest) in usage.items():
                c2, l2 = self.usage.get(key, (0, 0))
                self.usage[key] = (count + c2, max(latest, l2))
        for waiter in waiters:
            if waiter.done():  # its caller was cancelled
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        if error is not None and not waiters:
            raise error


def _settle(submission: Submission, exc: BaseException | None) -> None:
    fut = submission.future
    if fut is None or fut.done():  # the client went away; the write stands
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


class Written(msgspec.Struct):
    """What a batch's transaction did, by the events' positions in the batch
    (the transaction may have run on copies of them, in the writer's process)."""

    stored: list[int] | None  # positions of the events newly stored; None: all of them
    profile_ids: list[tuple[int, str]]  # (position, profile id) of each resolved event
    new_names: list[tuple[str, str]]  # definitions created: (project, name)

    def apply(self, events: list[Event]) -> list[Event]:
        """Set the resolved profile ids on ``events``; return those newly stored."""
        for position, profile_id in self.profile_ids:
            events[position].profile_id = profile_id
        return events if self.stored is None else [events[i] for i in self.stored]


class BatchTransaction:
    """One batch's transaction: a callable of the writer's connection.

    In-process (PostgreSQL) it runs on the batch's own events. SQLite runs it
    in the writer's process (``store/writer_process.py``), so it pickles
    compactly: each event as a tuple of its columns, its properties as the
    JSON already encoded for the row and its identity as ``normalise`` found
    it, never its properties as a dict (``Pipeline.commit`` has mostly let
    go of them already; rebuilding 4,000 of them cost the writer's serial
    path ~13 ms a batch, bench/PROFILE.md). The steps travel by name.
    """

    __slots__ = ("events", "records", "unknown", "before", "after")

    def __init__(
        self,
        events: list[Event],
        records: list[Any],
        unknown: set[tuple[str, str]],
        before: Sequence[TransactionStep] = (),
        after: Sequence[TransactionStep] = (),
    ) -> None:
        self.events = events
        self.records = records
        # (project, name) of the batch's events not known to have a definition.
        self.unknown = unknown
        self.before = list(before)
        self.after = list(after)

    def __call__(self, conn: Connection) -> Written:
        events = self.events
        new = event_rows.without_stored(conn, events) if events else events
        for step in self.before:
            step(conn, new, self.records)
        stored = event_rows.insert_events(conn, new) if new else []
        new_names = sorted({(e.project_id, e.name) for e in stored} & self.unknown)
        event_rows.define_events(conn, new_names)
        for step in self.after:
            step(conn, stored, self.records)
        positions = None
        if len(stored) != len(events):
            where = {id(e): i for i, e in enumerate(events)}
            positions = [where[id(e)] for e in stored]
        profile_ids = [(i, e.profile_id) for i, e in enumerate(events) if e.profile_id is not None]
        return Written(positions, profile_ids, new_names)

    def __reduce__(self) -> tuple[Any, ...]:
        rows = [
            (e.id, e.project_id, e.name, e.timestamp_ms, e.received_at_ms, e.source, e.properties_json, e.identity, e.client_id)
            for e in self.events
        ]
        return (_rebuild_batch, (rows, self.records, self.unknown, self.before, self.after))


def _rebuild_batch(
    rows: list[tuple[Any, ...]],
    records: list[Any],
    unknown: set[tuple[str, str]],
    before: list[TransactionStep],
    after: list[TransactionStep],
) -> BatchTransaction:
    events = [
        Event(event_id, project_id, name, ts, received, source, None, properties_json, identity=identity, client_id=client_id)
        for event_id, project_id, name, ts, received, source, properties_json, identity, client_id in rows
    ]
    return BatchTransaction(events, records, unknown, before, after)
