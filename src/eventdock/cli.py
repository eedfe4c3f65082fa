"""The ``eventdock`` command: a thin layer over the store and the app factory."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from eventdock.config import DEFAULT_DATABASE_URL
from eventdock.core.auth import validate_scopes
from eventdock.store.database import Database
from eventdock.store.tenancy import Tenancy

app = typer.Typer(help="eventdock: a self-hosted event platform.", no_args_is_help=True, add_completion=False)
project_app = typer.Typer(help="Manage projects.", no_args_is_help=True)
key_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
profile_app = typer.Typer(help="Export or erase a person's data (GDPR art. 15 and 17).", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(key_app, name="key")
app.add_typer(profile_app, name="profile")

err = Console(stderr=True)
T = TypeVar("T")

DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", help=f"Database URL (env EVENTDOCK_DATABASE_URL; default {DEFAULT_DATABASE_URL})."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
RetentionOpt = Annotated[
    int | None,
    typer.Option(
        "--retention-days",
        min=0,
        max=36_500,
        help="Remove events and violations older than this many days (0: none of its own, the server's default applies).",
    ),
]
ProjectOpt = Annotated[str, typer.Option("--project", help="Project id.")]


def database_url(option: str | None) -> str:
    url = option or os.environ.get("EVENTDOCK_DATABASE_URL") or DEFAULT_DATABASE_URL
    os.environ["EVENTDOCK_DATABASE_URL"] = url
    return url


def with_tenancy(url: str, job: Callable[[Tenancy], Awaitable[T]]) -> T:
    """Migrate, then run ``job`` against the store."""
    return with_database(url, lambda db: job(Tenancy(db)))


def with_database(url: str, job: Callable[[Database], Awaitable[T]]) -> T:
    """Migrate, then run ``job`` against the database; a ValueError is the user's mistake (exit 2)."""

    async def run() -> T:
        db = Database(url)
        try:
            await asyncio.to_thread(db.migrate)
            return await job(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def emit(document: Any, as_json: bool, human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        Console().print(human, highlight=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    database: DatabaseOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the HTTP server (migrates first; bootstraps an empty database)."""
    url = database_url(database)
    boot = with_tenancy(url, lambda t: t.bootstrap())
    if boot is not None:
        project, key = boot
        err.print("[bold]eventdock: new database, created the bootstrap project and admin key.[/bold]")
        err.print("The token is shown this once; keep it safe.")
        print(f"project  {project.id}  ({project.name})")
        print(f"admin key {key.id}")
        print(f"token    {key.token}", flush=True)
    os.environ["EVENTDOCK_WORKERS"] = str(workers)
    os.environ["EVENTDOCK_MIGRATE_ON_START"] = "0"  # done above, once
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="eventdock-metrics-")
    err.print(f"eventdock serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}, {Database(url).display_url})")
    # uvicorn's own command line takes this process over: the server then
    # holds nothing of the CLI, the migrations (alembic, mako) or rich —
    # 13.5 MB of a single worker's memory (issue 6). Same PID, same signals.
    sys.stdout.flush()
    sys.stderr.flush()
    argv = uvicorn_command("eventdock.app:create_app_from_env", host=host, port=port, workers=workers, log_level=log_level, factory=True)
    os.execv(sys.executable, [sys.executable, *argv])


def uvicorn_command(target: str, *, host: str, port: int, workers: int, log_level: str = "warning", factory: bool = False) -> list[str]:
    """The arguments after ``python`` that serve ``target`` as ``eventdock serve`` does (the bench's bare baseline uses them too)."""
    return [
        "-m", "uvicorn", target, *(["--factory"] if factory else []),
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "eventdock.http.connections:GuardedHttpProtocol", "--no-access-log", "--log-level", log_level,
        "--timeout-graceful-shutdown", "10",
    ]  # fmt: skip


@app.command()
def migrate(database: DatabaseOpt = None) -> None:
    """Bring the database schema up to date."""
    url = database_url(database)
    db = Database(url)
    db.migrate()
    err.print(f"migrated {db.display_url}")


@app.command()
def init(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Create the bootstrap project and an admin key (a new key on every run)."""
    project, key = with_tenancy(database_url(database), lambda t: t.bootstrap(force_new_key=True))  # type: ignore[arg-type,return-value]
    document = {"project": {"id": project.id, "name": project.name}, "key": {"id": key.id, "token": key.token, "scopes": key.scopes}}
    emit(document, as_json, f"project {project.id} ({project.name})\nadmin token {key.token}")


@project_app.command("create")
def project_create(
    name: str,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=0, help="Ingest rate limit, events/s (0: none; default: the global setting).")
    ] = None,
    burst: Annotated[int | None, typer.Option("--burst", min=1, help="Token-bucket burst (default: the rate).")] = None,
    retention_days: RetentionOpt = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project."""
    project = with_tenancy(
        database_url(database),
        lambda t: t.create_project(name, rate_limit_per_second=rate_limit, rate_limit_burst=burst, retention_days=retention_days or None),
    )
    limited = rate_limit is not None or burst is not None or bool(retention_days)
    emit(project.as_public(limits=limited), as_json, f"project {project.id} ({project.name})")


@project_app.command("update")
def project_update(
    project: Annotated[str, typer.Argument(help="Project id.")],
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    retention_days: RetentionOpt = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a project's name or retention (a running server applies a new retention at its next look, within a minute by default)."""
    changes: dict[str, Any] = {}
    if name is not None:
        if not name.strip():
            err.print("[red]error:[/red] --name must not be blank")
            raise typer.Exit(2)
        changes["name"] = name.strip()
    if retention_days is not None:
        changes["retention_days"] = retention_days or None

    async def job(t: Tenancy) -> Any:
        updated = await t.update_project(project, **changes)
        if updated is None:
            raise ValueError(f"no project {project}")
        return updated

    updated = with_tenancy(database_url(database), job)
    retention = f"{updated.retention_days} days" if updated.retention_days else "the server's default"
    emit(updated.as_public(), as_json, f"project {updated.id} ({updated.name}), retention: {retention}")


@project_app.command("list")
def project_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List projects."""
    projects = with_tenancy(database_url(database), lambda t: t.list_projects())
    emit([p.as_public() for p in projects], as_json, "\n".join(f"{p.id}  {p.name}" for p in projects) or "no projects")


@key_app.command("create")
def key_create(
    project: Annotated[str | None, typer.Option("--project", help="Project id; omit for an admin key.")] = None,
    scope: Annotated[list[str], typer.Option("--scope", help="A scope; repeat for several.")] = [],  # noqa: B006 - typer reads it
    name: Annotated[str, typer.Option("--name", help="A name for the key.")] = "",
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key (its token is printed only now)."""
    try:
        scopes = validate_scopes(scope)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if project is None and scopes != ["admin"]:
        err.print("[red]error:[/red] a key without --project is an admin key and takes exactly --scope admin")
        raise typer.Exit(2)

    async def job(t: Tenancy) -> Any:
        if project is not None and not await t.project_exists(project):
            raise ValueError(f"no project {project}")
        return await t.create_key(project_id=project, scopes=scopes, name=name)

    key = with_tenancy(database_url(database), job)
    emit(key.as_public(), as_json, f"key {key.id}\ntoken {key.token}")


@key_app.command("list")
def key_list(project: Annotated[str, typer.Option("--project")], database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List a project's keys (never their tokens)."""
    keys = with_tenancy(database_url(database), lambda t: t.list_keys(project))
    emit(keys, as_json, "\n".join(f"{k['id']}  {','.join(k['scopes'])}  {k['name']}{'  (revoked)' if k['revoked_at'] else ''}" for k in keys))


@key_app.command("revoke")
def key_revoke(key_id: str, project: Annotated[str, typer.Option("--project")], database: DatabaseOpt = None) -> None:
    """Revoke a key."""
    if not with_tenancy(database_url(database), lambda t: t.revoke_key(project, key_id)):
        err.print("[red]error:[/red] no such active key in that project")
        raise typer.Exit(1)


@app.command("import")
def import_events(
    file: Annotated[str, typer.Argument(help="NDJSON file (or one JSON array) of generic events, or an `eventdock export`.")],
    project: Annotated[str | None, typer.Option("--project", help="Project id (default: the only, or the first, project).")] = None,
    database: DatabaseOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Events per pipeline batch.")] = 5000,
    as_json: JsonOpt = False,
) -> None:
    """Import events through the ingest pipeline (source `import`; idempotent by event id)."""
    from pathlib import Path

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from eventdock.app import build_services
    from eventdock.config import Settings
    from eventdock.dialects.import_file import ImportFailed, import_file
    from eventdock.store.lifecycle import poll_suppressions
    from eventdock.store.query_tail import LiveTail

    path = Path(file)
    if not path.is_file():
        err.print(f"[red]error:[/red] no such file: {file}")
        raise typer.Exit(2)
    settings = Settings.from_env(database_url=database_url(database))

    async def run() -> Any:
        svc = build_services(settings)
        try:
            await asyncio.to_thread(svc.db.migrate)
            target = await svc.tenancy.get_project(project) if project else await svc.tenancy.first_project()
            if target is None:
                raise ImportFailed(f"no project {project}" if project else "the database has no project; run `eventdock init` first")
            LiveTail(svc.db).attach(svc.writer)  # live-tail subscribers on PostgreSQL servers see imported events
            await poll_suppressions(svc.db, svc.pipeline.suppressions)  # erased people stay erased
            svc.writer.start()
            await svc.writer.opened()
            try:
                with Progress(
                    "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err, transient=True,
                ) as bar:
                    task = bar.add_task(f"importing {path.name}", total=path.stat().st_size)
                    report = await import_file(
                        svc, target.id, path, batch_size=batch_size, progress=lambda done: bar.update(task, completed=done)
                    )
            finally:
                await svc.writer.stop()  # commits what is queued and writes the usage counters
                await svc.writer.flush_usage()  # only if stop() could not write them
            return target, report
        finally:
            await svc.db.dispose()

    try:
        target, report = asyncio.run(run())
    except (ImportFailed, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True, markup=True, highlight=False)
        raise typer.Exit(1) from None
    document = {"project_id": target.id, **report.as_public()}
    emit(
        document,
        as_json,
        f"imported {report.read} events into {target.id}: {report.stored} stored, {report.duplicates} already stored, "
        f"{report.quarantined} quarantined in {report.seconds:.1f} s ({document['events_per_second']} events/s)",
    )


@app.command("export")
def export_events(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    after: Annotated[str | None, typer.Option("--after", help="From this time (RFC 3339 or unix time), inclusive.")] = None,
    before: Annotated[str | None, typer.Option("--before", help="Up to this time, exclusive.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Only events of this name.")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Export stored events as NDJSON (oldest first, the listing shape), streamed."""
    import msgspec

    from eventdock.core.events import parse_time, public
    from eventdock.store.query import EventFilter, iter_oldest_first

    bounds = {}
    for name, raw in (("after", after), ("before", before)):
        if raw is not None:
            bounds[name] = parse_time(raw)
            if bounds[name] is None:
                err.print(f"[red]error:[/red] --{name} must be an RFC 3339 date-time or a unix timestamp")
                raise typer.Exit(2)
    encode = msgspec.json.Encoder().encode

    async def run() -> int:
        db = Database(database_url(database))
        try:
            await asyncio.to_thread(db.migrate)
            if not await Tenancy(db).project_exists(project):
                raise ValueError(f"no project {project}")
            f = EventFilter(project, name=event, after_ms=bounds.get("after"), before_ms=bounds.get("before"))
            count = 0
            sink = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115 - closed below
            try:
                async for rows in iter_oldest_first(db, f):
                    sink.write(b"".join(encode(public(r)) + b"\n" for r in rows))
                    count += len(rows)
            finally:
                sink.flush()
                if output:
                    sink.close()
            return count
        finally:
            await db.dispose()

    try:
        count = asyncio.run(run())
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    err.print(f"exported {count} events" + (f" to {output}" if output else ""))


@profile_app.command("export")
def profile_export(
    profile_id: Annotated[str, typer.Argument(help="Profile id (a merged id exports the profile it was merged into).")],
    project: ProjectOpt,
    output: Annotated[str | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Export a person's data as NDJSON: the profile, then every event of it and of the profiles merged into it."""
    from eventdock.dialects.cdp_lifecycle import profile_ndjson
    from eventdock.store.profiles import get_profile

    async def job(db: Database) -> int:
        profile = await get_profile(db, project, profile_id)
        if profile is None:
            raise ValueError(f"no profile {profile_id} in project {project}")
        lines = 0
        sink = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115 - closed below
        try:
            async for chunk in profile_ndjson(db, project, profile):
                sink.write(chunk)
                lines += chunk.count(b"\n")
        finally:
            sink.flush()
            if output:
                sink.close()
        return lines - 1

    count = with_database(database_url(database), job)
    err.print(f"exported the profile and {count} events" + (f" to {output}" if output else ""))


@profile_app.command("delete")
def profile_delete(
    profile_id: Annotated[str, typer.Argument(help="Profile id (a merged id erases the profile it was merged into).")],
    project: ProjectOpt,
    suppress: Annotated[bool, typer.Option("--suppress", help="Keep hashes of the identifiers and drop later events that carry them.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Erase now and wait until done (default), or leave it to a server.")] = True,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person: the profile, the profiles merged into it, their identifiers, traits, events and violations."""
    from eventdock.config import Settings
    from eventdock.store import erasure
    from eventdock.store.lifecycle import Remover

    settings = Settings.from_env(database_url=database_url(database))

    async def job(db: Database) -> Any:
        async with db.write() as conn:
            deletion = await conn.run_sync(erasure.request_deletion, project, profile_id, suppress)
        if deletion is None:
            raise ValueError(f"no profile {profile_id} in project {project}")
        remover = Remover(db, settings)
        while wait and deletion.status != "completed":
            if await remover.run(expire=False) is None:  # a server's remover holds the lock: it erases it
                await asyncio.sleep(0.5)
            deletion = await erasure.get_deletion(db, project, deletion.id) or deletion
        return deletion

    deletion = with_database(settings.database_url, job)
    public = deletion.as_public()
    emit(public, as_json, f"deletion {public['id']} of profile {public['profileId']}: {public['status']}, removed {public['deleted']}")


def main() -> None:
    app()
