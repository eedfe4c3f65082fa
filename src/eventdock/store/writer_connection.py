"""The group-commit writer's connection: a whole transaction in one call.

The writer hands ``WriterConnection.run`` a plain function of a SQLAlchemy
``Connection`` — identity resolution, the event rows, definitions,
violations — and gets its result back once the transaction has committed.
If the function raises, the transaction is rolled back and the connection
is dropped; the next call opens a fresh one.

SQLite: the function runs on a thread of the writer's own, on a plain
``sqlite3`` connection (SQLAlchemy's pysqlite dialect). ``BEGIN
IMMEDIATE``, every statement and the fsync'd COMMIT happen there, so a
transaction costs the event loop one hop; the cross-process writer lock is
taken first (``ready``), on the loop when it is free, else on the thread. Through
aiosqlite each statement was a hop of its own (7 for a generic batch, 18
for a CDP batch that resolves profiles), each waiting for a turn of a busy
event loop. sqlite3 releases the GIL while SQLite works, so the loop keeps
parsing the next requests meanwhile.

PostgreSQL: the function runs in ``AsyncConnection.run_sync`` on the event
loop; each statement is awaited through asyncpg as before, and several
such connections may commit at once (``WriterSettings.connections``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.store.database import Database
from eventdock.store.writer_lock import WriterLock

log = logging.getLogger("eventdock.writer")

T = TypeVar("T")


class WriterConnection(Protocol):
    async def ready(self) -> None:
        """Return once a transaction could begin now; the writer takes its batch after this."""
        ...

    async def run(self, transaction: Callable[[Connection], T]) -> T:
        """Run ``transaction`` in one transaction; return its result after COMMIT."""
        ...

    def release(self) -> None:
        """Let go of what ``ready`` took if no ``run`` followed (run lets go itself)."""
        ...

    async def close(self) -> None: ...


def connect_writer(db: Database) -> WriterConnection:
    return SqliteWriterConnection(db) if db.is_sqlite else PostgresWriterConnection(db)


class SqliteWriterConnection:
    def __init__(self, db: Database) -> None:
        self._engine: Engine = db.blocking_engine()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventdock-sqlite-writer")
        lock_path = db.writer_lock_path()
        self._lock = WriterLock(lock_path) if lock_path else None
        self._conn: Connection | None = None  # used on self._thread only
        self._running = False  # a transaction is on the thread (it holds the lock)

    async def ready(self) -> None:
        """Take the cross-process writer lock: at once on the loop when it is
        free, else on the writer's thread (flock blocks) while the batch keeps
        gathering. With several workers, a writer that took its batch first
        and waited for the lock afterwards committed what had queued before
        the other process's commit, not what queued during it."""
        lock = self._lock
        if lock is None or lock.locked or lock.acquire(blocking=False):
            return
        await asyncio.get_running_loop().run_in_executor(self._thread, lock.acquire)

    def release(self) -> None:
        if self._lock is not None and self._lock.locked and not self._running:
            self._lock.release()

    async def run(self, transaction: Callable[[Connection], T]) -> T:
        # If the awaiting task is cancelled, the thread still finishes the
        # transaction; close() queues behind it on the same thread.
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, transaction)

    def _run(self, transaction: Callable[[Connection], T]) -> T:
        lock = self._lock
        self._running = True
        try:
            if lock is not None and not lock.locked:
                lock.acquire()
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(eventdock_write=True)  # BEGIN IMMEDIATE
            with self._conn.begin():
                return transaction(self._conn)
        except BaseException:
            self._drop()
            raise
        finally:
            if lock is not None:
                lock.release()
            self._running = False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may not close cleanly
                log.debug("closing the writer connection failed", exc_info=True)

    def _close(self) -> None:
        self._drop()
        if self._lock is not None:
            self._lock.close()
        self._engine.dispose()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)


class PostgresWriterConnection:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None

    async def ready(self) -> None:
        """PostgreSQL's writers run concurrently: nothing to wait for."""

    def release(self) -> None:
        pass

    async def run(self, transaction: Callable[[Connection], T]) -> T:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            # Kept across batches: no pool checkout, no reset-on-return ROLLBACK.
            self._conn = await self._db.engine.connect()
        try:
            return await self._conn.run_sync(_in_transaction, transaction)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may not close cleanly
                log.debug("closing the writer connection failed", exc_info=True)


def _in_transaction(conn: Connection, transaction: Callable[[Connection], T]) -> T:
    with conn.begin():
        return transaction(conn)
