"""Database faults, translated once at the store's edge (issue 20).

A database that cannot be used right now — PostgreSQL restarting or
refusing connections (``CannotConnectNowError``), a connection lost in the
middle of a transaction, SQLite's ``database or disk is full`` — surfaces
from three drivers (asyncpg, sqlite3, psycopg), raw or wrapped by
SQLAlchemy. ``translate`` turns every such exception into the core's
``StoreUnavailable`` (``StoreFull`` when the database cannot grow), which
each dialect renders as its own 503 with ``Retry-After``; anything else
(a constraint, a bug) is left alone. It runs only on the exception path:
``Database.read``/``write``/``ping``, the writer's connections and the
SQLite writer's process call it when something was raised.

``StoreHealth`` keeps the log readable through an outage: the first fault
starts a probe that opens a fresh connection; if that fails too, "the
database is unavailable" is logged once, the probe retries every second,
and "the database is available again" is logged once it connects (or a
request gets through first). A fault
that a fresh connection does not confirm (a pooled connection left over
from before a restart) is logged at debug level only. A full database is
reported once (on SQLite so is any fault: it is the file's writes that
fail), and as cleared by the first write that commits once no write has
failed for ``FULL_QUIET_S``: near the cap small writes still fit between
refused big ones, and the log is not to flap.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import exc as sa_exc

from eventdock.core.errors import StoreFull, StoreUnavailable

log = logging.getLogger("eventdock.store")

# How long a client is asked to wait (Retry-After) before it retries.
RETRY_UNREACHABLE_S = 1.0
RETRY_FULL_S = 5.0
PROBE_INTERVAL_S = 1.0
FULL_QUIET_S = 5.0

# SQLite's primary result codes that mean "not now" rather than "wrong".
_SQLITE_FULL = 13
_SQLITE_TRANSIENT = {
    5,  # SQLITE_BUSY: another process held the lock past the busy timeout
    6,  # SQLITE_LOCKED
    8,  # SQLITE_READONLY: e.g. the file's permissions or a read-only mount
    10,  # SQLITE_IOERR: the disk refused a read or write
    14,  # SQLITE_CANTOPEN
    15,  # SQLITE_PROTOCOL
}
# PostgreSQL SQLSTATEs: 08 connection exception, 57P01-57P03 shutting down,
# crashed, cannot connect now (starting up, recovering), 53300 too many
# connections, 25006 read-only transaction (a standby after a failover);
# 53100 disk full.
_PG_FULL = "53100"
_PG_TRANSIENT_PREFIXES = ("08", "57P0", "53300", "53200", "25006")


def translate(exc: BaseException) -> StoreUnavailable | None:
    """The ``StoreUnavailable`` that ``exc`` means, or None if it is not an availability fault."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        found = _classify(current)
        if found is not None:
            return found
        seen += 1
        current = getattr(current, "orig", None) or current.__cause__
    return None


def _classify(exc: BaseException) -> StoreUnavailable | None:
    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code == _SQLITE_FULL:
            return StoreFull("The database or its disk is full; retry later.", retry_after=RETRY_FULL_S)
        if code in _SQLITE_TRANSIENT:
            return StoreUnavailable(f"The database is unavailable ({exc}); retry later.", retry_after=RETRY_UNREACHABLE_S)
        return None
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate == _PG_FULL:
            return StoreFull("The database's disk is full; retry later.", retry_after=RETRY_FULL_S)
        if sqlstate.startswith(_PG_TRANSIENT_PREFIXES):
            return _unreachable()
        return None
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return _unreachable()
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return _unreachable()
    if isinstance(exc, (OSError, asyncio.TimeoutError)):  # refused, reset, unreachable host, connect timeout
        return _unreachable()
    kind, module = type(exc).__name__, type(exc).__module__
    if module.startswith("asyncpg") and kind == "InterfaceError" and "closed" in str(exc):
        return _unreachable()  # asyncpg used directly (the live tail's LISTEN): "connection is closed"
    if module.startswith("psycopg") and kind == "OperationalError":
        return _unreachable()  # psycopg (migrations, the CLI): a connection failure, no SQLSTATE
    return None


def _unreachable() -> StoreUnavailable:
    return StoreUnavailable("The database is unavailable; retry later.", retry_after=RETRY_UNREACHABLE_S)


class StoreHealth:
    """What this process has said about the database: each change, once.

    Two kinds of episode. *Unreachable* (a server that does not answer) is
    confirmed by the probe, and ended by the probe or by the first request
    that gets through. *Failing writes* (a full database;
    on SQLite, every fault: a file is always "reachable", it is its writes
    that fail, e.g. with an I/O error) is ended by the first write that
    commits once none has failed for ``FULL_QUIET_S``.
    """

    def __init__(self, probe: Callable[[], Awaitable[None]], *, file_backed: bool = False, interval: float = PROBE_INTERVAL_S) -> None:
        self._probe = probe
        self._file_backed = file_backed
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.unreachable_since: float | None = None
        self.failing_since: float | None = None
        self._last_failure = 0.0

    def failed(self, fault: StoreUnavailable, cause: BaseException) -> None:
        """Called where a fault was translated (exception path only)."""
        if isinstance(fault, StoreFull) or self._file_backed:
            self._last_failure = time.monotonic()
            if self.failing_since is None:
                self.failing_since = self._last_failure
                if isinstance(fault, StoreFull):
                    log.error("the database is full: writes are refused with 503 until there is room (%s)", _describe(cause))
                else:
                    log.error("the database fails: the requests it fails get 503 while it does (%s)", _describe(cause))
            return
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._watch(cause), name="eventdock-store-probe")
            except RuntimeError:  # no loop (a blocking caller): nothing to watch with
                log.warning("database fault: %s", _describe(cause))

    @property
    def troubled(self) -> bool:
        """An episode is open: the next success has something to end."""
        return self.unreachable_since is not None or self.failing_since is not None

    def reached(self) -> None:
        """The database answered (a probe, or a request's read or write)."""
        if self.unreachable_since is not None:
            log.warning("the database is available again (after %.1f s)", time.monotonic() - self.unreachable_since)
            self.unreachable_since = None

    def wrote(self) -> None:
        """A write committed: the database answers, and has room unless a write failed lately."""
        self.reached()
        if self.failing_since is not None and time.monotonic() - self._last_failure >= FULL_QUIET_S:
            log.warning("the database takes writes again (after %.1f s)", time.monotonic() - self.failing_since)
            self.failing_since = None

    async def _watch(self, cause: BaseException) -> None:
        try:
            await self._probe()
        except Exception as exc:  # noqa: BLE001 - any failure of a fresh connection means "down"
            if self.unreachable_since is None:
                self.unreachable_since = time.monotonic()
                log.error("the database is unavailable: requests get 503 until it is back (%s)", _describe(exc))
        else:
            log.debug("a database fault a fresh connection did not confirm: %s", _describe(cause))
            return
        # Until a probe or a request reaches it.
        while self.unreachable_since is not None:
            await asyncio.sleep(self._interval)
            try:
                await self._probe()
            except Exception:  # noqa: BLE001 - still down; said once already
                continue
            self.reached()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _describe(exc: BaseException) -> str:
    """The innermost driver message, on one line (never a traceback)."""
    inner: BaseException = exc
    for _ in range(8):
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if nxt is None or nxt is inner:
            break
        inner = nxt
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}"
