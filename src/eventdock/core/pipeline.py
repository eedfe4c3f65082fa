"""The ingest pipeline every dialect shares (SPEC §3).

    drafts ──normalise──▶ events ──govern──▶ accepted / quarantined
                                               │
                            writer (one transaction: identity, rows,
                            definitions, violations) ──▶ acknowledged

A dialect calls ``Pipeline.ingest`` with what it parsed and gets back an
``IngestResult`` only after everything was committed; every failure is an
``EventdockError`` the dialect renders in its own envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from eventdock.config import Limits
from eventdock.core.errors import (
    EventdockError,
    EventTooLarge,
    FieldError,
    InvalidInput,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
)
from eventdock.core.events import Draft, Event, normalise, now_ms
from eventdock.core.governance import Governance, Verdict
from eventdock.core.ratelimit import RateLimiter
from eventdock.core.suppression import Suppressions


class Committer(Protocol):
    async def submit(self, events: list[Event], records: list[Any] | None = None) -> None: ...

    def ensure_room(self) -> None: ...


class IngestResult(msgspec.Struct):
    events: list[Event]  # normalised, in request order (stored or deduplicated)
    verdict: Verdict
    stored: int = 0  # events newly stored by this request

    @property
    def duplicates(self) -> int:
        """Events acknowledged but not stored because their id was stored
        already: by an earlier request (a retry), or earlier in this request
        (each repeat of an id counts). Quarantined events are not among them."""
        return len(self.events) - self.stored - self.verdict.quarantined

    @property
    def rejected(self) -> dict[int, list[FieldError]]:
        """Per quarantined event (index in the request): the errors that rejected it."""
        return self.verdict.rejected

    @property
    def quarantined(self) -> int:
        return self.verdict.quarantined


IngestListener = Callable[[str, str, IngestResult], None]
# (project, source, reason, events): events the pipeline refused, by reason.
RejectListener = Callable[[str, str, str, int], None]

_REJECT_REASONS: tuple[tuple[type[EventdockError], str], ...] = (
    (RateLimited, "rate_limited"),
    (Unavailable, "unavailable"),
    (PayloadTooLarge, "too_large"),
    (InvalidInput, "invalid"),
)


class Pipeline:
    def __init__(
        self,
        *,
        committer: Committer,
        limits: Limits,
        rate_limiter: RateLimiter,
        governance: Governance | None = None,
        on_ingest: IngestListener | None = None,
        on_reject: RejectListener | None = None,
        suppressions: Suppressions | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.committer = committer
        self.limits = limits
        self.rate_limiter = rate_limiter
        self.governance = governance or Governance()
        self.on_ingest = on_ingest
        self.on_reject = on_reject
        self.suppressions = suppressions or Suppressions()
        self.clock = clock

    def ensure_room(self) -> None:
        """Refuse (503) if the writer's queue is full; cheap, so callable before
        a request is read and again before it is parsed (``read_ingest_body``).

        Under overload this keeps memory bounded by the queue, not by what
        every waiting client sends, and makes the refusal cheap.
        """
        self.committer.ensure_room()

    def check_count(self, count: int) -> None:
        """413 for more events than one request may carry (callable before parsing them)."""
        if count > self.limits.max_events_per_request:
            raise PayloadTooLarge(f"More than {self.limits.max_events_per_request} events in one request.")

    def normalise(self, project_id: str, drafts: list[Draft], source: str) -> list[Event]:
        """Normalise all drafts; one error per bad event, all or none."""
        self.check_count(len(drafts))
        received = self.clock()
        events: list[Event] = []
        errors: list[FieldError] = []
        limits = self.limits
        for draft in drafts:
            try:
                events.append(normalise(draft, project_id=project_id, source=source, limits=limits, received_at_ms=received))
            except EventTooLarge as exc:
                errors.extend(exc.errors)
        if errors:
            raise EventTooLarge(errors=errors)
        return events

    async def ingest(self, project_id: str, drafts: list[Draft], source: str) -> IngestResult:
        """Normalise, govern and durably store one request's events.

        ``drafts`` is emptied once normalised, so that while the request waits
        for its commit it holds its events' JSON and not a parsed copy too
        (a caller keeps no other reference to the parsed request).
        """
        if not drafts:
            raise InvalidInput("No events in the request.")
        count = len(drafts)  # drafts is emptied before the commit, which may still fail
        try:
            self.rate_limiter.take(project_id, len(drafts))
            events = self.normalise(project_id, drafts, source)
            drafts.clear()
            return await self.commit(project_id, events, source)
        except EventdockError as exc:
            if self.on_reject is not None:
                reason = next((name for kind, name in _REJECT_REASONS if isinstance(exc, kind)), exc.code)
                self.on_reject(project_id, source, reason, count)
            raise

    async def commit(self, project_id: str, events: list[Event], source: str) -> IngestResult:
        """Govern and durably store already-normalised events.

        Once governance has judged them, the events let go of their parsed
        properties: what waits in the writer's queue is each event's JSON
        (``properties_json``), which is all the writer stores. Under load the
        queue holds thousands of events, and their parsed objects were more
        than half of what it held
        (docs/engineering/2026-11-24-waiting-request-and-commit-time.md).

        Events that carry an identifier of a person erased with suppression
        (SPEC §11) are dropped before governance: neither stored nor
        quarantined, only counted (``on_reject``, reason ``suppressed``).
        They stay in the result, not stored, so a dialect answers as for a
        retry.
        """
        judged, positions = events, None
        if project_id in self.suppressions.projects:  # the usual project has none: one lookup
            judged, positions = self._unsuppressed(project_id, events, source)
        verdict = await self.governance.evaluate(judged)
        if positions is not None and verdict.rejected:  # governance counted the kept events only
            verdict.rejected = {positions[i]: errors for i, errors in verdict.rejected.items()}
        for e in events:
            e.properties = None
        await self.committer.submit(verdict.accepted, verdict.records)
        # The writer marked each event it stored (``Event.stored``): counted
        # once here for the dialects and the metrics, no query.
        result = IngestResult(events=events, verdict=verdict, stored=sum(1 for e in verdict.accepted if e.stored))
        if self.on_ingest is not None:
            self.on_ingest(project_id, source, result)
        return result

    def _unsuppressed(self, project_id: str, events: list[Event], source: str) -> tuple[list[Event], list[int] | None]:
        """The events to judge and store, and their positions in ``events`` (None: all of them)."""
        positions = self.suppressions.kept_positions(project_id, events)
        if positions is None:
            return events, None
        if self.on_reject is not None:
            self.on_reject(project_id, source, "suppressed", len(events) - len(positions))
        return [events[i] for i in positions], positions
