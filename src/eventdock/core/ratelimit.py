"""Per-project ingest rate limit: a token bucket (SPEC §3.6).

A request of ``n`` events takes ``n`` tokens. One larger than the burst
could never find that many; it is admitted once the bucket is full and
leaves it in debt (negative), which the rate pays back before anything else
is admitted — so over time the rate holds, and a client that sends fixed
batches larger than the burst (DSOA sends 400 events a flush) gets through
instead of looping on 429. ``Retry-After`` is the time after which the
bucket holds what the same request needs (``min(n, burst)``), rounded up to
whole seconds: obeying it, the request is admitted, unless other requests
of the project spent the tokens meanwhile.

Buckets live in each worker process, so with N workers the configured rate
is split evenly between them (``share``). Off (rate 0) by default.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from eventdock.core.errors import RateLimited, StoreUnavailable

log = logging.getLogger("eventdock.ratelimit")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float = 0.0, burst: float = 0.0, *, share: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = (rate, burst)
        self.share = max(1, share)
        self.clock = clock
        self.overrides: dict[str, tuple[float, float]] = {}
        self._buckets: dict[str, _Bucket] = {}

    def configure(self, project_id: str, rate: float | None, burst: float | None) -> None:
        """Per-project setting; None falls back to the global one.

        Setting what is already set keeps the bucket: the periodic refresh
        must not hand a throttled project a fresh burst.
        """
        current = self.overrides.get(project_id)
        if rate is None and burst is None:
            self.overrides.pop(project_id, None)
        elif rate is None:
            self.overrides[project_id] = (self.default[0], burst)  # type: ignore[assignment]
        else:
            self.overrides[project_id] = (rate, burst if burst is not None else rate)
        if self.overrides.get(project_id) != current:
            self._buckets.pop(project_id, None)

    def take(self, project_id: str, count: int) -> None:
        rate, burst = self.overrides.get(project_id, self.default)
        if rate <= 0:
            return
        rate /= self.share
        burst = max(burst / self.share, 1.0) if burst > 0 else rate
        now = self.clock()
        bucket = self._buckets.get(project_id)
        if bucket is None:
            bucket = self._buckets[project_id] = _Bucket(tokens=burst, updated=now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        # More than the burst: what a full bucket holds is enough, and the rest becomes debt.
        needed = min(count, burst)
        if bucket.tokens >= needed - 1e-9:  # float sums of the refill must not cost a second
            bucket.tokens -= count
            return
        # Whole seconds (at least one), rounded up: after them the bucket holds ``needed``.
        wait = math.ceil((needed - bucket.tokens) / rate)
        raise RateLimited(f"Ingest rate limit of {rate * self.share:g} events/s exceeded for this project.", retry_after=wait)


# Per project: (events/s, burst), None where the global setting applies.
ProjectLimits = tuple[float | None, float | None]
LimitsLoader = Callable[[Sequence[str]], Awaitable[dict[str, ProjectLimits]]]


class ProjectLimitsSync:
    """Keeps a ``RateLimiter``'s per-project settings in step with the store.

    Each worker process has its own limiter; the setting lives in the
    database (``PATCH /api/projects/{id}``). A project's setting is loaded
    the first time this process sees the project and again once it is older
    than ``refresh_seconds``, so every worker applies a change within that
    time without a query per request.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        load: LimitsLoader,
        *,
        refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.load = load
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._loaded_at: dict[str, float] = {}

    async def ensure(self, project_id: str) -> None:
        now = self.clock()
        loaded = self._loaded_at.get(project_id)
        if loaded is not None and now - loaded < self.refresh_seconds:
            return
        # Claimed before the query, so concurrent requests load it once.
        self._loaded_at[project_id] = now
        try:
            found = await self.load([project_id])
        except Exception as exc:  # noqa: BLE001 - keep the last known setting, retry later
            if not isinstance(exc, StoreUnavailable):  # that one the store logs, once
                log.warning("could not load the rate limit of project %s", project_id, exc_info=True)
            if loaded is None:
                self._loaded_at.pop(project_id, None)
            return
        rate, burst = found.get(project_id, (None, None))
        self.limiter.configure(project_id, rate, burst)

    def apply(self, project_id: str, rate: float | None, burst: float | None) -> None:
        """A change made by this process: applied here at once."""
        self.limiter.configure(project_id, rate, burst)
        self._loaded_at[project_id] = self.clock()
