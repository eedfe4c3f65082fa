"""The README keeps telling the truth: every setting the code reads is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from eventdock.config import Limits, Settings, WriterSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECTIONS = ((Settings, ""), (Limits, "LIMIT_"), (WriterSettings, "WRITER_"))


def test_every_environment_variable_the_code_reads_is_in_the_readme() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "eventdock").rglob("*.py"))
    read = set(re.findall(r"EVENTDOCK_[A-Z_]+", source)) - {"EVENTDOCK_WORKERS", "EVENTDOCK_LIMIT_", "EVENTDOCK_WRITER_"}
    # Settings are read generically (config._read) as EVENTDOCK_<FIELD>,
    # EVENTDOCK_LIMIT_<FIELD> and EVENTDOCK_WRITER_<FIELD>.
    read |= {f"EVENTDOCK_{prefix}{f.name.upper()}" for kind, prefix in SECTIONS for f in fields(kind) if f.name not in ("limits", "writer")}
    missing = sorted(v for v in read if v not in README)
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_documented_defaults_match_the_code() -> None:
    for kind, prefix in SECTIONS:
        for f in fields(kind):
            if f.name in ("limits", "writer"):
                continue
            # A row may name two variables ("`A` / `B` | `0` …").
            row = re.search(rf"`EVENTDOCK_{prefix}{f.name.upper()}`[^|\n]*\| `([^`]+)`", README)
            assert row is not None, f.name
            documented = row.group(1)
            if isinstance(f.default, str):
                assert documented == f.default, f"README default for {f.name} is {documented}, code says {f.default}"
            else:
                assert float(documented) == float(f.default), f"README default for {f.name} is {documented}, code says {f.default}"


def test_the_two_quick_start_commands_are_there() -> None:
    assert "script/server" in README and "script/test" in README
