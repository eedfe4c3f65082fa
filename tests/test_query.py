"""Query API (SPEC §8): listing, trend, live tail, export — over HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Project
from tests.support.server import Server
from tests.test_limits import _until

DAY = 86_400_000
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


async def ingest(client: httpx.AsyncClient, project: Project, events: list[dict[str, Any]]) -> None:
    r = await client.post("/platform/ingest/v1/events", json=events, headers=project.headers)
    assert r.status_code == 202, r.text


def url(project: Project, tail: str = "") -> str:
    return f"/api/projects/{project.id}/events{tail}"


async def test_listing_filters_and_cursor_pages(client: httpx.AsyncClient, project: Project) -> None:
    events = [{"event.id": f"e{i:02d}", "event.name": "click" if i % 2 else "view", "timestamp": T0 + i * 1000, "i": i} for i in range(25)]
    await ingest(client, project, events)
    r = await client.get(url(project), headers=project.headers)
    body = r.json()
    assert r.status_code == 200 and body["next"] is None
    assert [e["id"] for e in body["results"]] == [f"e{i:02d}" for i in reversed(range(25))]
    first = body["results"][0]
    assert set(first) == {"id", "name", "timestamp", "received_at", "source", "profile_id", "properties"}
    assert first["timestamp"] == "2023-11-14T22:13:44.000Z" and first["source"] == "ingest" and first["properties"]["i"] == 24
    # Filters: name, after (inclusive), before (exclusive, RFC 3339 or epoch).
    params = {"event": "click", "after": str(T0 + 5000), "before": "2023-11-14T22:13:41.000Z", "limit": "3"}
    seen: list[str] = []
    next_url: str | None = url(project)
    while next_url:
        r = await client.get(next_url, params=params if next_url == url(project) else None, headers=project.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["results"]) <= 3
        seen.extend(e["id"] for e in page["results"])
        next_url = page["next"]
        if next_url:
            assert next_url.startswith("http://testserver/api/projects/")
    assert seen == ["e19", "e17", "e15", "e13", "e11", "e09", "e07", "e05"]


async def test_listing_by_profile_includes_merged_profiles(client: httpx.AsyncClient, project: Project) -> None:
    await ingest(client, project, [{"event.id": "p1", "visitor_uuid": "qv"}, {"event.id": "p2", "email": "q@example.com"}, {"event.id": "x"}])
    await ingest(client, project, [{"event.id": "p3", "visitor_uuid": "qv", "email": "q@example.com"}])
    r = await client.get(url(project), headers=project.headers)
    by_id = {e["id"]: e["profile_id"] for e in r.json()["results"]}
    r = await client.get(url(project), params={"profile_id": by_id["p2"]}, headers=project.headers)
    assert sorted(e["id"] for e in r.json()["results"]) == ["p1", "p2", "p3"]
    r = await client.get(url(project), params={"profile_id": "unknown"}, headers=project.headers)
    assert r.json() == {"results": [], "next": None}


async def test_listing_errors_are_drf_style(client: httpx.AsyncClient, project: Project) -> None:
    for params, attr in (({"after": "yesterday"}, "after"), ({"limit": "0"}, "limit"), ({"cursor": "%%%"}, "cursor"), ({"after": "2000", "before": "1000"}, "before")):
        r = await client.get(url(project), params=params, headers=project.headers)
        assert r.status_code == 400, params
        body = r.json()
        assert body["type"] == "validation_error" and body["attr"] == attr, body
    r = await client.get(url(project))
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    writer = await project.new_key(client, "event_definition:read")
    r = await client.get(url(project), headers=writer.headers)
    assert r.status_code == 403 and r.json()["type"] == "authentication_error"
    reader = await project.new_key(client, "events:read")
    assert (await client.get(url(project), headers=reader.headers)).status_code == 200


async def test_trend_buckets_with_empty_ones(client: httpx.AsyncClient, project: Project) -> None:
    day0 = T0 - T0 % DAY  # 2023-11-14T00:00:00Z
    events = [
        {"event.name": "buy", "timestamp": day0 + 5},
        {"event.name": "buy", "timestamp": day0 + DAY - 1},
        {"event.name": "buy", "timestamp": day0 + 2 * DAY + 3},  # day 2; day 1 is empty
        {"event.name": "buy", "timestamp": day0 + 4 * DAY},  # == before: excluded
        {"event.name": "other", "timestamp": day0 + 10},
    ]
    await ingest(client, project, events)
    params = {"event": "buy", "interval": "day", "after": str(day0 + 3_600_000), "before": str(day0 + 4 * DAY)}
    r = await client.get(url(project, "/trend"), params=params, headers=project.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "series": [
            {"bucket": "2023-11-14T00:00:00.000Z", "count": 2},
            {"bucket": "2023-11-15T00:00:00.000Z", "count": 0},
            {"bucket": "2023-11-16T00:00:00.000Z", "count": 1},
            {"bucket": "2023-11-17T00:00:00.000Z", "count": 0},
        ]
    }
    params = {"interval": "hour", "after": "2023-11-14T00:00:00Z", "before": "2023-11-14T03:00:00Z"}
    r = await client.get(url(project, "/trend"), params=params, headers=project.headers)
    assert [b["count"] for b in r.json()["series"]] == [2, 0, 0]
    params = {"interval": "minute", "after": str(day0), "before": str(day0 + 120_000)}
    r = await client.get(url(project, "/trend"), params=params, headers=project.headers)
    assert r.json()["series"] == [{"bucket": "2023-11-14T00:00:00.000Z", "count": 2}, {"bucket": "2023-11-14T00:01:00.000Z", "count": 0}]
    # Without after/before: the last 30 days.
    r = await client.get(url(project, "/trend"), headers=project.headers)
    assert len(r.json()["series"]) in (30, 31)


async def test_trend_errors(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.get(url(project, "/trend"), params={"interval": "week"}, headers=project.headers)
    assert r.status_code == 400 and r.json()["attr"] == "interval" and r.json()["code"] == "invalid_choice"
    r = await client.get(url(project, "/trend"), params={"interval": "minute", "after": "0", "before": str(T0)}, headers=project.headers)
    assert r.status_code == 400 and r.json()["attr"] == "interval" and "at most" in r.json()["detail"]


async def test_export_ndjson(client: httpx.AsyncClient, project: Project) -> None:
    events = [{"event.id": f"x{i:04d}", "event.name": "a" if i % 3 else "b", "timestamp": T0 + i} for i in range(2500)]
    await ingest(client, project, events)
    r = await client.get(url(project, "/export"), headers=project.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["id"] for e in lines] == [f"x{i:04d}" for i in range(2500)]  # oldest first, across pages
    assert set(lines[0]) == {"id", "name", "timestamp", "received_at", "source", "profile_id", "properties"}
    r = await client.get(url(project, "/export"), params={"event": "b", "after": str(T0 + 3), "before": str(T0 + 12)}, headers=project.headers)
    assert [json.loads(line)["id"] for line in r.text.splitlines()] == ["x0003", "x0006", "x0009"]
    r = await client.get(url(project, "/export"), params={"before": "soon"}, headers=project.headers)
    assert r.status_code == 400 and r.json()["attr"] == "before"


async def test_openapi_lists_query_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for tail in ("", "/trend", "/stream", "/export"):
        assert f"/api/projects/{{project_id}}/events{tail}" in paths
    assert "/v1/projects/{projectUuid}/profiles/{profileId}" in paths


# -- live tail ------------------------------------------------------------------


async def read_stream(server: Server, project: Project, want: int, ready: asyncio.Event, got: list[dict[str, Any]], **params: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        async with c.stream("GET", f"/api/projects/{project.id}/events/stream", params=params, headers=project.headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if line == ": connected":
                    ready.set()
                elif line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if len(got) >= want:
                        return


async def test_live_tail_receives_exactly_the_ingested_events(database_url: str, project: Project) -> None:
    """Two workers: subscribers on either one see events committed by both."""
    server = Server(database_url, workers=2).start()
    try:
        streams = []
        for _ in range(3):  # several subscribers, spread over the workers
            ready, got = asyncio.Event(), []
            streams.append((asyncio.create_task(read_stream(server, project, 40, ready, got)), ready, got))
        named_ready, named = asyncio.Event(), []
        named_task = asyncio.create_task(read_stream(server, project, 20, named_ready, named, event="odd"))
        await asyncio.wait_for(asyncio.gather(*(s[1].wait() for s in streams), named_ready.wait()), timeout=20)
        sent = []
        for i in range(20):  # one connection per request: both workers ingest
            async with httpx.AsyncClient(base_url=server.url) as c:
                batch = [{"event.id": f"live-{i}-{j}", "event.name": "odd" if j else "even", "n": i} for j in (0, 1)]
                r = await c.post("/platform/ingest/v1/events", json=batch, headers=project.headers)
                assert r.status_code == 202
                sent.extend(e["event.id"] for e in batch)
                # Retrying stores nothing and so streams nothing.
                assert (await c.post("/platform/ingest/v1/events", json=batch, headers=project.headers)).status_code == 202
        await asyncio.wait_for(asyncio.gather(*(s[0] for s in streams), named_task), timeout=20)
        for _, _, got in streams:
            assert sorted(e["id"] for e in got) == sorted(sent)
            assert all(e["source"] == "ingest" for e in got)
            # The whole object, also from a worker's own commits (sent as the JSON it stored).
            assert all(e["properties"] == {"event.id": e["id"], "event.name": e["name"], "n": int(e["id"].split("-")[1])} for e in got)
        assert sorted(e["id"] for e in named) == sorted(i for i in sent if i.endswith("-1"))
        # Nothing more arrives: a late subscriber starts from now.
        ready, late = asyncio.Event(), []
        task = asyncio.create_task(read_stream(server, project, 1, ready, late))
        await asyncio.wait_for(ready.wait(), timeout=20)
        async with httpx.AsyncClient(base_url=server.url) as c:
            r = await c.post("/platform/ingest/v1/events", json={"event.id": "after-all"}, headers=project.headers)
        await asyncio.wait_for(task, timeout=20)
        assert [e["id"] for e in late] == ["after-all"]
    finally:
        server.kill(signal.SIGKILL)


@pytest.fixture
def dsn(backend: str, database_url: str) -> str:
    """The PostgreSQL database of the shared app, for a raw LISTEN (the NOTIFY rules are PostgreSQL's)."""
    if backend != "postgresql":
        pytest.skip("SQLite's tail polls; nothing is notified")
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _notifications(conn: psycopg.Connection[Any], project: Project, seconds: float, want: int = 0) -> list[list[Any]]:
    """The ids of the tail notifications about ``project`` within ``seconds`` (or until ``want`` came)."""
    got = []
    for note in conn.notifies(timeout=seconds):
        _origin, project_id, ids = json.loads(note.payload)
        if project_id == project.id:
            got.append(ids)
            if len(got) == want:
                break
    return got


async def test_writers_notify_only_while_a_tail_listens(app: Any, client: httpx.AsyncClient, project: Project, dsn: str) -> None:
    """PostgreSQL: a NOTIFY serialises committing transactions, so writers send
    one only while some process follows the tail (``tail_listeners``)."""
    from eventdock.store.query_tail import CHANNEL

    tail = app.state.services.extras["live_tail"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Servers of earlier tests were killed and left their rows; nothing else runs now.
        conn.execute("DELETE FROM tail_listeners")
        conn.execute(f"LISTEN {CHANNEL}")
        await ingest(client, project, [{"event.id": "unheard"}])
        assert _notifications(conn, project, 0.3) == []
        async with tail.subscribe(project.id):
            await ingest(client, project, [{"event.id": "heard"}])
            assert _notifications(conn, project, 5, want=1) == [["heard"]]
        await _follower_gone(conn)
        await ingest(client, project, [{"event.id": "unheard-again"}])
        assert _notifications(conn, project, 0.3) == []


async def test_a_listener_that_outlives_its_ttl_keeps_being_notified(
    app: Any, client: httpx.AsyncClient, project: Project, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follower renews its tail_listeners row while it has subscribers;
    a row past its TTL is a dead process's, and writers stop notifying it."""
    from eventdock.store import query_tail

    monkeypatch.setattr(query_tail, "LISTENER_TTL_S", 2)
    monkeypatch.setattr(query_tail, "_LISTENER_RENEW_S", 0.1)  # checked at each of the follower's 1 s wake-ups
    tail = app.state.services.extras["live_tail"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM tail_listeners")
        conn.execute(f"LISTEN {query_tail.CHANNEL}")
        async with tail.subscribe(project.id):
            await asyncio.sleep(3.5)  # longer than the TTL
            await ingest(client, project, [{"event.id": "still-heard"}])
            assert _notifications(conn, project, 5, want=1) == [["still-heard"]]
        await _follower_gone(conn)


async def test_a_new_listener_waits_for_older_writer_transactions(app: Any, project: Project, dsn: str) -> None:
    """A transaction that looked for listeners before this one registered sends
    no NOTIFY; the subscription is ready only once such transactions ended."""
    tail = app.state.services.extras["live_tail"]
    subscription = tail.subscribe(project.id)
    with psycopg.connect(dsn) as older:
        older.execute("SELECT pg_current_xact_id()")  # holds a transaction id, as a writer does once it wrote
        subscribing = asyncio.ensure_future(subscription.__aenter__())
        try:
            await asyncio.sleep(0.5)
            assert not subscribing.done()
            older.commit()
            await asyncio.wait_for(subscribing, timeout=5)
        finally:
            if subscribing.done() and not subscribing.exception():
                await subscription.__aexit__(None, None, None)
            else:
                subscribing.cancel()
    with psycopg.connect(dsn, autocommit=True) as conn:
        await _follower_gone(conn)


async def test_a_new_listener_removes_rows_of_listeners_long_dead(app: Any, project: Project, dsn: str) -> None:
    """A process killed while following leaves its row; once expired, the next
    listener to register removes it (a current one is left alone)."""
    tail = app.state.services.extras["live_tail"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM tail_listeners")
        conn.execute("INSERT INTO tail_listeners VALUES ('dead', now() - interval '1 second'), ('alive', now() + interval '1 minute')")
        async with tail.subscribe(project.id):
            origins = {row[0] for row in conn.execute("SELECT origin FROM tail_listeners")}
            assert origins == {"alive", tail.origin}
        conn.execute("DELETE FROM tail_listeners WHERE origin = 'alive'")
        await _follower_gone(conn)


async def _follower_gone(conn: psycopg.Connection[Any]) -> None:
    """Wait until the tail's follower left (its row gone, its connection closed); it wakes once a second."""
    await _until(lambda: conn.execute("SELECT count(*) FROM tail_listeners").fetchone() == (0,))
    await _until(
        lambda: conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'eventdock-tail' AND datname = current_database()"
        ).fetchone()
        == (0,)
    )


async def test_slow_subscriber_is_dropped_never_waited_for(app: Any, client: httpx.AsyncClient, project: Project) -> None:
    from eventdock.store.query_tail import OVERFLOW

    tail = app.state.services.extras["live_tail"]
    tail.queue_size, saved = 5, tail.queue_size
    try:
        async with tail.subscribe(project.id) as sub:
            # Nobody reads the subscription; ingestion goes on regardless.
            await ingest(client, project, [{"event.id": f"slow-{i}"} for i in range(50)])
            await ingest(client, project, [{"event.id": "slow-more"}])
            for _ in range(100):  # SQLite: the poll delivers within 0.1 s
                if sub.closed:
                    break
                await asyncio.sleep(0.05)
            assert sub.closed
            assert sub.queue.qsize() == 1 and sub.queue.get_nowait() == OVERFLOW
            assert project.id not in tail.subscribers
    finally:
        tail.queue_size = saved
