"""``python -m bench profile``: where an eventdock worker spends its time under load.

Issue 6 asks to profile before optimising. This starts ``eventdock serve``
(one worker, so the server process is the worker) on a fresh database,
drives it with wrk exactly as the benchmark does, and attaches py-spy to
the worker for each load in turn (single-event generic, single-event CDP,
500-event batches). py-spy samples the running process from outside
(``--nonblocking``: the worker is never paused), writes collapsed stacks,
and this module folds them into the functions that hold the most samples:
"self" (the frame on top of the stack) and "total" (anywhere on it).
Idle time (the event loop waiting in epoll) is left out by py-spy, so the
percentages are shares of the time the worker was busy.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import databases, workload, wrk
from bench.servers import eventdock_server


@dataclass
class Profile:
    load: str
    samples: int
    self_top: list[tuple[str, int]]
    total_top: list[tuple[str, int]]
    requests_per_s: float


def _short(frame: str) -> str:
    """``insert_events (eventdock/store/events.py:84)`` from py-spy's long form."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    file, _, _line = where.rpartition(":")
    return f"{name} ({file or where})"


# Frames on (nearly) every stack — start-up and thread plumbing — say
# nothing about where the time goes; left out of the "total" column.
_PLUMBING = ("<frozen runpy>", "typer/", "eventdock/cli.py", "eventdock/__main__.py", "uvicorn/main.py",
             "uvicorn/server.py", "uvicorn/_compat.py", "asyncio/runners.py", "threading.py")  # fmt: skip


def fold(collapsed: str, top: int = 15) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Self and inclusive sample counts per function from collapsed stacks.

    Each line is ``frame;frame;…;frame COUNT`` (outermost first). A function
    appearing twice on one stack (recursion) counts once towards "total".
    Self time of ``Runner.run`` is uvloop's own C loop (polling, transports);
    self time of aiosqlite's ``_connection_worker_thread`` is SQLite's C code
    (statements, COMMIT, fsync) on the database thread.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for f in set(frames):
            if not any(p in f for p in _PLUMBING):
                total[f] += count
    return samples, own.most_common(top), total.most_common(top)


def record(pid: int, seconds: float, out: Path, rate: int) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
            "--format", "raw", "--output", str(out), "--nonblocking", "--threads"]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def profile(database: str, duration_s: float, rate: int, pg_url: str, log: Console, top: int = 15) -> list[Profile]:
    results = []
    bodies = workload.bodies()
    with tempfile.TemporaryDirectory(prefix="eventdock-profile-") as tmp:
        work = Path(tmp)
        with databases.fresh_database(database, work, pg_url) as url:
            admin = databases.admin_token(url)
            with eventdock_server(url, 1, work) as server:
                project = databases.create_project(server.url, admin)
                assert server.process is not None
                loads = (
                    ("generic single event", workload.GENERIC_PATH, bodies.generic_single, 64, 1),
                    ("CDP single event", workload.cdp_path(project.id), bodies.cdp_single, 64, 1),
                    ("generic 500-event batches", workload.GENERIC_PATH, bodies.batch, 16, bodies.batch_size),
                )
                for label, path, body, connections, per_request in loads:
                    log.print(f"profiling: {label}", style="dim")
                    wrk.run(server.url + path, body, token=project.token, duration_s=1, connections=connections, timeout_s=30)
                    out = work / "profile.txt"
                    spy = record(server.process.pid, duration_s, out, rate)
                    holder: dict[str, wrk.WrkResult] = {}
                    load = threading.Thread(
                        target=lambda: holder.setdefault("r", wrk.run(server.url + path, body, token=project.token,
                                                                      duration_s=duration_s + 1, connections=connections, timeout_s=30))
                    )  # fmt: skip
                    load.start()
                    _, errors = spy.communicate()
                    load.join()
                    if spy.returncode != 0 or not out.exists():
                        raise RuntimeError(f"py-spy failed ({spy.returncode}): {errors.decode(errors='replace')[-2000:]}")
                    samples, own, total = fold(out.read_text(), top)
                    results.append(Profile(label, samples, own, total, holder["r"].ok_per_s * per_request))
    return results


def markdown(profiles: list[Profile], header: str) -> str:
    lines = [header, ""]
    for p in profiles:
        lines += [f"### {p.load} — {p.requests_per_s:,.0f} {'events' if 'batch' in p.load else 'requests'}/s under py-spy, {p.samples} busy samples", ""]
        lines += ["| self % | function | | total % | function |", "|---:|---|---|---:|---|"]
        for (sf, sc), (tf, tc) in zip(p.self_top, p.total_top, strict=False):
            lines.append(f"| {100 * sc / p.samples:.1f} | `{sf}` | | {100 * tc / p.samples:.1f} | `{tf}` |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench profile", description="py-spy an eventdock worker under the benchmark's loads.")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=databases.DEFAULT_PG_URL)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of sampling per load (default 8)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default 250)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables (as in bench/PROFILE.md)")
    args = parser.parse_args(argv)
    console = Console()
    err = Console(stderr=True)
    command = "python -m bench profile " + " ".join(argv)
    profiles = profile(args.database, args.duration, args.rate, args.pg_url, err, args.top)
    if args.markdown:
        sys.stdout.write(markdown(profiles, f"`{command}`") + "\n")
        return
    console.print(f"$ {command}", markup=False, highlight=False)
    for p in profiles:
        t = Table(title=f"{p.load}: {p.requests_per_s:,.0f}/s, {p.samples} busy samples")
        t.add_column("self %", justify="right")
        t.add_column("function (self)")
        t.add_column("total %", justify="right")
        t.add_column("function (total)")
        for (sf, sc), (tf, tc) in zip(p.self_top, p.total_top, strict=False):
            t.add_row(f"{100 * sc / p.samples:.1f}", sf, f"{100 * tc / p.samples:.1f}", tf)
        console.print(t)
