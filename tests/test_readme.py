"""The README's tour runs as written.

Every ``sh`` block under "A five-minute tour" runs, in order, in one bash,
against a real ``eventdock serve`` on a fresh SQLite database, with only the
port changed (``127.0.0.1:8000`` becomes the test server's). Any command
that fails fails the test, and so does any HTTP answer of 400 or more
(curl runs with ``--fail-with-body``). The blocks shown after a ``sh`` block
are what it prints, in order: ``json`` blocks are compared by shape (the
same keys, the same kinds of value, the same booleans), any other block
exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tests.support.server import Server

ROOT = Path(__file__).resolve().parent.parent
TOUR = "A five-minute tour"
README_ADDRESS = "127.0.0.1:8000"


@dataclass
class Step:
    script: str
    shown: list[tuple[str, str]] = field(default_factory=list)  # (language, text) of each answer shown after it


def tour(markdown: str) -> list[Step]:
    """The tour's shell blocks, each with the answers shown after it."""
    steps: list[Step] = []
    section = ""
    tokens = MarkdownIt("commonmark").parse(markdown)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            section = tokens[i + 1].content
        elif token.type == "fence" and section == TOUR:
            language = token.info.split()[0] if token.info else ""
            if language == "sh":
                steps.append(Step(token.content))
            else:
                assert steps, f"the tour shows an answer ({language}) before any command"
                steps[-1].shown.append((language, token.content))
    return steps


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"bool {value}"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def same_shape(shown: Any, got: Any, path: str = "$") -> list[str]:
    """Where ``got`` differs in shape from ``shown``: object keys, kinds of value, booleans, empty or not."""
    if kind(shown) != kind(got):
        return [f"{path}: shown {kind(shown)}, got {kind(got)} ({json.dumps(got)[:200]})"]
    if isinstance(shown, dict):
        if shown.keys() != got.keys():
            return [f"{path}: shown keys {sorted(shown)}, got {sorted(got)}"]
        return [d for k in shown for d in same_shape(shown[k], got[k], f"{path}.{k}")]
    if isinstance(shown, list):
        if bool(shown) != bool(got):
            return [f"{path}: shown {len(shown)} items, got {len(got)}"]
        return [d for i, item in enumerate(got) for d in same_shape(shown[min(i, len(shown) - 1)], item, f"{path}[{i}]")]
    return []


def json_values(text: str) -> list[Any]:
    """The JSON documents written one after another in ``text`` (curl -s adds no newline)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def differences(step: Step, output: str) -> list[str]:
    """How ``output`` differs from the answers the README shows for ``step``."""
    rest = output
    found: list[str] = []
    for language, text in step.shown:
        rest = rest.lstrip()
        if language == "json":
            shown = json_values(text)
            got: list[Any] = []
            for _ in shown:
                try:
                    value, end = json.JSONDecoder().raw_decode(rest)
                except ValueError:
                    found.append(f"shown JSON, got {rest[:300]!r}")
                    return found
                got.append(value)
                rest = rest[end:].lstrip()
            found += [d for s, g in zip(shown, got, strict=True) for d in same_shape(s, g)]
        else:
            if not rest.startswith(text.strip()):
                found.append(f"shown {text.strip()!r}, got {rest[: len(text) + 40]!r}")
            rest = rest[len(text.strip()) :]
    if rest.strip():
        found.append(f"printed more than the README shows: {rest.strip()[:300]!r}")
    return found


def test_the_tour_finds_its_blocks() -> None:
    steps = tour((ROOT / "README.md").read_text())
    assert len(steps) >= 8
    assert sum(len(s.shown) for s in steps) >= 8


def test_shapes_are_compared() -> None:
    """The comparison this test relies on catches what a drifted README would show."""
    step = Step("", [("json", '{"success": true, "data": {"id": "x"}, "error": null}')])
    assert differences(step, '{"success":true,"data":{"id":"order-1"},"error":null}') == []
    assert differences(step, '{"success":false,"data":null,"error":{"code":"X"}}')
    assert differences(step, '{"success":true,"data":{"id":"x","extra":1},"error":null}')
    assert differences(step, '{"success":true,"data":{"id":"x"},"error":null}{"more":1}')
    assert differences(Step("", [("text", "202\n")]), "403\n")
    assert differences(step, "Internal Server Error")
    assert differences(Step("", [("json", '{"results": [{"a": 1}]}')]), '{"results": []}')


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with Server(f"sqlite:///{tmp_path}/tour.db", log_dir=tmp_path) as running:
        yield running


def test_the_readme_tour_runs_as_written(server: Server, tmp_path: Path) -> None:
    steps = tour((ROOT / "README.md").read_text())
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix)  # the tour runs .venv/bin/eventdock from the checkout
    out = tmp_path / "out"
    out.mkdir()
    address = server.url.removeprefix("http://")
    lines = ["set -euo pipefail", 'curl() { command curl --fail-with-body "$@"; }']
    for n, step in enumerate(steps):
        lines += [f"echo 'tour block {n}' >&2", "{", step.script.replace(README_ADDRESS, address), f"}} > {out}/{n}"]
    result = subprocess.run(
        ["bash", "-c", "\n".join(lines)],
        cwd=work,
        env={**server.env, "EVENTDOCK_DATABASE_URL": server.database_url},
        capture_output=True,
        text=True,
        timeout=180,
    )
    ran = len(list(out.iterdir()))
    assert result.returncode == 0, (
        f"tour block {ran - 1} failed ({result.returncode}):\n{steps[ran - 1].script}\n"
        f"printed: {(out / str(ran - 1)).read_text()[:2000]}\nstderr: {result.stderr[-2000:]}"
    )
    for n, step in enumerate(steps):
        found = differences(step, (out / str(n)).read_text())
        assert not found, f"tour block {n} printed what the README does not show:\n{step.script}\n" + "\n".join(found)
    assert (work / "events.ndjson").read_text().count("\n") >= 4
