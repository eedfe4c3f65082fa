"""The web console in a real browser (SPEC §10, issue 18), and /docs and /redoc offline (SPEC §1).

Playwright drives Debian's Chromium (``script/install-chromium``) against a
real ``eventdock serve`` process on each back end; one server and one browser
per module, a fresh browser context (so a fresh sessionStorage) per test.
Locally the module is skipped when Chromium is missing; under ``CI=true`` a
missing Chromium fails. ``EVENTDOCK_SCREENSHOTS=docs/images`` writes
screenshots of the main pages there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import drop_database, fresh_database_url
from tests.support.server import Server

CHROMIUM = os.environ.get("EVENTDOCK_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("EVENTDOCK_SCREENSHOTS")
HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned='img'\">",
    "javascript:window.__pwned='href'",
    '"><svg onload="window.__pwned=\'svg\'">',
]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"Chromium is missing at {CHROMIUM}: script/install-chromium installs it", pytrace=False)
    pytest.skip(f"Chromium is missing at {CHROMIUM} (script/install-chromium)", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright  # noqa: E402


@dataclass
class Console:
    server: Server
    project_id: str
    token: str  # a `*` key of the project
    admin_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def send(self, name: str, **fields: Any) -> dict[str, Any]:
        r = self.http("POST", f"/v1/projects/{self.project_id}/events", json={"nameEvent": name, **fields})
        assert r.status_code == 200, r.text
        return r.json()["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def console(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    url = fresh_database_url(backend, tmp_path_factory.mktemp("console"), f"console_{os.getpid()}")
    boot = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, check=True)
    admin = json.loads(boot.stdout)["key"]["token"]
    server = Server(url).start()
    try:
        r = httpx.post(server.url + "/api/projects", json={"name": "Shop"}, headers={"Authorization": f"Bearer {admin}"})
        project_id = r.json()["id"]
        r = httpx.post(
            server.url + f"/api/projects/{project_id}/keys", json={"name": "console", "scopes": ["*"]}, headers={"Authorization": f"Bearer {admin}"}
        )
        yield Console(server, project_id, r.json()["token"], admin)
    finally:
        server.kill()
        drop_database(url)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """A fresh tab whose every request must go to the console's own server."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    foreign: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(console.url + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_here)
    # Any alert/confirm/prompt would be a probe that ran: fail loudly.
    dialogs: list[str] = []
    ctx.on("page", lambda p: p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss())))
    ctx.set_default_timeout(5000)
    yield ctx
    ctx.close()
    assert not foreign, f"requests to other origins: {foreign}"
    assert not dialogs, f"dialogs opened: {dialogs}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page: Page, console: Console, token: str | None = None) -> None:
    page.goto(console.url + "/")
    page.get_by_label("API token").fill(token or console.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def go(page: Page, screen: str) -> None:
    page.get_by_role("navigation", name="Screens").get_by_role("link", name=screen, exact=True).click()
    expect(page.get_by_role("heading", name=screen, level=1)).to_be_visible()


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{name}.png"), full_page=True)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def test_sign_in_shows_the_overview_and_sign_out_forgets_the_token(page: Page, console: Console) -> None:
    page.goto(console.url + "/")
    page.get_by_label("API token").fill("edk_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid or revoked API key.")  # the API's own message

    console.send("page_view")
    sign_in(page, console)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("Project: Shop")).to_be_visible()
    expect(page.locator(".chart svg rect.bar").first).to_be_attached()
    expect(page.get_by_role("link", name="page_view")).to_be_visible()  # top events
    assert page.evaluate("sessionStorage.getItem('eventdock.token')") == console.token
    assert page.context.cookies() == [] and page.evaluate("localStorage.length") == 0
    assert console.token not in page.url

    # Keyboard only: Tab reaches the navigation, Enter follows it.
    page.locator("body").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Events":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Events", level=1)).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_label("API token")).to_be_visible()
    assert not page.errors  # type: ignore[attr-defined]


def test_a_key_sees_only_the_screens_its_scopes_allow(page: Page, console: Console) -> None:
    r = console.http("POST", f"/api/projects/{console.project_id}/keys", json={"name": "reader", "scopes": ["events:read"]})
    sign_in(page, console, r.json()["token"])
    nav = page.get_by_role("navigation", name="Screens")
    expect(nav.get_by_role("link")).to_have_text(["Overview", "Events"])


def test_an_ingested_event_appears_in_the_table_and_in_the_live_tail(page: Page, console: Console) -> None:
    name = unique("checkout")
    sign_in(page, console)
    go(page, "Events")
    page.get_by_role("button", name="Live tail").click()
    expect(page.locator(".live-status .badge")).to_have_text("live")
    sent = time.monotonic()
    console.send(name, attributes={"plan": "pro"})
    expect(page.get_by_role("button", name=name)).to_be_visible(timeout=2000)
    assert time.monotonic() - sent < 2

    page.get_by_role("button", name="Stored").click()
    expect(page.get_by_role("button", name="Stored")).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Event name").fill(name)
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{console.url}/#/events?event={name}")  # the filter is in the URL
    page.get_by_role("button", name=name).click()
    expect(page.locator("pre.json")).to_contain_text('"plan": "pro"')
    shoot(page, "events")

    # Cursor pages of 50, the cursor in the URL.
    many = unique("scroll")
    assert console.http("POST", "/platform/ingest/v1/events", json=[{"event.name": many, "n": i} for i in range(60)]).status_code == 202
    page.goto(f"{console.url}/#/events?event={many}")
    rows = page.locator("table.events tbody tr")
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(10)
    assert "cursor=" in page.url
    expect(page.get_by_role("button", name="Older")).to_have_count(0)
    page.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(50)


def test_a_rule_breaking_event_is_quarantined_then_replayed_once_the_rule_is_relaxed(page: Page, console: Console) -> None:
    event, group = unique("signup"), unique("Plans")
    console.send(event, attributes={"plan": "free"})  # the definition exists from the first event on
    sign_in(page, console)
    go(page, "Data management")
    page.get_by_role("link", name="Property groups").click()
    page.get_by_role("button", name="New property group").click()
    form = page.get_by_role("form", name="New property group")
    form.get_by_label("Group name").fill(group)
    form.get_by_label("Property 1 name").fill("plan")
    form.get_by_label("Required").check()
    form.get_by_label("Validation rules (JSON)").fill('{"minimum": 1}')  # not a rule for a String
    form.get_by_role("button", name="Create group").click()
    api_says = console.http(
        "POST",
        f"/api/projects/{console.project_id}/schema_property_groups/",
        json={"name": unique("probe"), "properties": [{"name": "plan", "property_type": "String", "validation_rules": {"minimum": 1}}]},
    ).json()
    assert api_says["attr"] == "properties__0__validation_rules"
    rules_field = form.locator("label.field", has=page.get_by_label("Validation rules (JSON)"))
    expect(rules_field.locator(".field-error")).to_have_text(api_says["detail"])  # beside the field, in the API's words
    form.get_by_label("Validation rules (JSON)").fill('{"enum": ["free"]}')
    form.get_by_role("button", name="Create group").click()
    card = page.locator("article.card", has=page.get_by_role("heading", name=group))
    expect(card.get_by_role("cell", name='{"enum":["free"]}')).to_be_visible()
    shoot(page, "property-groups")

    page.get_by_role("link", name="Event definitions").click()
    page.get_by_label("Search event names").fill(event)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=event).click()
    expect(page.get_by_role("heading", name=event, level=2)).to_be_visible()
    page.get_by_label(f"Enforcement mode of {event}").select_option("reject")
    page.get_by_label("Attach property group").select_option(label=group)
    page.get_by_role("button", name="Attach").click()
    expect(page.get_by_text("plan: String (required)")).to_be_visible()
    expect(page.locator("pre.code")).to_contain_text("plan")  # the generated TypeScript
    page.get_by_role("button", name="Python").click()
    expect(page.locator("pre.code")).to_contain_text("TypedDict")

    deadline = time.monotonic() + 5
    while True:  # the schema change reaches the pipeline within 2 s
        r = console.http("POST", f"/v1/projects/{console.project_id}/events", json={"nameEvent": event, "attributes": {"plan": "pro"}})
        if r.status_code == 422 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.status_code == 422, r.text

    go(page, "Violations")
    page.get_by_label("Event name").fill(event)
    page.get_by_role("button", name="Apply").click()
    violation = page.locator("article.violation").filter(has_text="rejected").first
    expect(violation).to_contain_text("plan")
    shoot(page, "violations")
    violation.get_by_role("button", name="Replay").click()
    expect(violation.get_by_role("alert")).to_contain_text("must be one of")  # the API's answer: the rule still holds

    go(page, "Data management")
    page.get_by_role("link", name="Property groups").click()
    card.get_by_role("button", name="Edit").click()
    page.get_by_role("form", name=f"Edit {group}").get_by_label("Validation rules (JSON)").fill("")
    page.get_by_role("button", name="Save group").click()
    expect(card.get_by_role("cell", name="—")).to_be_visible()

    go(page, "Violations")
    page.get_by_label("Event name").fill(event)
    page.get_by_role("button", name="Apply").click()
    violation.get_by_role("button", name="Replay").click()
    expect(violation.locator(".badge.replayed")).to_be_visible()
    stored = console.http("GET", f"/api/projects/{console.project_id}/events", params={"event": event}).json()["results"]
    assert sorted(e["properties"]["plan"] for e in stored) == ["free", "pro"]


def test_create_start_and_stop_a_live_event(page: Page, console: Console) -> None:
    name = unique("Final")
    sign_in(page, console)
    go(page, "Live events")
    page.get_by_role("button", name="New live event").click()
    form = page.get_by_role("form", name="New live event")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Duration (minutes)").fill("0")
    form.get_by_role("button", name="Create").click()
    expect(form.locator(".field-error")).to_contain_text("greater than 0")  # JSON:API pointer → the field
    form.get_by_label("Duration (minutes)").fill("90")
    form.get_by_role("button", name="Create").click()
    upcoming = page.get_by_role("region", name="Coming up")
    row = page.locator("li.live-row", has_text=name)
    expect(upcoming.locator("li.live-row", has_text=name)).to_be_visible()

    row.get_by_role("button", name="Edit").click()
    page.get_by_role("form", name=f"Edit {name}").get_by_label("Name").fill(name + " (renamed)")
    page.get_by_role("button", name="Save").click()
    expect(upcoming.locator("li.live-row", has_text=name + " (renamed)")).to_be_visible()

    row.get_by_role("button", name="Start").click()
    expect(page.get_by_role("region", name="Live now").locator("li.live-row", has_text=name)).to_be_visible()
    shoot(page, "live-events")
    go(page, "Overview")  # live now, on the overview too
    expect(page.locator(".panel", has=page.get_by_role("heading", name="Live now and next")).get_by_text(name)).to_be_visible()
    shoot(page, "overview")  # with the events, violations and live event of the tests before
    go(page, "Live events")
    row.get_by_role("button", name="Stats").click()
    expect(row).to_contain_text("events ingested during it")
    row.get_by_role("button", name="Stop").click()
    finished = page.get_by_role("region", name="Finished").locator("li.live-row", has_text=name)
    expect(finished).to_be_visible()
    finished.get_by_role("button", name="Delete").click()
    finished.get_by_role("button", name="Confirm: delete").click()
    expect(page.locator("li.live-row", has_text=name)).to_have_count(0)


def test_find_a_profile_by_email(page: Page, console: Console) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    console.send("signup", email=email.upper(), firstName="Ada")
    console.send("login", email=email, phone="+44 20 7946 0000")
    sign_in(page, console)
    go(page, "Profiles")
    page.get_by_label("Identifier").select_option("email")
    page.get_by_label("Value").fill(email)
    page.get_by_role("button", name="Find").click()
    profile = page.locator("article.profile")
    expect(profile).to_contain_text(email)
    expect(profile).to_contain_text("Ada")
    expect(profile.get_by_role("button", name="login")).to_be_visible()
    expect(profile.get_by_role("button", name="signup")).to_be_visible()
    page.get_by_label("Value").fill("nobody@example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_text("No profile has that identifier.")).to_be_visible()


def test_export_a_person_then_erase_them_with_suppression(page: Page, console: Console) -> None:
    email, event = f"{uuid.uuid4().hex[:8]}@example.com", unique("bought")
    console.send("signup", email=email, firstName="Grace")
    console.send(event, email=email, attributes={"sku": "A-1"})
    sign_in(page, console)
    go(page, "Profiles")
    page.get_by_label("Value").fill(email)
    page.get_by_role("button", name="Find").click()
    card = page.locator("article.profile")
    expect(card.get_by_role("button", name=event)).to_be_visible()
    profile_id = card.locator("h2 code").inner_text()

    with page.expect_download() as downloading:
        card.get_by_role("button", name="Export data").click()
    download = downloading.value
    assert download.url.startswith("blob:") and console.token not in download.url  # fetched with the header, saved from a Blob
    assert download.suggested_filename == f"profile-{profile_id}.ndjson"
    lines = [json.loads(line) for line in Path(download.path()).read_text().splitlines()]
    assert lines[0]["id"] == profile_id and email in lines[0]["identifiers"]["email"]
    assert sorted(e["nameEvent"] for e in lines[1:]) == sorted(["signup", event])

    card.get_by_label("Suppress future events").check()
    card.get_by_role("button", name="Erase this person").click()
    card.get_by_role("button", name="Confirm: erase their profile and events for good").click()
    status = card.get_by_role("status")
    expect(status.locator(".badge")).to_have_text("completed", timeout=15000)
    expect(status).to_contain_text("2 events, 1 profile, 0 violations erased")
    expect(status).to_contain_text("Later events carrying this person's identifiers are dropped.")
    expect(card.get_by_role("button", name=event)).to_have_count(0)

    page.get_by_role("button", name="Find").click()
    expect(page.get_by_text("No profile has that identifier.")).to_be_visible()
    assert console.http("GET", f"/api/projects/{console.project_id}/events", params={"event": event}).json()["results"] == []
    assert console.http("GET", f"/v1/projects/{console.project_id}/profiles/{profile_id}").status_code == 404
    console.send(event, email=email)  # suppressed: acknowledged, never stored
    assert console.http("GET", f"/api/projects/{console.project_id}/events", params={"event": event}).json()["results"] == []
    assert not page.errors  # type: ignore[attr-defined]


def test_a_key_without_profiles_write_is_not_offered_erasure(page: Page, console: Console) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    console.send("signup", email=email)
    r = console.http("POST", f"/api/projects/{console.project_id}/keys", json={"name": "support", "scopes": ["profiles:read"]})
    sign_in(page, console, r.json()["token"])
    page.goto(f"{console.url}/#/profiles?by=email&value={email}")
    card = page.locator("article.profile")
    expect(card.get_by_role("button", name="Export data")).to_be_visible()
    expect(card.get_by_role("button", name="Erase this person")).to_have_count(0)


def test_create_a_key_see_its_token_once_and_revoke_it(page: Page, console: Console) -> None:
    name = unique("website")
    sign_in(page, console)
    go(page, "Keys & projects")
    form = page.get_by_role("form", name="New API key")
    form.get_by_label("Key name").fill(name)
    form.get_by_label("events:read", exact=True).check()
    form.get_by_role("button", name="Create key").click()
    token = form.locator(".token pre").inner_text().strip()
    assert token.startswith("edk_")
    assert console.http("GET", f"/api/projects/{console.project_id}/events", token=token).status_code == 200
    shoot(page, "keys")
    form.get_by_role("button", name="I have copied it").click()
    expect(form.locator(".token")).to_have_count(0)
    row = page.get_by_role("row", name=name)
    row.get_by_role("button", name=f"Revoke {name}").click()
    row.get_by_role("button", name="Revoke: it stops working").click()
    expect(row.locator(".badge.revoked")).to_be_visible()
    assert console.http("GET", f"/api/projects/{console.project_id}/events", token=token).status_code == 401
    assert token not in page.content()  # shown once: gone from the page


def test_an_admin_key_creates_a_project_and_switches_to_it(page: Page, console: Console) -> None:
    name = unique("Project")
    sign_in(page, console, console.admin_token)
    go(page, "Keys & projects")
    page.get_by_label("New project name").fill(name)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    page.get_by_label("Project", exact=True).select_option(label=name)
    expect(page.get_by_role("heading", name="API keys of this project")).to_be_visible()
    expect(page.locator("table").first.locator("tbody tr")).to_have_count(0)
    go(page, "Overview")  # an empty project says what to do next
    project_id = page.evaluate("sessionStorage.getItem('eventdock.project')")
    expect(page.locator(".empty pre")).to_contain_text(f"{console.url}/v1/projects/{project_id}/events")
    go(page, "Events")
    expect(page.get_by_text("No events stored yet.")).to_be_visible()


def test_an_admin_sets_a_projects_retention_and_sees_the_apis_error_beside_the_field(page: Page, console: Console) -> None:
    sign_in(page, console, console.admin_token)
    go(page, "Keys & projects")
    field = page.get_by_label("Retention of Shop (days)")
    row = page.get_by_role("row", name="Shop")
    expect(row).to_contain_text("server default")
    field.fill("0")
    row.get_by_role("button", name="Save").click()
    refused = console.http("PATCH", f"/api/projects/{console.project_id}", token=console.admin_token, json={"retention_days": 0}).json()
    assert refused["attr"] == "retention_days"
    expect(row.locator("label.field .field-error")).to_have_text(refused["detail"])

    field.fill("45")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".field-error")).to_have_count(0)
    expect(row.locator(".hint")).to_have_text("45 days")
    page.reload()
    go(page, "Keys & projects")
    expect(page.get_by_label("Retention of Shop (days)")).to_have_value("45")
    assert console.http("GET", f"/api/projects/{console.project_id}", token=console.admin_token).json()["retention_days"] == 45

    page.get_by_role("row", name="Shop").get_by_role("button", name="Use server default").click()
    expect(page.get_by_label("Retention of Shop (days)")).to_have_value("")
    expect(page.get_by_role("row", name="Shop").locator(".hint")).to_have_text("server default")
    assert console.http("GET", f"/api/projects/{console.project_id}", token=console.admin_token).json()["retention_days"] is None


def test_the_overview_asks_the_api_for_the_top_events_by_volume(page: Page, console: Console) -> None:
    name = unique("Busy")
    project = console.http("POST", "/api/projects", token=console.admin_token, json={"name": name}).json()["id"]
    token = console.http("POST", f"/api/projects/{project}/keys", token=console.admin_token, json={"name": "all", "scopes": ["*"]}).json()["token"]
    volumes = {f"e{k:02d}": (k * 7) % 12 + 1 for k in range(12)}  # twelve names, none in volume order by name
    batch = [{"event.name": n} for n, v in volumes.items() for _ in range(v)]
    assert console.http("POST", "/platform/ingest/v1/events", token=token, json=batch).status_code == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # volumes are written with the usage counters, within a few seconds
        counted = console.http("GET", f"/api/projects/{project}/event_definitions/", token=token).json()["results"]
        if {d["name"]: d["volume"] for d in counted} == volumes:
            break
        time.sleep(0.2)
    with page.expect_request(lambda r: "/event_definitions/" in r.url) as asked:
        sign_in(page, console, token)
    assert "ordering=-volume" in asked.value.url and "limit=10" in asked.value.url  # a page of ten, not a page to sort
    top = sorted(volumes, key=volumes.__getitem__, reverse=True)[:10]
    panel = page.locator(".panel", has=page.get_by_role("heading", name="Top events"))
    expect(panel.locator("tbody tr td:first-child")).to_have_text(top)


def test_several_field_errors_are_each_shown_beside_their_field(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.goto(f"{console.url}/#/data/groups")
    page.get_by_role("button", name="New property group").click()
    form = page.get_by_role("form", name="New property group")
    form.get_by_label("Group name").fill(unique("Broken"))
    form.get_by_role("button", name="Add property").click()
    form.get_by_label("Property 2 name").fill("plan")
    form.get_by_label("Validation rules (JSON)").nth(1).fill('{"minimum": 1}')
    form.get_by_role("button", name="Create group").click()
    name_field = form.locator("label.field", has=page.get_by_label("Property 1 name"))
    rules_field = form.locator(".property-row").nth(1).locator("label.field", has=page.get_by_label("Validation rules (JSON)"))
    expect(name_field.locator(".field-error")).not_to_be_empty()
    expect(rules_field.locator(".field-error")).to_contain_text("minimum")


def test_an_admin_key_on_a_server_with_no_project_is_told_how_to_make_one(browser: Browser, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    boot = subprocess.run([sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, check=True)
    admin = json.loads(boot.stdout)["key"]["token"]
    server = Server(url).start()
    ctx = browser.new_context()
    try:
        # An admin key and no project: init and serve always make one, so it is removed behind their back.
        with sqlite3.connect(tmp_path / "empty.db") as db:
            db.execute("DELETE FROM projects")
        ctx.set_default_timeout(15000)  # a server of its own, started beside the module's under load
        page = ctx.new_page()
        page.goto(server.url + "/")
        page.get_by_label("API token").fill(admin)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
        expect(page.get_by_text("eventdock project create NAME")).to_be_visible()
        page.get_by_label("New project name").fill("First")
        page.get_by_role("button", name="Create project").click()
        expect(page.get_by_label("Project", exact=True)).to_have_value(httpx.get(server.url + "/api/projects", headers={"Authorization": f"Bearer {admin}"}).json()["results"][0]["id"])
        expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    finally:
        ctx.close()
        server.kill()


def test_hostile_names_and_properties_render_as_text_and_never_run(page: Page, console: Console) -> None:
    """Event names, properties, profiles, schemas, violations, live events and
    key names full of markup and script URLs, on every screen: nothing runs
    (``window.__pwned`` stays unset, no dialog opens) and the text is shown as sent."""
    tag = unique("x")
    nasty = {h: h for h in HOSTILE} | {"nested": {"deeper": [HOSTILE[1], {"href": HOSTILE[2]}]}, "link": HOSTILE[2]}
    r = console.http("POST", "/platform/ingest/v1/events", json=[{"event.name": f"{h} {tag}", **nasty} for h in HOSTILE])
    assert r.status_code == 202, r.text
    # The overview lists the ten names of most volume in this module's shared
    # project: the <script> name gets enough volume to be among them.
    r = console.http("POST", "/platform/ingest/v1/events", json=[{"event.name": f"{HOSTILE[0]} {tag}"}] * 200)
    assert r.status_code == 202, r.text
    console.send(f"{HOSTILE[1]} {tag}", email=f"{tag}@example.com", firstName=HOSTILE[1], lastName=HOSTILE[0], softId=HOSTILE[2])
    p = f"/api/projects/{console.project_id}"
    group = console.http(
        "POST", f"{p}/schema_property_groups/",
        json={"name": f"{HOSTILE[0]} {tag}", "description": HOSTILE[1], "properties": [{"name": HOSTILE[1], "property_type": "Numeric", "is_required": True}]},
    ).json()
    found = console.http("GET", f"{p}/event_definitions/", params={"search": tag}).json()["results"]
    definition = next(d for d in found if d["name"] == f"{HOSTILE[1]} {tag}")
    assert console.http("POST", f"{p}/event_schemas/", json={"event_definition": definition["id"], "property_group_id": group["id"]}).status_code == 201
    time.sleep(2.5)  # the schema reaches the pipeline: the next one is flagged, with its hostile value in the error
    assert console.http("POST", "/platform/ingest/v1/events", json={"event.name": f"{HOSTILE[1]} {tag}", HOSTILE[1]: HOSTILE[3]}).status_code == 202
    live = {"name": f"{HOSTILE[1]} {tag}", "start_mode": "manual", "start_at": int(time.time()) + 3600, "duration": 600}
    body = {"data": {"type": "events", "attributes": live, "relationships": {"project": {"data": {"type": "projects", "id": console.project_id}}}}}
    assert console.http("POST", "/api/v2/events", json=body, headers={"Content-Type": "application/vnd.api+json"}).status_code == 201
    assert console.http("POST", f"{p}/keys", json={"name": HOSTILE[0], "scopes": ["events:read"]}).status_code == 201

    # Markup that got through would also be stopped by the CSP; it must not even try.
    page.add_init_script("window.__violations = []; document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective))")

    def assert_safe() -> None:
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("window.__violations") == []
        assert page.locator("#main img, #main script, #main iframe").count() == 0
        assert not page.errors  # type: ignore[attr-defined]

    sign_in(page, console)
    page.goto(f"{console.url}/#/events?live=1")
    expect(page.locator(".live-status .badge")).to_have_text("live")
    console.http("POST", "/platform/ingest/v1/events", json=[{"event.name": f"{h} {tag}", **nasty} for h in HOSTILE])
    expect(page.get_by_role("button", name=f"{HOSTILE[0]} {tag}")).to_be_visible()
    page.get_by_role("button", name=f"{HOSTILE[1]} {tag}").first.click()
    expect(page.locator("pre.json")).to_contain_text(HOSTILE[0])
    assert_safe()

    page.goto(f"{console.url}/#/events?event={HOSTILE[1]} {tag}")
    page.get_by_role("button", name=f"{HOSTILE[1]} {tag}").first.click()
    expect(page.locator("pre.json")).to_contain_text(HOSTILE[2])
    assert_safe()
    def top_names() -> list[str]:
        return [d["name"] for d in console.http("GET", f"{p}/event_definitions/", params={"ordering": "-volume", "limit": 10}).json()["results"]]

    deadline = time.monotonic() + 15
    while f"{HOSTILE[0]} {tag}" not in top_names() and time.monotonic() < deadline:
        time.sleep(0.5)  # volumes are written a few seconds after ingest
    go(page, "Overview")
    expect(page.get_by_role("link", name=f"{HOSTILE[0]} {tag}")).to_be_visible()
    expect(page.get_by_text(f"{HOSTILE[1]} {tag}").first).to_be_visible()
    assert_safe()
    go(page, "Data management")
    page.get_by_role("link", name="Property groups").click()
    expect(page.get_by_role("heading", name=f"{HOSTILE[0]} {tag}")).to_be_visible()
    page.get_by_role("link", name=f"{HOSTILE[1]} {tag}").click()
    expect(page.get_by_role("heading", name=f"{HOSTILE[1]} {tag}", level=2)).to_be_visible()
    expect(page.locator("pre.code")).to_be_visible()  # the generated TypeScript names the hostile property
    assert_safe()
    go(page, "Violations")
    expect(page.locator("article.violation", has_text=tag).first).to_contain_text(HOSTILE[1])
    assert_safe()
    go(page, "Live events")
    expect(page.locator("li.live-row strong", has_text=f"{HOSTILE[1]} {tag}")).to_be_visible()
    assert_safe()
    go(page, "Profiles")
    page.get_by_label("Value").fill(f"{tag}@example.com")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("article.profile")).to_contain_text(HOSTILE[0])
    page.locator("article.profile").get_by_role("button", name=f"{HOSTILE[1]} {tag}").click()
    assert_safe()
    go(page, "Keys & projects")
    expect(page.get_by_role("cell", name=HOSTILE[0], exact=True)).to_be_visible()
    assert_safe()
    assert page.locator("a[href^='javascript:' i]").count() == 0


def test_the_console_is_served_with_a_csp_that_blocks_inline_script(page: Page, console: Console) -> None:
    response = page.goto(console.url + "/")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
    expect(page.get_by_label("API token")).to_be_visible()
    blocked = page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), {once: true});
            const s = document.createElement('script');
            s.textContent = 'window.__inline = 1';
            document.body.append(s);
        })"""
    )
    assert blocked.startswith("script-src")
    assert page.evaluate("window.__inline") is None


@pytest.mark.parametrize("path, ready", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_api_docs_load_with_no_request_to_another_origin(page: Page, console: Console, path: str, ready: str) -> None:
    """The ``context`` fixture aborts and records every request that is not to
    this server. (Redoc's bundle shows its maker's logo from a CDN: the pages'
    CSP keeps the browser from asking for it.)"""
    finished: list[str] = []
    blocked: list[tuple[str, str | None]] = []
    page.on("requestfinished", lambda r: finished.append(r.url))
    page.on("requestfailed", lambda r: blocked.append((r.url, r.failure)))
    response = page.goto(console.url + path)
    assert response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(ready).first).to_contain_text("eventdock", timeout=15000)
    expect(page.get_by_text("/api/me").first).to_be_attached()
    assert finished and all(u.startswith(console.url + "/") for u in finished), finished
    assert any(u.endswith("/openapi.json") for u in finished)
    # What the bundles ask of other origins never leaves the browser.
    assert all(failure == "csp" for _, failure in blocked), blocked
