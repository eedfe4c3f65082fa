"""The closed-loop load generator: ``wrk`` (C, epoll, one thread).

The generator shares the machine's cores with the server, so it must cost
as little as possible per request: wrk sends a fixed request over
keep-alive connections as fast as the server answers, from C. Its Lua hooks
set the method, body and headers once, and ``done()`` prints one JSON line
(totals, latency percentiles in µs) that ``parse`` reads back. Counting
individual status codes needs the per-response ``response()`` hook, which
costs wrk time, so it is only switched on where the codes matter (overload).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MARK = "BENCHJSON "

_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = %(content_type)s
wrk.headers["Authorization"] = %(authorization)s
local f = assert(io.open(%(body_path)s, "rb"))
wrk.body = f:read("*a")
f:close()

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
%(count_codes)s
function done(summary, latency, requests)
  local codes = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if c then
      for k, v in pairs(c) do codes[k] = (codes[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(codes) do table.insert(parts, string.format('"%%d":%%d', k, v)) end
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"status_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d,"mean_us":%%f,"codes":{%%s}}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ",")))
end
"""

_COUNT_CODES = r"""
codes = {}
function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here (ASCII)


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    codes: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.requests - self.status_errors

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0


def parse(output: str) -> WrkResult:
    """The JSON line ``done()`` printed, as a result."""
    for line in output.splitlines():
        if line.startswith(MARK):
            doc = json.loads(line[len(MARK) :])
            return WrkResult(
                requests=doc["requests"],
                duration_s=doc["duration_us"] / 1e6,
                status_errors=doc["status_errors"],
                socket_errors=doc["connect_errors"] + doc["read_errors"] + doc["write_errors"] + doc["timeouts"],
                p50_ms=doc["p50_us"] / 1000,
                p99_ms=doc["p99_us"] / 1000,
                max_ms=doc["max_us"] / 1000,
                codes={int(k): v for k, v in doc["codes"].items()},
            )
    raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: run script/bench (it installs it with apt-get) or apt-get install -y wrk")
    return path


def run(
    url: str,
    body: bytes,
    *,
    token: str,
    duration_s: float,
    connections: int,
    content_type: str = "application/json",
    count_codes: bool = False,
    timeout_s: float = 10.0,
    threads: int = 1,
) -> WrkResult:
    """POST ``body`` to ``url`` over ``connections`` keep-alive connections for ``duration_s``."""
    with tempfile.TemporaryDirectory(prefix="eventdock-wrk-") as tmp:
        body_path = Path(tmp, "body")
        body_path.write_bytes(body)
        script = Path(tmp, "post.lua")
        script.write_text(
            _SCRIPT
            % {
                "content_type": _lua_string(content_type),
                "authorization": _lua_string(f"Bearer {token}"),
                "body_path": _lua_string(str(body_path)),
                "count_codes": _COUNT_CODES if count_codes else "",
                "mark": MARK,
            }
        )
        argv = [
            wrk_path(), "-t", str(threads), "-c", str(max(connections, threads)), "-d", f"{max(1, round(duration_s))}s",
            "--timeout", f"{timeout_s:g}s", "-s", str(script), url,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return parse(done.stdout)
