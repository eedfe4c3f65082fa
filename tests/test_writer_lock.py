"""The cross-process SQLite writer lock: exclusive, and handed over on release.
(flock belongs to an open file, so two WriterLocks in one process exclude
each other just as two processes do; the writer takes it on its own thread.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from eventdock.store.writer_lock import WriterLock


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
