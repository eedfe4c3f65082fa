"""The event loop's CPU per ingest request, measured in-process (issue 6).

``python -m bench.inproc [--phase generic|cdp|batch] [--requests N]
[--concurrency C] [--database URL] [--profile]``

The real app (``create_app``) with its real writer on a fresh SQLite file
(or the PostgreSQL database given), driven by C concurrent callers through
raw ASGI calls: no sockets, no HTTP server, no load generator sharing the
two cores. It prints, per request, the CPU the event loop's thread spent
(``time.thread_time``) and the wall time, and the writer's transactions
from its own metrics. This is the figure behind "what 60 % of bare would
take" in bench/PROFILE.md: the bare server's own per-request cost is
measured by the bench (bare uvicorn), ours here.

``--profile`` runs ``cProfile`` on the loop's thread only (the writer's
thread is not seen) and prints the functions by their own time, so the
loop's share of a request can be read function by function. Profiling
makes every call slower; read its shares, not its totals.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from bench import workload
from bench.paired import WriterTotals


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(args: argparse.Namespace) -> None:
    from asgi_lifespan import LifespanManager

    from eventdock.app import create_app, tune_gc
    from eventdock.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'inproc.db'}"
        settings = Settings.from_env({**os.environ, "EVENTDOCK_DATABASE_URL": url})
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            svc = app.state.services
            project = await svc.tenancy.create_project("inproc")
            key = await svc.tenancy.create_key(project_id=project.id, scopes=["*"], name="inproc")
            bodies = workload.bodies()
            path, body, events_per_request = {
                "generic": (workload.GENERIC_PATH, bodies.generic_single, 1),
                "cdp": (workload.cdp_path(project.id), bodies.cdp_single, 1),
                "batch": (workload.GENERIC_PATH, bodies.batch, bodies.batch_size),
            }[args.phase]
            headers = [
                (b"host", b"localhost"),
                (b"authorization", f"Bearer {key.token}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            tune_gc(settings.gc_gen0_threshold)

            async def caller(count: int) -> None:
                for _ in range(count):
                    status = await _call(app, path, headers, body)
                    if status != 202 and status != 201 and status != 200:
                        raise SystemExit(f"status {status}")

            per_caller = max(1, args.requests // args.concurrency)
            await asyncio.gather(*(caller(max(1, per_caller // 10)) for _ in range(args.concurrency)))  # warm-up
            before = WriterTotals.of(REGISTRY.collect())
            profiler = cProfile.Profile() if args.profile else None
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            await asyncio.gather(*(caller(per_caller) for _ in range(args.concurrency)))
            if profiler:
                profiler.disable()
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
            after = WriterTotals.of(REGISTRY.collect())
            n = per_caller * args.concurrency
            txns = after.transactions - before.transactions
            events_each, ms_each, busy = after.since(before, wall)
            print(
                f"{args.phase}: {n} requests, {n / wall:,.0f} req/s ({n * events_per_request / wall:,.0f} events/s); "
                f"loop CPU {cpu / n * 1e6:.1f} µs per request ({cpu / wall:.0%} of the wall time); "
                f"{txns:.0f} transactions, {n / max(txns, 1):.1f} requests ({events_each:.1f} events) each, "
                f"{ms_each:.2f} ms each, one under way {busy:.0f} % of the time"
            )
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
                print(out.getvalue())
        gc.unfreeze()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=("generic", "cdp", "batch"), default="generic")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, help="concurrent callers (default: 64, or 16 for batches, as the bench)")
    parser.add_argument("--database", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--profile", action="store_true", help="cProfile the event loop's thread")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = 16 if args.phase == "batch" else 64
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
