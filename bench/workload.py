"""What the benchmark sends: the request bodies and the optional event schema.

The same bytes go to the bare baseline and to eventdock. Single events
carry no client id (each is stored as a new event); the batched body is 500
``order_placed`` events with the five properties that ``--schema`` makes
required, so the figures with and without schema differ only by the
validation eventdock does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

CDP_SINGLE: dict[str, Any] = {
    "nameEvent": "page_view",
    "uuidVisitor": "6f1d0c2e-4b7a-4c1e-9f2a-1b2c3d4e5f60",
    "link": "https://shop.example.com/products/42",
    "attributes": {"path": "/products/42", "referrer": "https://www.example.org/", "campaign": "summer"},
}
GENERIC_SINGLE: dict[str, Any] = {
    "event.name": "page_view",
    "event.provider": "web",
    "path": "/products/42",
    "referrer": "https://www.example.org/",
    "duration_ms": 1234,
}
BATCH_EVENT_NAME = "order_placed"
# The five properties the schema run makes required (name → PostHog type).
SCHEMA_PROPERTIES: dict[str, str] = {
    "order_id": "String",
    "amount": "Numeric",
    "currency": "String",
    "paid": "Boolean",
    "placed_at": "DateTime",
}


def batch_event(i: int) -> dict[str, Any]:
    return {
        "event.name": BATCH_EVENT_NAME,
        "event.provider": "shop",
        "order_id": f"ORD-{i:06d}",
        "amount": 10 + (i % 90) + 0.99,
        "currency": ("EUR", "USD", "GBP")[i % 3],
        "paid": i % 5 != 0,
        "placed_at": "2024-07-01T12:00:00Z",
        "items": i % 7 + 1,
    }


def cdp_path(project_id: str) -> str:
    return f"/v1/projects/{project_id}/events"


GENERIC_PATH = "/platform/ingest/v1/events"


@dataclass(frozen=True)
class Bodies:
    cdp_single: bytes
    generic_single: bytes
    batch: bytes
    batch_size: int
    overload: bytes
    overload_size: int


def bodies(batch_size: int = 500, overload_size: int = 2000) -> Bodies:
    enc = msgspec.json.encode
    return Bodies(
        cdp_single=enc(CDP_SINGLE),
        generic_single=enc(GENERIC_SINGLE),
        batch=enc([batch_event(i) for i in range(batch_size)]),
        batch_size=batch_size,
        overload=enc([batch_event(i) for i in range(overload_size)]),
        overload_size=overload_size,
    )


class SchemaUnavailable(Exception):
    """The event schema API answered 404 (not built on this server yet)."""


def create_schema(base_url: str, project_id: str, token: str) -> dict[str, Any]:
    """Make the five properties required on ``order_placed`` (SPEC §5).

    Raises ``SchemaUnavailable`` when the schema API is not there (404).
    """
    base = f"/api/projects/{project_id}"
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = client.post(f"{base}/{path}", json=body)
            if answer.status_code in (404, 405):
                raise SchemaUnavailable(f"POST {path} answered {answer.status_code}")
            if answer.status_code >= 300:
                raise RuntimeError(f"POST {path} answered {answer.status_code}: {answer.text[:500]}")
            return answer.json()  # type: ignore[no-any-return]

        group = post(
            "schema_property_groups/",
            {
                "name": "order",
                "description": "benchmark: required order properties",
                "properties": [{"name": n, "property_type": t, "is_required": True} for n, t in SCHEMA_PROPERTIES.items()],
            },
        )
        definition = post("event_definitions/", {"name": BATCH_EVENT_NAME})
        schema = post("event_schemas/", {"event_definition": definition["id"], "property_group_id": group["id"]})
        return schema
