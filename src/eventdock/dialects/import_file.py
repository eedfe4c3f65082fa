"""``eventdock import``: a file of generic events through the one pipeline.

The file is NDJSON (read line by line, never whole) or one JSON array
(decoded at once: prefer NDJSON for big files). Each object is parsed with
the generic-ingest rules (SPEC §7: ``event.name``/``event.type``,
``event.id``, ``timestamp``; the rest are properties). A line in the shape
``eventdock export`` writes (``{id, name, timestamp, properties, ...}``) is
taken as that event, so an export can be imported elsewhere.

Idempotent by event id: an object without ``event.id`` gets one derived from
its content (UUIDv5), so importing the same file again stores nothing twice
(two byte-identical lines without an id are one event). Events are committed
in batches through the group-commit writer with source ``import``; a bad
line stops the import, naming it, after the batches before it were stored
(fix it and run again: nothing is stored twice).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from eventdock.core.errors import FieldError, InvalidInput, MalformedJSON
from eventdock.core.events import Draft, parse_time
from eventdock.core.pipeline import IngestResult
from eventdock.dialects.generic_ingest import format_path, to_draft
from eventdock.http.body import decode_json
from eventdock.http.services import Services

SOURCE = "import"
_NAMESPACE = uuid.UUID("6f1d3c3e-5b1e-4d0a-9a7e-0e5f3c1d2b4a")
_EXPORT_KEYS = frozenset({"id", "name", "timestamp", "received_at", "source", "profile_id", "properties"})
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class ImportFailed(Exception):
    """A line that cannot be imported; the message names it."""


@dataclass
class ImportReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    seconds: float = 0.0

    def as_public(self) -> dict[str, Any]:
        rate = self.read / self.seconds if self.seconds else 0.0
        return {**self.__dict__, "events_per_second": round(rate)}


def _items(path: Path) -> Iterator[tuple[int, bytes, Any, int]]:
    """(line number or index, raw bytes, decoded value, bytes consumed so far)."""
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
        f.seek(0)
        if head.startswith(b"["):
            data = f.read()
            try:
                array = decode_json(data, _decode)
            except (msgspec.DecodeError, MalformedJSON) as exc:
                raise ImportFailed(f"{path}: malformed JSON: {exc}") from None
            if not isinstance(array, list):
                raise ImportFailed(f"{path}: expected a JSON array or NDJSON")
            for index, value in enumerate(array):
                yield index, _encode(value), value, len(data) if index == len(array) - 1 else 0
            return
        consumed = 0
        for number, line in enumerate(f, start=1):
            consumed += len(line)
            if not line.strip():
                continue
            try:
                value = decode_json(line, _decode)
            except (msgspec.DecodeError, MalformedJSON) as exc:
                raise ImportFailed(f"{path}:{number}: malformed JSON: {exc}") from None
            yield number, line.strip(), value, consumed


def _place(path: tuple[str | int, ...]) -> str:
    """``(12, "event.id")`` → ``line 12: event.id`` (array items are numbered from 0)."""
    if path and isinstance(path[0], int):
        rest = format_path(path[1:])
        return f"line {path[0]}" + (f" {rest}" if rest else "")
    return format_path(path)


def draft_of(where: int, raw: bytes, value: Any) -> Draft:
    """One object as a draft (export shape or generic event); raises ImportFailed."""
    if isinstance(value, dict) and _EXPORT_KEYS.issuperset(value) and {"id", "name", "properties"} <= value.keys():
        props, name, event_id = value["properties"], value["name"], value["id"]
        if isinstance(props, dict) and isinstance(name, str) and isinstance(event_id, (str, int)) and not isinstance(event_id, bool):
            ts = parse_time(value.get("timestamp")) if value.get("timestamp") is not None else None
            return Draft(name=name, properties=props, id=str(event_id), timestamp_ms=ts, name_path=(where, "name"), properties_path=(where, "properties"))
    if isinstance(value, dict) and value.get("event.id") is None:
        value["event.id"] = str(uuid.uuid5(_NAMESPACE, raw.decode("utf-8", "replace")))
    errors: list[FieldError] = []
    draft = to_draft(where, value, errors)
    if errors or draft is None:
        raise ImportFailed("; ".join(f"{_place(e.path)}: {e.message}" for e in errors) or f"{_place((where,))}: not importable")
    return draft


async def import_file(
    services: Services,
    project_id: str,
    path: Path,
    *,
    batch_size: int = 5000,
    in_flight: int = 4,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``path`` into ``project_id``; the writer must be running."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = ImportReport()
    pending: set[asyncio.Task[IngestResult]] = set()
    pipeline = services.pipeline

    def settle(task: asyncio.Task[IngestResult]) -> None:
        result = task.result()
        report.stored += result.stored
        report.quarantined += result.quarantined
        report.duplicates += result.duplicates

    async def submit(drafts: list[Draft]) -> None:
        try:
            events = pipeline.normalise(project_id, drafts, SOURCE)
        except InvalidInput as exc:  # per-event limits (SPEC §3.6), named by line
            raise ImportFailed("; ".join(f"{_place(e.path)}: {e.message}" for e in exc.errors) or exc.message) from None
        pending.add(asyncio.create_task(pipeline.commit(project_id, events, SOURCE)))
        while len(pending) >= in_flight:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                settle(task)

    drafts: list[Draft] = []
    try:
        for where, raw, value, consumed in _items(path):
            drafts.append(draft_of(where, raw, value))
            report.read += 1
            if len(drafts) >= batch_size:
                await submit(drafts)
                drafts = []
                if progress is not None:
                    progress(consumed)
        if drafts:
            await submit(drafts)
        for task in list(pending):
            await task
            pending.discard(task)
            settle(task)
    finally:
        # On failure: let what was handed to the writer finish (it is stored), then report.
        await asyncio.gather(*pending, return_exceptions=True)
    if progress is not None:
        progress(path.stat().st_size)
    report.seconds = loop.time() - started
    return report
