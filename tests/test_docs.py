"""The README keeps telling the truth: every setting the code reads is documented."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from eventdock.config import Limits, WriterSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_environment_variable_the_code_reads_is_in_the_readme() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "eventdock").rglob("*.py"))
    read = set(re.findall(r"EVENTDOCK_[A-Z_]+", source)) - {"EVENTDOCK_WORKERS", "EVENTDOCK_LIMIT_", "EVENTDOCK_WRITER_"}
    # Limits and writer settings are read generically as EVENTDOCK_LIMIT_<FIELD> / EVENTDOCK_WRITER_<FIELD>.
    read |= {f"EVENTDOCK_LIMIT_{f.name.upper()}" for f in fields(Limits)}
    read |= {f"EVENTDOCK_WRITER_{f.name.upper()}" for f in fields(WriterSettings)}
    missing = sorted(v for v in read if v not in README)
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_documented_defaults_match_the_code() -> None:
    for kind, prefix in ((Limits, "LIMIT"), (WriterSettings, "WRITER")):
        for f in fields(kind):
            row = re.search(rf"`EVENTDOCK_{prefix}_{f.name.upper()}` \| `([^`]+)`", README)
            assert row is not None, f.name
            assert float(row.group(1)) == float(f.default), f"README default for {f.name} is {row.group(1)}, code says {f.default}"


def test_the_two_quick_start_commands_are_there() -> None:
    assert "script/server" in README and "script/test" in README
