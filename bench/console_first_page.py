"""How long the console's events page takes to show its first page (issue 18).

    python -m bench.console_first_page --database sqlite --events 1000000

Loads N events into a fresh project with the store's batched insert (as
``bench.query_bench`` does: 30 days, 20 names), starts ``eventdock serve``,
signs in to the console in Chromium and times, from a full page load of
``/#/events`` (modules, ``/api/me``, the listing), until the first row is
shown, and the listing's API call alone; then the same with a name filter.
A one-off measurement, not a test; it needs the test extra (Playwright) and
Chromium (script/install-chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import text

from bench.databases import admin_token, create_project, fresh_database
from bench.query_bench import load
from bench.servers import eventdock_server
from eventdock.core.events import now_ms
from eventdock.store.database import Database

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


async def seed(url: str, project_id: str, count: int) -> float:
    """Load the events, then gather the planner's statistics, as a store that
    has been running has them (PostgreSQL's autovacuum would within a minute
    or so; SQLite's query planner needs none for these indexes)."""
    db = Database(url)
    try:
        seconds = await load(db, project_id, count, now_ms())
        if url.startswith("postgresql"):
            async with db.write() as conn:
                await conn.execute(text("ANALYZE events"))
        return seconds
    finally:
        await db.dispose()


def first_row_seconds(page: Page, url: str, runs: int) -> list[float]:
    page.goto(url)
    page.wait_for_selector("table.events tbody tr")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        page.reload()
        page.wait_for_selector("table.events tbody tr")
        times.append(time.perf_counter() - started)
    return times


def api_seconds(base: str, project_id: str, token: str, name: str | None, runs: int) -> list[float]:
    params = {"limit": "50", **({"event": name} if name else {})}
    times = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(runs):
            started = time.perf_counter()
            client.get(f"/api/projects/{project_id}/events", params=params).raise_for_status()
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
        loaded = asyncio.run(seed(url, project.id, args.events))
        print(f"loaded {args.events:,} events in {loaded:.1f} s ({args.database})")
        with eventdock_server(url, 1, Path(tmp)) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(server.url + "/")
            page.get_by_label("API token").fill(project.token)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("text=Sign out")
            for label, name in (("no filter", None), ("event=event_07", "event_07")):
                hash_ = f"#/events?event={name}" if name else "#/events"
                times = first_row_seconds(page, f"{server.url}/{hash_}", args.runs)
                print(f"events page, {label}: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.runs} loads")
                api = api_seconds(server.url, project.id, project.token, name, args.runs)
                print(f"  its API call alone: median {statistics.median(api) * 1000:.0f} ms, max {max(api) * 1000:.0f} ms")
            browser.close()


if __name__ == "__main__":
    main()
