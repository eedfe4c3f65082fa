"""Every live-events response the suite receives is checked against the
official JSON:API 1.1 schema (tests/data/jsonapi, CC0) and media type.

``check`` is an httpx response hook: the shared ``client`` fixture, the
custom apps and the real-server tests install it (``HOOKS``), so a response
that breaks the schema fails the test that received it, whatever it checks
itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "jsonapi" / "schema-1.1.json").read_text())
MEDIA_TYPE = "application/vnd.api+json"
_validator = Draft202012Validator(SCHEMA)
# How many responses were checked (a test asserts the hook really runs).
checked = 0


def problems(document: Any) -> list[str]:
    """Where ``document`` breaks the JSON:API 1.1 schema (empty: valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in _validator.iter_errors(document)]


def assert_valid(response: Any) -> None:
    """A response of the live-events API (httpx's or requests'): no body (204),
    or a JSON:API document of the JSON:API media type."""
    global checked
    checked += 1
    if response.status_code == 204 or (response.request.method == "HEAD"):
        assert not response.content, f"{response.status_code} with a body"
        return
    content_type = response.headers.get("content-type", "")
    assert content_type == MEDIA_TYPE, f"{response.request.method} {response.request.url}: Content-Type {content_type!r}"
    found = problems(response.json())
    assert not found, f"{response.request.method} {response.request.url} ({response.status_code}) breaks the JSON:API 1.1 schema: {found}"


def is_live_events(url: httpx.URL) -> bool:
    return url.path.startswith("/api/v2/")


async def check(response: httpx.Response) -> None:
    if is_live_events(response.request.url):
        await response.aread()
        assert_valid(response)


def check_sync(response: httpx.Response) -> None:
    if is_live_events(response.request.url):
        response.read()
        assert_valid(response)


def check_requests(response: Any, *args: Any, **kwargs: Any) -> Any:
    """The same for the ``requests`` library (its response hook), under client libraries built on it."""
    if httpx.URL(response.request.url).path.startswith("/api/v2/"):
        assert_valid(response)
    return response


HOOKS: dict[str, list[Any]] = {"response": [check]}
SYNC_HOOKS: dict[str, list[Any]] = {"response": [check_sync]}
