"""A private PostgreSQL cluster that a test may stop, crash and restart.

The shared server on 5432 serves the rest of the suite in parallel, so
database outages are played on a cluster of the test's own: ``initdb`` into
a temporary directory and ``pg_ctl`` on a free port, TCP on 127.0.0.1 only,
trust authentication. ``initdb`` refuses to run as root, so as root every
command runs as the ``postgres`` OS user (``runuser``) in a directory that
user owns.

``EVENTDOCK_TEST_PG_BIN`` names the directory holding ``initdb`` and
``pg_ctl`` (default: Debian's PostgreSQL 15). Without them the tests that
need a private cluster skip, except under ``CI=true``, where they fail.

``fsync=off``: the tests crash PostgreSQL's processes (``restart -m
immediate``), never the machine, so what a commit wrote to the kernel
survives without it, and test runs sharing a disk stay quick.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.server import free_port

# Debian keeps initdb and pg_ctl off the PATH.
PG_BIN = Path(os.environ.get("EVENTDOCK_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def pg_bin(name: str) -> str | None:
    return str(PG_BIN / name) if (PG_BIN / name).exists() else shutil.which(name)


def available() -> bool:
    return pg_bin("initdb") is not None and pg_bin("pg_ctl") is not None and (os.geteuid() != 0 or shutil.which("runuser") is not None)


class PrivateCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="eventdock-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        """The maintenance database; ``database_url`` makes one per test."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> PrivateCluster:
        self._run(pg_bin("initdb") or "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\n"
                "max_connections = 60\n"
                "shared_buffers = 16MB\n"
            )
        return self

    def start(self) -> None:
        self._ctl("start", "-l", str(self.log))
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, a clean shutdown; ``immediate``: a crash."""
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "immediate") -> None:
        """``immediate`` is a crash: every backend is killed, recovery replays the WAL."""
        self._ctl("restart", "-m", mode, "-l", str(self.log))
        self.wait_ready()

    def _ctl(self, action: str, *args: str) -> None:
        self._run(pg_bin("pg_ctl") or "pg_ctl", action, "-D", str(self.data), "-w", "-t", "60", *args)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if self.is_running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster().init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivateCluster]:
    """One private cluster per test process; a test that stops it starts it again."""
    if not available():
        message = f"PostgreSQL's initdb/pg_ctl are not in {PG_BIN} or on the PATH (EVENTDOCK_TEST_PG_BIN)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with private_cluster() as cluster:
        yield cluster
