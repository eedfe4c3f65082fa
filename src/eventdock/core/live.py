"""The live-event clock: start/end transitions and their system events (SPEC §6). Issue #4."""

from __future__ import annotations

import asyncio
from typing import Any


async def start_clock(services: Any) -> list[asyncio.Task[None]]:
    """Start the background clock task(s); returns them for shutdown."""
    return []
