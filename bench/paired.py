"""``python -m bench.paired``: did a change make eventdock faster? Two servers, alternating rounds.

The development VM's speed moves by a third within minutes (bench/PROFILE.md),
so two full bench runs one after the other cannot show a 10 % change.
This runs both versions at once instead: server A from this checkout
(or ``--a-src``), server B with ``--b-src`` (another checkout's ``src/``,
or a directory with a ``sitecustomize.py`` that patches something) put
first on its ``PYTHONPATH``, and/or its own environment (``--b-env``).
Each has a fresh database of its own. The idle one costs nothing while
the other is driven; the rounds alternate A B, B A, … so a drift weighs
on both alike, and each pair's ratio B ÷ A is taken within a few seconds.

    python -m bench.paired --b-src ../other/src
    python -m bench.paired --a-src ../before/src        # A: the code before a change, B: this checkout
    python -m bench.paired --b-env EVENTDOCK_WRITER_MAX_WAIT_MS=0 --phases generic --pairs 10

Prints, per phase, every round's rate and the median, least and greatest
B ÷ A; a change is real when the pairs agree, not when one does. Beside
each side's rates, its group-commit writer's median transaction in those
rounds (from ``/metrics``): events and milliseconds per transaction, and
how much of the round a transaction was under way ("busy"; above 100 %
when several writer connections overlap). A writer busy all the time is
the bottleneck of that phase.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from bench import databases, workload, wrk
from bench.runner import Options
from bench.servers import ServerProcess, eventdock_server

PHASES = ("cdp", "generic", "batch")


@dataclass
class Side:
    name: str
    server: ServerProcess
    project: databases.BenchProject
    schema_project: databases.BenchProject

    def target(self, phase: str, bodies: workload.Bodies) -> tuple[str, bytes, int, int, str]:
        """(path, body, connections, events per request, token) of a phase, as ``python -m bench`` sends it by default."""
        single = Options.connections
        if phase == "cdp":
            return workload.cdp_path(self.project.id), bodies.cdp_single, single, 1, self.project.token
        if phase == "generic":
            return workload.GENERIC_PATH, bodies.generic_single, single, 1, self.project.token
        # 500-event batches with the schema on, as SPEC §9's batch target reads.
        return workload.GENERIC_PATH, bodies.batch, Options.batch_connections, bodies.batch_size, self.schema_project.token


@dataclass(frozen=True)
class WriterTotals:
    """The writer's histogram sums across the server's workers, from ``/metrics``."""

    transactions: float
    events: float
    seconds: float

    @classmethod
    def read(cls, url: str) -> WriterTotals:
        return cls.of(text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text))

    @classmethod
    def of(cls, families: Iterable[Metric]) -> WriterTotals:
        """From metric families: a server's ``/metrics`` parsed, or a process's own registry."""
        sums: dict[str, float] = {}
        for family in families:
            for sample in family.samples:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
        return cls(
            sums.get("eventdock_writer_batch_events_count", 0.0),
            sums.get("eventdock_writer_batch_events_sum", 0.0),
            sums.get("eventdock_writer_commit_seconds_sum", 0.0),
        )

    def since(self, before: WriterTotals, elapsed_s: float) -> tuple[float, float, float]:
        """(events per transaction, ms per transaction, busy %) between two readings."""
        n = self.transactions - before.transactions
        if n <= 0:
            return 0.0, 0.0, 0.0
        seconds = self.seconds - before.seconds
        return (self.events - before.events) / n, seconds / n * 1000, seconds / elapsed_s * 100


def _env_pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.splitlines()[0])
    p.add_argument("--a-src", help="put this directory first on server A's PYTHONPATH (default: none, this checkout)")
    p.add_argument("--b-src", help="put this directory first on server B's PYTHONPATH (another checkout's src/)")
    p.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE", help="environment of server A (repeatable)")
    p.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE", help="environment of server B (repeatable)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)} (default all)")
    p.add_argument("--pairs", type=int, default=6, help="rounds per server and phase (default 6)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per round (default 3)")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default=databases.DEFAULT_PG_URL)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    phases = [x for x in args.phases.split(",") if x]
    if not phases or any(x not in PHASES for x in phases):
        raise SystemExit(f"--phases: comma-separated, of {', '.join(PHASES)}")
    if not (args.a_src or args.b_src or args.a_env or args.b_env):
        raise SystemExit("give --b-src and/or --b-env (or their --a- counterparts): what makes B differ from A")
    print("$ python -m bench.paired " + shlex.join(sys.argv[1:] if argv is None else argv), flush=True)
    bodies = workload.bodies()
    with tempfile.TemporaryDirectory(prefix="eventdock-paired-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        sides = []
        for name, env, src in (("A", _env_pairs(args.a_env), args.a_src), ("B", _env_pairs(args.b_env), args.b_src)):
            url = stack.enter_context(databases.fresh_database(args.database, work, args.pg_url))
            admin = databases.admin_token(url, src)
            server = eventdock_server(url, args.workers, work, env)
            if src:
                server.env["PYTHONPATH"] = os.pathsep.join((str(Path(src).resolve()), server.env["PYTHONPATH"]))
            stack.enter_context(server)
            project = databases.create_project(server.url, admin)
            schema_project = databases.create_project(server.url, admin, "bench-schema")
            workload.create_schema(server.url, schema_project.id, schema_project.token)
            sides.append(Side(name, server, project, schema_project))
        time.sleep(2.5)  # schema changes reach every worker within 2 s (SPEC §3.4)
        for phase in phases:
            rates: dict[str, list[float]] = {"A": [], "B": []}
            p99: dict[str, list[float]] = {"A": [], "B": []}
            writer: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
            for side in sides:  # warm-up, not counted
                path, body, connections, _, token = side.target(phase, bodies)
                wrk.run(side.server.url + path, body, token=token, duration_s=1, connections=connections, timeout_s=30)
            for i in range(args.pairs):
                for side in sides if i % 2 == 0 else reversed(sides):
                    path, body, connections, per_request, token = side.target(phase, bodies)
                    time.sleep(1)  # wrk leaves its last requests behind (as python -m bench)
                    before, started = WriterTotals.read(side.server.url), time.monotonic()
                    result = wrk.run(side.server.url + path, body, token=token, duration_s=args.duration, connections=connections, timeout_s=30)
                    writer[side.name].append(WriterTotals.read(side.server.url).since(before, time.monotonic() - started))
                    rates[side.name].append(result.ok_per_s * per_request)
                    p99[side.name].append(result.p99_ms)
            ratios = [b / a for a, b in zip(rates["A"], rates["B"]) if a > 0]
            unit = "events/s" if phase == "batch" else "req/s"
            print(f"{phase} ({unit}):")
            for name in ("A", "B"):
                per_txn, ms, busy = (statistics.median(w[i] for w in writer[name]) for i in range(3))
                print(
                    f"  {name}: " + " ".join(f"{r:,.0f}" for r in rates[name])
                    + f"  (p99 median {statistics.median(p99[name]):.1f} ms; writer: {per_txn:,.0f} events in {ms:.2f} ms per transaction, busy {busy:.0f} %)"
                )
            if ratios:
                print(f"  B ÷ A: median {statistics.median(ratios):.2f}, least {min(ratios):.2f}, greatest {max(ratios):.2f}", flush=True)


if __name__ == "__main__":
    main()
