"""``python -m bench.sqlite_ceiling``: how fast this machine's SQLite stores event rows at all.

SPEC §9 asks for 150,000 events/s through the whole pipeline on SQLite.
This measures the ceiling under it, with no eventdock code in the timed
part: plain ``sqlite3`` ``executemany`` of rows shaped as the writer stores
them (``store_rate.build_batch``), WAL with ``synchronous=FULL``, one
``BEGIN IMMEDIATE`` … ``COMMIT`` per transaction, for three tables:

- ``events`` as the migrations create it (primary key for idempotency,
  SPEC §3.1, and the indexes the queries of §8 use; the partial one on
  ``profile_id`` skips these rows, which carry none);
- the same table with its primary key only;
- a table with the same columns and no key or index at all (the floor).

Then, on the table as migrated, how the insert fares beside a busy Python
thread, as the writer did while it ran on a thread beside the busy event
loop: sqlite3's ``executemany`` lets go of the GIL around every row and
waits for it back, while one JSON statement does so a few times per
transaction. That is why the writer now runs in a process of its own
(``store/writer_process.py``), where ``executemany`` (the faster alone) is
what it uses.

    python -m bench.sqlite_ceiling [--rows 5000] [--transactions 20] [--gil-rows 500] [--gil-transactions 5]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from bench import workload
from bench.store_rate import build_batch
from eventdock.core.events import new_event_id
from eventdock.store.database import Database
from eventdock.store.events import EVENT_COLUMNS, event_row

_COLUMNS = ", ".join(EVENT_COLUMNS)
_json_encode = msgspec.json.Encoder().encode
# The form the writer used while it ran on a thread of the worker: the whole
# batch as one JSON document, unpacked by SQLite in one statement.
_SQLITE_INSERT_JSON = (
    f"INSERT INTO events ({_COLUMNS}) "
    "SELECT " + ", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(EVENT_COLUMNS))) + " "
    "FROM json_each(?) WHERE true ON CONFLICT (project_id, id) DO NOTHING"
)


def _key_only(conn: sqlite3.Connection) -> None:
    # SQLite's own index for the primary key has no CREATE statement (sql IS NULL).
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL").fetchall():
        conn.execute(f'DROP INDEX "{name}"')


def _no_key_or_index(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE events")
    conn.execute(f"CREATE TABLE events ({_COLUMNS})")


TABLES: dict[str, Callable[[sqlite3.Connection], None]] = {
    "events as migrated (key + indexes)": lambda conn: None,
    "primary key only": _key_only,
    "no key, no index (floor)": _no_key_or_index,
}


def measure(path: Path, prepare: Callable[[sqlite3.Connection], None], rows: int, transactions: int, *, as_json: bool = False) -> float:
    """Rows per second inside the transactions (rows are built before the clock;
    ``as_json``: encoding them into the one statement's document is timed)."""
    Database(f"sqlite:///{path}").migrate()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        prepare(conn)
        project_id = str(uuid.uuid4())
        events = build_batch(project_id, workload.batch_event(0), rows)
        insert = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        elapsed = 0.0
        for _ in range(transactions):
            for e in events:
                e.id = new_event_id()
            batch = [event_row(e) for e in events]
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            if as_json:
                conn.execute(_SQLITE_INSERT_JSON, (_json_encode(batch).decode(),))
            else:
                conn.executemany(insert, batch)
            conn.execute("COMMIT")
            elapsed += time.perf_counter() - started
        return rows * transactions / elapsed
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sqlite_ceiling", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5000, help="rows per transaction (default 5000, the writer's largest)")
    p.add_argument("--transactions", type=int, default=20, help="transactions per table (default 20)")
    p.add_argument("--gil-rows", type=int, default=500, help="rows per transaction beside a busy thread (default 500, the bench's batch)")
    p.add_argument("--gil-transactions", type=int, default=5, help="transactions beside a busy thread (default 5: executemany takes ~5 ms a row there)")
    args = p.parse_args(argv)
    print(
        f"$ python -m bench.sqlite_ceiling --rows {args.rows} --transactions {args.transactions}"
        f" --gil-rows {args.gil_rows} --gil-transactions {args.gil_transactions}"
    )
    with tempfile.TemporaryDirectory(prefix="eventdock-ceiling-") as tmp:
        for number, (label, prepare) in enumerate(TABLES.items()):
            rate = measure(Path(tmp) / f"t{number}.db", prepare, args.rows, args.transactions)
            print(f"{label:48s} {rate:10,.0f} rows/s")
        migrated = TABLES["events as migrated (key + indexes)"]
        print(f"-- into events as migrated, {args.gil_rows}-row transactions:")
        for busy in (False, True):
            with _busy_thread() if busy else contextlib.nullcontext():
                for as_json in (False, True):
                    path = Path(tmp) / f"b{busy:d}{as_json:d}.db"
                    rate = measure(path, migrated, args.gil_rows, args.gil_transactions, as_json=as_json)
                    label = f"{'one JSON statement' if as_json else 'executemany'}, {'a busy Python thread beside' if busy else 'alone'}"
                    print(f"{label:48s} {rate:10,.0f} rows/s")


@contextlib.contextmanager
def _busy_thread() -> Iterator[None]:
    """A thread that only runs Python, as the event loop under load does."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(100))

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


if __name__ == "__main__":
    main()
