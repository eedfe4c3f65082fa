"""The console's server side (SPEC §10) and the offline API docs (SPEC §1), over HTTP.

What the pages do in a browser is in test_console_browser.py.
"""

from __future__ import annotations

import re

import httpx

from tests.conftest import Key, Project

CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"


async def test_the_console_page_and_its_modules_carry_the_security_headers(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page.text)
    assert scripts == ["/console/app.js"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), "no inline script"
    for path in ("/", "/console/app.js", "/console/vendor/preact.mjs", "/console/console.css"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/console/app.js")).headers["content-type"].startswith("text/javascript")
    assert (await client.get("/console/vendor/hooks.mjs")).headers["content-type"].startswith("text/javascript")


async def test_a_missing_console_file_is_a_404_not_the_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/console/nope.js")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_every_module_the_console_imports_is_served(client: httpx.AsyncClient) -> None:
    """Follow the static imports from app.js: a typo in a path would be a blank page."""
    seen: set[str] = set()
    queue = ["/console/app.js"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        r = await client.get(path)
        assert r.status_code == 200, path
        base = path.rsplit("/", 1)[0]
        for spec in re.findall(r'(?:import|from)\s*"(\.{1,2}/[^"]+)"', r.text):
            parts = base.split("/")
            for piece in spec.split("/"):
                if piece == "..":
                    parts.pop()
                elif piece != ".":
                    parts.append(piece)
            queue.append("/".join(parts))
    assert "/console/vendor/preact.mjs" in seen and len(seen) > 5
    page = (await client.get("/")).text
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', page))
    assert preloaded == seen - {"/console/app.js"}, "index.html preloads exactly the modules app.js imports"


async def test_me_describes_a_project_key(client: httpx.AsyncClient, project: Project) -> None:
    key = await project.new_key(client, "events:write", "event_definition:read", name="site")
    r = await client.get("/api/me", headers=key.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["key"] == {"id": key.id, "name": "site", "project_id": project.id, "scopes": ["event_definition:read", "events:write"]}
    assert body["effective_scopes"] == ["events:write", "events:read", "event_definition:read"]
    assert body["is_admin"] is False
    assert body["project"]["id"] == project.id and set(body["project"]) == {"id", "name", "created_at"}


async def test_me_for_a_star_key_and_an_admin_key(client: httpx.AsyncClient, project: Project, admin: Key) -> None:
    star = (await client.get("/api/me", headers=project.headers)).json()
    assert "admin" in star["effective_scopes"] and "live_events:write" in star["effective_scopes"]
    assert star["is_admin"] is False
    boss = (await client.get("/api/me", headers=admin.headers)).json()
    assert boss["is_admin"] is True and boss["project"] is None and boss["key"]["project_id"] is None


async def test_me_without_or_with_a_bad_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/me")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    r = await client.get("/api/me", headers={"Authorization": "Bearer edk_nope"})
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"


async def test_me_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    assert "get" in (await client.get("/openapi.json")).json()["paths"]["/api/me"]


async def test_docs_and_redoc_load_their_assets_from_this_server(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        r = await client.get(page)
        assert r.status_code == 200 and "/openapi.json" in r.text
        urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert urls and all(u.startswith("/docs-assets/") for u in urls), urls
        for url in urls:
            assert (await client.get(url)).status_code == 200, url


async def test_a_drf_error_with_several_fields_lists_each_for_the_form(client: httpx.AsyncClient, project: Project) -> None:
    """DRF names the first problem; the console shows every field's beside it, so all are listed."""
    body = {"name": "", "properties": [{"name": "plan", "property_type": "String", "validation_rules": {"minimum": 1}}]}
    r = await client.post(f"/api/projects/{project.id}/schema_property_groups/", json=body, headers=project.headers)
    assert r.status_code == 400
    error = r.json()
    assert error["attr"] == "name" and error["errors"][0] == {"attr": "name", "code": error["code"], "detail": error["detail"]}
    assert [e["attr"] for e in error["errors"]] == ["name", "properties__0__validation_rules"]
    r = await client.post(f"/api/projects/{project.id}/schema_property_groups/", json={"name": ""}, headers=project.headers)
    assert r.status_code == 400 and "errors" not in r.json()  # one problem: DRF's own shape
