"""JSON:API documents of the live-events dialect (seed 002): resource objects
for events, stats and projects, with absolute links.

Times go out as the seed shows them: unix seconds (an integer when whole)
next to an ISO 8601 twin (``2016-03-20T15:30:00Z``); durations in seconds.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from starlette.responses import Response

from eventdock.core import live
from eventdock.core.live import LiveEvent
from eventdock.store.tenancy import Project

MEDIA_TYPE = "application/vnd.api+json"
_encode = msgspec.json.Encoder().encode


def seconds(ms: int) -> int | float:
    """Whole seconds as an integer, else a float (1500 ms → 1.5)."""
    whole, rest = divmod(ms, 1000)
    return whole if rest == 0 else ms / 1000


def iso(ms: int) -> str:
    whole, rest = divmod(ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{text}.{rest:03d}Z" if rest else f"{text}Z"


def event_url(base: str, live_id: str) -> str:
    return f"{base}/api/v2/events/{live_id}"


def attributes(ev: LiveEvent, now: int) -> dict[str, Any]:
    return {
        "name": ev.name,
        "duration": seconds(ev.duration),
        "original_duration": seconds(ev.original_duration),
        "start_mode": ev.start_mode,
        "end_mode": ev.end_mode,
        "repeat": ev.repeat,
        "repeat_in": ev.repeat_in,
        "feed_uuid": ev.feed_uuid,
        "live_stats_uuid": None,
        "extra_time": seconds(ev.extra_time),
        "start_at": seconds(ev.start_at),
        "start_at_iso": iso(ev.start_at),
        "end_at": seconds(ev.end_at),
        "end_at_iso": iso(ev.end_at),
        "settings": ev.settings,
        "state": live.state(ev, now),
        "actions": live.actions(ev, now),
    }


def resource(ev: LiveEvent, now: int, base: str) -> dict[str, Any]:
    url = event_url(base, ev.id)
    return {
        "id": ev.id,
        "type": "events",
        "attributes": attributes(ev, now),
        "relationships": {
            "elements": {"links": {"related": f"{url}/elements"}},
            "stats": {"data": {"id": ev.id, "type": "stats"}},
            "project": {"data": {"id": ev.project_id, "type": "projects"}},
        },
        "links": {"self": url},
    }


def stats_resource(ev: LiveEvent, ingested: int) -> dict[str, Any]:
    return {"id": ev.id, "type": "stats", "attributes": {"ingested_events": ingested}}


def project_resource(project: Project) -> dict[str, Any]:
    public = project.as_public()
    return {"id": project.id, "type": "projects", "attributes": {"name": public["name"], "created_at": public["created_at"]}}


def sparse(resource: dict[str, Any], wanted: frozenset[str] | None) -> dict[str, Any]:
    """Only the fields a sparse fieldset asks for (JSON:API 1.1
    §fetching-sparse-fieldsets: "MUST NOT include additional fields"); ``id``,
    ``type`` and ``links`` are not fields and stay."""
    if wanted is None:
        return resource
    for member in ("attributes", "relationships"):
        kept = {name: value for name, value in resource.get(member, {}).items() if name in wanted}
        if kept:
            resource[member] = kept
        else:
            resource.pop(member, None)
    return resource


def stats_window(ev: LiveEvent, now: int) -> tuple[int, int]:
    """[start, end) of the events a live event counts: none before it starts,
    those so far while it runs, its whole window once it is past."""
    state = live.state(ev, now)
    if state == "future":
        return ev.start_at, ev.start_at
    return ev.start_at, ev.end_at if state == "past" else min(ev.end_at, now + 1)


def document(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)
