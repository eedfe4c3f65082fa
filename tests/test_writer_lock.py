"""The cross-process SQLite writer lock: exclusive, handed over on release, and
never left held by a waiter that was cancelled. (flock belongs to an open file,
so two WriterLocks in one process exclude each other just as two processes do.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from eventdock.store.writer_lock import WriterLock


async def test_a_second_writer_waits_until_the_first_releases(tmp_path: Path) -> None:
    first, second = WriterLock(str(tmp_path / "db.writer-lock")), WriterLock(str(tmp_path / "db.writer-lock"))
    order: list[str] = []
    async with first.held():
        waiter = asyncio.create_task(_hold(second, order, "second"))
        await asyncio.sleep(0.2)
        assert not waiter.done()  # blocked while the first holds it
        order.append("first released")
    await asyncio.wait_for(waiter, 5)
    assert order == ["first released", "second"]
    first.close()
    second.close()


async def test_a_cancelled_waiter_does_not_keep_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "db.writer-lock")
    holder, cancelled, third = WriterLock(path), WriterLock(path), WriterLock(path)
    async with holder.held():
        waiter = asyncio.create_task(_hold(cancelled, [], "never"))
        await asyncio.sleep(0.2)
        waiter.cancel()
    # The cancelled waiter's thread gets the lock after the release and must give it back.
    await asyncio.wait_for(_hold(third, [], "third"), 5)
    for lock in (holder, cancelled, third):
        lock.close()


async def _hold(lock: WriterLock, order: list[str], name: str) -> None:
    async with lock.held():
        order.append(name)
