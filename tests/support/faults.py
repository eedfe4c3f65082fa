"""Helpers of the fault tests (issue 20): a server's first keys, each dialect's 503, the server's log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx


def init_admin(url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "eventdock", "init", "--database", url, "--json"], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)["key"]["token"]  # type: ignore[no-any-return]


def project_with_key(base: str, admin_token: str, scopes: list[str]) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    r = httpx.post(f"{base}/api/projects", json={"name": "faults"}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    r = httpx.post(f"{base}/api/projects/{project}/keys", json={"name": "faults", "scopes": scopes}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    return project, r.json()["token"]


def is_cdp_503(r: httpx.Response) -> bool:
    body = r.json()
    return body["success"] is False and body["data"] is None and body["error"]["code"] == "UNAVAILABLE" and bool(body["error"]["message"])


def is_generic_503(r: httpx.Response) -> bool:
    error = r.json()["error"]
    return error["code"] == 503 and bool(error["message"])


def is_drf_503(r: httpx.Response) -> bool:
    body = r.json()
    return set(body) == {"type", "code", "detail", "attr"} and bool(body["detail"])


def is_jsonapi_503(r: httpx.Response) -> bool:
    errors = r.json()["errors"]
    return r.headers["content-type"].startswith("application/vnd.api+json") and errors[0]["status"] == "503"


def log_text(log_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("server-*.log")))
