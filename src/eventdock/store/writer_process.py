"""SQLite's writer in a process of its own (issue 6).

``python -m eventdock.store.writer_process SQLITE_URL`` is started by each
worker's ``SqliteWriterConnection`` and runs that worker's write
transactions: the worker sends a frame holding a pickled transaction (a
callable of a SQLAlchemy ``Connection``, e.g. ``writer.BatchTransaction``),
the process runs it between ``BEGIN IMMEDIATE`` and the fsync'd COMMIT and
answers with a frame holding its result or its exception.

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
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
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


def serve(url: str, frames_in: IO[bytes], frames_out: IO[bytes]) -> None:
    from eventdock.store.database import Database

    engine = Database(url).blocking_engine()
    conn = None
    try:
        while (head := _read_exactly(frames_in, HEADER.size)) is not None:
            payload = _read_exactly(frames_in, HEADER.unpack(head)[0])
            if payload is None:
                break
            try:
                transaction = pickle.loads(payload)
                if conn is None:
                    conn = engine.connect().execution_options(eventdock_write=True)  # BEGIN IMMEDIATE
                with conn.begin():
                    # Encoded before COMMIT: a result that cannot travel rolls back.
                    reply = encode_frame((True, transaction(conn)))
            except Exception as exc:  # noqa: BLE001 - the worker raises it for the batch
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - a broken connection may not close cleanly
                        pass
                    conn = None
                reply = error_frame(exc)
            frames_out.write(reply)
            frames_out.flush()
    finally:
        if conn is not None:
            conn.close()
        engine.dispose()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The frames go out on a copy of stdout; stdout itself becomes stderr, so
    # nothing a library prints can break a frame.
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.argv[1], sys.stdin.buffer, frames_out)


if __name__ == "__main__":
    main()
