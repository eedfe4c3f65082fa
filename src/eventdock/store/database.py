"""One ``Database`` for both back ends: engines, connection set-up, migrations.

SQLite runs in WAL mode with ``synchronous=FULL``; transactions that write
start with ``BEGIN IMMEDIATE`` so that two processes never deadlock on a
lock upgrade. PostgreSQL uses asyncpg with synchronous commit (the default).

Every driver exception that means "the database cannot be used now" leaves
``read``, ``write`` and ``ping`` as the core's ``StoreUnavailable``
(``faults.py``); ``health`` says so in the log once per outage.
``sqlite_max_bytes`` caps an SQLite database's size (``PRAGMA
max_page_count`` on every connection): past it, writes fail as they would
on a full disk, with 503, and the file stays intact.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from eventdock.core.errors import StoreUnavailable
from eventdock.store.faults import StoreHealth, translate

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
# Seconds a PostgreSQL connect may take before the request gets 503.
CONNECT_TIMEOUT_S = 10

_json_encode = msgspec.json.Encoder().encode


def _json_serializer(value: Any) -> str:
    return _json_encode(value).decode()


class Database:
    def __init__(self, url: str, *, pool_size: int = 8, sqlite_max_bytes: int = 0) -> None:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://user@host:port/db")
        self.url = parsed
        self.backend = backend
        self.is_sqlite = backend == "sqlite"
        self.pool_size = pool_size
        # The SQLite database's file; None on PostgreSQL and for an in-memory database.
        self.sqlite_file: str | None = parsed.database if self.is_sqlite and parsed.database not in (None, "", ":memory:") else None
        # 0: no cap but the disk's.
        self.sqlite_max_bytes = sqlite_max_bytes if self.is_sqlite else 0
        self.health = StoreHealth(self._probe, file_backed=self.is_sqlite)

    @functools.cached_property
    def engine(self) -> AsyncEngine:
        """The asyncio engine, made on first use: the SQLite writer's process
        never uses it, and does without importing SQLAlchemy's asyncio layer
        (and the ORM it brings: ~8 MB of that process's memory)."""
        from sqlalchemy.ext.asyncio import create_async_engine

        kwargs: dict[str, Any] = {
            "json_serializer": _json_serializer,
            "json_deserializer": msgspec.json.decode,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = self.pool_size
            kwargs["max_overflow"] = self.pool_size
            # No ping per checkout (a round trip per read): a connection that
            # died with the server fails its first use, and SQLAlchemy then
            # drops the whole pool. A connect that hangs (a host gone) gives up.
            kwargs["pool_pre_ping"] = False
            kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}
        engine = create_async_engine(self._driver_url(async_=True), **kwargs)
        if self.is_sqlite:
            _configure_sqlite(engine.sync_engine, self.sqlite_max_bytes)
        return engine

    def _driver_url(self, *, async_: bool) -> URL:
        if self.is_sqlite:
            return self.url.set(drivername="sqlite+aiosqlite" if async_ else "sqlite")
        return self.url.set(drivername="postgresql+asyncpg" if async_ else "postgresql+psycopg")

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    # -- connections -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except Exception as exc:
            if (fault := self.fault(exc)) is None:
                raise
            raise fault from exc
        if self.health.unreachable_since is not None:
            self.health.reached()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on exit (``BEGIN IMMEDIATE`` on SQLite)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(eventdock_write=True)
                async with conn.begin():
                    yield conn
        except Exception as exc:
            if (fault := self.fault(exc)) is None:
                raise
            raise fault from exc
        if self.health.troubled:
            self.health.wrote()

    def fault(self, exc: Exception) -> StoreUnavailable | None:
        """The ``StoreUnavailable`` to raise for driver exception ``exc`` (noted
        in ``health``), or None: ``exc`` is not a fault of the database's, or
        is one already translated."""
        if isinstance(exc, StoreUnavailable):
            return None
        fault = translate(exc)
        if fault is not None:
            self.health.failed(fault, exc)
        return fault

    def writer_lock_path(self) -> str | None:
        """Where the group-commit writers of every process serialise (file SQLite only)."""
        return None if self.sqlite_file is None else f"{self.sqlite_file}.writer-lock"

    def blocking_engine(self) -> Engine:
        """A plain (non-asyncio) engine on the same database, set up alike: for
        migrations, and for the SQLite writer's process (``store/writer_process.py``)."""
        engine = create_engine(
            self._driver_url(async_=False),
            poolclass=NullPool,
            json_serializer=_json_serializer,
            json_deserializer=msgspec.json.decode,
            **({"connect_args": {"timeout": 30}} if self.is_sqlite else {}),
        )
        if self.is_sqlite:
            _configure_sqlite(engine, self.sqlite_max_bytes)
        return engine

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers now."""
        try:
            await self._probe()
        except Exception as exc:
            if (fault := self.fault(exc)) is None:
                raise
            raise fault from exc
        self.health.reached()

    async def _probe(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.health.close()
        if "engine" in self.__dict__:  # made on first use; nothing to dispose of otherwise
            await self.engine.dispose()

    # -- migrations --------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to call from many processes)."""
        from alembic import command
        from alembic.config import Config

        if self.sqlite_file is not None:
            Path(self.sqlite_file).parent.mkdir(parents=True, exist_ok=True)
        engine = self.blocking_engine()
        try:
            with engine.connect() as conn:
                if not self.is_sqlite:
                    # Several servers starting at once: one migrates, the others wait.
                    conn.execute(text("SELECT pg_advisory_lock(7146001)"))
                    conn.commit()
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_unlock(7146001)"))
                    conn.commit()
        finally:
            engine.dispose()


def _configure_sqlite(sync_engine: Any, max_bytes: int = 0) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if max_bytes > 0:
            cursor.execute("PRAGMA page_size")
            page_size = cursor.fetchone()[0]
            # (SQLite keeps it at least the file's present size.)
            cursor.execute(f"PRAGMA max_page_count={max(1, max_bytes // page_size)}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("eventdock_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
