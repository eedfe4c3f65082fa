"""Real ``eventdock serve`` processes for tests where a socket, several
workers, several nodes or a crash matter."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, database_url: str, *, workers: int = 1, env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.env = {**os.environ, "EVENTDOCK_DATABASE_URL": database_url, **(env or {})}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Server:
        out = open(self.log_dir / f"server-{self.port}.log", "wb") if self.log_dir else subprocess.DEVNULL  # noqa: SIM115
        self._log = out if self.log_dir else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventdock", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=out,
            start_new_session=True,  # so kill() reaches every worker
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the server and its workers) and reap it."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Close our ends too (pytest runs with ResourceWarning as an error).
        if self.process.stdout is not None:
            self.process.stdout.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()  # type: ignore[union-attr]
            self._log = None
        self.process = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill(signal.SIGTERM)
