"""Live events (SPEC §6): the state machine, and the clock that drives it.

The rules are pure functions of a ``LiveEvent`` and a moment (``now`` in
epoch ms): ``state`` and ``actions`` are computed at read time, never
stored; ``start``/``stop``/``edit_future`` return the changed event or raise
``TransitionRefused`` (422).

Start and end land in the project's event stream as the system events
``live_event_started`` / ``live_event_ended``. Each is written exactly once,
whatever the number of workers and nodes, by two mechanisms:

- its id is deterministic (``live_event_started:<live event id>``), so a
  second copy is dropped by the events table's primary key and the writer's
  de-duplication — a crash between writing and marking only means a retry;
- a short database lease (``claimed_until``, set under a row lock) makes one
  worker do the work, and the ``started_written``/``ended_written`` markers
  (set under the same lock, together with the repeat copy) end it.

``LiveClock`` polls for due transitions; tests replace its ``clock`` (any
object with ``now_ms()``) and ``await tick()`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from eventdock.config import Limits
from eventdock.core.errors import FieldError, InvalidInput, StoreUnavailable
from eventdock.core.events import Draft, Event, normalise, now_ms

if TYPE_CHECKING:
    from eventdock.core.pipeline import Pipeline

log = logging.getLogger("eventdock.live")

SOURCE = "live_event"
STARTED = "live_event_started"
ENDED = "live_event_ended"
START_MODES = ("manual", "clock")
END_MODES = ("duration", "scheduled")
STATES = ("future", "current", "on_demand", "past")
# How long a worker may hold a live event while writing its system events
# before another worker takes over (a crashed worker's lease runs out).
LEASE_MS = 10_000
BATCH = 100


@dataclass(frozen=True)
class LiveEvent:
    """One live event as stored; times and durations in ms."""

    id: str
    project_id: str
    name: str
    start_mode: str
    end_mode: str
    start_at: int
    end_at: int
    duration: int
    original_duration: int
    repeat: bool
    repeat_in: int | None
    extra_time: int
    feed_uuid: str
    settings: list[dict[str, Any]]
    armed: bool
    started_written: int | None
    ended_written: int | None
    due_at: int | None
    claimed_until: int | None
    repeat_of: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Plan:
    """The attributes a client chooses (validated by the dialect); ms."""

    name: str
    start_mode: str
    end_mode: str
    start_at: int
    duration: int
    repeat: bool
    repeat_in: int | None
    extra_time: int
    settings: list[dict[str, Any]]


class TransitionRefused(InvalidInput):
    """An action the event's state does not allow (422, on ``action``)."""

    status = 422
    code = "unprocessable"

    def __init__(self, message: str, attribute: str = "action") -> None:
        super().__init__(message, errors=[FieldError((attribute,), message)])


# -- the state machine ---------------------------------------------------------


def state(ev: LiveEvent, now: int) -> str:
    if not ev.armed or now < ev.start_at:
        return "future"
    return "current" if now < ev.end_at else "past"


def actions(ev: LiveEvent, now: int) -> list[str]:
    current = state(ev, now)
    if current == "future":
        return ["start"] if ev.start_mode == "manual" else []
    return ["stop"] if current == "current" else []


def due_at(ev: LiveEvent) -> int | None:
    """When the clock must next look at ``ev`` (None: nothing pending)."""
    if not ev.armed:
        return None
    if ev.started_written is None:
        return ev.start_at
    if ev.ended_written is None:
        return ev.end_at
    return None


def _settled(ev: LiveEvent, now: int) -> LiveEvent:
    return replace(ev, due_at=due_at(ev), updated_at=now)


def _planned(plan: Plan) -> dict[str, Any]:
    """The attributes a plan sets: on create, and on any edit while the event is future."""
    return {
        "name": plan.name,
        "start_mode": plan.start_mode,
        "end_mode": plan.end_mode,
        "start_at": plan.start_at,
        "end_at": plan.start_at + plan.duration,
        "duration": plan.duration,
        "original_duration": plan.duration,
        "repeat": plan.repeat,
        "repeat_in": plan.repeat_in,
        "extra_time": plan.extra_time,
        "settings": plan.settings,
        "armed": plan.start_mode == "clock",
    }


def create(project_id: str, plan: Plan, now: int) -> LiveEvent:
    ev = LiveEvent(
        id=str(uuid.uuid4()),
        project_id=project_id,
        **_planned(plan),
        feed_uuid=str(uuid.uuid4()),
        started_written=None,
        ended_written=None,
        due_at=None,
        claimed_until=None,
        repeat_of=None,
        created_at=now,
        updated_at=now,
    )
    return _settled(ev, now)


def edit_future(ev: LiveEvent, plan: Plan, now: int) -> LiveEvent:
    """Every attribute may change while the event is future."""
    if state(ev, now) != "future" or ev.started_written is not None:
        raise TransitionRefused("can't be changed once the event has started", "start_at")
    changed = replace(ev, **_planned(plan))
    return _settled(changed, now)


def edit_running(ev: LiveEvent, now: int, *, name: str | None, settings: list[dict[str, Any]] | None) -> LiveEvent:
    """After the start only the name and the settings may change."""
    changed = replace(ev, name=ev.name if name is None else name, settings=ev.settings if settings is None else settings)
    return replace(changed, updated_at=now)


def merge_settings(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Settings are replaced key by key; ``values: null`` removes a key."""
    merged = {s["key"]: s for s in old}
    for item in new:
        if item.get("values") is None:
            merged.pop(item["key"], None)
        else:
            merged[item["key"]] = item
    return list(merged.values())


def whole_second(ms: int) -> int:
    """Times the server chooses (a start, a stop) are whole seconds, as the
    seed's integer ``start_at``/``end_at`` are; the moment is at most 999 ms
    early, so the event is already current (or past) when the request returns."""
    return ms - ms % 1000


def start(ev: LiveEvent, now: int) -> LiveEvent:
    """The ``start`` action: a future manual event runs from now (this
    second) for its duration."""
    if ev.start_mode != "manual":
        raise TransitionRefused("can't start event with clock start mode")
    current = state(ev, now)
    if current != "future":
        raise TransitionRefused("can't start already finished event" if current == "past" else "can't start already started event")
    at = whole_second(now)
    return _settled(replace(ev, armed=True, start_at=at, end_at=at + ev.duration), now)


def stop(ev: LiveEvent, now: int) -> LiveEvent:
    """The ``stop`` action: a current event ends now; ``duration`` becomes
    the actual run time (whole seconds, at least 1), the plan stays in
    ``original_duration``."""
    current = state(ev, now)
    if current == "past":
        raise TransitionRefused("can't stop already finished event")
    if current == "future":
        raise TransitionRefused("can't stop event that has not started")
    at = max(whole_second(now), ev.start_at)
    ran = max(1, round((at - ev.start_at) / 1000)) * 1000
    return _settled(replace(ev, end_at=at, duration=ran), now)


def end_for_deletion(ev: LiveEvent, now: int) -> LiveEvent | None:
    """A deleted event that is running ends now, as by ``stop``, so that its
    end reaches the stream (SPEC §6: every start has its end); any other is
    left as it is (None)."""
    return stop(ev, now) if state(ev, now) == "current" else None


def repeat_copy(ev: LiveEvent, now: int) -> LiveEvent:
    """The next run of a repeating event: ``repeat_in`` minutes after its end,
    by the clock, for the planned duration. Runs that would already be over
    (the server was down for a long while) are skipped, never replayed."""
    assert ev.repeat_in is not None
    gap = ev.repeat_in * 60_000
    duration = ev.original_duration
    begins = ev.end_at + gap
    if begins + duration <= now:
        begins += ((now - begins - duration) // (gap + duration) + 1) * (gap + duration)
    plan = Plan(ev.name, "clock", ev.end_mode, begins, duration, True, ev.repeat_in, ev.extra_time, ev.settings)
    return replace(create(ev.project_id, plan, now), repeat_of=ev.id)


def due_transitions(ev: LiveEvent, now: int) -> list[str]:
    """The system events ``ev`` owes the stream at ``now``, in order."""
    owed = []
    if ev.armed and ev.started_written is None and ev.start_at <= now:
        owed.append(STARTED)
        if ev.ended_written is None and ev.end_at <= now:
            owed.append(ENDED)
    elif ev.armed and ev.ended_written is None and ev.end_at <= now:
        owed.append(ENDED)
    return owed


def mark_written(ev: LiveEvent, written: list[str], now: int) -> tuple[LiveEvent, list[LiveEvent]]:
    """Record what was written and release the lease; a repeating event that
    has just ended makes its copy in the same transaction."""
    started = ev.started_written if ev.started_written is not None or STARTED not in written else now
    ended = ev.ended_written if ev.ended_written is not None or ENDED not in written else now
    copies = []
    if ENDED in written and ev.ended_written is None and ev.repeat and ev.repeat_in:
        copies.append(repeat_copy(ev, now))
    return _settled(replace(ev, started_written=started, ended_written=ended, claimed_until=None), now), copies


def system_event(ev: LiveEvent, kind: str, limits: Limits, received_at_ms: int) -> Event:
    """The stream event of a transition, timed at the moment it happened."""
    draft = Draft(
        name=kind,
        properties={"live_event_id": ev.id, "name": ev.name, "start_mode": ev.start_mode},
        id=f"{kind}:{ev.id}",
        timestamp_ms=ev.start_at if kind == STARTED else ev.end_at,
    )
    return normalise(draft, project_id=ev.project_id, source=SOURCE, limits=limits, received_at_ms=received_at_ms)


# -- the clock -------------------------------------------------------------------


class Clock:
    """Wall time; tests put a fake with the same ``now_ms`` in its place."""

    def now_ms(self) -> int:
        return now_ms()


class LiveStore(Protocol):
    async def due(self, now: int, limit: int) -> list[tuple[str, str]]: ...

    async def change(self, live_id: str, project_id: str, decide: Any) -> LiveEvent | None: ...

    async def delete(self, live_id: str, project_id: str) -> bool: ...


class LiveClock:
    """Finds due transitions and writes their system events (one per process;
    the database decides which process does each piece of work)."""

    def __init__(self, store: LiveStore, pipeline: Pipeline, limits: Limits, *, interval: float = 0.5) -> None:
        self.store = store
        self.pipeline = pipeline
        self.limits = limits
        self.interval = interval
        self.clock: Any = Clock()
        # One tick or settle at a time in this process; the database lease
        # keeps processes apart.
        self._lock = asyncio.Lock()

    def now(self) -> int:
        return int(self.clock.now_ms())

    async def run(self) -> None:
        """The background loop: never dies, logs and goes on."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable:
                pass  # the store says so in the log, once per outage; the next tick catches up
            except Exception:  # noqa: BLE001 - a clock that stops is worse than a logged error
                log.exception("live-event clock tick failed")
            await asyncio.sleep(self.interval)

    async def tick(self) -> int:
        """Write every transition due now; returns how many system events were written."""
        async with self._lock:
            written = 0
            seen: set[str] = set()
            while True:
                due = await self.store.due(self.now(), BATCH)
                fresh = [d for d in due if d[1] not in seen]
                for project_id, live_id in fresh:
                    seen.add(live_id)
                    try:
                        written += await self._settle(project_id, live_id)
                    except StoreUnavailable:
                        raise  # no row is at fault: the next tick retries them all
                    except Exception:  # noqa: BLE001 - one bad row must not stall the others
                        log.exception("live event %s: writing its transition failed", live_id)
                if len(due) < BATCH or not fresh:
                    return written

    async def settle(self, project_id: str, live_id: str, *, attempts: int = 40) -> int:
        """Write what ``live_id`` owes now (after a start or stop action).

        If another process holds the lease, wait for it briefly: it may have
        claimed before our change and left part of the work to us. A failure
        (e.g. the write queue is full) is logged, not raised: the change is
        committed and the clock writes what is owed at its next poll.
        """
        for _ in range(attempts):
            try:
                async with self._lock:
                    written = await self._settle(project_id, live_id)
            except StoreUnavailable:
                return 0  # the store logs it; the clock retries
            except Exception:  # noqa: BLE001 - the clock retries; the caller's change stands
                log.exception("live event %s: writing its transition failed; the clock will retry", live_id)
                return 0
            if written >= 0:
                return written
            await asyncio.sleep(0.05)
        return 0

    async def retire(self, project_id: str, live_id: str) -> bool:
        """Delete a live event; False if there is none.

        A current event is ended first (under its row lock), and what it
        owes the stream — its end, and its start if no clock has written it
        yet — is committed before the row goes. The system events' ids are
        deterministic, so a clock of any process writing the same transition
        at the same moment, or a second DELETE, stores nothing twice. A
        failure to commit them (503) leaves the row, stopped: the clock
        writes its end, and the client's retry of the DELETE removes it.
        """
        now = self.now()
        ev = await self.store.change(live_id, project_id, lambda row: (end_for_deletion(row, now), []))
        if ev is None:
            return False
        owed = due_transitions(ev, now)
        if owed:
            await self.pipeline.commit(project_id, [system_event(ev, kind, self.limits, now) for kind in owed], SOURCE)
        return await self.store.delete(live_id, project_id)

    async def _settle(self, project_id: str, live_id: str) -> int:
        """-1 when another process holds the lease; else events written."""
        now = self.now()
        outcome = {"claimed": False, "leased": False}

        def claim(ev: LiveEvent) -> tuple[LiveEvent | None, list[LiveEvent]]:
            if ev.due_at is None or ev.due_at > now:
                return None, []
            if ev.claimed_until is not None and ev.claimed_until > now:
                outcome["leased"] = True
                return None, []
            outcome["claimed"] = True
            return replace(ev, claimed_until=now + LEASE_MS), []

        ev = await self.store.change(live_id, project_id, claim)
        if ev is None or not outcome["claimed"]:
            return -1 if outcome["leased"] else 0
        owed = due_transitions(ev, now)
        try:
            if owed:
                events = [system_event(ev, kind, self.limits, now) for kind in owed]
                await self.pipeline.commit(project_id, events, SOURCE)
        except BaseException:
            await self.store.change(live_id, project_id, lambda row: (replace(row, claimed_until=None), []))
            raise
        await self.store.change(live_id, project_id, lambda row: mark_written(row, owed, now))
        return len(owed)


def engine(services: Any) -> LiveClock:
    """The process's ``LiveClock`` on ``services.extras["live_clock"]`` (made on first use)."""
    found = services.extras.get("live_clock")
    if found is None:
        from eventdock.store.live_events import LiveEventStore

        interval = services.settings.live_clock_interval
        found = LiveClock(LiveEventStore(services.db), services.pipeline, services.settings.limits, interval=interval)
        services.extras["live_clock"] = found
    return found  # type: ignore[no-any-return]


async def start_clock(services: Any) -> list[asyncio.Task[None]]:
    """Start the background clock task(s); returns them for shutdown."""
    return [asyncio.create_task(engine(services).run(), name="eventdock-live-clock")]
