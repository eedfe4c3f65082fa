"""python -m docsgen [--check]: write the generated pages, or fail if one is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from docsgen import cli, settings

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = {"configuration.md": settings.page, "cli.md": cli.page}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    failed = settings.problems()
    for name, render in PAGES.items():
        path, text = DOCS / name, render()
        if check:
            if not path.exists() or path.read_text() != text:
                failed.append(f"docs/{name} is out of date: run python -m docsgen (script/docs)")
        else:
            path.write_text(text)
    print("\n".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
