"""One SQLite writer at a time across processes, woken as soon as it is free.

SQLite lets one transaction write at a time; a writer that finds the file
locked sleeps and retries (its busy handler backs off to 100 ms between
tries). With several worker processes each keeping its queue full, the
one that just committed takes the lock again at once, and a waiting
writer can miss every window for seconds (measured: p99 of 5 s at half
load with two workers). The group-commit writers of all processes on one
database therefore first take an ``flock`` on a file beside it: the kernel
hands it over the moment it is released. The usage counters are written
on the writer's connection, so they take it too. Other, short writes
(schema CRUD, projects and keys) keep relying on SQLite's busy timeout.

PostgreSQL needs none of this: its writers run concurrently.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator


class WriterLock:
    """Held by the writer around each transaction (flock; taken on the loop
    without blocking when it is free, else waited for on a thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self.locked = False

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def acquire(self, *, blocking: bool = True) -> bool:
        try:
            fcntl.flock(self._open(), fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.locked = True
        return True

    def release(self) -> None:
        if self.locked:
            self.locked = False
            fcntl.flock(self._open(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file lets go of the lock
            self._fd = None
            self.locked = False
