"""Operations endpoints (SPEC §1): health, readiness, metrics, OpenAPI, docs."""

from __future__ import annotations

import httpx
from fastapi.routing import APIRoute

from eventdock.app import create_app
from tests.conftest import Project, make_settings


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    app = create_app(make_settings("postgresql://postgres@127.0.0.1:1/nowhere", migrate_on_start=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/healthz")).status_code == 200
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
    await app.state.services.db.dispose()


async def test_metrics_content(client: httpx.AsyncClient, project: Project) -> None:
    assert (await client.post("/platform/ingest/v1/events", json=[{}, {}], headers=project.headers)).status_code == 202
    assert (await client.post(f"/v1/projects/{project.id}/events", json={"nameEvent": "m"}, headers=project.headers)).status_code == 200
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f'eventdock_events_ingested_total{{project="{project.id}",source="ingest"}} 2.0' in text
    assert f'eventdock_events_ingested_total{{project="{project.id}",source="cdp"}} 1.0' in text
    assert 'eventdock_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/projects/{projectUuid}/events",status="200"}' in text
    assert "eventdock_writer_queue_events" in text
    # An event over a per-event limit is refused and counted with its reason.
    r = await client.post("/platform/ingest/v1/events", json=[{"event.name": "x" * 201}, {}], headers=project.headers)
    assert r.status_code == 400
    text = (await client.get("/metrics")).text
    assert f'eventdock_events_rejected_total{{project="{project.id}",reason="invalid",source="ingest"}} 2.0' in text
    assert "eventdock_writer_batch_events_bucket" in text
    assert "eventdock_writer_batch_requests_bucket" in text
    assert "eventdock_writer_commit_seconds_bucket" in text


async def test_openapi_lists_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    app = client._transport.app  # type: ignore[attr-defined]
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            documented = spec["paths"].get(route.path, {})
            for method in route.methods - {"HEAD"}:
                assert method.lower() in documented, f"{method} {route.path} missing from /openapi.json"
    for path in ("/platform/ingest/v1/events", "/v1/projects/{projectUuid}/events", "/v1/projects/{projectUuid}/events/{eventId}", "/api/projects", "/api/projects/{project_id}", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert {"ResponseWrapper", "OpenPipelineError"} <= set(spec["components"]["schemas"])


async def test_docs_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200 and "openapi.json" in r.text
