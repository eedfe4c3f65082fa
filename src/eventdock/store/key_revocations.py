"""A revoked key is refused by every worker and node at once (SPEC §2).

Each worker caches key lookups for ``key_cache_seconds`` (``core.auth``); a
revocation must not wait for that. The revoking transaction announces it and
every process drops its key cache when it hears of it:

- PostgreSQL: ``Tenancy.revoke_key`` sends ``NOTIFY eventdock_keys`` in the
  transaction that revokes, so the notification exists exactly when the
  revocation does, and PostgreSQL delivers it at the commit. Every process
  LISTENs from start-up on a connection of its own, the same LISTEN/NOTIFY
  the live tail (``query_tail``) uses, but always on: the tail listens only
  while it has subscribers, and its channel carries ingested events, which
  are notified only while someone listens; this channel carries nothing
  but revocations, so it costs ingest nothing. After (re)connecting, the
  cache is dropped too: a revocation may have been missed while away.
  While the connection is down the cache's ``key_cache_seconds`` still
  bounds how long a key works.
- SQLite: every worker uses one file. A marker file beside it
  (``<database>.key-revocations``) grows by a byte with each revocation;
  an authentication that would trust a cached key first compares the
  marker's size (one ``stat``, about a microsecond) and drops the cache if
  it changed. No query, no poll, and a revocation is seen by the next
  request of every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.store.database import Database

log = logging.getLogger("eventdock.keys")

CHANNEL = "eventdock_keys"
_PING_SECONDS = 5.0  # how often an idle LISTEN connection is checked (a dead one is replaced)
_RETRY_SECONDS = 1.0


def marker_path(db: Database) -> str | None:
    return None if db.sqlite_file is None else f"{db.sqlite_file}.key-revocations"


async def announce(conn: AsyncConnection, db: Database) -> None:
    """Within the revoking transaction: tell every PostgreSQL listener at its commit."""
    if not db.is_sqlite:
        await conn.execute(text(f"NOTIFY {CHANNEL}"))


def announced(db: Database) -> None:
    """After the revoking transaction committed: grow the SQLite marker."""
    path = marker_path(db)
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)


class RevocationMarker:
    """``changed()`` is true once after each revocation any process made (SQLite)."""

    def __init__(self, path: str) -> None:
        self.path = path
        announced_nothing = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.close(announced_nothing)  # exists from now on: stat never raises on the hot path
        self._size = os.stat(path).st_size

    def changed(self) -> bool:
        try:
            size = os.stat(self.path).st_size
        except OSError:  # removed under us: trust nothing cached
            return True
        if size == self._size:
            return False
        self._size = size
        return True


async def listen(db: Database, on_revocation: Callable[[], None]) -> None:
    """Background task (PostgreSQL): call ``on_revocation`` for every revocation
    committed anywhere, and once each time listening (re)starts."""
    import asyncpg

    dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    failing = False
    while True:
        conn: Any = None
        try:
            conn = await asyncpg.connect(dsn, server_settings={"application_name": "eventdock-keys"})
            await conn.add_listener(CHANNEL, lambda *_: on_revocation())
            on_revocation()  # whatever was revoked while nobody here listened
            if failing:
                log.info("listening for key revocations again")
                failing = False
            while True:
                await asyncio.sleep(_PING_SECONDS)
                await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=_PING_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database went away: retry, the cache's TTL bounds the gap
            if not failing:
                log.warning("not listening for key revocations (%s); cached keys are trusted for at most key_cache_seconds until it is back", type(exc).__name__)
                failing = True
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), timeout=2)
                if not conn.is_closed():
                    conn.terminate()
        await asyncio.sleep(_RETRY_SECONDS)


async def start(services: Any) -> list[asyncio.Task[None]]:
    """Start-up hook: follow revocations made by other processes."""
    db: Database = services.db
    if db.is_sqlite:
        path = marker_path(db)
        if path is not None:
            services.authenticator.revoked_elsewhere = RevocationMarker(path).changed
        return []
    return [asyncio.create_task(listen(db, services.authenticator.forget), name="eventdock-key-revocations")]
