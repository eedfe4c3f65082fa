"""The open-loop load generator: a fixed request rate, latency from the schedule.

wrk is closed-loop: a slow answer delays the next request, so a stalled
server is measured as "fewer requests" rather than "late requests"
(coordinated omission). SPEC §9's "p99 ≤ 20 ms at half the maximum rate"
needs the opposite: requests leave on a fixed schedule whatever the server
does, and each latency is counted from the moment the request *should*
have left. Debian ships no wrk2, so this is a lean client of its own:
uvloop, raw HTTP/1.1 keep-alive over a pool of sockets, httptools to find
the end of each response. It runs in its own process (``python -m
bench.openloop``), prints one JSON document, and at the rates it is asked
for (half the server's maximum) costs a fraction of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools
import uvloop


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.scheduled = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.pool.completed(self, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)

    def send(self, request: bytes, scheduled: float) -> None:
        self.scheduled = scheduled
        assert self.transport is not None
        self.transport.write(request)


@dataclass
class Result:
    rate: float
    sent: int
    completed: int
    duration_s: float
    latencies_ms: list[float]
    codes: dict[int, int]
    errors: int
    max_backlog: int

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def as_dict(self) -> dict[str, object]:
        return {
            "rate": self.rate,
            "sent": self.sent,
            "completed": self.completed,
            "achieved_per_s": self.completed / self.duration_s if self.duration_s else 0.0,
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "codes": {str(k): v for k, v in sorted(self.codes.items())},
            "errors": self.errors,
            "max_backlog": self.max_backlog,
        }


class _Pool:
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.idle: deque[_Connection] = deque()
        self.backlog: deque[float] = deque()  # scheduled times of requests not yet sent
        self.latencies: list[float] = []
        self.codes: dict[int, int] = {}
        self.errors = 0
        self.in_flight = 0
        self.max_backlog = 0
        self.drained = asyncio.Event()

    def submit(self, scheduled: float) -> None:
        if self.idle:
            self.in_flight += 1
            self.idle.popleft().send(self.request, scheduled)
        else:
            self.backlog.append(scheduled)
            self.max_backlog = max(self.max_backlog, len(self.backlog))

    def completed(self, conn: _Connection, status: int) -> None:
        self.latencies.append((time.perf_counter() - conn.scheduled) * 1000)
        self.codes[status] = self.codes.get(status, 0) + 1
        self.in_flight -= 1
        if self.backlog:
            self.in_flight += 1
            conn.send(self.request, self.backlog.popleft())
        else:
            self.idle.append(conn)
            if self.in_flight == 0:
                self.drained.set()

    def lost(self, conn: _Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        else:
            self.errors += 1
            self.in_flight -= 1
            if self.in_flight == 0:
                self.drained.set()


def build_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return host, port, "\r\n".join(lines).encode() + body


async def run(url: str, body: bytes, headers: dict[str, str], *, rate: float, duration_s: float, connections: int) -> Result:
    """Send ``rate`` requests/s for ``duration_s`` on a fixed schedule; wait for the answers."""
    host, port, request = build_request(url, body, headers)
    pool = _Pool(request)
    loop = asyncio.get_running_loop()
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _Connection(pool), host, port)
        pool.idle.append(conn)
    total = int(rate * duration_s)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        while sent < due:
            pool.submit(start + sent / rate)
            sent += 1
        # Sleep until the next request is due (the loop's timer is ~1 ms).
        await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    elapsed = time.perf_counter() - start
    if pool.in_flight or pool.backlog:
        pool.drained.clear()
        try:
            await asyncio.wait_for(pool.drained.wait(), timeout=30)
        except TimeoutError:
            pass
    for conn in list(pool.idle):
        if conn.transport is not None:
            conn.transport.close()
    return Result(
        rate=rate,
        sent=sent,
        completed=len(pool.latencies),
        duration_s=elapsed,
        latencies_ms=pool.latencies,
        codes=pool.codes,
        errors=pool.errors,
        max_backlog=pool.max_backlog,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fixed-rate (open-loop) HTTP POST load; prints one JSON document.")
    parser.add_argument("url")
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'; repeat for several")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    headers = dict(h.split(": ", 1) for h in args.header)
    with open(args.body_file, "rb") as f:
        body = f.read()
    result = uvloop.run(run(args.url, body, headers, rate=args.rate, duration_s=args.duration, connections=args.connections))
    json.dump(result.as_dict(), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
