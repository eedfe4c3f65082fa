"""The ops endpoints and the seed 003 example, as a first sign of life."""

from __future__ import annotations

import httpx

from tests.conftest import Project


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200


async def test_openapi_is_3_1_and_covers_ingest_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/platform/ingest/v1/events" in spec["paths"]
    assert "/v1/projects/{projectUuid}/events" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_exposes_prometheus_text(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post("/platform/ingest/v1/events", json={"event.name": "m"}, headers=project.headers)
    assert r.status_code == 202
    text = (await client.get("/metrics")).text
    assert f'eventdock_events_ingested_total{{project="{project.id}",source="ingest"}} 1.0' in text
    assert "eventdock_request_duration_seconds_bucket" in text
    assert "eventdock_writer_queue_events" in text
    assert "eventdock_writer_batch_events_bucket" in text
