"""The documentation tells the truth: every setting the code reads is in the
configuration reference, the generated pages are current, and the site
builds with ``mkdocs build --strict`` (no broken link, no missing page)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from docsgen import cli, settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_environment_variable_the_code_reads_is_a_documented_setting() -> None:
    """A variable read anywhere in the code is a setting of the settings object, and so on the generated page."""
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "eventdock").rglob("*.py"))
    read = set(re.findall(r"EVENTDOCK_[A-Z0-9_]*[A-Z0-9]", source)) - settings.INTERNAL
    documented = {v.name for v in settings.variables()}
    # config.py spells its sections' prefixes (EVENTDOCK_LIMIT_, EVENTDOCK_WRITER_), which are no variables.
    prefixes = {v.name.removesuffix("_" + v.field.upper()) for v in settings.variables() if v.section}
    assert sorted(read - documented - prefixes) == []
    page = (DOCS / "configuration.md").read_text()
    assert [v.name for v in settings.variables() if f"`{v.name}`" not in page] == []


def test_every_setting_has_a_meaning() -> None:
    assert settings.problems() == []


def test_the_generator_finds_a_variable_for_every_setting() -> None:
    names = {v.name for v in settings.variables()}
    assert {"EVENTDOCK_DATABASE_URL", "EVENTDOCK_LIMIT_MAX_DEPTH", "EVENTDOCK_WRITER_CONNECTIONS", "EVENTDOCK_MIGRATE_ON_START"} <= names


def test_a_setting_without_a_meaning_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(settings.MEANINGS, "EVENTDOCK_LIMIT_MAX_DEPTH")
    assert settings.problems() == ["EVENTDOCK_LIMIT_MAX_DEPTH: no meaning in docsgen/settings.py MEANINGS"]


@pytest.mark.parametrize(("name", "render"), [("configuration.md", settings.page), ("cli.md", cli.page)])
def test_generated_pages_are_current(name: str, render: object) -> None:
    assert (DOCS / name).read_text() == render(), f"docs/{name} is out of date: run script/docs (python -m docsgen)"  # type: ignore[operator]


def test_the_cli_page_documents_every_command() -> None:
    page = (DOCS / "cli.md").read_text()
    for command in ("serve", "migrate", "init", "import", "export", "project create", "key revoke"):
        assert f"## `eventdock {command}`" in page


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "configuration" / "index.html").exists()


def test_the_two_quick_start_commands_are_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "script/server" in readme and "script/test" in readme
