"""The background remover (SPEC §11): erasure requests, then retention.

Every worker runs a ``Remover`` loop, but one run at a time holds the
remover lock, across every worker and node:

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on the
  run's own connection. A process that dies loses its connection, and the
  lock with it; nothing waits for a lease to expire.
- SQLite (one machine): an ``flock`` on a file beside the database, let go
  by the kernel when its process dies.

A run first finishes every erasure request not completed (oldest first,
including one left ``running`` by a process that died: its steps are
idempotent, ``store/erasure.py``), then removes each project's expired
events and violations. It works in transactions of at most
``lifecycle_batch_rows`` rows on a writer connection of its own and
pauses ``lifecycle_pause_seconds`` after each, so the group-commit writer
gets its turn (on SQLite both take the cross-process writer lock, which
the kernel hands to the writer as soon as a batch lets go of it). On
SQLite the freed pages then go back to the file system. A run that did
something is recorded in ``lifecycle_runs`` (who, when, what it removed).

A loop looks for work every ``lifecycle_interval_seconds``, and at once
when woken (an erasure request on this worker, a retention change); a
look that finds nothing costs a few index reads and no writer connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Connection

from eventdock.config import Settings
from eventdock.core.errors import StoreUnavailable
from eventdock.core.events import now_ms
from eventdock.core.suppression import Suppressions
from eventdock.store import erasure, retention
from eventdock.store.database import Database
from eventdock.store.lifecycle_tables import lifecycle_runs
from eventdock.store.writer_connection import WriterConnection, connect_writer
from eventdock.store.writer_lock import WriterLock

log = logging.getLogger("eventdock.lifecycle")

# pg_advisory_lock keys: migrations use 7146001.
REMOVER_LOCK_KEY = 7146002
# How long the record of a run is kept (30 days).
RUNS_KEPT_MS = 30 * 86_400_000
# Free pages handed back per transaction (4 KiB each: 2 MB, ~25 ms).
VACUUM_PAGES = 500


class Observer(Protocol):
    """Where a run reports (Prometheus metrics, ``http/metrics.py``)."""

    def removed(self, reason: str, table: str, rows: int) -> None: ...

    def ran(self, finished_at_ms: int, lag_seconds: float) -> None: ...


@dataclass
class RunReport:
    started_at_ms: int
    events: int = 0
    violations: int = 0
    deletions: int = 0
    lag_seconds: float = 0.0
    finished_at_ms: int = 0
    windows: list[retention.Window] = field(default_factory=list)

    @property
    def did_work(self) -> bool:
        return bool(self.events or self.violations or self.deletions)


def _try_advisory_lock(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REMOVER_LOCK_KEY}).scalar())


def _advisory_unlock(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REMOVER_LOCK_KEY})


def _record_run(conn: Connection, row: dict[str, Any]) -> None:
    """Record a run, and forget those older than ``RUNS_KEPT_MS``."""
    conn.execute(insert(lifecycle_runs).values(**row))
    conn.execute(delete(lifecycle_runs).where(lifecycle_runs.c.started_at < row["started_at"] - RUNS_KEPT_MS))


class Remover:
    def __init__(self, db: Database, settings: Settings, *, observer: Observer | None = None) -> None:
        self.db = db
        self.settings = settings
        self.observer = observer
        self._wake = asyncio.Event()
        self._file_lock = WriterLock(f"{db.sqlite_file}.remover-lock") if db.sqlite_file else None
        self._local = asyncio.Lock()  # one run per process (an in-memory SQLite has only this)
        self.holder = f"{socket.gethostname()}:{os.getpid()}"

    def wake(self) -> None:
        self._wake.set()

    async def loop(self) -> None:
        while True:
            try:
                await self.run_when_due()
            except StoreUnavailable:
                pass  # the store says so in the log, once per outage; the next run tries again
            except Exception:  # noqa: BLE001 - a failed run logs and the next one tries again
                log.exception("the remover's run failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.lifecycle_interval_seconds)
            self._wake.clear()

    async def run_when_due(self) -> RunReport | None:
        """Run if there is work and the lock is free. While an erasure waits
        and another process holds the lock, look again every second: that
        process may have looked for requests just before this one came."""
        while await self._has_work():
            report = await self.run()
            if report is not None:
                return report
            if not await erasure.has_unfinished(self.db):
                return None
            await asyncio.sleep(1.0)
        return None

    async def _has_work(self) -> bool:
        if await erasure.has_unfinished(self.db):
            return True
        now = now_ms()
        for window in await retention.windows(self.db, self.settings.retention_days):
            event, violation = await retention.oldest(self.db, window)
            cutoff = window.cutoff(now)
            if (event is not None and event < cutoff) or (violation is not None and violation < cutoff):
                return True
        return False

    async def run(self, *, expire: bool = True) -> RunReport | None:
        """One run under the remover lock; None when another process holds it.
        Without ``expire`` it runs only the erasure requests (``eventdock profile delete``)."""
        if self._local.locked():
            return None
        async with self._local:
            conn = connect_writer(self.db)
            try:
                if not await self._lock(conn):
                    return None
                try:
                    return await self._run(conn, expire=expire)
                finally:
                    await self._unlock(conn)
            finally:
                await conn.close()

    async def _lock(self, conn: WriterConnection) -> bool:
        if self.db.is_sqlite:
            return self._file_lock is None or self._file_lock.acquire(blocking=False)
        return await conn.run(_try_advisory_lock)

    async def _unlock(self, conn: WriterConnection) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
        elif not self.db.is_sqlite:
            with contextlib.suppress(Exception):  # a broken connection took the lock with it
                await conn.run(_advisory_unlock)

    async def _run(self, conn: WriterConnection, *, expire: bool) -> RunReport:
        report = RunReport(started_at_ms=now_ms())
        await self._erase_all(conn, report)
        if expire:
            report.windows = await retention.windows(self.db, self.settings.retention_days)
        for window in report.windows:
            await self._expire(conn, window, report)
            await self._erase_all(conn, report)  # a request that came meanwhile goes first
        if self.db.is_sqlite and report.did_work:
            while await conn.run(functools.partial(retention.give_back_pages, pages=VACUUM_PAGES)) > 0:
                await self._pause()
        report.lag_seconds = await self._lag(report.windows)
        report.finished_at_ms = now_ms()
        if report.did_work:
            await conn.run(
                functools.partial(
                    _record_run,
                    row={
                        "id": str(uuid.uuid4()), "holder": self.holder, "started_at": report.started_at_ms,
                        "finished_at": report.finished_at_ms, "events_removed": report.events,
                        "violations_removed": report.violations, "deletions": report.deletions,
                    },
                )
            )  # fmt: skip
        if self.observer is not None:
            self.observer.ran(report.finished_at_ms, report.lag_seconds)
        return report

    async def _pause(self) -> None:
        await asyncio.sleep(self.settings.lifecycle_pause_seconds)

    async def _batches(self, conn: WriterConnection, step: Callable[[Connection], int], reason: str, table: str) -> int:
        """Run ``step`` until it removes nothing; returns the rows removed."""
        total = 0
        while removed := await conn.run(step):
            total += removed
            if self.observer is not None:
                self.observer.removed(reason, table, removed)
            await self._pause()
        return total

    async def _expire(self, conn: WriterConnection, window: retention.Window, report: RunReport) -> None:
        cutoff = window.cutoff(now_ms())
        rows = self.settings.lifecycle_batch_rows
        report.events += await self._batches(
            conn, functools.partial(retention.remove_events, project_id=window.project_id, cutoff_ms=cutoff, limit=rows), "retention", "events"
        )
        report.violations += await self._batches(
            conn,
            functools.partial(retention.remove_violations, project_id=window.project_id, cutoff_ms=cutoff, limit=rows),
            "retention",
            "violations",
        )

    async def _erase_all(self, conn: WriterConnection, report: RunReport) -> None:
        for deletion in await conn.run(erasure.unfinished):
            await self.erase(conn, deletion)
            report.deletions += 1

    async def erase(self, conn: WriterConnection, deletion: erasure.Deletion) -> None:
        ids = {"deletion_id": deletion.id, "project_id": deletion.project_id, "profile_id": deletion.profile_id}
        rows = self.settings.lifecycle_batch_rows
        log.info("erasure %s: running", deletion.id)
        await conn.run(functools.partial(erasure.claim, deletion_id=deletion.id))
        await self._batches(conn, functools.partial(erasure.erase_events, **ids, limit=rows), "erasure", "events")
        after: str | None = ""
        while after is not None:
            after = await conn.run(functools.partial(erasure.erase_rejected, **ids, after=after, limit=rows))
            await self._pause()
        if deletion.suppress:
            # Until every worker has loaded the new hashes, an event carrying
            # one may still be stored; it joins the profile (whose
            # identifiers go last) and ``finish`` erases it.
            settled = deletion.requested_at_ms + int(2_000 * self.settings.suppression_poll_seconds) + 500
            await asyncio.sleep(max(0.0, (settled - now_ms()) / 1000))
        await conn.run(functools.partial(erasure.finish, **ids, suppress=deletion.suppress))
        log.info("erasure %s: completed", deletion.id)

    async def _lag(self, windows: list[retention.Window]) -> float:
        """How far the oldest row left is past its window (seconds; 0 when none is)."""
        now = now_ms()
        lag = 0
        for window in windows:
            cutoff = window.cutoff(now)
            for oldest in await retention.oldest(self.db, window):
                if oldest is not None:
                    lag = max(lag, cutoff - oldest)
        return lag / 1000


# -- wiring (app.py) ----------------------------------------------------------------


async def poll_suppressions(db: Database, suppressions: Suppressions) -> None:
    for project_id, held in (await erasure.load_suppressions(db, suppressions.versions())).items():
        suppressions.replace(project_id, held)


async def start(svc: Any, observer: Observer | None = None) -> list[asyncio.Task[None]]:
    """Startup hook: the suppression poll (loaded once before serving) and the remover loop."""
    suppressions: Suppressions = svc.pipeline.suppressions
    try:
        await poll_suppressions(svc.db, suppressions)
    except StoreUnavailable:
        pass  # logged once by the store; the loop below retries
    except Exception:  # noqa: BLE001 - the loop below retries
        log.exception("first suppression poll failed")

    async def poll() -> None:
        while True:
            await asyncio.sleep(svc.settings.suppression_poll_seconds)
            try:
                await poll_suppressions(svc.db, suppressions)
            except StoreUnavailable:
                pass  # logged once by the store, as every background job's outage
            except Exception:  # noqa: BLE001 - a poll failure must not stop polling
                log.exception("suppression poll failed")

    remover = Remover(svc.db, svc.settings, observer=observer)
    svc.extras["remover"] = remover
    return [
        asyncio.create_task(poll(), name="eventdock-suppression-poll"),
        asyncio.create_task(remover.loop(), name="eventdock-remover"),
    ]
