"""The benchmark's output: one rich table (a column per configuration) and JSON.

Rows are the SPEC §9 figures; a target, where SPEC §9 sets one, is shown
next to the row so a reader sees at once which figure is short of it.

``python -m bench.report RUN.json`` prints a saved run (``--json``) as the
same table in Markdown: the README's table is made that way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.runner import Config, Phase, Report


def _rate(phase: Phase | None, unit: str = "req/s") -> str:
    if phase is None:
        return "—"
    value = phase.events_per_s if unit == "ev/s" else phase.requests_per_s
    text = f"{value:,.0f} {unit}\np50 {phase.p50_ms:.1f} / p99 {phase.p99_ms:.1f} ms"
    if phase.errors:
        text += f"\n[red]{phase.errors} errors {phase.codes}[/red]"
    return text


def _ratio(config: Config, key: str, target: float | None = None) -> str:
    value = config.ratios.get(key)
    if value is None:
        return "—"
    text = f"{value:.0%}"
    if target is not None and value < target:
        return f"[yellow]{text}[/yellow]"
    return text


def _p99(phase: Phase | None, limit_ms: float = 20.0) -> str:
    if phase is None:
        return "—"
    style = "yellow" if phase.p99_ms > limit_ms else ""
    text = f"p99 {phase.p99_ms:.1f} ms (p50 {phase.p50_ms:.1f})\n{phase.note}, got {phase.requests_per_s:,.0f}/s"
    if phase.errors:
        text += f"\n[red]{phase.errors} errors[/red]"
    return f"[{style}]{text}[/{style}]" if style else text


def _overload(phase: Phase | None) -> str:
    if phase is None:
        return "—"
    refused = phase.codes.get("503", 0)
    other = {k: v for k, v in phase.codes.items() if k not in ("202", "503")}
    text = f"{phase.events_per_s:,.0f} ev/s stored\n{refused} × 503, p99 {phase.p99_ms:.0f} ms"
    if other:
        text += f"\n[red]other: {other}[/red]"
    return text


def _rss(mb: float, rss_sum_mb: float, limit: float = 200.0) -> str:
    text = f"[yellow]{mb:.0f} MB[/yellow]" if mb > limit else f"{mb:.0f} MB"
    if rss_sum_mb > mb + 0.5:  # a writer process (SQLite): its RSS instead of its USS
        text += f"\n({rss_sum_mb:.0f} MB adding RSS)"
    return text


def _rows(report: Report) -> list[tuple[str, str, list[str]]]:
    """(figure, target, one cell per configuration), cells in rich markup."""
    rows: list[tuple[str, str, list[str]]] = []

    def row(label: str, target: str, cell: Any) -> None:
        rows.append((label, target, [cell(c) for c in report.configs]))

    p = lambda c, n: c.phases.get(n)  # noqa: E731 - a local shorthand
    row("bare ASGI, CDP-shaped", "", lambda c: _rate(p(c, "bare_cdp")))
    row("bare ASGI, generic-shaped", "", lambda c: _rate(p(c, "bare_generic")))
    row(
        "store: 500-event insert_events",
        "",
        lambda c: f"{report.store[c.database]['events_per_s']:,.0f} ev/s" if c.database in report.store else "—",
    )
    row("CDP single event", "", lambda c: _rate(p(c, "cdp")))
    row("  ÷ bare", "≥ 60%", lambda c: _ratio(c, "cdp_vs_bare", 0.6))
    row("generic single event", "", lambda c: _rate(p(c, "generic")))
    row("  ÷ bare", "≥ 60%", lambda c: _ratio(c, "generic_vs_bare", 0.6))
    row("generic 500-event batches", "", lambda c: _rate(p(c, "batch"), "ev/s"))
    row("  ÷ store", "", lambda c: _ratio(c, "batch_vs_store"))
    if any("batch_schema" in c.phases or c.notes for c in report.configs):
        row(
            "  same, schema on",
            "≥ 150k SQLite\n≥ 100k PG",
            lambda c: _rate(p(c, "batch_schema"), "ev/s") if p(c, "batch_schema") else "\n".join(c.notes) or "—",
        )
    row("CDP at ½ max rate (open loop)", "p99 ≤ 20 ms", lambda c: _p99(p(c, "cdp_half")))
    row("generic at ½ max rate (open loop)", "p99 ≤ 20 ms", lambda c: _p99(p(c, "generic_half")))
    row("overload (writer queue full)", "503, bounded", lambda c: _overload(p(c, "overload")))
    row("peak RSS per worker, overload", "≤ 200 MB", lambda c: _rss(p(c, "overload").peak_rss_mb, p(c, "overload").peak_rss_sum_mb) if p(c, "overload") else "—")
    row("peak RSS per worker, all runs", "≤ 200 MB", lambda c: _rss(c.peak_rss_mb, c.peak_rss_sum_mb))
    return rows


def table(report: Report) -> Table:
    t = Table(title="eventdock benchmark (SPEC §9)", show_lines=True)
    t.add_column("figure", style="bold")
    t.add_column("target")
    for config in report.configs:
        t.add_column(config.label, justify="right")
    for label, target, cells in _rows(report):
        t.add_row(label, target, *cells)
    return t


def markdown(report: Report) -> str:
    """The same table in Markdown, one line per figure."""

    def plain(cell: str) -> str:
        return " ".join(Text.from_markup(cell).plain.split())

    lines = [
        "| figure | target | " + " | ".join(c.label for c in report.configs) + " |",
        "|---|---|" + "---:|" * len(report.configs),
    ]
    for label, target, cells in _rows(report):
        lines.append(f"| {plain(label)} | {plain(target)} | " + " | ".join(plain(cell) for cell in cells) + " |")
    return "\n".join(lines)


def print_report(report: Report, console: Console) -> None:
    console.print(table(report))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description="A saved run (python -m bench ... --json) as a Markdown table.")
    parser.add_argument("run", type=Path, help="the JSON document a --json run printed")
    args = parser.parse_args(argv)
    print(markdown(Report.from_json(json.loads(args.run.read_text()))))


if __name__ == "__main__":
    main()
