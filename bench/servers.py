"""Real server processes for the benchmark, and the memory they use.

Both servers under test are started the way an operator starts them:
eventdock through ``eventdock serve`` (uvicorn, uvloop + httptools, N
workers), the bare baseline through uvicorn's own command line with the
very same loop, protocol and worker settings. Each runs in its own process
group so that stopping it reaches every worker.

``RssSampler`` polls the resident set size of every process in a server's
tree from a background thread, so the peak seen during each phase can be
reported per worker (SPEC §9: ≤ 200 MB per worker, whatever the load).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One HTTP server under test (its whole process group)."""

    label: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def pids(self) -> list[int]:
        """The server process and every descendant (uvicorn's workers)."""
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDOCK_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def eventdock_server(database_url: str, workers: int, log_dir: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
    port = free_port()
    env = {**_base_env(), "EVENTDOCK_DATABASE_URL": database_url, **(extra_env or {})}
    argv = [sys.executable, "-m", "eventdock", "serve", "--port", str(port), "--workers", str(workers)]
    return ServerProcess("eventdock", argv, env, port, log_dir / f"eventdock-{port}.log")


def bare_server(workers: int, log_dir: Path) -> ServerProcess:
    """bench.bare under uvicorn with exactly the options ``eventdock serve`` passes."""
    from eventdock.cli import uvicorn_command

    port = free_port()
    argv = [sys.executable, *uvicorn_command("bench.bare:app", host="127.0.0.1", port=port, workers=workers)]
    return ServerProcess("bare", argv, _base_env(), port, log_dir / f"bare-{port}.log")


WRITER_PROCESS = "eventdock.store.writer_process"


@dataclass
class RssSampler:
    """Peak RSS per process of a server's tree, sampled every ``interval`` s.

    A worker's writer process (SQLite) is part of the worker: its USS, the
    memory that is its alone, is added to the worker's RSS. Its RSS would
    count a second time what it shares with the worker — the Python binary,
    libc, SQLite, OpenSSL and the extension modules both load, about 14 MB —
    so ``peaks_rss_sum`` keeps that stricter sum too, to show beside it.
    """

    server: ServerProcess
    interval: float = 0.2
    peaks: dict[int, int] = field(default_factory=dict)
    peaks_rss_sum: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        rss: dict[int, int] = {}
        writers: list[tuple[int, int, int]] = []  # (writer process, its worker, its USS)
        for pid in self.server.pids():
            try:
                process = psutil.Process(pid)
                rss[pid] = process.memory_info().rss
                if WRITER_PROCESS in " ".join(process.cmdline()):
                    writers.append((pid, process.ppid(), process.memory_full_info().uss))
            except psutil.NoSuchProcess:
                rss.pop(pid, None)
                continue
        summed = dict(rss)
        for pid, worker, uss in writers:
            own = rss.pop(pid)
            summed.pop(pid)
            if worker in rss:
                rss[worker] += uss
                summed[worker] += own
        for peaks, used_by in ((self.peaks, rss), (self.peaks_rss_sum, summed)):
            for pid, used in used_by.items():
                if used > peaks.get(pid, 0):
                    peaks[pid] = used

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.peaks, self.peaks_rss_sum = {}, {}
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    @property
    def peak_worker_mb(self) -> float:
        """The largest peak of any process in the tree (a worker: the uvicorn
        supervisor and multiprocessing helpers stay far below any worker)."""
        return max(self.peaks.values(), default=0) / 1e6

    @property
    def peak_worker_rss_sum_mb(self) -> float:
        """The same, counting a writer process by its whole RSS."""
        return max(self.peaks_rss_sum.values(), default=0) / 1e6
