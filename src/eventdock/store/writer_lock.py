"""One SQLite writer at a time across processes, woken as soon as it is free.

SQLite lets one transaction write at a time; a writer that finds the file
locked sleeps and retries (its busy handler backs off to 100 ms between
tries). With several worker processes each keeping its queue full, the
one that just committed takes the lock again at once, and a waiting
writer can miss every window for seconds (measured: p99 of 5 s at half
load with two workers). The group-commit writers of all processes on one
database therefore first take an ``flock`` on a file beside it: the kernel
hands it over the moment it is released. Other, short writes (schema CRUD,
usage counters) keep relying on SQLite's busy timeout.

PostgreSQL needs none of this: its writers run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator


class WriterLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        fd = self._open()
        # flock blocks, so it waits in a thread. If the waiter is cancelled,
        # the thread still gets the lock: release it then, or every other
        # process would wait forever.
        acquiring = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            acquiring.add_done_callback(lambda done: done.cancelled() or done.exception() or fcntl.flock(fd, fcntl.LOCK_UN))
            raise
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
