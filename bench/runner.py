"""The benchmark's phases, run against real server processes, in one invocation.

For every (database, worker count, group-commit setting) the runner

1. starts the bare ASGI app under the same uvicorn settings and measures
   the request rate for CDP-shaped and generic-shaped single-event POSTs;
2. stops it, starts ``eventdock serve`` on a fresh database and measures,
   with the same generator, connections and bodies: single-event CDP
   POSTs, single-event generic POSTs, 500-event generic batches (and, with
   ``--schema``, the same batches against a project whose schema makes five
   properties required);
3. replays each single-event route open-loop at half the rate just
   measured, for the p99 latency SPEC §9 bounds;
4. overloads the writer with large batches from many connections (503s
   counted) while the server's memory is sampled.

The bare and eventdock figures of a configuration are taken back to back,
so each ratio comes from one run on one machine state. The store's own
batched insert rate is measured once per database before any server starts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import databases, store_rate, workload, wrk
from bench.servers import RssSampler, ServerProcess, bare_server, eventdock_server


@dataclass
class Options:
    databases: list[str]
    workers: list[int]
    group_commit: list[bool]  # True = on (default settings), False = one request per transaction
    duration_s: float = 5.0
    warmup_s: float = 1.0
    connections: int = 64
    batch_connections: int = 16
    batch_size: int = 500
    overload_connections: int = 128  # per worker
    overload_size: int = 2000
    overload_duration_s: float = 10.0
    schema: bool = False
    pg_url: str = databases.DEFAULT_PG_URL
    open_loop: bool = True
    overload: bool = True
    # Extra EVENTDOCK_* settings for the eventdock server (tuning experiments).
    server_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Phase:
    """One measured phase: what was sent, what came back, how fast."""

    name: str
    requests_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    codes: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    # The same with a worker's writer process counted by its RSS, not its USS (bench/servers.py).
    peak_rss_sum_mb: float = 0.0
    note: str = ""


@dataclass
class Config:
    database: str
    workers: int
    group_commit: bool
    phases: dict[str, Phase] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    peak_rss_sum_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.database} ×{self.workers}" + ("" if self.group_commit else " gc-off")


@dataclass
class Report:
    command: str
    options: dict[str, Any]
    store: dict[str, dict[str, float]] = field(default_factory=dict)
    configs: list[Config] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """The inverse of ``as_json`` (``python -m bench.report`` reads a saved run)."""
        configs = [Config(**{**c, "phases": {name: Phase(**phase) for name, phase in c["phases"].items()}}) for c in data["configs"]]
        return cls(data["command"], data["options"], data["store"], configs)


Log = Callable[[str], None]

# Pause before each measured closed-loop run (see _wrk_phase).
SETTLE_S = 1.0


def _wrk_phase(
    name: str, server: ServerProcess, path: str, body: bytes, token: str, opts: Options, *,
    connections: int, events_per_request: int = 1, count_codes: bool = False, timeout_s: float = 10.0,
    warmup_s: float | None = None,
) -> Phase:  # fmt: skip
    warm = opts.warmup_s if warmup_s is None else warmup_s
    if warm > 0:
        wrk.run(server.url + path, body, token=token, duration_s=warm, connections=connections, timeout_s=timeout_s)
    # wrk stops without waiting for its last requests; the server still
    # commits them. Let it, so the measured run does not start behind a
    # backlog it did not send (with 500-event batches it met a full queue).
    time.sleep(SETTLE_S)
    with RssSampler(server) as rss:
        result = wrk.run(
            server.url + path, body, token=token, duration_s=opts.duration_s, connections=connections,
            count_codes=count_codes, timeout_s=timeout_s,
        )  # fmt: skip
    return Phase(
        name=name,
        requests_per_s=result.ok_per_s,
        events_per_s=result.ok_per_s * events_per_request,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        requests=result.requests,
        errors=result.status_errors + result.socket_errors,
        codes={str(k): v for k, v in sorted(result.codes.items())},
        peak_rss_mb=rss.peak_worker_mb,
        peak_rss_sum_mb=rss.peak_worker_rss_sum_mb,
    )


def _combined(first: Phase, second: Phase) -> Phase:
    """Two equal-length runs of one phase as one: mean rates, worst tail."""
    return Phase(
        name=first.name,
        requests_per_s=(first.requests_per_s + second.requests_per_s) / 2,
        events_per_s=(first.events_per_s + second.events_per_s) / 2,
        p50_ms=(first.p50_ms + second.p50_ms) / 2,
        p99_ms=max(first.p99_ms, second.p99_ms),
        max_ms=max(first.max_ms, second.max_ms),
        requests=first.requests + second.requests,
        errors=first.errors + second.errors,
        codes={k: first.codes.get(k, 0) + second.codes.get(k, 0) for k in {*first.codes, *second.codes}},
        peak_rss_mb=max(first.peak_rss_mb, second.peak_rss_mb),
        peak_rss_sum_mb=max(first.peak_rss_sum_mb, second.peak_rss_sum_mb),
        note="mean of two halves (ABBA with the schema phase)",
    )


def _open_loop_phase(name: str, server: ServerProcess, path: str, body: bytes, token: str, rate: float, opts: Options, work_dir: Path) -> Phase:
    body_file = work_dir / f"{name}.body"
    body_file.write_bytes(body)
    argv = [
        sys.executable, "-m", "bench.openloop", server.url + path, "--body-file", str(body_file),
        "--header", f"Authorization: Bearer {token}", "--header", "Content-Type: application/json",
        "--rate", f"{rate:.1f}", "--duration", str(opts.duration_s), "--connections", str(opts.connections),
    ]  # fmt: skip
    with RssSampler(server) as rss:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, timeout=opts.duration_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"open-loop generator failed: {done.stderr.strip()[-2000:]}")
    doc = json.loads(done.stdout)
    ok = sum(v for k, v in doc["codes"].items() if k.startswith("2"))
    return Phase(
        name=name,
        requests_per_s=doc["achieved_per_s"],
        events_per_s=doc["achieved_per_s"],
        p50_ms=doc["p50_ms"],
        p99_ms=doc["p99_ms"],
        max_ms=doc["max_ms"],
        requests=doc["completed"],
        errors=doc["completed"] - ok + doc["errors"],
        codes=doc["codes"],
        peak_rss_mb=rss.peak_worker_mb,
        peak_rss_sum_mb=rss.peak_worker_rss_sum_mb,
        note=f"offered {rate:.0f}/s",
    )


def run_config(config: Config, opts: Options, bodies: workload.Bodies, work_dir: Path, log: Log) -> Config:
    phases = config.phases
    # 1. The bare baseline, same uvicorn, same workers, same requests.
    log(f"[{config.label}] bare ASGI")
    fake_project = "00000000-0000-7000-8000-000000000000"
    with bare_server(config.workers, work_dir) as bare:
        phases["bare_cdp"] = _wrk_phase("bare_cdp", bare, workload.cdp_path(fake_project), bodies.cdp_single, "bench", opts, connections=opts.connections)
        phases["bare_generic"] = _wrk_phase("bare_generic", bare, workload.GENERIC_PATH, bodies.generic_single, "bench", opts, connections=opts.connections)
    # 2. eventdock on a fresh database.
    env = dict(opts.server_env)
    if not config.group_commit:
        env["EVENTDOCK_WRITER_MAX_BATCH_REQUESTS"] = "1"
    with databases.fresh_database(config.database, work_dir, opts.pg_url) as url:
        admin = databases.admin_token(url)
        with eventdock_server(url, config.workers, work_dir, env) as server:
            project = databases.create_project(server.url, admin)
            log(f"[{config.label}] eventdock single-event CDP / generic")
            phases["cdp"] = _wrk_phase("cdp", server, workload.cdp_path(project.id), bodies.cdp_single, project.token, opts, connections=opts.connections)
            phases["generic"] = _wrk_phase("generic", server, workload.GENERIC_PATH, bodies.generic_single, project.token, opts, connections=opts.connections)
            def batches(name: str, token: str, run_opts: Options, warmup_s: float | None = None) -> Phase:
                return _wrk_phase(
                    name, server, workload.GENERIC_PATH, bodies.batch, token, run_opts,
                    connections=opts.batch_connections, events_per_request=bodies.batch_size, timeout_s=30, warmup_s=warmup_s,
                )  # fmt: skip

            schema_project = None
            if opts.schema:
                # A project of its own, so the schema is in place before its first event.
                schema_project = databases.create_project(server.url, admin, "bench-schema")
                try:
                    workload.create_schema(server.url, schema_project.id, schema_project.token)
                except workload.SchemaUnavailable as exc:
                    config.notes.append(f"schema API not available ({exc}): batches ran without schema")
                    log(f"[{config.label}] schema API not available")
                    schema_project = None
            if schema_project is None:
                log(f"[{config.label}] eventdock {bodies.batch_size}-event batches")
                phases["batch"] = batches("batch", project.token, opts)
            else:
                # Without, with, with, without (ABBA), each half the duration: the
                # database grows during the run, and this order makes that growth
                # weigh on both figures alike instead of on whichever runs second.
                # The first "with" warms up 2.5 s: schema changes reach every
                # worker within 2 s (SPEC §3.4).
                log(f"[{config.label}] eventdock {bodies.batch_size}-event batches, without and with schema (ABBA)")
                half = replace(opts, duration_s=opts.duration_s / 2)
                a1 = batches("batch", project.token, half)
                b1 = batches("batch_schema", schema_project.token, half, warmup_s=max(opts.warmup_s, 2.5))
                b2 = batches("batch_schema", schema_project.token, half, warmup_s=0)
                a2 = batches("batch", project.token, half, warmup_s=0)
                phases["batch"] = _combined(a1, a2)
                phases["batch_schema"] = _combined(b1, b2)
            if opts.open_loop:
                for name, path, body in (
                    ("cdp_half", workload.cdp_path(project.id), bodies.cdp_single),
                    ("generic_half", workload.GENERIC_PATH, bodies.generic_single),
                ):
                    rate = phases[name.removesuffix("_half")].requests_per_s / 2
                    if rate >= 1:
                        log(f"[{config.label}] open loop {name} at {rate:.0f}/s")
                        phases[name] = _open_loop_phase(name, server, path, body, project.token, rate, opts, work_dir)
            if opts.overload:
                # Enough events in flight per worker to pass the writer's queue bound
                # (WriterSettings.max_queue_events, 10,000 by default; 128 × 2,000
                # here), for long enough that it fills and drains.
                connections = opts.overload_connections * config.workers
                log(f"[{config.label}] overload: {connections} connections × {bodies.overload_size} events")
                phases["overload"] = _wrk_phase(
                    "overload", server, workload.GENERIC_PATH, bodies.overload, project.token,
                    replace(opts, duration_s=max(opts.duration_s, opts.overload_duration_s)),
                    connections=connections, events_per_request=bodies.overload_size,
                    count_codes=True, timeout_s=60, warmup_s=0,
                )  # fmt: skip
    _ratios(config)
    return config


def _ratios(config: Config) -> None:
    p = config.phases
    for name, bare in (("cdp", "bare_cdp"), ("generic", "bare_generic")):
        if name in p and bare in p and p[bare].requests_per_s:
            config.ratios[f"{name}_vs_bare"] = p[name].requests_per_s / p[bare].requests_per_s
    config.peak_rss_mb = max((ph.peak_rss_mb for name, ph in p.items() if not name.startswith("bare")), default=0.0)
    config.peak_rss_sum_mb = max((ph.peak_rss_sum_mb for name, ph in p.items() if not name.startswith("bare")), default=0.0)


def run(opts: Options, command: str, log: Log) -> Report:
    report = Report(command=command, options=asdict(opts))
    bodies = workload.bodies(opts.batch_size, opts.overload_size)
    with tempfile.TemporaryDirectory(prefix="eventdock-bench-") as tmp:
        work_dir = Path(tmp)
        for database in opts.databases:
            log(f"[{database}] store: {opts.batch_size}-event batches through insert_events")
            with databases.fresh_database(database, work_dir, opts.pg_url) as url:
                rate = asyncio.run(
                    store_rate.measure(url, workload.batch_event(0), batch_size=opts.batch_size, duration_s=opts.duration_s, warmup_s=opts.warmup_s)
                )
            report.store[database] = {"events_per_s": rate.events_per_s, "p50_ms": rate.p50_ms, "p99_ms": rate.p99_ms, "transactions": rate.transactions}
        for database in opts.databases:
            for workers in opts.workers:
                for group_commit in opts.group_commit:
                    config = Config(database=database, workers=workers, group_commit=group_commit)
                    started = time.monotonic()
                    run_config(config, opts, bodies, work_dir, log)
                    log(f"[{config.label}] done in {time.monotonic() - started:.0f} s")
                    report.configs.append(config)
                    store = report.store.get(database, {}).get("events_per_s")
                    if store and "batch" in config.phases:
                        config.ratios["batch_vs_store"] = config.phases["batch"].events_per_s / store
    return report
