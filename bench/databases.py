"""A fresh, empty database for every server the benchmark starts.

Each eventdock server under test gets a database of its own — a new SQLite
file in the run's temporary directory, or a new PostgreSQL database created
next to the one named by ``--pg-url`` and dropped afterwards — so no phase
inherits another's rows, indexes or WAL, and nothing outside the run is
touched. The admin token comes from ``eventdock init --json`` (run before
the server starts, so ``serve`` has nothing to print); the benchmark's
project and its key are then made through the admin HTTP API like any
client would.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_counter = itertools.count(1)


@contextlib.contextmanager
def fresh_database(backend: str, work_dir: Path, pg_url: str = DEFAULT_PG_URL) -> Iterator[str]:
    """Yield the URL of an empty database of ``backend``; drop it afterwards."""
    label = f"eventdock_bench_{os.getpid()}_{next(_counter)}"
    if backend == "sqlite":
        path = work_dir / f"{label}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if backend != "postgresql":
        raise ValueError(f"unknown database {backend!r}: sqlite or postgresql")
    admin_url = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(label)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(label)))
    try:
        yield make_url(pg_url).set(database=label).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(label)))


def admin_token(database_url: str, src: str | None = None) -> str:
    """Migrate the database and mint an admin key (``eventdock init --json``),
    with the code in ``src`` when given (first on ``PYTHONPATH``), so that a
    server of an older checkout finds its own migrations' head."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDOCK_")}
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(src).resolve()), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "eventdock", "init", "--database", database_url, "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"eventdock init failed: {done.stderr.strip()[-2000:]}")
    return str(json.loads(done.stdout)["key"]["token"])


@dataclass(frozen=True)
class BenchProject:
    id: str
    token: str


def create_project(base_url: str, admin: str, name: str = "bench") -> BenchProject:
    """A project and a ``*`` key for it, through the admin HTTP API."""
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        project = client.post("/api/projects", json={"name": name})
        project.raise_for_status()
        project_id = project.json()["id"]
        key = client.post(f"/api/projects/{project_id}/keys", json={"name": "bench", "scopes": ["*"]})
        key.raise_for_status()
        return BenchProject(id=project_id, token=key.json()["token"])
