"""Live events through JSON:API client libraries from PyPI, against a real
``eventdock serve`` process (SPEC §6: a client written against the original
works with only the base URL and token changed).

- ``jsonapi-client`` (qvantel): creates, reads with ``include``, and pages a
  collection by following ``links.next``. It cannot take a 204 answer to
  PATCH or DELETE (it decodes every body as JSON: qvantel/jsonapi-client
  issue 55, open), and Monterosa answers both with 204, so those go through
- ``jsonapi-requests`` (socialwifi), which does.

Every response is also checked against the JSON:API 1.1 schema: by a
requests hook under jsonapi-client, and by httpx's under the raw reads here.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonapi_requests
import pytest
from jsonapi_client import Filter, Inclusion, Modifier, Session

from tests.conftest import drop_database, fresh_database_url
from tests.support import jsonapi_schema
from tests.support.server import Server

# What jsonapi-client needs to know of the type it creates (its own schema format).
CLIENT_SCHEMA = {
    "events": {
        "properties": {
            "name": {"type": "string"},
            "start_mode": {"type": "string"},
            "start_at": {"type": "number"},
            "duration": {"type": "number"},
            "project": {"relation": "to-one", "resource": ["projects"]},
        }
    }
}


class Running:
    def __init__(self, server: Server, project_id: str, token: str) -> None:
        self.server = server
        self.project_id = project_id
        self.token = token
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, event_hooks=jsonapi_schema.SYNC_HOOKS)

    def stream(self) -> list[str]:
        r = self.http.get(f"/v1/projects/{self.project_id}/events", params={"limit": "1000"})
        assert r.status_code == 200, r.text
        return sorted(item["nameEvent"] for item in r.json()["data"]["items"])


@pytest.fixture(scope="module")
def running(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server with two worker processes on a fresh database, and its bootstrap project and admin key."""
    tmp = tmp_path_factory.mktemp("clients")
    url = fresh_database_url(backend, tmp, f"clients_{tmp.name[-8:]}")
    try:
        out = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60)
        boot = json.loads(out.stdout)
        with Server(url, workers=2, env={"EVENTDOCK_LIVE_CLOCK_INTERVAL": "0.2"}, log_dir=tmp) as server:
            run = Running(server, boot["project"]["id"], boot["key"]["token"])
            try:
                yield run
            finally:
                run.http.close()
    finally:
        drop_database(url)


def test_jsonapi_client_creates_reads_includes_and_pages(running: Running) -> None:
    """jsonapi-client 0.9 (PyPI) against a real server: POST (jsonapi.org/format/1.1/#crud-creating-responses-201),
    GET with include (#fetching-includes), and a collection paged through links.next (#fetching-pagination)."""
    # requests' response hook checks every response against the JSON:API 1.1 schema.
    auth = {"headers": {"Authorization": f"Bearer {running.token}"}, "hooks": {"response": jsonapi_schema.check_requests}}
    checked = jsonapi_schema.checked
    with Session(f"{running.server.url}/api/v2", schema=CLIENT_SCHEMA, request_kwargs=auth) as session:
        ids = []
        for i in range(3):
            event = session.create("events", fields={"name": f"Match {i}", "start_mode": "manual", "start_at": 1458487800 + i, "duration": 60, "project": running.project_id})
            event.commit()
            assert event.id and event.state == "future" and event.actions == ["start"]
            ids.append(event.id)
        session.invalidate()
        fetched = session.get("events", ids[0]).resource
        assert fetched.name == "Match 0" and fetched.duration == 60
        assert fetched.json["attributes"]["start_mode"] == "manual"  # it maps names with "_" to "-" as attributes
        assert fetched.relationships.project.as_json_resource_identifiers == {"id": running.project_id, "type": "projects"}
    with Session(f"{running.server.url}/api/v2/events", request_kwargs=auth) as session:
        document = session.get(ids[1], Inclusion("stats", "project"))
        stats = document.resource.relationships.stats.resource
        assert stats.json["attributes"] == {"ingested_events": 0}  # from `included`: the stats have no URL of their own
        assert document.resource.relationships.project.resource.name == "default"
    with Session(f"{running.server.url}/api/v2/projects/{running.project_id}", request_kwargs=auth) as session:
        names = [e.name for e in session.iterate("events", Filter(state="future") + Modifier("page[count]=1"))]
        assert names[:3] == ["Match 0", "Match 1", "Match 2"]
    assert jsonapi_schema.checked >= checked + 3 + 2 + len(names)  # the hook saw every response: creates, reads, pages


def test_jsonapi_requests_updates_and_deletes_with_204(running: Running) -> None:
    """jsonapi-requests 0.8 (PyPI): PATCH and DELETE answer 204 No Content, as Monterosa documents
    (jsonapi.org/format/1.1/#crud-updating-responses-204, #crud-deleting-responses-204)."""

    def bearer(request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {running.token}"
        return request

    api = jsonapi_requests.Api.config({"API_ROOT": f"{running.server.url}/api/v2/", "AUTH": bearer, "APPEND_SLASH": False, "TIMEOUT": 10, "RETRIES": 1})
    created = api.endpoint("events").post(
        object=jsonapi_requests.JsonApiObject(
            type="events",
            attributes={"name": "Kick-off", "start_mode": "manual", "start_at": 1458487800, "duration": 60},
            relationships={"project": {"data": {"type": "projects", "id": running.project_id}}},
        )
    )
    assert created.status_code == 201
    live_id = created.data.id
    endpoint = api.endpoint(f"events/{live_id}")
    updated = endpoint.patch(object=jsonapi_requests.JsonApiObject(type="events", id=live_id, attributes={"name": "Kick-off (final)", "action": "start"}))
    assert updated.status_code == 204
    attributes = endpoint.get().data.attributes
    assert attributes["name"] == "Kick-off (final)" and attributes["state"] == "current"
    assert endpoint.delete().status_code == 204
    with pytest.raises(jsonapi_requests.request_factory.ApiClientError) as refused:
        endpoint.get()
    assert refused.value.status_code == 404


def test_concurrent_deletes_across_workers_write_one_end(running: Running) -> None:
    """SPEC §6 "every start has its end, exactly once, even with several workers": a current event deleted by
    eight requests at once, spread over two worker processes whose clocks poll meanwhile."""
    body = {
        "data": {
            "type": "events",
            "relationships": {"project": {"data": {"type": "projects", "id": running.project_id}}},
            "attributes": {"name": "Derby", "start_mode": "clock", "start_at": round(time.time() - 1, 3), "duration": 3600},
        }
    }
    r = running.http.post("/api/v2/events", json=body, headers={"Content-Type": jsonapi_schema.MEDIA_TYPE})
    assert r.status_code == 201, r.text
    live_id = r.json()["data"]["id"]
    before = running.stream()

    def delete(_: int) -> int:
        with httpx.Client(base_url=running.server.url, headers={"Authorization": f"Bearer {running.token}"}, event_hooks=jsonapi_schema.SYNC_HOOKS) as c:
            return c.delete(f"/api/v2/events/{live_id}").status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(delete, range(8)))
    assert statuses.count(204) == 1 and set(statuses) <= {204, 404}, statuses
    time.sleep(0.6)  # a few more polls of both clocks: nothing more may appear
    after = running.stream()
    added = list(after)
    for name in before:
        added.remove(name)
    assert sorted(added) == ["live_event_ended", "live_event_started"]


def test_server_logged_no_traceback(running: Running) -> None:
    """Nothing above made a worker log a traceback (as a 500 would)."""
    assert running.server.log_dir is not None
    for log in Path(running.server.log_dir).glob("server-*.log"):
        assert "Traceback" not in log.read_text(errors="replace"), log
