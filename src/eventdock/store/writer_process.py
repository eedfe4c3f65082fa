"""SQLite's writer in a process of its own (issue 6).

``python -m eventdock.store.writer_process SQLITE_URL [MAX_BYTES]`` is started by each
worker's ``SqliteWriterConnection`` and runs that worker's write
transactions: the worker sends a frame holding a pickled transaction (a
callable of a SQLAlchemy ``Connection``, e.g. ``writer.BatchTransaction``),
the process runs it between ``BEGIN IMMEDIATE`` and the fsync'd COMMIT and
answers with a frame holding its result or its exception. An exception
that means the database cannot take the write now (``database or disk is
full``, an I/O error) travels as the core's ``StoreUnavailable``, translated
here (``faults.translate``), where sqlite3's error code is still known (it
does not survive pickling). The transaction is rolled back and the
connection closed; the next frame opens a new one, so writes resume by
themselves once there is room. ``MAX_BYTES`` caps the database's size
(``Database.sqlite_max_bytes``).

Why a process, not a thread: on a thread of the worker, each of the
transaction's statements gave up the GIL while SQLite worked and then
waited for the busy event loop to hand it back (up to CPython's 5 ms
switch interval), so a 32-request transaction took 2.6 ms live against
1.1 ms with the loop idle (bench/PROFILE.md). Here nothing competes for
its GIL.

A frame is an 8-byte big-endian length and that many bytes of pickle. The
worker keeps the cross-process writer lock (``writer_lock.py``) around
each frame it sends, so the transactions of several workers still take
turns without SQLite's busy handler. The process runs in a session of
its own, so a Ctrl-C at the server's terminal does not reach it, and
ignores SIGINT and SIGTERM sent to it anyway (a service manager such as
systemd signals every process of the service at once, while the worker
still has batches to commit through it). It exits when its input ends:
when the worker closes it, or when the worker dies.

A thread of the process copies the WAL back into the database file
(``Checkpointer``), so that no COMMIT, and no request waiting for one,
pays for that.
"""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import struct
import sys
import threading
from typing import IO, Any

HEADER = struct.Struct("!Q")


def encode_frame(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def error_frame(exc: BaseException) -> bytes:
    """A failed transaction's answer; an exception that cannot be pickled travels as its text."""
    try:
        return encode_frame((False, exc))
    except Exception:  # noqa: BLE001 - e.g. a driver exception holding a connection
        return encode_frame((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


# Rows changed (sqlite3's ``total_changes``) between two checkpoints. With
# single events' transactions of ~30 rows each COMMIT adds ~30 pages to the
# WAL, so ~3,000 pages (12 MB) lie between checkpoints; with 500-event
# batches ~570 (docs/engineering/2026-11-24-checkpoints-off-the-commit-path.md).
# SQLite's own default is 1,000 pages, whatever the transactions.
CHECKPOINT_AFTER_CHANGES = 3_000
# Pages of WAL after which a COMMIT checkpoints by itself, should the
# checkpointer fall behind (40 MB).
BACKSTOP_CHECKPOINT_PAGES = 10_000


class Checkpointer:
    """Copies the WAL back into the database on a thread of its own (issue 6).

    Left to itself, the COMMIT that takes the WAL past 1,000 pages copies
    them into the database file and fsyncs it before it returns, and every
    request of that batch waits. Here, once the writer has changed
    ``CHECKPOINT_AFTER_CHANGES`` rows since the last time, a thread with its
    own connection runs a PASSIVE checkpoint while the next transaction is
    written (sqlite3 lets go of the GIL around SQLite's work): 500-event
    batches 1.16x in pairs, single events within the noise
    (docs/engineering/2026-11-24-checkpoints-off-the-commit-path.md).
    A passive checkpoint takes no lock a writer needs; once it has copied every frame, the next writer starts
    the WAL again from its beginning. The writer's autocheckpoint stays as
    the backstop (``BACKSTOP_CHECKPOINT_PAGES``).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._due = threading.Event()
        self._stopping = False
        self._changes_at_last = 0
        self._thread = threading.Thread(target=self._run, name="eventdock-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def committed(self, changes: int) -> None:
        """After each COMMIT; ``changes``: the writer connection's ``total_changes``."""
        if changes < self._changes_at_last:  # a new writer connection counts from 0
            self._changes_at_last = 0
        if changes - self._changes_at_last >= CHECKPOINT_AFTER_CHANGES:
            self._changes_at_last = changes
            self._due.set()

    def stop(self) -> None:
        self._stopping = True
        self._due.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")  # the database file is fsync'd before the WAL starts again
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # e.g. the file is gone; a later commit asks again, and the backstop holds
                    pass
        finally:
            conn.close()


def serve(url: str, frames_in: IO[bytes], frames_out: IO[bytes], max_bytes: int = 0) -> None:
    from eventdock.store.database import Database
    from eventdock.store.faults import translate

    db = Database(url, sqlite_max_bytes=max_bytes)
    engine = db.blocking_engine()
    checkpointer = None if db.sqlite_file is None else Checkpointer(db.sqlite_file)
    conn = None
    try:
        if checkpointer is not None:
            checkpointer.start()
        while (head := _read_exactly(frames_in, HEADER.size)) is not None:
            payload = _read_exactly(frames_in, HEADER.unpack(head)[0])
            if payload is None:
                break
            try:
                transaction = pickle.loads(payload)
                if conn is None:
                    conn = engine.connect().execution_options(eventdock_write=True)  # BEGIN IMMEDIATE
                    sqlite_conn = conn.connection.driver_connection
                    if checkpointer is not None:
                        sqlite_conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
                with conn.begin():
                    # Encoded before COMMIT: a result that cannot travel rolls back.
                    reply = encode_frame((True, transaction(conn)))
                if checkpointer is not None:
                    checkpointer.committed(sqlite_conn.total_changes)
            except Exception as exc:  # noqa: BLE001 - the worker raises it for the batch
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - a broken connection may not close cleanly
                        pass
                    conn = None
                reply = error_frame(translate(exc) or exc)
            frames_out.write(reply)
            frames_out.flush()
    finally:
        if conn is not None:
            conn.close()
        if checkpointer is not None:
            checkpointer.stop()
        engine.dispose()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A file-size limit (ulimit -f) then fails the write (an I/O error, 503)
    # instead of killing the process mid-transaction.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # The frames go out on a copy of stdout; stdout itself becomes stderr, so
    # nothing a library prints can break a frame.
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.argv[1], sys.stdin.buffer, frames_out, int(sys.argv[2]) if len(sys.argv) > 2 else 0)


if __name__ == "__main__":
    main()
