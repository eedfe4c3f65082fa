"""Per-project ingest rate limit: a token bucket (SPEC §3.6).

Buckets live in each worker process, so with N workers the configured rate
is split evenly between them (``share``). Off (rate 0) by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from eventdock.core.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float = 0.0, burst: float = 0.0, *, share: int = 1) -> None:
        self.default = (rate, burst)
        self.share = max(1, share)
        self.overrides: dict[str, tuple[float, float]] = {}
        self._buckets: dict[str, _Bucket] = {}

    def configure(self, project_id: str, rate: float | None, burst: float | None) -> None:
        """Per-project setting; None falls back to the global one."""
        if rate is None:
            self.overrides.pop(project_id, None)
        else:
            self.overrides[project_id] = (rate, burst if burst is not None else rate)
        self._buckets.pop(project_id, None)

    def take(self, project_id: str, count: int) -> None:
        rate, burst = self.overrides.get(project_id, self.default)
        if rate <= 0:
            return
        rate /= self.share
        burst = max(burst / self.share, 1.0) if burst > 0 else rate
        now = time.monotonic()
        bucket = self._buckets.get(project_id)
        if bucket is None:
            bucket = self._buckets[project_id] = _Bucket(tokens=burst, updated=now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= count:
            bucket.tokens -= count
            return
        # A request larger than the burst can never pass; say how long a
        # request of the burst's size would wait, so the client backs off.
        missing = min(count, burst) - bucket.tokens
        raise RateLimited(f"Ingest rate limit of {rate * self.share:g} events/s exceeded for this project.", retry_after=max(missing / rate, 0.001))
