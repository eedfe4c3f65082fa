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
from tests.support.custom_app import CustomApp, custom_app
from tests.test_definition_usage import definition
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


def _other_worker(c: CustomApp) -> WriterLock:
    """The lock as another worker's writer on the same database would take it."""
    path = c.app.state.services.db.writer_lock_path()
    assert path is not None
    return WriterLock(path)


async def test_requests_gather_while_another_worker_holds_the_lock(tmp_path: Path) -> None:
    """While another process's writer holds the lock, this worker's writer
    takes no batch: every request that arrives meanwhile waits in the queue
    (before, the first was taken alone and waited for the lock in flight),
    and all are answered once the lock is free."""
    async with custom_app("sqlite", tmp_path) as c:
        writer = c.app.state.services.writer
        other_worker = _other_worker(c)

        def post(n: int) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(c.client.post(INGEST, json={"event.id": f"w{n}"}, headers=c.project.headers))

        try:
            with other_worker.held():
                waiting = [post(n) for n in range(3)]
                await _until(lambda: writer.queued_events == 3)
                await asyncio.sleep(0.2)
                assert writer.queued_events == 3 and writer.in_flight_events == 0
            assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 3
        finally:
            other_worker.close()


async def test_usage_counters_wait_for_the_writer_lock(tmp_path: Path) -> None:
    """The usage counters are written on the writer's connection, so while
    another worker's writer holds the lock they wait for it, as a batch
    would, instead of meeting that writer in SQLite's busy handler."""
    async with custom_app("sqlite", tmp_path) as c:
        other_worker = _other_worker(c)
        answer = await c.client.post(INGEST, json={"event.id": "u1", "event.name": "locked-usage"}, headers=c.project.headers)
        assert answer.status_code == 202, answer.text
        try:
            with other_worker.held():
                await asyncio.sleep(1.5)  # the counters are flushed once a second
                assert (await definition(c.client, c.project, "locked-usage"))["volume"] == 0
            for _ in range(50):
                if (await definition(c.client, c.project, "locked-usage"))["volume"] == 1:
                    break
                await asyncio.sleep(0.1)
            assert (await definition(c.client, c.project, "locked-usage"))["volume"] == 1
        finally:
            other_worker.close()
