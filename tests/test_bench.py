"""The benchmark harness (bench/): its baseline app, generators, store meter and a whole short run.

The figures themselves are not asserted (they depend on the machine);
what is checked is that each part measures what it claims: the bare app
answers like eventdock, wrk's and the open-loop generator's counts match
what the server saw, the store meter really writes its rows, and one short
``python -m bench`` run against real servers yields every figure.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from sqlalchemy import func, select

from bench import bare, databases, openloop, profile, retention, runner, sqlite_ceiling, store_rate, workload, wrk
from bench.servers import WRITER_PROCESS, RssSampler, bare_server, eventdock_server
from eventdock.store.database import Database
from eventdock.store.tables import events
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent
needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (script/bench installs it)")


async def test_bare_app_reads_the_body_and_answers_like_eventdock() -> None:
    transport = httpx.ASGITransport(app=bare.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bare") as client:
        generic = await client.post(workload.GENERIC_PATH, content=b'[{"event.name":"x"}]' * 1000)
        assert generic.status_code == 202 and generic.content == b""
        cdp = await client.post("/v1/projects/p/events", json={"nameEvent": "x"})
        assert cdp.status_code == 200 and cdp.json()["success"] is True
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404


def test_wrk_result_is_read_from_the_done_hook_line() -> None:
    line = (
        'noise\nBENCHJSON {"requests":1000,"duration_us":2000000,"bytes":1,"connect_errors":0,"read_errors":1,'
        '"write_errors":0,"status_errors":10,"timeouts":2,"p50_us":1500,"p90_us":2000,"p99_us":9000,"max_us":12000,'
        '"mean_us":1600.5,"codes":{"202":990,"503":10}}\n'
    )
    result = wrk.parse(line)
    assert result.ok == 990 and result.ok_per_s == 495
    assert (result.p50_ms, result.p99_ms, result.socket_errors) == (1.5, 9.0, 3)
    assert result.codes == {202: 990, 503: 10}
    with pytest.raises(RuntimeError):
        wrk.parse("wrk crashed")


@needs_wrk
def test_wrk_and_open_loop_drive_a_real_server(tmp_path: Path) -> None:
    with bare_server(1, tmp_path) as server, RssSampler(server) as rss:
        closed = wrk.run(server.url + workload.GENERIC_PATH, b'{"event.name":"x"}', token="t", duration_s=1, connections=4, count_codes=True)
        assert closed.requests > 100 and closed.status_errors == 0 and closed.codes == {202: closed.requests}
        result = asyncio.run(
            openloop.run(server.url + "/v1/projects/p/events", b'{"nameEvent":"x"}', {"Content-Type": "application/json"},
                         rate=200, duration_s=1, connections=4)
        )  # fmt: skip
        assert result.sent == result.completed == 200
        assert result.codes == {200: 200} and result.errors == 0
        # Fixed schedule: 200 requests spread over the second, not sent in a burst.
        assert 0.9 < result.duration_s < 1.5
        assert 0 < result.percentile(50) <= result.percentile(99)
    assert 5 < rss.peak_worker_mb < 500


def test_a_workers_rss_includes_its_sqlite_writer_process(tmp_path: Path) -> None:
    """SPEC §9's memory figure is per worker, and on SQLite a worker's
    transactions run in a process of its own: the sampler adds that
    process's own memory (USS) to its worker's RSS instead of counting it
    apart, and keeps the stricter sum of both RSS beside it."""
    with eventdock_server(f"sqlite:///{tmp_path / 'rss.db'}", 1, tmp_path) as server:
        for _ in range(100):  # started with the worker's writer
            writers = [p for p in map(psutil.Process, server.pids()) if WRITER_PROCESS in " ".join(p.cmdline())]
            if writers:
                break
            time.sleep(0.1)
        assert len(writers) == 1
        (writer,) = writers
        worker = psutil.Process(writer.ppid())
        worker_rss, writer_uss, writer_rss = worker.memory_info().rss, writer.memory_full_info().uss, writer.memory_info().rss
        with RssSampler(server) as rss:
            pass
    assert writer.pid not in rss.peaks and writer.pid not in rss.peaks_rss_sum
    assert 0 < writer_uss < writer_rss
    # Idle, so each peak is within a few MB of the sum read here.
    assert abs(rss.peaks[worker.pid] - (worker_rss + writer_uss)) < 8e6
    assert abs(rss.peaks_rss_sum[worker.pid] - (worker_rss + writer_rss)) < 8e6
    assert rss.peaks_rss_sum[worker.pid] > rss.peaks[worker.pid]


def test_profile_folds_collapsed_stacks() -> None:
    collapsed = (
        "process 1;thread (0x1);main (<frozen runpy>:1);handler (eventdock/dialects/cdp.py:10);encode (msgspec/json.py:3) 30\n"
        "process 1;thread (0x1);main (<frozen runpy>:1);handler (eventdock/dialects/cdp.py:10) 10\n"
        "process 1;thread (0x2);_connection_worker_thread (/venv/lib/python3.11/site-packages/aiosqlite/core.py:50) 60\n"
    )
    samples, own, total = profile.fold(collapsed)
    assert samples == 100
    assert own[0] == ("_connection_worker_thread (aiosqlite/core.py)", 60)
    assert ("handler (eventdock/dialects/cdp.py)", 40) in total
    assert not any("runpy" in name for name, _ in total)


def test_store_meter_inserts_ingest_shaped_rows(backend: str, tmp_path: Path) -> None:
    with databases.fresh_database(backend, tmp_path, PG_URL) as url:
        rate = asyncio.run(store_rate.measure(url, workload.batch_event(0), batch_size=50, duration_s=0.3, warmup_s=0.1))
        assert rate.transactions > 0 and rate.events == 50 * rate.transactions and rate.events_per_s > 0

        async def stored() -> tuple[int, str, Any]:
            db = Database(url)
            try:
                async with db.read() as conn:
                    count = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
                    row = (await conn.execute(select(events.c.source, events.c.properties).limit(1))).one()
                    return int(count), row[0], row[1]
            finally:
                await db.dispose()

        count, source, properties = asyncio.run(stored())
        assert count >= rate.events  # warm-up batches are stored too
        assert source == "ingest" and properties["order_id"] == "ORD-000000"
    name = url.rsplit("/", 1)[1]
    if backend == "postgresql":
        with psycopg.connect(PG_URL) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (0,)
    else:
        assert not Path(url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize("table", list(sqlite_ceiling.TABLES))
def test_sqlite_ceiling_writes_its_rows_into_the_table_it_names(table: str, tmp_path: Path) -> None:
    path = tmp_path / "ceiling.db"
    assert sqlite_ceiling.measure(path, sqlite_ceiling.TABLES[table], rows=50, transactions=3) > 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(DISTINCT id) FROM events").fetchone() == (150,)
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")}
    finally:
        conn.close()
    key = {"sqlite_autoindex_events_1"}
    if table == "events as migrated (key + indexes)":
        assert key < indexes and {"ix_events_project_time", "ix_events_project_name_time"} <= indexes
    else:
        assert indexes == (key if table == "primary key only" else set())


def test_sqlite_ceiling_times_the_writers_json_statement_too(tmp_path: Path) -> None:
    path = tmp_path / "json.db"
    assert sqlite_ceiling.measure(path, sqlite_ceiling.TABLES["events as migrated (key + indexes)"], rows=50, transactions=3, as_json=True) > 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone() == (150, 150)
    finally:
        conn.close()


def test_a_saved_run_prints_as_the_readmes_markdown_table(tmp_path: Path) -> None:
    """``python -m bench.report RUN.json``: the figures of a ``--json`` run, one Markdown line each."""

    def phase(name: str, rate: float, events: float | None = None, note: str = "", codes: dict[str, int] | None = None) -> runner.Phase:
        return runner.Phase(name, rate, events or rate, 3.7, 26.0, 40.0, 1000, 0, codes or {}, 150.0, 160.0, note)

    config = runner.Config(
        "sqlite", 2, True,
        phases={
            "bare_cdp": phase("bare_cdp", 47346), "bare_generic": phase("bare_generic", 61003),
            "cdp": phase("cdp", 16003), "generic": phase("generic", 22121),
            "batch": phase("batch", 228, 113994), "batch_schema": phase("batch_schema", 209, 104677),
            "cdp_half": phase("cdp_half", 8001, note="offered 8001/s"), "generic_half": phase("generic_half", 11060, note="offered 11060/s"),
            "overload": runner.Phase("overload", 31, 62405, 50.0, 209.0, 300.0, 600, 0, {"202": 310, "503": 59386}, 196.0, 211.0),
        },
        ratios={"cdp_vs_bare": 0.34, "generic_vs_bare": 0.36, "batch_vs_store": 0.75},
        peak_rss_mb=196.0, peak_rss_sum_mb=211.0,
    )  # fmt: skip
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(runner.Report("python -m bench", {}, {"sqlite": {"events_per_s": 152751.0}}, [config]).as_json()))
    done = subprocess.run([sys.executable, "-m", "bench.report", str(saved)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["| figure | target | sqlite ×2 |", "|---|---|---:|"]
    for line in (
        "| CDP single event |  | 16,003 req/s p50 3.7 / p99 26.0 ms |",
        "| ÷ bare | ≥ 60% | 34% |",
        "| same, schema on | ≥ 150k SQLite ≥ 100k PG | 104,677 ev/s p50 3.7 / p99 26.0 ms |",
        "| CDP at ½ max rate (open loop) | p99 ≤ 20 ms | p99 26.0 ms (p50 3.7) offered 8001/s, got 8,001/s |",
        "| overload (writer queue full) | 503, bounded | 62,405 ev/s stored 59386 × 503, p99 209 ms |",
        "| peak RSS per worker, overload | ≤ 200 MB | 196 MB (211 MB adding RSS) |",
    ):
        assert line in lines
    assert len(lines) == 2 + 15 and "[" not in done.stdout  # every figure, no rich markup left


@needs_wrk
def test_a_short_run_prints_the_command_and_every_figure(backend: str) -> None:
    argv = [
        sys.executable, "-m", "bench", "--database", backend, "--pg-url", PG_URL, "--duration", "1", "--warmup", "0",
        "--schema", "--connections", "8", "--batch-connections", "2", "--batch-size", "50",
        "--overload-connections", "4", "--overload-size", "200", "--overload-duration", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.startswith("$ python -m bench --database")
    report = json.loads(done.stdout)
    assert report["command"].startswith("python -m bench --database " + backend)
    assert report["store"][backend]["events_per_s"] > 0
    [config] = report["configs"]
    phases = config["phases"]
    for name in ("bare_cdp", "bare_generic", "cdp", "generic", "batch", "cdp_half", "generic_half", "overload"):
        assert phases[name]["requests"] > 0, name
    for name in ("bare_cdp", "bare_generic", "cdp", "generic", "batch", "cdp_half", "generic_half"):
        assert phases[name]["errors"] == 0, (name, phases[name])
    assert phases["batch"]["events_per_s"] == pytest.approx(phases["batch"]["requests_per_s"] * 50)
    assert "batch_schema" in phases or any("schema API not available" in n for n in config["notes"])
    assert 0 < config["ratios"]["cdp_vs_bare"] and 0 < config["ratios"]["generic_vs_bare"]
    assert config["peak_rss_mb"] > 0
    assert "eventdock benchmark" in done.stderr  # the table, on stderr with --json


@needs_wrk
def test_paired_runs_both_servers_each_with_its_own_path_and_environment(tmp_path: Path) -> None:
    # A side's --x-src directory comes first on its PYTHONPATH, so a
    # sitecustomize there runs in that side's processes: it leaves a mark
    # named by its side's --x-env and by the directory it was found in.
    marks = tmp_path / "marks"
    marks.mkdir()
    argv = [sys.executable, "-m", "bench.paired", "--phases", "generic", "--pairs", "2", "--duration", "0.5"]
    for side in ("a", "b"):
        src = tmp_path / f"src-{side}"
        src.mkdir()
        (src / "sitecustomize.py").write_text(
            "import os, pathlib\n"
            "if os.environ.get('PAIRED_MARK'):\n"
            "    pathlib.Path(os.environ['PAIRED_MARK'] + '-' + pathlib.Path(__file__).parent.name).touch()\n"
        )
        argv += [f"--{side}-src", str(src), f"--{side}-env", f"PAIRED_MARK={marks / side}"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("$ python -m bench.paired --phases generic")
    lines = done.stdout.splitlines()
    rates = {line.split(":")[0].strip(): line for line in lines if line.startswith(("  A:", "  B:"))}
    assert set(rates) == {"A", "B"}
    for line in rates.values():
        assert len(line.split(":", 1)[1].split("(")[0].split()) == 2  # two rounds each
        assert "writer:" in line and "events in" in line
    assert any(line.startswith("  B ÷ A: median ") for line in lines)
    assert sorted(p.name for p in marks.iterdir()) == ["a-src-a", "b-src-b"]


def test_paired_refuses_to_compare_a_server_with_itself() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.paired"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--b-src" in done.stderr


def test_inproc_reports_the_loops_cpu_and_the_writers_transactions() -> None:
    """``python -m bench.inproc`` drives the real app in-process and reads the
    writer's transactions from its own metrics registry (``WriterTotals.of``)."""
    argv = [sys.executable, "-m", "bench.inproc", "--phase", "generic", "--requests", "400", "--concurrency", "8"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("generic: 400 requests,") and "µs per request" in line, line
    transactions = int(line.split(" transactions,")[0].rsplit(" ", 1)[1])
    assert 0 < transactions <= 400, line


def test_retention_bench_reports_the_removal_rate_and_both_p99s(tmp_path: Path) -> None:
    result = retention.measure("sqlite", events=3000, rate=20, duration=1.0, workers=1, work_dir=tmp_path, pg_url=PG_URL)
    assert result["removal"]["events_removed"] == 3000 and result["removal"]["events_per_s"] > 0
    for phase in ("ingest_alone", "ingest_during_removal"):
        assert result[phase]["completed"] > 0 and set(result[phase]["codes"]) == {"202"}, result[phase]
        assert result[phase]["p99_ms"] > 0
