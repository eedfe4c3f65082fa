"""Schema governance (SPEC §3.4): decides, per event, store / flag / quarantine.

This is the seam the pipeline calls; the rules live behind it. Until a
project has schemas, every event is simply accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventdock.core.errors import FieldError
from eventdock.core.events import Event


@dataclass
class Verdict:
    """What governance decided for one request's events."""

    accepted: list[Event]
    # Records the writer stores in the same transaction (violations).
    records: list[Any] = field(default_factory=list)
    # Per rejected event (index in the request): the errors that rejected it.
    rejected: dict[int, list[FieldError]] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return len(self.rejected)


class Governance:
    """The null governance: accepts everything. Replaced when schemas exist."""

    async def evaluate(self, events: list[Event]) -> Verdict:
        return Verdict(accepted=events)
