"""``python -m bench``: eventdock's benchmark (SPEC §9), or ``python -m bench profile``.

    python -m bench --database both --workers 1,2 --schema --group-commit both
    python -m bench --duration 2 --warmup 1 --database sqlite --json > bench.json
    python -m bench profile --database sqlite --duration 10

The exact command line is printed first, so every quoted figure carries the
command that produced it. With ``--json`` the one JSON document goes to
stdout and the table and progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from rich.console import Console

from bench import databases


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("worker counts must be ≥ 1")
    return values


def _databases(text: str) -> list[str]:
    if text == "both":
        return ["sqlite", "postgresql"]
    if text in ("sqlite", "postgresql"):
        return [text]
    raise argparse.ArgumentTypeError("sqlite, postgresql or both")


def _group_commit(text: str) -> list[bool]:
    choices = {"on": [True], "off": [False], "both": [True, False]}
    if text not in choices:
        raise argparse.ArgumentTypeError("on, off or both")
    return choices[text]


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Benchmark eventdock against a bare ASGI app and its own store (SPEC §9).")
    p.add_argument("--database", type=_databases, default=["sqlite"], help="sqlite, postgresql or both (default sqlite)")
    p.add_argument("--pg-url", default=databases.DEFAULT_PG_URL, help="PostgreSQL server to create a fresh database on (default %(default)s)")
    p.add_argument("--workers", type=_ints, default=[1], help="worker counts side by side, e.g. 1,2 (default 1)")
    p.add_argument("--group-commit", type=_group_commit, default=[True], help="on (default), off (one request per transaction), or both")
    p.add_argument("--schema", action="store_true", help="also run the batches with a 5-required-property schema on their event")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each closed-loop phase (default 1)")
    p.add_argument("--connections", type=int, default=64, help="connections for single-event phases (default 64)")
    p.add_argument("--batch-connections", type=int, default=16, help="connections for the batched phase (default 16)")
    p.add_argument("--batch-size", type=int, default=500, help="events per batched request (default 500)")
    p.add_argument("--overload-connections", type=int, default=128, help="connections per worker for the overload phase (default 128)")
    p.add_argument("--overload-size", type=int, default=2000, help="events per overload request (default 2000)")
    p.add_argument("--overload-duration", type=float, default=10.0, help="seconds of overload, at least --duration (default 10)")
    p.add_argument("--no-open-loop", action="store_true", help="skip the fixed-rate p99 phases")
    p.add_argument("--no-overload", action="store_true", help="skip the overload phase")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (table on stderr)")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an EVENTDOCK_* setting for the eventdock server, e.g. EVENTDOCK_WRITER_MAX_WAIT_MS=0 (repeatable)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["profile"]:
        from bench import profile

        profile.main(args_list[1:])
        return
    from bench import report, runner

    args = run_parser().parse_args(args_list)
    # Wide enough for one column per configuration, also when piped to a file.
    width = max(120, 44 + 26 * len(args.database) * len(args.workers) * len(args.group_commit))
    err = Console(stderr=True, width=width)
    out = err if args.json else Console(width=width)
    command = "python -m bench " + shlex.join(args_list)
    out.print(f"$ {command}", highlight=False, markup=False, soft_wrap=True)
    opts = runner.Options(
        databases=args.database,
        workers=args.workers,
        group_commit=args.group_commit,
        duration_s=args.duration,
        warmup_s=args.warmup,
        connections=args.connections,
        batch_connections=args.batch_connections,
        batch_size=args.batch_size,
        overload_connections=args.overload_connections,
        overload_size=args.overload_size,
        overload_duration_s=args.overload_duration,
        schema=args.schema,
        pg_url=args.pg_url,
        open_loop=not args.no_open_loop,
        server_env=dict(item.split("=", 1) for item in args.server_env),
        overload=not args.no_overload,
    )
    result = runner.run(opts, command, lambda line: err.print(line, style="dim", highlight=False, markup=False))
    report.print_report(result, out)
    if args.json:
        sys.stdout.write(json.dumps(result.as_json()) + "\n")


if __name__ == "__main__":
    main()
