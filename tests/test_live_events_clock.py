"""The live-event state machine driven by an injected clock (SPEC §6):
both start modes, stop, edits, repeat copies, and the system events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from eventdock.core import live
from eventdock.core.events import format_ms
from eventdock.store.live_events import LiveEventStore
from tests.conftest import Project
from tests.test_live_events import FakeClock, clock, create, get, one_error, patch, stream  # noqa: F401 - clock is a fixture


def engine(app: Any) -> live.LiveClock:
    return live.engine(app.state.services)


async def list_events(client: httpx.AsyncClient, project: Project) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v2/projects/{project.id}/events", params={"page[count]": "100"}, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def iso_ms(seconds: float) -> str:
    return format_ms(round(seconds * 1000))


async def test_clock_mode_runs_by_the_clock_and_repeats(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    settings = [{"key": "hold_prompt", "values": {"en": "Back soon"}}]
    data = await create(client, project, name="Match", start_mode="clock", start_at=clock.seconds + 60, duration=120, repeat=True, repeat_in=1, settings=settings)
    live_id = data["id"]
    attrs = data["attributes"]
    assert (attrs["state"], attrs["actions"]) == ("future", [])
    await engine(app).tick()
    assert await stream(client, project) == []

    clock.advance(60)
    attrs = await get(client, project, live_id)
    assert (attrs["state"], attrs["actions"]) == ("current", ["stop"])  # state is computed at read time
    await engine(app).tick()
    await engine(app).tick()
    started = await stream(client, project, "live_event_started")
    assert len(started) == 1
    assert started[0]["id"] == f"live_event_started:{live_id}"
    assert started[0]["timestamp"] == iso_ms(attrs["start_at"]) and started[0]["source"] == "live_event"
    assert started[0]["properties"] == {"live_event_id": live_id, "name": "Match", "start_mode": "clock"}

    clock.advance(120)
    attrs = await get(client, project, live_id)
    assert (attrs["state"], attrs["actions"]) == ("past", [])
    await engine(app).tick()
    await engine(app).tick()
    ended = await stream(client, project, "live_event_ended")
    assert len(ended) == 1 and ended[0]["timestamp"] == iso_ms(attrs["end_at"])
    assert ended[0]["properties"] == {"live_event_id": live_id, "name": "Match", "start_mode": "clock"}

    # The repeat: one copy, repeat_in minutes after the end, by the clock.
    events = await list_events(client, project)
    assert len(events) == 2
    copy = next(e for e in events if e["id"] != live_id)["attributes"]
    assert copy["start_at"] == attrs["end_at"] + 60 and copy["end_at"] == copy["start_at"] + 120
    assert (copy["name"], copy["start_mode"], copy["duration"], copy["repeat"], copy["repeat_in"], copy["settings"]) == ("Match", "clock", 120, True, 1, settings)
    assert copy["state"] == "future"

    clock.advance(60)
    await engine(app).tick()
    started = await stream(client, project, "live_event_started")
    assert len(started) == 2 and len({s["properties"]["live_event_id"] for s in started}) == 2
    assert len(await list_events(client, project)) == 2


async def test_manual_mode_start_and_stop(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    data = await create(client, project, name="Show", start_mode="manual", start_at=clock.seconds - 3600, duration=60)
    live_id = data["id"]
    assert (data["attributes"]["state"], data["attributes"]["actions"]) == ("future", ["start"])
    await engine(app).tick()
    assert await stream(client, project) == []  # a manual event waits for its start, whatever start_at says

    clock.advance(5.75)
    r = await patch(client, project, live_id, action="start")
    assert r.status_code == 204 and r.content == b""
    attrs = await get(client, project, live_id)
    assert attrs["start_at"] == clock.seconds and attrs["end_at"] == clock.seconds + 60  # whole seconds
    assert isinstance(attrs["start_at"], int)
    assert (attrs["state"], attrs["actions"]) == ("current", ["stop"])
    started = await stream(client, project, "live_event_started")  # written at once, no tick
    assert len(started) == 1 and started[0]["timestamp"] == iso_ms(clock.seconds)
    one_error(await patch(client, project, live_id, action="start"), 422)

    clock.advance(10.25)  # stopped at +16 s; the start was taken at +5 s (whole seconds)
    assert (await patch(client, project, live_id, action="stop")).status_code == 204
    attrs = await get(client, project, live_id)
    assert (attrs["state"], attrs["actions"]) == ("past", [])
    assert attrs["duration"] == 11 and attrs["original_duration"] == 60
    assert attrs["end_at"] == clock.seconds  # now, in whole seconds like every time the server picks
    ended = await stream(client, project, "live_event_ended")
    assert len(ended) == 1 and ended[0]["timestamp"] == iso_ms(clock.seconds)
    assert ended[0]["properties"]["start_mode"] == "manual"

    err = one_error(await patch(client, project, live_id, action="stop"), 422)
    assert err["detail"] == "can't stop already finished event" and err["source"] == {"pointer": "/data/attributes/action"}
    err = one_error(await patch(client, project, live_id, action="start"), 422)
    assert err["detail"] == "can't start already finished event"
    await engine(app).tick()
    assert len(await stream(client, project)) == 2


async def test_a_started_manual_event_ends_by_the_clock(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    data = await create(client, project, start_mode="manual", duration=30, action="start")
    clock.advance(29)
    await engine(app).tick()
    assert await stream(client, project, "live_event_ended") == []
    clock.advance(1)
    assert (await get(client, project, data["id"]))["state"] == "past"
    await engine(app).tick()
    ended = await stream(client, project, "live_event_ended")
    assert len(ended) == 1 and ended[0]["timestamp"] == iso_ms(data["attributes"]["end_at"])


async def test_stopping_before_the_clock_saw_the_start_writes_both(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    data = await create(client, project, start_mode="clock", start_at=clock.seconds + 1, duration=600, repeat=True, repeat_in=5)
    clock.advance(3)
    # No tick has seen the start: the stop writes the start, then the end.
    assert (await patch(client, project, data["id"], action="stop")).status_code == 204
    events = await stream(client, project)
    assert sorted(e["nameEvent"] for e in events) == ["live_event_ended", "live_event_started"]
    attrs = await get(client, project, data["id"])
    assert attrs["duration"] == 2 and attrs["original_duration"] == 600 and attrs["state"] == "past"
    # A stopped repeating event repeats from its actual end.
    copy = next(e for e in await list_events(client, project) if e["id"] != data["id"])["attributes"]
    assert copy["start_at"] == attrs["end_at"] + 300 and copy["duration"] == 600


async def test_edits_while_future_and_after_the_start(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    settings = [{"key": "a", "values": {"all": "1"}}, {"key": "b", "values": {"en": "2"}}]
    data = await create(client, project, start_mode="manual", start_at=clock.seconds + 100, duration=60, settings=settings)
    live_id = data["id"]
    r = await patch(
        client, project, live_id, name="Renamed", duration=90, extra_time=0, settings=[{"key": "b", "values": {"en": "3"}}, {"key": "c", "values": {"all": True}}]
    )
    assert r.status_code == 204, r.text
    attrs = await get(client, project, live_id)
    assert (attrs["name"], attrs["duration"], attrs["original_duration"], attrs["extra_time"]) == ("Renamed", 90, 90, 0)
    assert attrs["end_at"] == attrs["start_at"] + 90
    assert attrs["settings"] == [{"key": "a", "values": {"all": "1"}}, {"key": "b", "values": {"en": "3"}}, {"key": "c", "values": {"all": True}}]
    assert (await patch(client, project, live_id, settings=[{"key": "a", "values": None}])).status_code == 204
    assert [s["key"] for s in (await get(client, project, live_id))["settings"]] == ["b", "c"]
    r = await patch(client, project, live_id, end_mode="scheduled", end_at=attrs["start_at"] + 30)
    assert r.status_code == 204, r.text
    attrs = await get(client, project, live_id)
    assert (attrs["end_mode"], attrs["duration"]) == ("scheduled", 30)
    scheduled_end = attrs["end_at"]
    r = await patch(client, project, live_id, duration=-5, repeat=True)
    assert {e["source"]["pointer"]: e["detail"] for e in r.json()["errors"]} == {
        "/data/attributes/duration": "must be greater than 0",
        "/data/attributes/repeat_in": "can't be blank",
    }
    # Turning it into a clock event whose start has passed makes it current at once.
    r = await patch(client, project, live_id, start_mode="clock", start_at=clock.seconds - 1)
    assert r.status_code == 204, r.text
    attrs = await get(client, project, live_id)
    assert (attrs["state"], attrs["start_mode"]) == ("current", "clock")
    assert len(await stream(client, project, "live_event_started")) == 1

    # Once started: name and settings only; sending a value back unchanged is fine.
    assert (await patch(client, project, live_id, name="Live now", start_at=attrs["start_at"], state="current")).status_code == 204
    err = one_error(await patch(client, project, live_id, duration=500), 422)
    assert err == {"status": "422", "title": "Unprocessable Entity", "detail": "can't be changed once the event has started", "source": {"pointer": "/data/attributes/duration"}}
    assert (await patch(client, project, live_id, settings=[{"key": "b", "values": {"en": "4"}}])).status_code == 204
    attrs = await get(client, project, live_id)
    assert attrs["name"] == "Live now" and attrs["settings"] == [{"key": "b", "values": {"en": "4"}}, {"key": "c", "values": {"all": True}}]
    # Moving the start of a scheduled event keeps its end: the duration follows.
    assert attrs["end_at"] == scheduled_end and attrs["duration"] == scheduled_end - attrs["start_at"]


async def test_a_long_stopped_server_does_not_replay_every_repeat(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    data = await create(client, project, start_mode="clock", start_at=clock.seconds - 3600, duration=60, repeat=True, repeat_in=1)
    await engine(app).tick()
    events = await list_events(client, project)
    assert len(events) == 2
    copy = next(e for e in events if e["id"] != data["id"])["attributes"]
    first = data["attributes"]["end_at"] + 60
    assert (copy["start_at"] - first) % 120 == 0  # on the cycle of the original
    assert copy["end_at"] > clock.seconds and copy["start_at"] <= clock.seconds + 60


async def test_two_clocks_write_each_transition_once(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    """Two workers' clocks on one database: neither process-local lock is shared."""
    svc = app.state.services
    other = live.LiveClock(LiveEventStore(svc.db), svc.pipeline, svc.settings.limits)
    other.clock = clock
    ids = [(await create(client, project, name=f"e{i}", start_mode="clock", start_at=clock.seconds + 10, duration=5, repeat=True, repeat_in=1))["id"] for i in range(5)]
    clock.advance(10)
    await asyncio.gather(engine(app).tick(), other.tick(), engine(app).tick(), other.tick())
    clock.advance(5)
    await asyncio.gather(engine(app).tick(), other.tick(), engine(app).tick(), other.tick())
    events = await stream(client, project)
    assert sorted(e["id"] for e in events) == sorted(f"{kind}:{i}" for i in ids for kind in ("live_event_started", "live_event_ended"))
    assert len(await list_events(client, project)) == 10  # one copy each


async def test_deleting_a_current_event_writes_its_end_once(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    """SPEC §6: deleting a current event writes its ``live_event_ended`` then — every start has its end —
    and nothing more afterwards (no second end, no repeat copy)."""
    data = await create(client, project, start_mode="clock", start_at=clock.seconds, duration=60, repeat=True, repeat_in=1)
    await engine(app).tick()
    clock.advance(7)
    assert (await client.delete(f"/api/v2/events/{data['id']}", headers=project.headers)).status_code == 204
    events = await stream(client, project)
    assert [e["nameEvent"] for e in events] == ["live_event_ended", "live_event_started"]
    assert events[0]["id"] == f"live_event_ended:{data['id']}"
    assert events[0]["timestamp"] == format_ms(clock.ms)  # ended when it was deleted, not at its planned end
    assert events[0]["properties"] == {"live_event_id": data["id"], "name": "Show", "start_mode": "clock"}
    clock.advance(120)
    await engine(app).tick()
    assert len(await stream(client, project)) == 2
    assert await list_events(client, project) == []


async def test_deleting_before_the_clock_wrote_the_start_writes_both(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    """SPEC §6: a clock event that became current between two polls owes its start too; DELETE writes both, in order of time."""
    data = await create(client, project, start_mode="clock", start_at=clock.seconds + 1, duration=60)
    clock.advance(3)
    assert (await client.delete(f"/api/v2/events/{data['id']}", headers=project.headers)).status_code == 204
    events = {e["nameEvent"]: e["timestamp"] for e in await stream(client, project)}
    assert events == {"live_event_started": format_ms((clock.seconds - 2) * 1000), "live_event_ended": format_ms(clock.ms)}


async def test_deleting_future_and_past_events_writes_nothing_new(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    """SPEC §6: only a start that was written needs an end; a finished event's end is not written twice."""
    future = await create(client, project, start_mode="manual", start_at=clock.seconds)
    past = await create(client, project, start_mode="clock", start_at=clock.seconds, duration=5)
    clock.advance(10)
    await engine(app).tick()
    for live_id in (future["id"], past["id"]):
        assert (await client.delete(f"/api/v2/events/{live_id}", headers=project.headers)).status_code == 204
    assert sorted(e["id"] for e in await stream(client, project)) == [f"live_event_ended:{past['id']}", f"live_event_started:{past['id']}"]


async def test_concurrent_deletes_and_clocks_write_one_end(client: httpx.AsyncClient, project: Project, clock: FakeClock, app: Any) -> None:
    """SPEC §6 "exactly once, even with several workers": two clocks (as two workers have) and three DELETEs at once."""
    other = live.LiveClock(LiveEventStore(app.state.services.db), app.state.services.pipeline, app.state.services.settings.limits)
    other.clock = clock
    data = await create(client, project, start_mode="clock", start_at=clock.seconds, duration=5)
    clock.advance(2)
    url = f"/api/v2/events/{data['id']}"
    results = await asyncio.gather(*(client.delete(url, headers=project.headers) for _ in range(3)), engine(app).tick(), other.tick())
    statuses = sorted(r.status_code for r in results[:3])  # type: ignore[union-attr]
    assert statuses.count(204) == 1 and set(statuses) <= {204, 404}, statuses
    clock.advance(10)
    await asyncio.gather(engine(app).tick(), other.tick())
    assert sorted(e["nameEvent"] for e in await stream(client, project)) == ["live_event_ended", "live_event_started"]
