"""The scripts a newcomer runs first: script/server serves and says where the
CLI is; script/bootstrap installs from uv.lock and refuses a stale one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_script_server_serves_and_says_how_to_run_the_cli(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "stderr"
    with open(log, "wb") as err:
        process = subprocess.Popen(
            [str(ROOT / "script" / "server"), "--port", str(port)],
            env={**os.environ, "EVENTDOCK_DATABASE_URL": f"sqlite:///{tmp_path}/first.db"},
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    assert "The eventdock command is .venv/bin/eventdock" in log.read_text()


def test_the_lock_matches_pyproject() -> None:
    result = subprocess.run([str(ROOT / "script" / "uv"), "lock", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_bootstrap_refuses_a_lock_older_than_pyproject(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "script", tmp_path / "script")
    (tmp_path / ".tools").symlink_to(ROOT / ".tools")  # the uv script/uv installed
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"rich>=13",', '"rich>=13",\n    "six>=1.16",'))
    result = subprocess.run([str(tmp_path / "script" / "bootstrap")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "uv.lock does not match pyproject.toml: run script/lock" in result.stderr
    assert not (tmp_path / ".venv").exists()
