"""Suppressed identifiers (SPEC §11): events of an erased person, dropped.

An erasure with ``?suppress=true`` keeps, for each identifier of the
erased profiles, a keyed hash: BLAKE2b of ``kind\\0value`` under the
project's random salt. The list holds no identifier; the salt keeps it
from being read against a precomputed table of hashed e-mail addresses
(someone holding the database can still test a value they already know).

``Suppressions`` is each worker's copy of those hashes, by project, and
the ingest pipeline's check. The check costs one dict lookup per request
for a project that has none (the usual case); for one that has, a hash
per identifier of each event that carries any. The store reloads a
project's hashes when its version changes (``store/erasure.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from eventdock.core.events import Event


def digest(salt: bytes, kind: str, value: str) -> str:
    """The stored hash of one identifier (kind and value as the resolver keeps them)."""
    return hashlib.blake2b(f"{kind}\0{value}".encode(), key=salt, digest_size=32).hexdigest()


@dataclass(frozen=True)
class ProjectSuppressions:
    salt: bytes
    version: int
    digests: frozenset[str]

    def carries(self, event: Event) -> bool:
        identity = event.identity
        if identity is None:
            return False
        return any(digest(self.salt, kind, value) in self.digests for kind, value in identity.identifiers)


class Suppressions:
    """Per worker: the projects that have suppressed identifiers, and their hashes."""

    def __init__(self) -> None:
        self.projects: dict[str, ProjectSuppressions] = {}

    def replace(self, project_id: str, held: ProjectSuppressions) -> None:
        self.projects = {**self.projects, project_id: held}  # readers never see a dict being changed

    def versions(self) -> dict[str, int]:
        return {p: s.version for p, s in self.projects.items()}

    def kept_positions(self, project_id: str, events: Sequence[Event]) -> list[int] | None:
        """Positions of the events that carry no suppressed identifier; None when that is all of them."""
        held = self.projects.get(project_id)
        if held is None:
            return None
        kept = [i for i, e in enumerate(events) if not held.carries(e)]
        return None if len(kept) == len(events) else kept
