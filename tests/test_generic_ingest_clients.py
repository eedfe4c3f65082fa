"""Generic ingest as the public OpenPipeline clients use it (SPEC §3.6, §7):
batches larger than a project's burst, the clients' retry loops, and
``X-Eventdock-Duplicates``.

The clients, read from their public repositories:
- dynatrace-oss/dynatrace-snowflake-observability-agent (DSOA),
  ``src/dtagent/otel/events/__init__.py``: ``AbstractEvents._send`` POSTs up
  to ``max_event_count`` = 400 events a request with ``Api-Token`` auth;
  on a status in ``retry_on_status`` = [429, 502, 503] it sleeps
  ``retry_delay_ms`` = 10 s (it does not read Retry-After) and resends, up to
  ``max_retries`` = 5 times; then it keeps the batch and resends it at the
  next flush. Any other non-202 counts as a failure.
- forwardnetworks/forward-dynatrace, ``scripts/replay-dynatrace-demo-data.mjs``:
  one POST of its 100 demo events with Bearer auth, no retry; anything but
  2xx fails the run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Project
from tests.support.custom_app import CustomApp, custom_app

URL = "/platform/ingest/v1/events"
RATE = 10  # events/s
BURST = 50  # smaller than either client's batch


class FakeTime:
    """Stands in for the limiter's monotonic clock: tests advance it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def limited(backend: str, tmp_path: Path) -> AsyncIterator[tuple[CustomApp, FakeTime]]:
    """An app whose projects may ingest ``RATE`` events/s with a burst of ``BURST``, on a clock the test moves."""
    async with custom_app(backend, tmp_path, rate_limit_per_second=RATE, rate_limit_burst=BURST) as c:
        fake = FakeTime()
        c.app.state.services.rate_limiter.clock = fake
        yield c, fake


def batch(size: int, prefix: str) -> list[dict[str, Any]]:
    return [{"event.id": f"{prefix}-{i}", "event.type": "QUERY_HISTORY", "title": "query", "db.query.duration": i} for i in range(size)]


async def count(c: CustomApp) -> int:
    """Stored events of the project, through every page of the CDP listing."""
    total, params = 0, {"limit": "1000"}
    while True:
        r = await c.client.get(f"/v1/projects/{c.project.id}/events", params=params, headers=c.project.headers)
        assert r.status_code == 200, r.text
        total += len(r.json()["data"]["items"])
        if not r.json()["data"]["nextCursor"]:
            return total
        params["cursor"] = r.json()["data"]["nextCursor"]


async def test_a_batch_larger_than_the_burst_is_admitted_on_a_full_bucket(limited: tuple[CustomApp, FakeTime]) -> None:
    """SPEC §3.6 (forward-dynatrace's replay: 100 events in one POST, no retry): a request with more events than
    the burst is admitted when the bucket is full — before, it was refused with 429 Retry-After: 1 for ever —
    and leaves the bucket in debt, which is paid back at the rate before the next request gets in."""
    c, clock = limited
    headers = {**c.project.headers, "Content-Type": "application/json"}
    r = await c.client.post(URL, json=batch(100, "replay"), headers=headers)
    assert r.status_code == 202, r.text
    # In debt by 50 events: a single event waits until the bucket holds one again: (1 + 50) / 10 s → 6 s.
    r = await c.client.post(URL, json=batch(1, "one"), headers=headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "6"
    assert r.json()["error"]["code"] == 429
    clock.now += 5
    assert (await c.client.post(URL, json=batch(1, "one"), headers=headers)).status_code == 429
    clock.now += 1
    assert (await c.client.post(URL, json=batch(1, "one"), headers=headers)).status_code == 202
    assert await count(c) == 101


@pytest.mark.parametrize("sizes", [[400, 400, 400], [1, 49, 50, 51, 400, 2], [50, 50, 7, 300, 1]])
async def test_retry_after_is_a_time_after_which_the_same_request_is_admitted(limited: tuple[CustomApp, FakeTime], sizes: list[int]) -> None:
    """SPEC §3.6: "Retry-After is always a time after which the same request is admitted" — for requests
    below, at and above the burst, sent back to back; obeying it once is always enough."""
    c, clock = limited
    for n, size in enumerate(sizes):
        body = batch(size, f"r{n}")
        r = await c.client.post(URL, json=body, headers=c.project.headers)
        if r.status_code == 429:
            wait = int(r.headers["retry-after"])
            assert wait >= 1
            if wait > 1:  # a second less is too early: the wait is rounded up, not padded
                clock.now += wait - 1
                assert (await c.client.post(URL, json=body, headers=c.project.headers)).status_code == 429
                wait = 1
            clock.now += wait
            r = await c.client.post(URL, json=body, headers=c.project.headers)
        assert r.status_code == 202, (size, r.text)
    assert await count(c) == sum(sizes)


async def test_dsoa_retry_loop_delivers_every_batch(limited: tuple[CustomApp, FakeTime]) -> None:
    """DSOA's ``_send`` loop, step for step (see the module docstring), with 400-event batches against a burst
    of 50: every batch lands within its retries; none is carried to the next flush, none is stored twice."""
    c, clock = limited
    headers = {"Authorization": f"Api-Token {c.project.key.token}", "Accept": "application/json", "Content-Type": "application/json"}
    carried: list[list[dict[str, Any]]] = []
    for flush in range(3):
        payload = batch(400, f"flush{flush}")
        for attempt in range(6):  # the first send and max_retries = 5
            r = await c.client.post(URL, content=json.dumps(payload), headers=headers)
            if r.status_code not in (429, 502, 503):
                break
            clock.now += 10  # retry_delay_ms
        else:
            carried.append(payload)
        assert r.status_code == 202, (flush, attempt, r.text)
        assert r.headers["x-eventdock-duplicates"] == "0"
    assert carried == []
    assert await count(c) == 1200


# -- X-Eventdock-Duplicates ---------------------------------------------------------


async def test_duplicates_header_counts_ids_already_stored(client: httpx.AsyncClient, project: Project) -> None:
    """SPEC §7: 202 carries ``X-Eventdock-Duplicates: N``, the events of the request whose id was already stored —
    by an earlier request (DSOA resending a batch it did not see acknowledged) or earlier in the same request."""
    first = [{"event.id": f"d{i}", "event.name": "e"} for i in range(3)]
    r = await client.post(URL, json=first, headers=project.headers)
    assert r.status_code == 202 and r.headers["x-eventdock-duplicates"] == "0"
    r = await client.post(URL, json=first, headers=project.headers)  # the whole batch again
    assert r.status_code == 202 and r.headers["x-eventdock-duplicates"] == "3"
    # One id stored before, one id twice in the request (the first copy is stored), one without an id.
    mixed = [{"event.id": "d0", "event.name": "e"}, {"event.id": "n1", "event.name": "e"}, {"event.id": "n1", "event.name": "e"}, {"event.name": "e"}]
    r = await client.post(URL, json=mixed, headers=project.headers)
    assert r.status_code == 202 and r.headers["x-eventdock-duplicates"] == "2"
    ndjson = b'{"event.id": "n1"}\n{"event.id": "n2"}\n'
    r = await client.post(URL, content=ndjson, headers={**project.headers, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202 and r.headers["x-eventdock-duplicates"] == "1"
    r = await client.get(f"/v1/projects/{project.id}/events", params={"limit": 100}, headers=project.headers)
    ids = [e["id"] for e in r.json()["data"]["items"]]
    assert len(ids) == 6 and {"d0", "d1", "d2", "n1", "n2"} <= set(ids)  # and the event without an id


async def test_quarantined_events_are_not_counted_as_duplicates(client: httpx.AsyncClient, project: Project) -> None:
    """SPEC §7: quarantined and duplicate events are counted apart (X-Eventdock-Quarantined, X-Eventdock-Duplicates)."""
    base = f"/api/projects/{project.id}"
    r = await client.post(f"{base}/event_definitions/", json={"name": "checkout", "enforcement_mode": "reject"}, headers=project.headers)
    assert r.status_code == 201, r.text
    definition = r.json()["id"]
    properties = [{"name": "plan", "property_type": "String", "is_required": True}]
    r = await client.post(f"{base}/schema_property_groups/", json={"name": "checkout-props", "properties": properties}, headers=project.headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"{base}/event_schemas/", json={"event_definition": definition, "property_group_id": r.json()["id"]}, headers=project.headers)
    assert r.status_code == 201, r.text
    body = [{"event.id": "q1", "event.name": "checkout"}, {"event.id": "ok", "event.name": "checkout", "plan": "pro"}]
    r = await client.post(URL, json=body, headers=project.headers)
    assert r.status_code == 202, r.text
    assert (r.headers["x-eventdock-quarantined"], r.headers["x-eventdock-duplicates"]) == ("1", "0")
    r = await client.post(URL, json=body, headers=project.headers)
    assert (r.headers["x-eventdock-quarantined"], r.headers["x-eventdock-duplicates"]) == ("1", "1")
