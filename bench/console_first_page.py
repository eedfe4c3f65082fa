"""How long the console's events page takes to show its first page (issue 18).

    python -m bench.console_first_page --database sqlite --events 1000000

Loads N events into a fresh project with the store's batched insert (as
``bench.query_bench`` does: 30 days, 20 names), starts ``eventdock serve``,
signs in to the console in Chromium and times, from a full page load of
``/#/events`` (modules, ``/api/me``, the listing), until the first row is
shown; then the same with a name filter. A one-off measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.databases import admin_token, create_project, fresh_database
from bench.query_bench import load
from bench.servers import eventdock_server
from eventdock.core.events import now_ms
from eventdock.store.database import Database

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def first_row_seconds(page, url: str, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.wait_for_selector("table.events tbody tr")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        page.reload()
        page.wait_for_selector("table.events tbody tr")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database, Path(tmp)) as url:
        admin = admin_token(url)
        with eventdock_server(url, 1, Path(tmp)) as server:
            project = create_project(server.url, admin)
        db = Database(url)
        loaded = asyncio.run(load(db, project.id, args.events, now_ms()))
        asyncio.run(db.dispose())
        print(f"loaded {args.events:,} events in {loaded:.1f} s ({args.database})")
        with eventdock_server(url, 1, Path(tmp)) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(server.url + "/")
            page.get_by_label("API token").fill(project.token)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("text=Sign out")
            for label, hash_ in (("events page, no filter", "#/events"), ("events page, event=event_07", "#/events?event=event_07")):
                times = first_row_seconds(page, f"{server.url}/{hash_}", args.runs)
                print(f"{label}: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.runs} loads")
            browser.close()


if __name__ == "__main__":
    main()
