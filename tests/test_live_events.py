"""Live events JSON:API (SPEC §6, seed 002): documents, listing, and every error case."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from eventdock.core import live
from eventdock.core.events import now_ms
from eventdock.core.paging import encode_cursor
from tests.conftest import Key, Project, create_project

JSONAPI = "application/vnd.api+json"
ATTRIBUTES = {
    "name", "duration", "original_duration", "start_mode", "end_mode", "repeat", "repeat_in", "feed_uuid",
    "live_stats_uuid", "extra_time", "start_at", "start_at_iso", "end_at", "end_at_iso", "settings", "state", "actions",
}  # fmt: skip


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)

    @property
    def seconds(self) -> int:
        return self.ms // 1000


@pytest.fixture
def clock(app: Any) -> Iterator[FakeClock]:
    """The app's live clock, stopped at a whole second near real time."""
    engine = live.engine(app.state.services)
    original = engine.clock
    fake = FakeClock(now_ms() // 1000 * 1000)
    engine.clock = fake
    yield fake
    engine.clock = original


def headers(key: Key | Project, content_type: str = JSONAPI) -> dict[str, str]:
    return {**key.headers, "Content-Type": content_type}


def doc(project_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "events",
            "relationships": {"project": {"data": {"type": "projects", "id": project_id}}},
            "attributes": attributes,
        }
    }


async def create(client: httpx.AsyncClient, project: Project, **attributes: Any) -> dict[str, Any]:
    attributes.setdefault("name", "Show")
    attributes.setdefault("start_mode", "manual")
    attributes.setdefault("start_at", 1458487800)
    attributes.setdefault("duration", 60)
    r = await client.post("/api/v2/events", json=doc(project.id, **attributes), headers=headers(project))
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def get(client: httpx.AsyncClient, project: Project, live_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v2/events/{live_id}", headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["attributes"]  # type: ignore[no-any-return]


async def patch(client: httpx.AsyncClient, project: Project, live_id: str, **attributes: Any) -> httpx.Response:
    body = {"data": {"type": "events", "id": live_id, "attributes": attributes}}
    return await client.patch(f"/api/v2/events/{live_id}", json=body, headers=headers(project))


async def stream(client: httpx.AsyncClient, project: Project, name: str | None = None) -> list[dict[str, Any]]:
    params = {"limit": "1000", **({"nameEvent": name} if name else {})}
    r = await client.get(f"/v1/projects/{project.id}/events", params=params, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["items"]  # type: ignore[no-any-return]


def one_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(JSONAPI)
    errors = r.json()["errors"]
    assert len(errors) == 1, errors
    assert errors[0]["status"] == str(status)
    assert errors[0]["title"] and errors[0]["detail"]
    return errors[0]  # type: ignore[no-any-return]


def pointers(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {e["source"]["pointer"]: e["detail"] for e in r.json()["errors"]}


# -- the three requests of seed 002 ------------------------------------------------


async def test_seed_create(client: httpx.AsyncClient, project: Project, clock: FakeClock) -> None:
    body = doc(
        project.id,
        name="Live Event",
        duration=3600,
        start_at=1458487800,
        start_mode="manual",
        end_mode="scheduled",
        repeat=False,
        settings=[
            {"key": "hold_prompt", "values": {"en": "We will be back shortly", "de": "Wir sind gleich wieder da"}},
            {"key": "advert_code", "values": {"all": "Advert code"}},
        ],
    )
    r = await client.post("/api/v2/events", json=body, headers=headers(project))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == JSONAPI
    data = r.json()["data"]
    live_id = data["id"]
    uuid.UUID(live_id)
    self_url = f"http://testserver/api/v2/events/{live_id}"
    assert r.headers["location"] == data["links"]["self"] == self_url
    assert data["type"] == "events"
    assert data["relationships"] == {
        "elements": {"links": {"related": f"{self_url}/elements"}},
        "stats": {"data": {"id": live_id, "type": "stats"}},
        "project": {"data": {"id": project.id, "type": "projects"}},
    }
    attrs = data["attributes"]
    assert set(attrs) == ATTRIBUTES
    uuid.UUID(attrs.pop("feed_uuid"))
    assert attrs == {
        "name": "Live Event",
        "duration": 3600,
        "original_duration": 3600,
        "start_mode": "manual",
        "end_mode": "scheduled",
        "repeat": False,
        "repeat_in": None,
        "live_stats_uuid": None,
        "extra_time": 60,
        "start_at": 1458487800,
        "start_at_iso": "2016-03-20T15:30:00Z",
        "end_at": 1458491400,
        "end_at_iso": "2016-03-20T16:30:00Z",
        "settings": body["data"]["attributes"]["settings"],
        "state": "future",  # manual: future until started, whatever the time
        "actions": ["start"],
    }
    # The same document on GET.
    r = await client.get(self_url, headers=project.headers)
    assert r.status_code == 200 and r.headers["content-type"] == JSONAPI
    assert r.json()["data"]["attributes"]["name"] == "Live Event"


async def test_seed_create_and_start(client: httpx.AsyncClient, project: Project, clock: FakeClock) -> None:
    body = doc(project.id, name="Event Name", start_mode="manual", duration=60, action="start", start_at=1458487800, settings=[])
    r = await client.post("/api/v2/events", json=body, headers=headers(project))
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    attrs = data["attributes"]
    assert set(attrs) == ATTRIBUTES
    assert set(data["relationships"]) == {"elements", "stats", "project"}
    assert r.headers["location"] == data["links"]["self"]
    # SPEC §6: start sets start_at to now and end_at to now + duration; the event is current.
    assert attrs["start_at"] == clock.seconds and attrs["end_at"] == clock.seconds + 60
    assert attrs["duration"] == attrs["original_duration"] == 60
    assert attrs["state"] == "current" and attrs["actions"] == ["stop"]
    assert attrs["repeat"] is False and attrs["repeat_in"] is None and attrs["extra_time"] == 60
    assert attrs["settings"] == [] and attrs["live_stats_uuid"] is None
    # The start is in the stream at once, no clock tick needed.
    started = await stream(client, project, "live_event_started")
    assert len(started) == 1
    assert started[0]["source"] == "live_event"
    assert started[0]["properties"] == {"live_event_id": data["id"], "name": "Event Name", "start_mode": "manual"}
    assert started[0]["timestamp"] == attrs["start_at_iso"].replace("Z", ".000Z")


async def test_seed_negative_duration(client: httpx.AsyncClient, project: Project) -> None:
    body = doc(project.id, name="Event Name", start_mode="manual", duration=-1, start_at=1458487800, settings=[])
    r = await client.post("/api/v2/events", json=body, headers=headers(project))
    assert r.status_code == 422
    assert r.headers["content-type"] == JSONAPI
    assert r.json() == {
        "errors": [
            {"status": "422", "title": "Unprocessable Entity", "detail": "must be greater than 0", "source": {"pointer": "/data/attributes/duration"}}
        ]
    }


# -- documents ---------------------------------------------------------------------


async def test_application_json_and_profile_parameter_are_accepted(client: httpx.AsyncClient, project: Project) -> None:
    """jsonapi.org/format/1.1/#content-negotiation-servers: ``profile`` (and an empty ``ext``) may be sent;
    plain ``application/json`` is accepted too (SPEC §6). Unknown extensions: tests/test_live_events_jsonapi.py."""
    body = doc(project.id, name="a", start_mode="manual", start_at=1, duration=1)
    r = await client.post("/api/v2/events", json=body, headers=headers(project, "application/json; charset=utf-8"))
    assert r.status_code == 201, r.text
    r = await client.post("/api/v2/events", json=body, headers=headers(project, f'{JSONAPI}; profile="https://example.com/profiles/x"; ext=""'))
    assert r.status_code == 201, r.text


async def test_scheduled_end_derives_duration_and_fractions_survive(client: httpx.AsyncClient, project: Project) -> None:
    attrs = (await create(client, project, end_mode="scheduled", start_at=1458487800, end_at=1458489600.5, duration=None))["attributes"]
    assert attrs["duration"] == 1800.5 and attrs["end_at"] == 1458489600.5
    assert attrs["end_at_iso"] == "2016-03-20T16:00:00.500Z"


async def test_include_stats_and_project(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    start = clock.seconds - 100
    data = await create(client, project, start_mode="clock", start_at=start, duration=50)
    inside = [{"event.name": "hit", "timestamp": (start + s) * 1000} for s in (0, 10, 49)]
    outside = [{"event.name": "miss", "timestamp": (start + s) * 1000} for s in (-1, 50, 70)]
    r = await client.post("/platform/ingest/v1/events", json=inside + outside, headers=project.headers)
    assert r.status_code == 202, r.text
    await live.engine(app.state.services).tick()
    r = await client.get(f"/api/v2/events/{data['id']}", params={"include": "stats,project"}, headers=project.headers)
    assert r.status_code == 200, r.text
    included = {item["type"]: item for item in r.json()["included"]}
    # The clock's own live_event_started (at start_at) counts too; the end (at end_at) does not.
    assert included["stats"] == {"id": data["id"], "type": "stats", "attributes": {"ingested_events": 4}}
    assert included["projects"]["id"] == project.id and included["projects"]["attributes"]["name"]
    future = await create(client, project)
    r = await client.get(f"/api/v2/events/{future['id']}", params={"include": "stats"}, headers=project.headers)
    assert r.json()["included"] == [{"id": future["id"], "type": "stats", "attributes": {"ingested_events": 0}}]


async def test_elements_is_an_empty_collection(client: httpx.AsyncClient, project: Project) -> None:
    data = await create(client, project)
    r = await client.get(data["relationships"]["elements"]["links"]["related"], headers=project.headers)
    assert r.status_code == 200 and r.headers["content-type"] == JSONAPI
    assert r.json()["data"] == [] and r.json()["meta"] == {"count": 0}
    one_error(await client.get(f"/api/v2/events/{uuid.uuid4()}/elements", headers=project.headers), 404)


async def test_delete(client: httpx.AsyncClient, project: Project) -> None:
    data = await create(client, project)
    r = await client.delete(f"/api/v2/events/{data['id']}", headers=project.headers)
    assert r.status_code == 204 and r.content == b""
    one_error(await client.get(f"/api/v2/events/{data['id']}", headers=project.headers), 404)
    one_error(await client.delete(f"/api/v2/events/{data['id']}", headers=project.headers), 404)


# -- listing -----------------------------------------------------------------------


async def test_list_filters_sorts_and_pages(client: httpx.AsyncClient, project: Project, clock: FakeClock) -> None:
    now = clock.seconds
    past = await create(client, project, name="past", start_mode="clock", start_at=now - 500, duration=100)
    current = await create(client, project, name="current", start_mode="clock", start_at=now - 10, duration=100)
    future_clock = await create(client, project, name="future-clock", start_mode="clock", start_at=now + 100, duration=100)
    future_manual = await create(client, project, name="future-manual", start_mode="manual", start_at=now - 1000, duration=100)
    url = f"/api/v2/projects/{project.id}/events"

    async def names(**params: str) -> list[str]:
        r = await client.get(url, params=params, headers=project.headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == JSONAPI
        return [d["attributes"]["name"] for d in r.json()["data"]]

    assert await names() == ["future-manual", "past", "current", "future-clock"]
    assert await names(sort="-start_time") == ["future-clock", "current", "past", "future-manual"]
    assert await names(**{"filter[state]": "future"}) == ["future-manual", "future-clock"]
    assert await names(**{"filter[state]": "current"}) == ["current"]
    assert await names(**{"filter[state]": "past,current"}) == ["past", "current"]
    assert await names(**{"filter[state]": "on_demand"}) == []

    seen = []
    r = await client.get(url, params={"page[count]": "3"}, headers=project.headers)
    while True:
        body = r.json()
        assert body["meta"] == {"count": 4}
        assert body["links"]["self"] == str(r.request.url)
        seen += [d["id"] for d in body["data"]]
        if body["links"]["next"] is None:
            break
        assert body["links"]["next"].startswith("http://testserver/api/v2/projects/")
        r = await client.get(body["links"]["next"], headers=project.headers)
    assert seen == [future_manual["id"], past["id"], current["id"], future_clock["id"]]
    r = await client.get(url, params={"page[count]": "1", "include": "stats"}, headers=project.headers)
    assert [i["type"] for i in r.json()["included"]] == ["stats"]


async def test_list_default_page_is_20(client: httpx.AsyncClient, project: Project) -> None:
    for i in range(21):
        await create(client, project, name=f"e{i}", start_at=1458487800 + i)
    r = await client.get(f"/api/v2/projects/{project.id}/events", headers=project.headers)
    assert len(r.json()["data"]) == 20 and r.json()["meta"]["count"] == 21 and r.json()["links"]["next"]


# -- errors ------------------------------------------------------------------------


async def test_validation_names_every_bad_attribute(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(
        "/api/v2/events",
        json=doc(project.id, name=" ", start_mode="sometimes", duration=0, repeat=True, extra_time=-1, end_mode="never", action="stop"),
        headers=headers(project),
    )
    assert pointers(r) == {
        "/data/attributes/name": "can't be blank",
        "/data/attributes/start_mode": "is not included in the list",
        "/data/attributes/end_mode": "is not included in the list",
        "/data/attributes/start_at": "can't be blank",
        "/data/attributes/duration": "must be greater than 0",
        "/data/attributes/repeat_in": "can't be blank",
        "/data/attributes/extra_time": "must be greater than or equal to 0",
        "/data/attributes/action": "is not included in the list",
    }
    r = await client.post(
        "/api/v2/events",
        json=doc(project.id, name="x" * 201, start_mode="clock", start_at="soon", duration="long", repeat="yes", repeat_in=0.5),
        headers=headers(project),
    )
    assert pointers(r) == {
        "/data/attributes/name": "is too long (maximum is 200 characters)",
        "/data/attributes/start_at": "is not a number",
        "/data/attributes/duration": "is not a number",
        "/data/attributes/repeat": "is not included in the list",
        "/data/attributes/repeat_in": "must be an integer",
    }
    r = await client.post(
        "/api/v2/events",
        json=doc(project.id, name="n", start_mode="manual", start_at=100, end_mode="scheduled", end_at=50, repeat=True, repeat_in=0),
        headers=headers(project),
    )
    assert pointers(r) == {"/data/attributes/end_at": "must be greater than start_at", "/data/attributes/repeat_in": "must be greater than or equal to 1"}
    r = await client.post(
        "/api/v2/events",
        json=doc(project.id, name="n", start_mode="manual", start_at=1, duration=1, settings=[{"key": "a", "values": {"en": "x"}}, {"key": "", "values": {}}]),
        headers=headers(project),
    )
    assert pointers(r) == {"/data/attributes/settings/1/key": "can't be blank"}
    r = await client.post("/api/v2/events", json=doc(project.id, name="n", start_mode="manual", start_at=1, duration=1, settings={"a": 1}), headers=headers(project))
    assert list(pointers(r)) == ["/data/attributes/settings"]


async def test_project_relationship_is_required(client: httpx.AsyncClient, project: Project) -> None:
    body = {"data": {"type": "events", "attributes": {"name": "n", "start_mode": "manual", "start_at": 1, "duration": 1}}}
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(project)), 422)
    assert err["source"] == {"pointer": "/data/relationships/project"} and err["detail"] == "can't be blank"


async def test_start_is_refused_for_clock_events(client: httpx.AsyncClient, project: Project) -> None:
    body = doc(project.id, name="n", start_mode="clock", start_at=4102444800, duration=10, action="start")
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(project)), 422)
    assert err["source"] == {"pointer": "/data/attributes/action"}
    data = await create(client, project, start_mode="clock", start_at=4102444800)
    err = one_error(await patch(client, project, data["id"], action="start"), 422)
    assert err["source"] == {"pointer": "/data/attributes/action"}
    err = one_error(await patch(client, project, data["id"], action="stop"), 422)
    assert err["detail"] == "can't stop event that has not started"
    err = one_error(await patch(client, project, data["id"], action="pause"), 422)
    assert err["detail"] == "is not included in the list"


async def test_bad_documents_are_400_or_409(client: httpx.AsyncClient, project: Project) -> None:
    h = headers(project)
    err = one_error(await client.post("/api/v2/events", content=b'{"data": ', headers=h), 400)
    assert "JSON" in err["detail"]
    one_error(await client.post("/api/v2/events", json={"nodata": 1}, headers=h), 400)
    one_error(await client.post("/api/v2/events", json=[1], headers=h), 400)
    one_error(await client.post("/api/v2/events", content=b"", headers=h), 400)
    one_error(await client.post("/api/v2/events", json={"data": {"attributes": {}}}, headers=h), 400)
    err = one_error(await client.post("/api/v2/events", json={"data": {"type": "articles", "attributes": {}}}, headers=h), 409)
    assert "events" in err["detail"]
    data = await create(client, project)
    r = await client.patch(f"/api/v2/events/{data['id']}", json={"data": {"type": "events", "id": str(uuid.uuid4()), "attributes": {}}}, headers=h)
    one_error(r, 409)
    r = await client.patch(f"/api/v2/events/{data['id']}", json={"data": {"type": "stats", "id": data["id"], "attributes": {}}}, headers=h)
    one_error(r, 409)
    r = await client.patch(f"/api/v2/events/{data['id']}", json={"data": {"type": "events", "attributes": {}}}, headers=h)
    assert one_error(r, 400)["source"] == {"pointer": "/data/id"}


async def test_bad_query_parameters_are_400(client: httpx.AsyncClient, project: Project) -> None:
    data = await create(client, project)
    err = one_error(await client.get(f"/api/v2/events/{data['id']}", params={"include": "stats,elements"}, headers=project.headers), 400)
    assert err["source"] == {"parameter": "include"}
    url = f"/api/v2/projects/{project.id}/events"
    for params, name in (
        ({"sort": "name"}, "sort"),
        ({"page[count]": "0"}, "page[count]"),
        ({"page[count]": "101"}, "page[count]"),
        ({"page[count]": "ten"}, "page[count]"),
        ({"filter[state]": "live"}, "filter[state]"),
        ({"page[cursor]": "not-a-cursor"}, "page[cursor]"),
        ({"page[cursor]": encode_cursor(10**30, "x")}, "page[cursor]"),
        ({"include": "owner"}, "include"),
    ):
        err = one_error(await client.get(url, params=params, headers=project.headers), 400)
        assert err["source"] == {"parameter": name}, params


async def test_media_types(client: httpx.AsyncClient, project: Project) -> None:
    body = doc(project.id, name="n", start_mode="manual", start_at=1, duration=1)
    for content_type in ("text/plain", f"{JSONAPI}; charset=utf-8", f"{JSONAPI}; version=2", "application/x-www-form-urlencoded"):
        r = await client.post("/api/v2/events", json=body, headers=headers(project, content_type))
        one_error(r, 415)
    data = await create(client, project)
    r = await client.patch(f"/api/v2/events/{data['id']}", json={"data": {"type": "events", "id": data["id"]}}, headers=headers(project, "text/plain"))
    one_error(r, 415)
    r = await client.get(f"/api/v2/events/{data['id']}", headers={**project.headers, "Accept": f"{JSONAPI}; version=2"})
    one_error(r, 406)
    r = await client.get(f"/api/v2/events/{data['id']}", headers={**project.headers, "Accept": f"{JSONAPI}, application/json"})
    assert r.status_code == 200


async def test_authentication_scopes_and_isolation(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    body = doc(project.id, name="n", start_mode="manual", start_at=1, duration=1)
    one_error(await client.post("/api/v2/events", json=body, headers={"Content-Type": JSONAPI}), 401)
    one_error(await client.post("/api/v2/events", json=body, headers={"Content-Type": JSONAPI, "Authorization": "Bearer edk_nope"}), 401)
    reader = await project.new_key(client, "live_events:read")
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(reader)), 403)
    assert "live_events:write" in err["detail"]
    data = await create(client, project)
    assert (await client.get(f"/api/v2/events/{data['id']}", headers=reader.headers)).status_code == 200
    assert (await client.get(f"/api/v2/projects/{project.id}/events", headers=reader.headers)).status_code == 200
    one_error(await patch(client, reader, data["id"], name="x"), 403)  # type: ignore[arg-type]
    one_error(await client.delete(f"/api/v2/events/{data['id']}", headers=reader.headers), 403)
    ingest_only = await project.new_key(client, "events:write")
    one_error(await client.get(f"/api/v2/events/{data['id']}", headers=ingest_only.headers), 403)
    # A key of project B neither sees A's events nor creates into A.
    other = await create_project(client, admin)
    one_error(await client.post("/api/v2/events", json=body, headers=headers(other)), 403)
    one_error(await client.get(f"/api/v2/events/{data['id']}", headers=other.headers), 404)
    one_error(await client.delete(f"/api/v2/events/{data['id']}", headers=other.headers), 404)
    one_error(await client.get(f"/api/v2/projects/{project.id}/events", headers=other.headers), 403)
    # The admin key acts on every project; an unknown project is 404.
    assert (await client.get(f"/api/v2/events/{data['id']}", headers=admin.headers)).status_code == 200
    missing = doc(str(uuid.uuid4()), name="n", start_mode="manual", start_at=1, duration=1)
    one_error(await client.post("/api/v2/events", json=missing, headers=headers(admin)), 404)
    one_error(await client.get(f"/api/v2/events/{uuid.uuid4()}", headers=project.headers), 404)
    one_error(await client.get("/api/v2/nowhere", headers=project.headers), 404)


async def test_nul_characters_are_named_not_a_500(client: httpx.AsyncClient, project: Project) -> None:
    body = doc(project.id, name="a\x00b", start_mode="manual", start_at=1, duration=1)
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(project)), 422)
    assert err["source"] == {"pointer": "/data/attributes/name"}
    body = doc(project.id, name="n", start_mode="manual", start_at=1, duration=1, settings=[{"key": "k", "values": {"en": "\x00"}}])
    err = one_error(await client.post("/api/v2/events", json=body, headers=headers(project)), 422)
    assert err["source"] == {"pointer": "/data/attributes/settings/0/values/en"}
    one_error(await client.get("/api/v2/events/%00", headers=project.headers), 404)
    # A path holding NUL names nothing that can exist: 404 for every key (app-wide rule, tests/test_nul.py).
    one_error(await client.get("/api/v2/projects/%00/events", headers=project.headers), 404)
    one_error(await client.get("/api/v2/projects/%00/events", headers=project.admin.headers), 404)
