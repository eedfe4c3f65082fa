"""Prometheus metrics (served at ``/metrics``).

With several worker processes the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` so
that any worker answers for all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

EVENTS_INGESTED = Counter("eventdock_events_ingested_total", "Events newly stored.", ["project", "source"])
EVENTS_REJECTED = Counter("eventdock_events_rejected_total", "Events refused by the pipeline (reason: invalid, too_large, rate_limited, unavailable), quarantined (schema) or dropped for a suppressed identifier (suppressed).", ["project", "source", "reason"])
REQUEST_LATENCY = Histogram(
    "eventdock_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITER_QUEUE = Gauge("eventdock_writer_queue_events", "Events waiting for the writer.", multiprocess_mode="livesum")
WRITER_BATCH_EVENTS = Histogram(
    "eventdock_writer_batch_events", "Events per write transaction.", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
)
WRITER_BATCH_REQUESTS = Histogram(
    "eventdock_writer_batch_requests", "Requests per write transaction.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
)
WRITER_COMMIT_SECONDS = Histogram(
    "eventdock_writer_commit_seconds", "Duration of one write transaction.", buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1)
)


def observe_batch(requests: int, events: int, seconds: float) -> None:
    WRITER_BATCH_REQUESTS.observe(requests)
    WRITER_BATCH_EVENTS.observe(events)
    WRITER_COMMIT_SECONDS.observe(seconds)


def render() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# -- data lifecycle (SPEC §11) ----------------------------------------------
LIFECYCLE_REMOVED = Counter(
    "eventdock_lifecycle_removed_total", "Rows removed by the background remover (reason: retention, erasure).", ["reason", "table"]
)
RETENTION_LAST_RUN = Gauge(
    "eventdock_retention_last_run_timestamp_seconds", "When the remover last finished a run (unix time).", multiprocess_mode="max"
)
RETENTION_LAG = Gauge(
    "eventdock_retention_lag_seconds",
    "How far the oldest event or violation still stored is past its project's retention window (0: none is).",
    multiprocess_mode="mostrecent",
)


class LifecycleMetrics:
    """The remover's ``Observer`` (``store/lifecycle.py``)."""

    def removed(self, reason: str, table: str, rows: int) -> None:
        LIFECYCLE_REMOVED.labels(reason, table).inc(rows)

    def ran(self, finished_at_ms: int, lag_seconds: float) -> None:
        RETENTION_LAST_RUN.set(finished_at_ms / 1000)
        RETENTION_LAG.set(lag_seconds)
