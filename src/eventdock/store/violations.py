"""Quarantine and flag records, written in the writer's transaction (SPEC §3.4). Issue #3."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from eventdock.core.events import Event


async def record_violations(conn: AsyncConnection, events: list[Event], batch: Sequence[Any]) -> None:
    """Store each submission's ``records`` (violations); none exist yet."""
