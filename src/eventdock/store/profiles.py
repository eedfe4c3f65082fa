"""Identity resolution inside the writer's transaction (SPEC §3.5). Issue #5."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.core.events import Event


async def resolve_profiles(conn: AsyncConnection, events: list[Event], batch: Sequence[Any]) -> None:
    """Set ``profile_id`` on each event from its identifiers (not yet built)."""
