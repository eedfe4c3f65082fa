"""PostHog's own tests of the event definitions list, carried over.

Each test names the test of PostHog/posthog (``posthog/api/test/test_event_definition.py``)
whose assertions it makes. PostHog's fixture is six definitions seen at
known times (``watched_movie`` never: here a planned definition); eventdock
learns ``last_seen_at`` from the events' timestamps, so the fixture sends
one event per name at PostHog's instants.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Project
from tests.test_event_schemas import base, define

INGEST = "/platform/ingest/v1/events"
SEEN = {
    "installed_app": "2020-01-01T00:00:00Z",
    "rated_app": "2019-12-21T00:00:00Z",
    "purchase": "2019-12-30T00:00:00Z",
    "entered_free_trial": "2020-01-01T23:00:00Z",
    "$pageview": "2020-01-01T22:56:00Z",
}


def instant(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def listing(client: httpx.AsyncClient, project: Project, query: str = "") -> dict[str, Any]:
    r = await client.get(f"{base(project)}/event_definitions/?{query}", headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def posthog_fixture(client: httpx.AsyncClient, project: Project) -> None:
    body = [{"event.name": name, "timestamp": at} for name, at in SEEN.items()]
    assert (await client.post(INGEST, json=body, headers=project.headers)).status_code == 202
    await define(client, project, "watched_movie")
    for _ in range(100):  # last_seen_at is flushed about once a second (SPEC §3.3)
        seen = {d["name"]: d["last_seen_at"] for d in (await listing(client, project))["results"]}
        if all(seen.get(name) for name in SEEN):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"last_seen_at never caught up: {seen}")


async def test_list_event_definitions(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition.py::test_list_event_definitions: every definition, planned or
    seen, is listed with a created_at of when it was created."""
    await posthog_fixture(client, project)
    body = await listing(client, project)
    assert body["count"] == len(body["results"]) == 6
    for item in body["results"]:
        assert abs(instant(item["created_at"]) - time.time()) < 30  # type: ignore[operator]
    planned = next(d for d in body["results"] if d["name"] == "watched_movie")
    assert planned["last_seen_at"] is None and planned["volume"] == 0


ORDERINGS = [
    ("ordering=name", ["$pageview", "entered_free_trial", "installed_app", "purchase", "rated_app", "watched_movie"]),
    ("ordering=-name", ["watched_movie", "rated_app", "purchase", "installed_app", "entered_free_trial", "$pageview"]),
    ("ordering=-last_seen_at::date&ordering=name", ["$pageview", "entered_free_trial", "installed_app", "purchase", "rated_app", "watched_movie"]),
    ("ordering=-last_seen_at::date&ordering=-name", ["installed_app", "entered_free_trial", "$pageview", "purchase", "rated_app", "watched_movie"]),
    # Not in PostHog's table: the exact instant, and nulls first when ascending (PostHog's NULLS FIRST).
    ("ordering=-last_seen_at", ["entered_free_trial", "$pageview", "installed_app", "purchase", "rated_app", "watched_movie"]),
    ("ordering=last_seen_at", ["watched_movie", "rated_app", "purchase", "installed_app", "$pageview", "entered_free_trial"]),
    # An unknown field is ignored, as PostHog ignores it: the default order.
    ("ordering=colour", ["$pageview", "entered_free_trial", "installed_app", "purchase", "rated_app", "watched_movie"]),
]


@pytest.mark.parametrize(("query", "expected"), ORDERINGS)
async def test_list_event_definitions_ordering(client: httpx.AsyncClient, project: Project, query: str, expected: list[str]) -> None:
    """PostHog test_event_definition.py::test_list_event_definitions_ordering (its four cases, plus ours)."""
    await posthog_fixture(client, project)
    results = (await listing(client, project, query))["results"]
    assert [r["name"] for r in results] == expected
    assert [instant(r["last_seen_at"]) for r in results] == [instant(SEEN.get(name)) for name in expected]


async def test_pagination_of_event_definitions(client: httpx.AsyncClient, project: Project) -> None:
    """PostHog test_event_definition.py::test_pagination_of_event_definitions: 306 definitions, pages of
    100 by default, the most recently seen first (the 300 extra ones were seen long before)."""
    await posthog_fixture(client, project)
    batch = [{"event.name": f"z_event_{i}", "timestamp": "2019-01-01T00:00:00Z"} for i in range(1, 301)]
    assert (await client.post(INGEST, json=batch, headers=project.headers)).status_code == 202
    body = await listing(client, project)
    assert body["count"] == 306 and len(body["results"]) == 100
    assert [d["name"] for d in body["results"][:2]] == ["$pageview", "entered_free_trial"]
    sizes = []
    while body["next"]:
        r = await client.get(body["next"], headers=project.headers)
        body = r.json()
        assert body["count"] == 306
        sizes.append(len(body["results"]))
    assert sizes == [100, 100, 6]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("app", ["rated_app", "installed_app"]),  # case-insensitive; shorter names first
        ("App", ["rated_app", "installed_app"]),
        ("free tri", ["entered_free_trial"]),  # every word must occur
        ("free%20tri%20", ["entered_free_trial"]),  # URL-encoded, trailing space
        ("ed mov", ["watched_movie"]),
        ("e", ["purchase", "$pageview", "rated_app", "installed_app", "watched_movie", "entered_free_trial"]),
        ("100%", []),  # LIKE's wildcards are plain characters
        ("_", ["rated_app", "installed_app", "watched_movie", "entered_free_trial"]),
    ],
)
async def test_query_event_definitions(client: httpx.AsyncClient, project: Project, search: str, expected: list[str]) -> None:
    """PostHog test_event_definition.py::test_query_event_definitions; search results in PostHog's
    order: the shortest name first, then by name."""
    await posthog_fixture(client, project)
    body = await listing(client, project, f"search={search}")
    assert [d["name"] for d in body["results"]] == expected and body["count"] == len(expected)


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("event_custom", {"installed_app", "rated_app", "purchase", "entered_free_trial", "watched_movie"}),
        ("event_posthog", {"$pageview"}),
        ("event", {*SEEN, "watched_movie"}),
        ("all", {*SEEN, "watched_movie"}),
        ("action_event", set()),
    ],
)
async def test_event_type(client: httpx.AsyncClient, project: Project, event_type: str, expected: set[str]) -> None:
    """PostHog test_event_definition.py::test_event_type_event, ::test_event_type_event_custom (5) and
    ::test_event_type_event_posthog (1, ``$pageview``); eventdock has no actions."""
    await posthog_fixture(client, project)
    body = await listing(client, project, f"event_type={event_type}")
    assert {d["name"] for d in body["results"]} == expected and body["count"] == len(expected)


async def test_event_type_unknown_and_names_filter(client: httpx.AsyncClient, project: Project) -> None:
    """An event_type PostHog does not know is refused (DRF's invalid_choice, not PostHog's 500);
    ``names=`` (repeated) keeps exactly those names, combined with the other filters."""
    await posthog_fixture(client, project)
    r = await client.get(f"{base(project)}/event_definitions/?event_type=actions", headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "invalid_choice", "detail": '"actions" is not a valid choice.', "attr": "event_type"}
    body = await listing(client, project, "names=purchase&names=rated_app&names=nope&ordering=name")
    assert [d["name"] for d in body["results"]] == ["purchase", "rated_app"]
    body = await listing(client, project, "names=purchase&names=$pageview&event_type=event_custom")
    assert [d["name"] for d in body["results"]] == ["purchase"]


async def test_by_name(client: httpx.AsyncClient, project: Project) -> None:
    """``GET event_definitions/by_name/?name=``: the definition; 404 for an unknown name; 400 without a name."""
    await posthog_fixture(client, project)
    r = await client.get(f"{base(project)}/event_definitions/by_name/", params={"name": "$pageview"}, headers=project.headers)
    assert r.status_code == 200 and r.json()["name"] == "$pageview" and instant(r.json()["last_seen_at"]) == instant(SEEN["$pageview"])
    r = await client.get(f"{base(project)}/event_definitions/by_name", params={"name": "watched_movie"}, headers=project.headers)
    assert r.status_code == 200 and r.json()["last_seen_at"] is None
    r = await client.get(f"{base(project)}/event_definitions/by_name/", params={"name": "nope"}, headers=project.headers)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await client.get(f"{base(project)}/event_definitions/by_name/", headers=project.headers)
    assert r.json() == {"type": "validation_error", "code": "required", "detail": "This field is required.", "attr": "name"}
