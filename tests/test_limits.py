"""Limits (SPEC §3.6) and back-pressure (§3.2), through HTTP."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager

from eventdock.app import create_app
from eventdock.config import Limits, WriterSettings
from tests.conftest import Project, make_settings
from tests.support.custom_app import custom_app

INGEST = "/platform/ingest/v1/events"
MiB = 1024 * 1024


def cdp(project_id: str) -> str:
    return f"/v1/projects/{project_id}/events"


class Counting:
    """A chunked body of ``total`` bytes, generated lazily; counts what was taken."""

    def __init__(self, total: int, chunk: int = 64 * 1024, prefix: bytes = b'{"event.name": "big", "pad": "') -> None:
        self.total, self.chunk, self.prefix = total, chunk, prefix
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent += len(self.prefix)
        yield self.prefix
        block = b"x" * self.chunk
        while self.sent < self.total:
            self.sent += len(block)
            yield block


@pytest.mark.parametrize("dialect", ["ingest", "cdp"])
async def test_huge_chunked_body_is_refused_after_about_the_limit(client: httpx.AsyncClient, project: Project, dialect: str) -> None:
    body = Counting(1024 * MiB, prefix=b'{"nameEvent": "big", "attributes": {"pad": "' if dialect == "cdp" else b'{"event.name": "big", "pad": "')
    path = INGEST if dialect == "ingest" else cdp(project.id)
    r = await client.post(path, content=body, headers={**project.headers, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert "content-length" not in r.request.headers
    # Refused once the 10 MiB limit was crossed: not 1 GiB read, nor buffered.
    assert 10 * MiB < body.sent <= 10 * MiB + 2 * body.chunk + len(body.prefix)


async def test_lying_content_length_is_cut_at_the_limit(tmp_path: Path, backend: str) -> None:
    async with custom_app(backend, tmp_path, limits=Limits(max_body_bytes=1000)) as c:
        body = Counting(100_000, chunk=100)
        r = await c.client.post(INGEST, content=body, headers={**c.project.headers, "Content-Type": "application/json"})
        assert r.status_code == 413
        assert body.sent <= 1200
        r = await c.client.post(INGEST, json={"pad": "x" * 900}, headers=c.project.headers)
        assert r.status_code == 202


async def test_gzip_bomb_is_413_while_decompressing(client: httpx.AsyncClient, project: Project) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = compressor.compress(b'[{"pad": "') + compressor.compress(b"0" * (200 * MiB)) + compressor.flush()
    assert len(bomb) < MiB
    for path in (INGEST, cdp(project.id)):
        r = await client.post(path, content=bomb, headers={**project.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert r.status_code == 413, r.text


async def test_gzip_within_the_limit_after_decompression(client: httpx.AsyncClient, project: Project) -> None:
    body = gzip.compress(json.dumps([{"event.name": "zipped", "pad": "y" * (MiB // 2)}] * 12).encode())
    assert len(body) < MiB
    r = await client.post(INGEST, content=body, headers={**project.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    "body",
    [b"not gzip at all", gzip.compress(b'{"a": 1}', mtime=0)[:-6], gzip.compress(b'{"a": 1}', mtime=0)[:10] + b"garbage!"],
    ids=["not-gzip", "truncated", "garbage-after-header"],
)
async def test_corrupt_gzip_is_400(client: httpx.AsyncClient, project: Project, body: bytes) -> None:
    r = await client.post(INGEST, content=body, headers={**project.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400, r.text
    r = await client.post(cdp(project.id), content=body, headers={**project.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["error"]["code"] in ("VALIDATION_ERROR", "MALFORMED_JSON")


async def test_unknown_content_encoding_is_415(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(INGEST, content=b"{}", headers={**project.headers, "Content-Type": "application/json", "Content-Encoding": "br"})
    assert r.status_code == 415


async def test_events_per_request(tmp_path: Path, backend: str) -> None:
    async with custom_app(backend, tmp_path, limits=Limits(max_events_per_request=3)) as c:
        assert (await c.client.post(INGEST, json=[{}] * 3, headers=c.project.headers)).status_code == 202
        r = await c.client.post(INGEST, json=[{}] * 4, headers=c.project.headers)
        assert r.status_code == 413 and r.json()["error"]["code"] == 413
        ndjson = "\n".join("{}" for _ in range(4))
        r = await c.client.post(INGEST, content=ndjson, headers={**c.project.headers, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 413


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize(
    ("event", "ok"),
    [
        ({"pad": "x" * (MiB + 10)}, False),
        ({"pad": "x" * (MiB - 1000)}, True),
        ({f"k{i}": i for i in range(501)}, False),
        ({f"k{i}": i for i in range(499)}, True),
        ({"k" * 257: 1}, False),
        ({"k" * 256: 1}, True),
        ({"a": {"k" * 257: 1}}, False),
        ({"deep": nested(7)}, True),  # the event object is level 1: 8 levels
        ({"deep": nested(8)}, False),
        ({"deep": [[[[[[[[1]]]]]]]]}, False),
        ({"event.name": "n" * 200}, True),
        ({"event.name": "n" * 201}, False),
    ],
)
async def test_per_event_limits(client: httpx.AsyncClient, project: Project, event: dict[str, Any], ok: bool) -> None:
    r = await client.post(INGEST, json=[{"event.name": "fine"}, event], headers=project.headers)
    if ok:
        assert r.status_code == 202, r.text
    else:
        assert r.status_code == 400, r.text
        paths = [v["path"] for v in r.json()["error"]["details"]["constraintViolations"]]
        assert paths and all(p.startswith("[1]") for p in paths)
        listed = (await client.get(cdp(project.id), headers=project.headers)).json()["data"]["items"]
        assert listed == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nameEvent": "n" * 201}, "nameEvent"),
        ({"nameEvent": "x", "attributes": {"k" * 257: "v"}}, "attributes"),
        ({"nameEvent": "x", "attributes": {f"k{i}": "v" for i in range(501)}}, "attributes"),
        ({"nameEvent": "x", "attributes": {"pad": "x" * (MiB + 1)}}, "attributes"),
    ],
)
async def test_cdp_per_event_limits(client: httpx.AsyncClient, project: Project, body: dict[str, Any], field: str) -> None:
    r = await client.post(cdp(project.id), json=body, headers=project.headers)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert any(fe["field"].startswith(field) for fe in error["fieldErrors"])


async def test_global_rate_limit_429_with_retry_after(tmp_path: Path, backend: str) -> None:
    async with custom_app(backend, tmp_path, rate_limit_per_second=1, rate_limit_burst=2) as c:
        # The bucket's clock stands still: at 1 event/s a slow commit would otherwise refill a token.
        limiter = c.app.state.services.rate_limiter
        frozen = limiter.clock()
        limiter.clock = lambda: frozen
        assert (await c.client.post(INGEST, json=[{}, {}], headers=c.project.headers)).status_code == 202
        r = await c.client.post(INGEST, json={}, headers=c.project.headers)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == 429
        r = await c.client.post(cdp(c.project.id), json={"nameEvent": "x"}, headers=c.project.headers)
        assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED" and r.headers["retry-after"] == "1"
        # Per project, 0 turns it off for that project only.
        r = await c.client.patch(f"/api/projects/{c.project.id}", json={"rate_limit_per_second": 0}, headers=c.admin.headers)
        assert r.status_code == 200
        assert (await c.client.post(INGEST, json=[{}] * 50, headers=c.project.headers)).status_code == 202


async def test_every_worker_picks_up_a_project_limit_within_the_refresh(tmp_path: Path, backend: str) -> None:
    """Two app instances on one database stand for two worker processes."""
    async with custom_app(backend, tmp_path) as a:
        other = create_app(make_settings(a.database_url))
        async with LifespanManager(other), httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://b") as b:
            assert (await b.post(INGEST, json=[{}] * 5, headers=a.project.headers)).status_code == 202  # b has seen it
            r = await a.client.patch(f"/api/projects/{a.project.id}", json={"rate_limit_per_second": 1, "rate_limit_burst": 1}, headers=a.admin.headers)
            assert r.status_code == 200
            # A full bucket admits one request whatever its size (SPEC §3.6), the next waits.
            assert (await a.client.post(INGEST, json=[{}] * 2, headers=a.project.headers)).status_code == 202
            assert (await a.client.post(INGEST, json=[{}] * 2, headers=a.project.headers)).status_code == 429  # at once where set
            assert (await b.post(INGEST, json=[{}] * 2, headers=a.project.headers)).status_code == 202  # b: not yet
            assert (await b.post(INGEST, json=[{}] * 2, headers=a.project.headers)).status_code == 202
            sync = other.state.services.project_limits
            sync.clock = lambda: time.monotonic() + sync.refresh_seconds + 1
            assert (await b.post(INGEST, json=[{}] * 2, headers=a.project.headers)).status_code == 202
            assert (await b.post(INGEST, json=[{}] * 2, headers=a.project.headers)).status_code == 429


class WriteLock:
    """Holds the database's write lock on the events table from outside the app."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url

    def __enter__(self) -> WriteLock:
        if self.url.startswith("sqlite"):
            self.conn: Any = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn = psycopg.connect(self.url)
            self.conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback() if not self.url.startswith("sqlite") else self.conn.execute("ROLLBACK")
        self.conn.close()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 10 s")


def one_writer(max_queue_events: int) -> WriterSettings:
    """One transaction in flight at a time (PostgreSQL's default is two), so the queue's content is exact."""
    return WriterSettings(max_queue_events=max_queue_events, max_wait_ms=0, connections=1)


async def test_full_writer_queue_is_503_with_retry_after_and_nothing_accepted_is_lost(tmp_path: Path, backend: str) -> None:
    async with custom_app(backend, tmp_path, writer=one_writer(max_queue_events=3)) as c:
        writer = c.app.state.services.writer
        with WriteLock(c.database_url):
            def post(n: int) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(c.client.post(INGEST, json={"event.id": f"q{n}"}, headers=c.project.headers))

            # One is in the writer's (blocked) transaction, three wait in the queue.
            waiting = [post(0)]
            await _until(lambda: writer.in_flight_events == 1)
            waiting += [post(n) for n in range(1, 4)]
            await _until(lambda: writer.queued_events == 3)
            r = await c.client.post(INGEST, json={"event.id": "refused"}, headers=c.project.headers)
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == 503
            r = await c.client.post(cdp(c.project.id), json={"nameEvent": "refused"}, headers=c.project.headers)
            assert r.status_code == 503 and r.json()["error"]["code"] == "UNAVAILABLE" and "retry-after" in r.headers
            # Refused before the body is read or parsed: even a malformed one gets 503, not 400.
            r = await c.client.post(INGEST, content=b"{not json", headers={**c.project.headers, "Content-Type": "application/json"})
            assert r.status_code == 503
        assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 4
        items = (await c.client.get(cdp(c.project.id), headers=c.project.headers)).json()["data"]["items"]
        assert sorted(i["id"] for i in items) == ["q0", "q1", "q2", "q3"]


async def test_a_batch_waiting_for_its_commit_holds_its_events_json_not_the_parsed_request(tmp_path: Path, backend: str) -> None:
    """Under load the writer's queue holds thousands of events (SPEC §3.2: memory
    bounded by the queue). Each waits as its JSON: once governance has judged
    them, the request lets go of the parsed objects, which were more than half
    of what it held (Pipeline.commit)."""
    pad = "x" * 2000
    batch = [{"event.name": "held", "pad": f"{n:04d}{pad}"} for n in range(200)]  # ~400 kB of properties
    async with custom_app(backend, tmp_path, writer=one_writer(max_queue_events=10_000)) as c:
        writer = c.app.state.services.writer
        tracemalloc.start()
        try:
            with WriteLock(c.database_url):
                waiting = asyncio.create_task(c.client.post(INGEST, json=batch, headers=c.project.headers))
                await _until(lambda: writer.in_flight_events == len(batch))
                held = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        assert (await waiting).status_code == 202

    def still_held(where: str) -> int:
        return sum(stat.size for stat in held.filter_traces([tracemalloc.Filter(True, where)]).statistics("filename"))

    # The JSON made by normalise is held until the commit; what the body was parsed into is not.
    assert still_held("*/eventdock/core/events.py") > 400_000
    assert still_held("*/eventdock/dialects/generic_ingest.py") < 40_000


@pytest.mark.parametrize("route", ["generic", "cdp"])
async def test_queue_filling_while_a_body_arrives_refuses_it_before_parsing(tmp_path: Path, backend: str, route: str) -> None:
    """A request admitted while there was room is checked again once its body is in.

    Otherwise every request admitted before the queue filled is parsed, only
    to be refused when it is submitted: under overload that wasted parsing
    starved the writer. The body here is malformed, so 503 (not 400) shows
    it was refused before it was parsed.
    """
    async with custom_app(backend, tmp_path, writer=one_writer(max_queue_events=2)) as c:
        writer = c.app.state.services.writer
        url = INGEST if route == "generic" else cdp(c.project.id)
        with WriteLock(c.database_url):
            waiting = [asyncio.create_task(c.client.post(INGEST, json={"event.id": "q0"}, headers=c.project.headers))]
            await _until(lambda: writer.in_flight_events == 1)
            first_chunk_read, queue_full = asyncio.Event(), asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                yield b'{"event.id": '
                first_chunk_read.set()
                await queue_full.wait()
                yield b"not json"

            headers = {**c.project.headers, "Content-Type": "application/json"}
            slow = asyncio.create_task(c.client.post(url, content=slow_body(), headers=headers))
            await first_chunk_read.wait()  # past the check before reading: the queue was empty
            waiting += [asyncio.create_task(c.client.post(INGEST, json={"event.id": f"q{n}"}, headers=c.project.headers)) for n in (1, 2)]
            await _until(lambda: writer.queued_events == 2)
            queue_full.set()
            r = await slow
            assert r.status_code == 503 and "retry-after" in r.headers
        assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 3


async def test_the_request_that_fills_the_queue_is_taken_whole_and_the_next_refused(tmp_path: Path, backend: str) -> None:
    """Room is judged before parsing (the size is unknown then) and again at submit by the same test."""
    async with custom_app(backend, tmp_path, writer=one_writer(max_queue_events=3)) as c:
        writer = c.app.state.services.writer
        with WriteLock(c.database_url):
            waiting = [asyncio.create_task(c.client.post(INGEST, json={"event.id": "f0"}, headers=c.project.headers))]
            await _until(lambda: writer.in_flight_events == 1)
            waiting.append(asyncio.create_task(c.client.post(INGEST, json=[{"event.id": "f1"}, {"event.id": "f2"}], headers=c.project.headers)))
            await _until(lambda: writer.queued_events == 2)
            # 2 of 3 queued: there is room, so five more are taken together.
            batch = [{"event.id": f"g{n}"} for n in range(5)]
            waiting.append(asyncio.create_task(c.client.post(INGEST, json=batch, headers=c.project.headers)))
            await _until(lambda: writer.queued_events == 7)
            r = await c.client.post(INGEST, json={"event.id": "refused"}, headers=c.project.headers)
            assert r.status_code == 503
        assert [t.status_code for t in await asyncio.gather(*waiting)] == [202] * 3
        items = (await c.client.get(cdp(c.project.id) + "?limit=100", headers=c.project.headers)).json()["data"]["items"]
        assert sorted(i["id"] for i in items) == ["f0", "f1", "f2", "g0", "g1", "g2", "g3", "g4"]


def _events_body(prefix: str, size: int) -> bytes:
    """A valid JSON array of generic events, about ``size`` bytes."""
    events, length = [], 2
    while length < size:
        event = {"event.id": f"{prefix}{len(events)}", "event.type": "big", "pad": "x" * 200}
        events.append(event)
        length += len(json.dumps(event)) + 1
    return json.dumps(events).encode()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_large_bodies_read_at_once_are_bounded_and_small_ones_always_get_in(tmp_path: Path, backend: str, declared: bool) -> None:
    """Bodies being read count against ``max_reading_bytes`` (their declared
    length, or what has arrived): while one large body is in, another that
    would overrun the budget gets 503 with Retry-After before it is read
    (it is malformed: 503, not 400, shows it was never parsed). A body under
    64 KiB always gets in, and once the first is read the next large one does."""
    settings = WriterSettings(max_reading_bytes=100_000)
    async with custom_app(backend, tmp_path, writer=settings) as c:
        slow = _events_body("slow", 80_000)
        half_read, release = asyncio.Event(), asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield slow[:70_000]
            half_read.set()
            await release.wait()
            yield slow[70_000:]

        headers = {**c.project.headers, "Content-Type": "application/json"}
        length = {"Content-Length": str(len(slow))} if declared else {}
        reading = asyncio.create_task(c.client.post(INGEST, content=slow_body(), headers={**headers, **length}))
        await half_read.wait()
        await _until(lambda: c.app.state.services.reading.reading >= 70_000)

        r = await c.client.post(INGEST, content=b"[" + b" " * 70_000 + b"not json", headers=headers)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
        assert r.json()["error"]["code"] == 503 and "being read" in r.json()["error"]["message"]
        r = await c.client.post(INGEST, json={"event.id": "small"}, headers=c.project.headers)
        assert r.status_code == 202, r.text

        release.set()
        assert (await reading).status_code == 202
        assert c.app.state.services.reading.reading == 0
        r = await c.client.post(INGEST, content=_events_body("next", 70_000), headers=headers)
        assert r.status_code == 202, r.text
