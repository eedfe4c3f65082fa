"""Projects and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update

from eventdock.core.auth import KeyRecord, hash_token, new_token
from eventdock.core.events import format_ms, now_ms
from eventdock.store import key_revocations
from eventdock.store.database import Database
from eventdock.store.tables import api_keys, projects


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    created_at_ms: int
    # Ingest rate limit of this project; None: the global setting applies.
    rate_limit_per_second: int | None = None
    rate_limit_burst: int | None = None
    # Days events and violations are kept (SPEC §11); None: the server's default.
    retention_days: int | None = None

    def as_public(self, *, limits: bool = True) -> dict[str, Any]:
        public: dict[str, Any] = {"id": self.id, "name": self.name, "created_at": format_ms(self.created_at_ms)}
        if limits:
            public["rate_limit_per_second"] = self.rate_limit_per_second
            public["rate_limit_burst"] = self.rate_limit_burst
            public["retention_days"] = self.retention_days
        return public


_PROJECT_COLUMNS = (
    projects.c.id, projects.c.name, projects.c.created_at, projects.c.rate_limit_per_second, projects.c.rate_limit_burst, projects.c.retention_days
)  # fmt: skip
_UNSET: Any = object()


@dataclass(frozen=True)
class NewKey:
    id: str
    token: str
    scopes: list[str]
    project_id: str | None
    name: str

    def as_public(self) -> dict[str, Any]:
        return {"id": self.id, "token": self.token, "scopes": self.scopes, "project_id": self.project_id, "name": self.name}


class Tenancy:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_project(
        self, name: str, *, rate_limit_per_second: int | None = None, rate_limit_burst: int | None = None, retention_days: int | None = None
    ) -> Project:
        project = Project(
            id=str(uuid.uuid4()),
            name=name,
            created_at_ms=now_ms(),
            rate_limit_per_second=rate_limit_per_second,
            rate_limit_burst=rate_limit_burst,
            retention_days=retention_days,
        )
        async with self.db.write() as conn:
            await conn.execute(
                insert(projects).values(
                    id=project.id,
                    name=name,
                    created_at=project.created_at_ms,
                    rate_limit_per_second=rate_limit_per_second,
                    rate_limit_burst=rate_limit_burst,
                    retention_days=retention_days,
                )
            )
        return project

    async def update_project(
        self,
        project_id: str,
        *,
        name: str = _UNSET,
        rate_limit_per_second: int | None = _UNSET,
        rate_limit_burst: int | None = _UNSET,
        retention_days: int | None = _UNSET,
    ) -> Project | None:
        """Change the given fields (None for a rate limit or the retention: back to the global one)."""
        given = (
            ("name", name), ("rate_limit_per_second", rate_limit_per_second), ("rate_limit_burst", rate_limit_burst), ("retention_days", retention_days)
        )  # fmt: skip
        values = {k: v for k, v in given if v is not _UNSET}
        if values:
            async with self.db.write() as conn:
                await conn.execute(update(projects).where(projects.c.id == project_id).values(**values))
        return await self.get_project(project_id)

    async def rate_limits(self, project_ids: Sequence[str]) -> dict[str, tuple[float | None, float | None]]:
        """(events/s, burst) of each existing project among ``project_ids``."""
        c = projects.c
        async with self.db.read() as conn:
            rows = await conn.execute(select(c.id, c.rate_limit_per_second, c.rate_limit_burst).where(c.id.in_(list(project_ids))))
            return {r.id: (r.rate_limit_per_second, r.rate_limit_burst) for r in rows}

    async def list_projects(self) -> list[Project]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(*_PROJECT_COLUMNS).order_by(projects.c.created_at, projects.c.id))
            return [Project(*row) for row in rows]

    async def get_project(self, project_id: str) -> Project | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_PROJECT_COLUMNS).where(projects.c.id == project_id))).first()
        return Project(*row) if row else None

    async def project_exists(self, project_id: str) -> bool:
        return await self.get_project(project_id) is not None

    async def first_project(self) -> Project | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_PROJECT_COLUMNS).order_by(projects.c.created_at).limit(1))).first()
        return Project(*row) if row else None

    async def count_projects(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(projects))).scalar_one())

    async def create_key(self, *, project_id: str | None, scopes: list[str], name: str = "") -> NewKey:
        token = new_token()
        key = NewKey(id=str(uuid.uuid4()), token=token, scopes=scopes, project_id=project_id, name=name)
        async with self.db.write() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key.id, project_id=project_id, name=name, token_hash=hash_token(token), scopes=scopes, created_at=now_ms()
                )
            )
        return key

    async def list_keys(self, project_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at, api_keys.c.revoked_at)
                .where(api_keys.c.project_id == project_id)
                .order_by(api_keys.c.created_at, api_keys.c.id)
            )
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "scopes": r.scopes,
                    "project_id": project_id,
                    "created_at": format_ms(r.created_at),
                    "revoked_at": format_ms(r.revoked_at) if r.revoked_at else None,
                }
                for r in rows
            ]

    async def revoke_key(self, project_id: str, key_id: str) -> bool:
        """Revoke, and tell every worker and node (``store.key_revocations``)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.project_id == project_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
            revoked = result.rowcount > 0
            if revoked:
                await key_revocations.announce(conn, self.db)
        if revoked:
            key_revocations.announced(self.db)
        return revoked

    async def key_by_hash(self, digest: str) -> KeyRecord | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(api_keys.c.id, api_keys.c.project_id, api_keys.c.name, api_keys.c.scopes, api_keys.c.revoked_at).where(
                        api_keys.c.token_hash == digest
                    )
                )
            ).first()
        if row is None:
            return None
        return KeyRecord(id=row.id, project_id=row.project_id, name=row.name, scopes=list(row.scopes), revoked=row.revoked_at is not None)

    async def bootstrap(self, *, force_new_key: bool = False) -> tuple[Project, NewKey] | None:
        """Create the ``default`` project and an admin key on an empty database.

        Returns None when the database already has a project, unless
        ``force_new_key`` (``eventdock init``), which mints a new admin key.
        """
        existing = await self.first_project()
        if existing is not None and not force_new_key:
            return None
        project = existing or await self.create_project("default")
        key = await self.create_key(project_id=None, scopes=["admin"], name="admin")
        return project, key
