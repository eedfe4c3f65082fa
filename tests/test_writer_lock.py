"""The cross-process SQLite writer lock: exclusive, and handed over on release.
(flock belongs to an open file, so two WriterLocks in one process exclude
each other just as two processes do; the writer takes it on its own thread.)"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from eventdock.store.writer_lock import WriterLock
from tests.support.custom_app import custom_app
from tests.test_limits import INGEST, _until


def test_a_second_writer_waits_until_the_first_releases(tmp_path: Path) -> None:
    first, second = WriterLock(str(tmp_path / "db.writer-lock")), WriterLock(str(tmp_path / "db.writer-lock"))
    order: list[str] = []

    def hold_second() -> None:
        with second.held():
            order.append("second")

    with first.held():
        waiter = threading.Thread(target=hold_second)
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive()  # blocked while the first holds it
        order.append("first released")
    waiter.join(5)
    assert order == ["first released", "second"]
    first.close()
    second.close()


def test_the_lock_is_released_when_the_transaction_raises(tmp_path: Path) -> None:
    path = str(tmp_path / "db.writer-lock")
    failing, next_one = WriterLock(path), WriterLock(path)
    try:
        with failing.held():
            raise RuntimeError("the batch failed")
    except RuntimeError:
        pass
    taken: list[str] = []

    def hold() -> None:
        with next_one.held():
            taken.append("next")

    waiter = threading.Thread(target=hold, daemon=True)
    waiter.start()
    waiter.join(5)
    assert taken == ["next"]
    failing.close()
    next_one.close()


async def test_requests_gather_while_another_worker_holds_the_lock(tmp_path: Path) -> None:
    """While another process's writer holds the lock, this worker's writer
    takes no batch: every request that arrives meanwhile waits in the queue,
    and they are committed together once the lock is free."""
    async with custom_app("sqlite", tmp_path) as c:
        writer = c.app.state.services.writer
        other_worker = WriterLock(c.database_url.removeprefix("sqlite:///") + ".writer-lock")

        def post(n: int) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(c.client.post(INGEST, json={"event.id": f"w{n}"}, headers=c.project.headers))

        with other_worker.held():
            waiting = [post(n) for n in range(3)]
            await _until(lambda: writer.queued_events == 3)
            await asyncio.sleep(0.2)
            assert writer.queued_events == 3 and writer.in_flight_events == 0
        assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 3
        other_worker.close()
