"""Generic ingest, OpenPipeline-compatible (SPEC §7, seed 003), through HTTP."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventdock.core.events import format_ms
from tests.conftest import Key, Project, create_project

URL = "/platform/ingest/v1/events"


async def stored(client: httpx.AsyncClient, project: Project, event_id: str) -> dict[str, Any] | None:
    """One event read back through the CDP read endpoint, or None."""
    r = await client.get(f"/v1/projects/{project.id}/events/{event_id}", headers=project.headers)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def all_events(client: httpx.AsyncClient, project: Project) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/projects/{project.id}/events", params={"limit": 1000}, headers=project.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["items"]  # type: ignore[no-any-return]


def uid() -> str:
    return uuid.uuid4().hex


def assert_envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == status
    assert isinstance(error["message"], str) and error["message"]
    return error  # type: ignore[no-any-return]


def violations(r: httpx.Response) -> dict[str, str]:
    error = assert_envelope(r, 400)
    assert error["message"] == "The input is invalid."
    details = error["details"]
    assert details["type"] == "constraintViolation"
    for v in details["constraintViolations"]:
        assert v["parameterLocation"] == "PAYLOAD_BODY"
    return {v["path"]: v["message"] for v in details["constraintViolations"]}


# -- accepted bodies ---------------------------------------------------------


async def test_single_object_is_accepted_with_202_and_no_body(client: httpx.AsyncClient, project: Project) -> None:
    eid = uid()
    r = await client.post(URL, json={"event.id": eid, "event.name": "signup", "plan": "pro"}, headers=project.headers)
    assert r.status_code == 202
    assert r.content == b""
    assert r.headers["x-eventdock-quarantined"] == "0"
    event = await stored(client, project, eid)
    assert event is not None
    assert event["nameEvent"] == "signup"
    assert event["source"] == "ingest"
    assert event["projectUuid"] == project.id
    assert event["properties"] == {"event.id": eid, "event.name": "signup", "plan": "pro"}


async def test_array_stores_every_event(client: httpx.AsyncClient, project: Project) -> None:
    ids = [uid() for _ in range(3)]
    r = await client.post(URL, json=[{"event.id": i, "n": n} for n, i in enumerate(ids)], headers=project.headers)
    assert r.status_code == 202
    for n, i in enumerate(ids):
        event = await stored(client, project, i)
        assert event is not None and event["properties"]["n"] == n


async def test_ndjson_body(client: httpx.AsyncClient, project: Project) -> None:
    ids = [uid(), uid()]
    body = "\n".join(json.dumps({"event.id": i, "event.name": "line"}) for i in ids) + "\n\n"
    r = await client.post(URL, content=body, headers={**project.headers, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    assert all([await stored(client, project, i) for i in ids])


async def test_ndjson_with_a_bad_line_is_malformed(client: httpx.AsyncClient, project: Project) -> None:
    body = '{"event.id": "a"}\n{not json\n'
    r = await client.post(URL, content=body, headers={**project.headers, "Content-Type": "application/x-ndjson"})
    assert_envelope(r, 400)
    assert await all_events(client, project) == []


async def test_charset_parameter_is_accepted(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(
        URL, content=json.dumps({"event.name": "cs"}), headers={**project.headers, "Content-Type": "application/json; charset=UTF-8"}
    )
    assert r.status_code == 202


async def test_other_charset_is_unsupported(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(
        URL, content=json.dumps({"event.name": "cs"}), headers={**project.headers, "Content-Type": "application/json; charset=latin-1"}
    )
    assert_envelope(r, 415)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
async def test_non_json_media_types_get_415(client: httpx.AsyncClient, project: Project, content_type: str | None) -> None:
    headers = {**project.headers}
    if content_type:
        headers["Content-Type"] = content_type
    r = await client.post(URL, content=b'{"event.name": "x"}', headers=headers)
    assert_envelope(r, 415)


async def test_gzip_body(client: httpx.AsyncClient, project: Project) -> None:
    eid = uid()
    body = gzip.compress(json.dumps([{"event.id": eid}]).encode())
    r = await client.post(URL, content=body, headers={**project.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text
    assert await stored(client, project, eid)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
async def test_body_in_many_chunks_is_read_whole(client: httpx.AsyncClient, project: Project, gzipped: bool) -> None:
    """The fast lane reads the body from ``receive`` itself: every chunk counts, in order."""
    ids = [uid() for _ in range(50)]
    body = json.dumps([{"event.id": i, "seq": n, "pad": "z" * 100} for n, i in enumerate(ids)]).encode()
    if gzipped:
        body = gzip.compress(body)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 97):
            yield body[start : start + 97]

    headers = {**project.headers, "Content-Type": "application/json", **({"Content-Encoding": "gzip"} if gzipped else {})}
    r = await client.post(URL, content=chunks(), headers=headers)
    assert r.status_code == 202, r.text
    assert "content-length" not in r.request.headers
    for n, i in enumerate((ids[0], ids[-1])):
        event = await stored(client, project, i)
        assert event is not None and event["properties"]["seq"] == (0, 49)[n]


# -- name, id, timestamp, properties --------------------------------------------


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ({"event.name": "named", "event.type": "typed"}, "named"),
        ({"event.name": "   ", "event.type": "typed"}, "typed"),
        ({"event.name": 5, "event.type": "typed"}, "typed"),
        ({"event.type": "typed"}, "typed"),
        ({"other": 1}, "event"),
        ({"event.name": "", "event.type": ""}, "event"),
    ],
)
async def test_event_name_rules(client: httpx.AsyncClient, project: Project, event: dict[str, Any], name: str) -> None:
    eid = uid()
    r = await client.post(URL, json={**event, "event.id": eid}, headers=project.headers)
    assert r.status_code == 202, r.text
    found = await stored(client, project, eid)
    assert found is not None and found["nameEvent"] == name


async def test_integer_id_is_kept_as_text(client: httpx.AsyncClient, project: Project) -> None:
    eid = int(time.time_ns() % 10**15)
    r = await client.post(URL, json={"event.id": eid}, headers=project.headers)
    assert r.status_code == 202
    found = await stored(client, project, str(eid))
    assert found is not None and found["properties"]["event.id"] == eid


async def test_missing_id_is_generated_uuid7_and_added_to_properties(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.post(URL, json={"event.name": "gen"}, headers=project.headers)
    assert r.status_code == 202
    [event] = await all_events(client, project)
    generated = uuid.UUID(event["id"])
    assert generated.version == 7
    assert event["properties"]["event.id"] == event["id"]


@pytest.mark.parametrize("bad", [1.5, True, None, [], {}, "", "   ", "x" * 257])
async def test_bad_id_types_name_their_path(client: httpx.AsyncClient, project: Project, bad: Any) -> None:
    r = await client.post(URL, json=[{"event.id": uid()}, {"event.id": bad}], headers=project.headers)
    if bad is None:
        # null is "absent": an id is generated.
        assert r.status_code == 202
        return
    assert "[1].event.id" in violations(r)
    assert await all_events(client, project) == []


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        (1_700_000_000, 1_700_000_000_000),  # seconds
        (1_700_000_000.5, 1_700_000_000_500),
        (1_700_000_000_123, 1_700_000_000_123),  # milliseconds
        (1_700_000_000_123_456, 1_700_000_000_123),  # microseconds
        (1_700_000_000_123_456_789, 1_700_000_000_123),  # nanoseconds
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T23:13:20.250+01:00", 1_700_000_000_250),
        ("1700000000", 1_700_000_000_000),
        ("1700000000123", 1_700_000_000_123),
    ],
)
async def test_timestamp_rules(client: httpx.AsyncClient, project: Project, value: Any, expected_ms: int) -> None:
    eid = uid()
    r = await client.post(URL, json={"event.id": eid, "timestamp": value, "k": 1}, headers=project.headers)
    assert r.status_code == 202, r.text
    found = await stored(client, project, eid)
    assert found is not None
    assert found["timestamp"] == format_ms(expected_ms)
    assert "timestamp" not in found["properties"]
    assert found["properties"] == {"event.id": eid, "k": 1}


@pytest.mark.parametrize("value", [None, "yesterday", "", True, {"a": 1}, "2023-13-45T00:00:00Z"])
async def test_missing_or_unparseable_timestamp_is_ingest_time(client: httpx.AsyncClient, project: Project, value: Any) -> None:
    eid = uid()
    before = time.time()
    r = await client.post(URL, json={"event.id": eid, "timestamp": value}, headers=project.headers)
    assert r.status_code == 202
    found = await stored(client, project, eid)
    assert found is not None
    assert found["timestamp"] == found["receivedAt"]
    assert found["timestamp"] >= format_ms(int(before * 1000) - 1)


async def test_future_timestamp_is_clamped_to_ten_minutes_ahead(client: httpx.AsyncClient, project: Project) -> None:
    eid = uid()
    r = await client.post(URL, json={"event.id": eid, "timestamp": time.time() + 86_400}, headers=project.headers)
    assert r.status_code == 202
    found = await stored(client, project, eid)
    assert found is not None
    from eventdock.core.events import parse_time

    ts, received = parse_time(found["timestamp"]), parse_time(found["receivedAt"])
    assert ts is not None and received is not None
    assert ts - received == 10 * 60 * 1000


# -- refusals ------------------------------------------------------------------


async def test_every_bad_path_is_named_and_nothing_is_stored(client: httpx.AsyncClient, project: Project) -> None:
    good = uid()
    body = [
        {"event.id": good},
        {"event.id": 1.5},
        "not an object",
        {"event.name": "x" * 201},
        {"event.id": uid(), "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}},
        {"event.id": uid(), "k" * 300: 1},
    ]
    paths = violations(await client.post(URL, json=body, headers=project.headers))
    assert "[1].event.id" in paths
    assert "[2]" in paths
    assert "[3].event.name" in paths
    assert any(p.startswith("[4]") for p in paths)
    assert any(p.startswith("[5]") for p in paths)
    assert await stored(client, project, good) is None


@pytest.mark.parametrize(
    "body", [b"{", b"", b"[1, 2", b"\xff\xfe", b'{"a": 1} trailing', b"nul"]
)
async def test_malformed_json(client: httpx.AsyncClient, project: Project, body: bytes) -> None:
    r = await client.post(URL, content=body, headers={**project.headers, "Content-Type": "application/json"})
    assert_envelope(r, 400)


@pytest.mark.parametrize("body", [[], 5, "text", None, True, [1, 2], [[]]])
async def test_structural_refusals(client: httpx.AsyncClient, project: Project, body: Any) -> None:
    r = await client.post(URL, content=json.dumps(body), headers={**project.headers, "Content-Type": "application/json"})
    error = assert_envelope(r, 400)
    assert error["details"]["type"] == "constraintViolation"
    assert await all_events(client, project) == []


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post(URL, json={"event.name": "x"})
    error = assert_envelope(r, 401)
    assert set(error) <= {"code", "message", "details"}


@pytest.mark.parametrize("header", ["Bearer edk_nope", "Api-Token edk_nope", "Basic abc", "Bearer"])
async def test_bad_token_is_401(client: httpx.AsyncClient, header: str) -> None:
    assert_envelope(await client.post(URL, json={"event.name": "x"}, headers={"Authorization": header}), 401)


async def test_missing_scope_is_403_naming_openpipeline_events(client: httpx.AsyncClient, project: Project) -> None:
    reader = await project.new_key(client, "events:read")
    r = await client.post(URL, json={"event.name": "x"}, headers=reader.headers)
    error = assert_envelope(r, 403)
    assert error["details"] == {"missingScopes": ["openpipeline.events"]}


@pytest.mark.parametrize("scope", ["openpipeline.events", "openpipeline:events:ingest", "events:write"])
async def test_scope_aliases_may_ingest(client: httpx.AsyncClient, project: Project, scope: str) -> None:
    key = await project.new_key(client, scope)
    eid = uid()
    r = await client.post(URL, json={"event.id": eid}, headers={"Authorization": f"Api-Token {key.token}"})
    assert r.status_code == 202, r.text
    assert await stored(client, project, eid)


async def test_admin_key_has_no_project_so_403(client: httpx.AsyncClient, admin: Key) -> None:
    assert_envelope(await client.post(URL, json={"event.name": "x"}, headers=admin.headers), 403)


@pytest.mark.parametrize(("method", "path"), [("POST", "/platform/ingest/v1/nope"), ("GET", "/platform/x"), ("POST", "/platform/ingest/v2/events")])
async def test_unknown_platform_paths_are_404_in_the_envelope(client: httpx.AsyncClient, project: Project, method: str, path: str) -> None:
    assert_envelope(await client.request(method, path, json={}, headers=project.headers), 404)


async def test_wrong_method_is_in_the_envelope(client: httpx.AsyncClient, project: Project) -> None:
    r = await client.get(URL, headers=project.headers)
    assert_envelope(r, 405)


async def test_declared_body_over_limit_is_413(client: httpx.AsyncClient, project: Project) -> None:
    body = b'{"event.name": "big", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    r = await client.post(URL, content=body, headers={**project.headers, "Content-Type": "application/json"})
    assert_envelope(r, 413)


# -- idempotency -----------------------------------------------------------------


async def test_resent_batch_is_stored_once(client: httpx.AsyncClient, project: Project) -> None:
    body = [{"event.id": f"dup-{n}", "n": n} for n in range(5)]
    for _ in range(2):
        r = await client.post(URL, json=body, headers=project.headers)
        assert r.status_code == 202
    # A batch repeating an id within itself, and overlapping the stored ones.
    r = await client.post(URL, json=[{"event.id": "dup-0", "n": 99}, {"event.id": "dup-5"}, {"event.id": "dup-5"}], headers=project.headers)
    assert r.status_code == 202
    events = await all_events(client, project)
    assert sorted(e["id"] for e in events) == sorted([f"dup-{n}" for n in range(6)])
    first = next(e for e in events if e["id"] == "dup-0")
    assert first["properties"]["n"] == 0


async def test_large_batch_mixing_generated_and_chosen_ids_stores_each_once(client: httpx.AsyncClient, project: Project) -> None:
    """Enough generated ids for PostgreSQL's COPY (store.events.COPY_MIN_ROWS) in
    the same transaction as client ids, some of them already stored."""
    from eventdock.store.events import COPY_MIN_ROWS

    earlier = [{"event.id": f"mixed-{n}", "round": 1} for n in range(10)]
    assert (await client.post(URL, json=earlier, headers=project.headers)).status_code == 202
    generated = [{"event.name": "fresh", "n": n} for n in range(COPY_MIN_ROWS * 2)]
    chosen = [{"event.id": f"mixed-{n}", "round": 2} for n in range(40)]
    r = await client.post(URL, json=generated + chosen, headers=project.headers)
    assert r.status_code == 202, r.text
    events = await all_events(client, project)
    assert len(events) == len(generated) + 40
    assert len({e["id"] for e in events}) == len(events)
    assert sorted(e["properties"]["n"] for e in events if e["nameEvent"] == "fresh") == list(range(len(generated)))
    rounds = {e["id"]: e["properties"]["round"] for e in events if e["id"].startswith("mixed-")}
    assert rounds == {f"mixed-{n}": 1 if n < 10 else 2 for n in range(40)}


async def test_same_ids_in_two_projects_are_two_events(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    from tests.conftest import create_project

    other = await create_project(client, admin)
    for p in (project, other):
        assert (await client.post(URL, json={"event.id": "shared"}, headers=p.headers)).status_code == 202
    assert await stored(client, project, "shared")
    assert await stored(client, other, "shared")


async def test_event_definition_exists_once_acknowledged(client: httpx.AsyncClient, project: Project, database_url: str) -> None:
    import sqlalchemy as sa

    r = await client.post(URL, json={"event.name": "defined-now"}, headers=project.headers)
    assert r.status_code == 202
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            names = conn.execute(
                sa.text("SELECT name, enforcement_mode FROM event_definitions WHERE project_id = :p"), {"p": project.id}
            ).all()
    finally:
        engine.dispose()
    assert [tuple(n) for n in names] == [("defined-now", "allow")]


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ({"note": "a\u0000b"}, "[0].note"),
        ({"nested": {"list": ["ok", "\u0000"]}}, "[0].nested.list[1]"),
        ({"event.name": "bad\u0000name"}, "[0].event.name"),
        ({"event.id": "id\u0000"}, "[0].event.id"),
    ],
)
async def test_nul_characters_are_refused_on_every_backend(client: httpx.AsyncClient, project: Project, event: dict[str, Any], path: str) -> None:
    # PostgreSQL can store U+0000 in neither text nor jsonb: a 400 naming it, not a 500.
    assert path in violations(await client.post(URL, json=[event], headers=project.headers))


_text = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=24)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# "event.*" keys and "timestamp" are the event's own fields (SPEC §7), not properties.
@given(name=_text, properties=st.dictionaries(_text.filter(lambda k: not k.startswith("event.") and k != "timestamp"), _values, max_size=5))
@example(name=' \t"\\\u2028\U0001f600 ', properties={" k ": ' a"b\\c\n ', "u": "\u00e9\U0001f600\u0001", "n": [1.5, -0.0, 2**53]})
async def test_what_is_stored_reads_back_exactly(client: httpx.AsyncClient, admin: Key, name: str, properties: dict[str, Any]) -> None:
    """Names and properties of any text (quotes, escapes, control characters,
    astral-plane characters) come back as sent: SQLite's writer packs a batch
    into one JSON document that SQLite unpacks (store.events._sqlite_insert)."""
    project = await _roundtrip_project(client, admin)
    event_id = f"rt-{uuid.uuid4()}"
    body = {**properties, "event.id": event_id, "event.type": f"n{name}"}
    r = await client.post(URL, json=body, headers=project.headers)
    assert r.status_code == 202, r.text
    got = await stored(client, project, event_id)
    assert got is not None
    assert got["nameEvent"] == f"n{name}"
    assert _as_json_numbers({k: v for k, v in got["properties"].items() if not k.startswith("event.")}) == _as_json_numbers(properties)


def _as_json_numbers(value: Any) -> Any:
    """Numbers by their decimal value: JSON does not tell 1e16 from 10000000000000000,
    and PostgreSQL's jsonb gives back the second for the first."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, list):
        return [_as_json_numbers(v) for v in value]
    return {k: _as_json_numbers(v) for k, v in value.items()}


_roundtrip_projects: dict[int, Project] = {}


async def _roundtrip_project(client: httpx.AsyncClient, admin: Key) -> Project:
    if id(client) not in _roundtrip_projects:
        _roundtrip_projects[id(client)] = await create_project(client, admin)
    return _roundtrip_projects[id(client)]
