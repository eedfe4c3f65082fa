"""Settings, read from ``EVENTDOCK_*`` environment variables.

The CLI turns its flags into these variables so that every worker process
started by the HTTP server builds the same settings.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields

DEFAULT_DATABASE_URL = "sqlite:///./eventdock.db"


@dataclass(frozen=True)
class Limits:
    """Per-request and per-event limits (SPEC §3.6)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_events_per_request: int = 50_000
    max_event_bytes: int = 1024 * 1024
    max_property_keys: int = 500
    max_key_length: int = 256
    max_depth: int = 8
    max_name_length: int = 200
    max_future_ms: int = 10 * 60 * 1000


@dataclass(frozen=True)
class WriterSettings:
    """The group-commit writer (SPEC §3.2)."""

    # Most events a worker's transactions hold at once (with several writer
    # connections each has an equal share); a request is never split.
    max_batch_events: int = 5_000
    # How long a batch waits to gather while another transaction of the
    # worker is committing (ms; PostgreSQL's several writer connections).
    # With none in flight the writer commits at once: the commit itself is
    # the window the next batch gathers in. 0: never wait.
    max_wait_ms: float = 2.0
    # Most requests one transaction holds; 1 turns group commit off (bench).
    max_batch_requests: int = 10_000
    # Once this many events are queued and not yet committed, requests get
    # 503 (the request that crossed the bound was taken whole). A parsed
    # event costs ~1-2 kB (dict, Event, JSON, insert row), so this, one
    # request and max_batch_events bound a worker's queue + transactions.
    # 10,000: with 15,000 a PostgreSQL worker under the bench's overload
    # peaked at 199-201 MB (SPEC §9: 200), with 10,000 at 186-189 MB and
    # stored as much.
    max_queue_events: int = 10_000
    # Bytes of ingest bodies a worker reads at once; past it, a body over
    # 64 KiB gets 503 + Retry-After before it is read (smaller ones always
    # get in: the server buffers that much per connection anyway). Without
    # it, any number of large uploads at once were each read whole while
    # the queue still had room, only to be refused once read.
    max_reading_bytes: int = 8 * 1024 * 1024
    # PostgreSQL: writer connections per process, each committing its own
    # batch, so one waits for its COMMIT while the next is written. SQLite
    # admits one writing transaction at a time and always uses one.
    connections: int = 2


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    limits: Limits = field(default_factory=Limits)
    writer: WriterSettings = field(default_factory=WriterSettings)
    # Ingest rate limit per project (events/s and burst); 0 = off.
    rate_limit_per_second: float = 0.0
    rate_limit_burst: float = 0.0
    # How long an authenticated key is trusted before it is looked up again,
    # so a revocation takes effect everywhere within this many seconds.
    key_cache_seconds: float = 2.0
    # How often each worker checks for schema changes (enforced within 2 s).
    schema_poll_seconds: float = 0.5
    # How often the live-event clock looks for due transitions.
    live_clock_interval: float = 0.5
    migrate_on_start: bool = True
    # Data lifecycle (SPEC §11). The retention, in days, of every project
    # that has none of its own; 0: keep events for ever.
    retention_days: int = 0
    # How often each worker's remover looks for expired rows and pending
    # erasures (one remover runs at a time across all workers and nodes).
    lifecycle_interval_seconds: float = 60.0
    # Rows a removal transaction deletes at most, and the pause after each,
    # which leaves the group-commit writer its turn.
    lifecycle_batch_rows: int = 2000
    lifecycle_pause_seconds: float = 0.01
    # How often each worker reloads changed suppression lists.
    suppression_poll_seconds: float = 1.0
    # SQLite: the largest the database file may grow, in bytes (0: as large
    # as the disk allows). Past it, writes get 503 as on a full disk, reads
    # go on, and writes resume once rows are deleted (docs/faults.md).
    sqlite_max_bytes: int = 0
    # Connections (http.connections, docs/limits.md), per worker: a request's
    # headers must arrive within header_timeout s of the connection opening
    # (or of the request's first byte), its body within body_timeout s of
    # the headers; past max_connections open connections the one waiting
    # longest for its headers is closed (capped below the file-descriptor limit).
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000
    # A server worker's garbage-collector generation-0 threshold (CPython's
    # default is 700); 0 keeps the interpreter's. See app.tune_gc.
    gc_gen0_threshold: int = 50_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """``EVENTDOCK_<FIELD>`` for each setting, ``EVENTDOCK_LIMIT_<FIELD>`` and
        ``EVENTDOCK_WRITER_<FIELD>`` for the two sections; a variable that is
        not set leaves the field's default (defaults live on the dataclasses only)."""
        env = os.environ if environ is None else environ
        values = _read(cls, "", env, skip={"limits", "writer"})
        values["limits"] = Limits(**_read(Limits, "LIMIT_", env))
        values["writer"] = WriterSettings(**_read(WriterSettings, "WRITER_", env))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _read(kind: type, prefix: str, env: Mapping[str, str], skip: Collection[str] = ()) -> dict[str, object]:
    """The fields of ``kind`` that are set in ``env``, converted to the field's type."""
    values: dict[str, object] = {}
    for f in fields(kind):
        raw = env.get(f"EVENTDOCK_{prefix}{f.name.upper()}")
        if raw is None or f.name in skip:
            continue
        if f.type == "int":
            values[f.name] = int(float(raw))
        elif f.type == "float":
            values[f.name] = float(raw)
        elif f.type == "bool":
            values[f.name] = raw.strip().lower() not in ("0", "false", "no", "off")
        else:
            values[f.name] = raw
    return values
