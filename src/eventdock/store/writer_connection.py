"""The group-commit writer's connection: a whole transaction in one call.

The writer hands ``WriterConnection.run`` a plain function of a SQLAlchemy
``Connection`` — identity resolution, the event rows, definitions,
violations — and gets its result back once the transaction has committed.
If the function raises, the transaction is rolled back and the connection
is dropped; the next call opens a fresh one.

SQLite: the function runs in a process of the worker's own
(``writer_process.py``), on a plain ``sqlite3`` connection (SQLAlchemy's
pysqlite dialect), so it must pickle: the writer's ``BatchTransaction`` and
module-level functions do. ``BEGIN IMMEDIATE``, every statement and the
fsync'd COMMIT happen there, with a GIL of their own, and cost the event
loop one frame out and one back; the cross-process writer lock is taken
here first (``ready``). Through aiosqlite each statement was a hop of its
own (7 for a generic batch, 18 for a CDP batch that resolves profiles);
on a thread of the worker the transaction waited for the busy loop's GIL
after every statement.

PostgreSQL: the function runs in ``AsyncConnection.run_sync`` on the event
loop; each statement is awaited through asyncpg as before, and several
such connections may commit at once (``WriterSettings.connections``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy.engine import Connection

from eventdock.core.errors import StoreUnavailable, Unavailable
from eventdock.store import writer_process
from eventdock.store.database import Database
from eventdock.store.writer_lock import WriterLock

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

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

    async def open(self) -> None:
        """Connect now rather than with the first transaction (which retries if this failed)."""
        ...

    async def close(self) -> None: ...


def connect_writer(db: Database) -> WriterConnection:
    return SqliteWriterConnection(db) if db.is_sqlite else PostgresWriterConnection(db)


class SqliteWriterConnection:
    """Runs each transaction in the worker's writer process (``writer_process.py``).

    The process is started as the writer starts (``open``), and again by the
    next transaction after one died; a transaction that raised there is
    rolled back there and raised here. The exchange is awaited in the
    writer's own task, not a task of its own: under load every extra hop
    waits for a whole turn of a busy event loop (bench/PROFILE.md). Only
    the cross-process writer lock is taken in this process: on the loop
    when it is free, else on a thread (``flock`` blocks).
    """

    def __init__(self, db: Database) -> None:
        self._url = db.url.render_as_string(hide_password=False)
        self._max_bytes = db.sqlite_max_bytes
        self._health = db.health
        lock_path = db.writer_lock_path()
        self._lock = WriterLock(lock_path) if lock_path else None
        self._lock_waiter: ThreadPoolExecutor | None = None
        self._process: _WriterProcess | None = None
        # One frame in flight at a time (the writer's usage flush and its batches share the process).
        self._exchanging = asyncio.Lock()

    async def ready(self) -> None:
        """Take the cross-process writer lock: at once on the loop when it is
        free, else on a thread of its own (flock blocks) while the batch keeps
        gathering. With several workers, a writer that took its batch first
        and waited for the lock afterwards committed what had queued before
        the other process's commit, not what queued during it."""
        lock = self._lock
        if lock is None or lock.locked or lock.acquire(blocking=False):
            return
        if self._lock_waiter is None:
            self._lock_waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventdock-writer-lock")
        await asyncio.get_running_loop().run_in_executor(self._lock_waiter, lock.acquire)

    def release(self) -> None:
        if self._lock is not None and self._lock.locked and not self._exchanging.locked():
            self._lock.release()

    async def open(self) -> None:
        """Start the process, so that its imports are done before the first batch."""
        async with self._exchanging:
            if self._process is None:
                self._process = await _WriterProcess.start(self._url, self._max_bytes)

    async def run(self, transaction: Callable[[Connection], T]) -> T:
        frame = writer_process.encode_frame(transaction)
        async with self._exchanging:
            try:
                await self.ready()
                if self._process is not None and self._process.popen.poll() is not None:
                    # It ended between two transactions (killed, say): nothing
                    # of this one was sent, so a new process takes it.
                    log.warning("the SQLite writer process exited (%s); starting another", self._process.popen.returncode)
                    await self._stop_process()
                if self._process is None:
                    self._process = await _WriterProcess.start(self._url, self._max_bytes)
                try:
                    payload = await self._process.exchange(frame)
                except BaseException as exc:
                    # The process died, or we stop waiting for its answer
                    # (cancelled): either way its next answer could be taken
                    # for another frame's. The next transaction starts anew.
                    await self._stop_process(kill=True)
                    if isinstance(exc, (OSError, asyncio.IncompleteReadError)):
                        log.error("the SQLite writer process ended during a transaction: %r", exc)
                        raise WriterProcessDied("The write was interrupted; retry.") from exc
                    raise
            finally:
                if self._lock is not None and self._lock.locked:
                    self._lock.release()
        try:
            ok, value = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 - an exception type that does not rebuild
            raise RuntimeError(f"the writer process's answer could not be read: {exc!r}") from exc
        if not ok:
            if isinstance(value, StoreUnavailable):  # translated in the writer's process (full, busy, I/O error)
                self._health.failed(value, value)
            raise value
        return value  # type: ignore[no-any-return]

    async def _stop_process(self, *, kill: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None:
            await process.stop(kill=kill)

    async def close(self) -> None:
        async with self._exchanging:
            await self._stop_process()
        if self._lock is not None:
            self._lock.close()
        if self._lock_waiter is not None:
            self._lock_waiter.shutdown(wait=False)


class WriterProcessDied(Unavailable):
    """The SQLite writer process went away during a transaction. Whether it
    committed is unknown, as with any answer lost on the way, so its
    requests get 503 with Retry-After; the next transaction starts a new
    process."""


class _WriterProcess:
    """The child and its two pipes.

    Frames go out by a blocking write. The process reads whenever no
    transaction of ours is in it, which is whenever we send one, so the write
    takes as long as copying the frame (a 4,000-event batch is ~1.2 MB);
    through the event loop the same frame went out 64 KB per turn of a loop
    busy parsing the next batches, and batches ran at two thirds of the rate
    (bench/PROFILE.md). The answer, which takes a transaction's time, is
    awaited on the loop.
    """

    def __init__(self, popen: subprocess.Popen[bytes], answers: asyncio.StreamReader, transport: asyncio.BaseTransport) -> None:
        self.popen = popen
        self.answers = answers
        self.transport = transport

    @classmethod
    async def start(cls, url: str, max_bytes: int) -> _WriterProcess:
        # It imports eventdock as this process does (a checkout's src/ on the path, a bench's patches).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        popen = subprocess.Popen(
            [sys.executable, "-m", "eventdock.store.writer_process", url, str(max_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own session: a Ctrl-C meant for the server does not reach it.
            start_new_session=True,
        )
        assert popen.stdin is not None and popen.stdout is not None
        with contextlib.suppress(OSError, AttributeError):  # Linux: a batch in one or two writes
            fcntl.fcntl(popen.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        loop = asyncio.get_running_loop()
        answers = asyncio.StreamReader(limit=2**32)
        try:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(answers), popen.stdout)
        except BaseException:
            popen.kill()  # nothing will ever read its answers
            popen.stdin.close()
            raise
        return cls(popen, answers, transport)

    async def exchange(self, frame: bytes) -> bytes:
        stdin = self.popen.stdin
        assert stdin is not None
        stdin.write(frame)
        stdin.flush()
        head = await self.answers.readexactly(writer_process.HEADER.size)
        return await self.answers.readexactly(writer_process.HEADER.unpack(head)[0])

    async def stop(self, *, kill: bool) -> None:
        if kill:
            self.popen.kill()
        with contextlib.suppress(OSError):
            assert self.popen.stdin is not None
            self.popen.stdin.close()  # the process commits nothing more and exits
        self.transport.close()
        await asyncio.to_thread(self.popen.wait)


_PIPE_BYTES = 1 << 20


class PostgresWriterConnection:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None

    async def ready(self) -> None:
        """PostgreSQL's writers run concurrently: nothing to wait for."""

    def release(self) -> None:
        pass

    async def open(self) -> None:
        if self._conn is None:
            try:
                self._conn = await self._db.engine.connect()
            except Exception as exc:
                if (fault := self._db.fault(exc)) is None:
                    raise
                raise fault from exc

    async def run(self, transaction: Callable[[Connection], T]) -> T:
        """A connection lost before COMMIT answered leaves the outcome
        unknown: it raises ``StoreUnavailable``, the requests are not
        acknowledged, and their retries (same ids) store each event once."""
        try:
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                # Kept across batches: no pool checkout, no reset-on-return ROLLBACK.
                self._conn = await self._db.engine.connect()
            return await self._conn.run_sync(_in_transaction, transaction)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, Exception) and (fault := self._db.fault(exc)) is not None:
                raise fault from exc
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
