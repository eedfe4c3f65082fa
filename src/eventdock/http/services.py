"""What a request handler can reach: one ``Services`` per process.

Built by the app factory at start-up and kept on ``app.state.services``; the
dialects read it through ``services(request)`` and authorise with
``authorise``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from eventdock.config import Settings
from eventdock.core.auth import Authenticator, Principal, token_from_authorization
from eventdock.core.errors import NotFound
from eventdock.core.pipeline import Pipeline
from eventdock.core.ratelimit import ProjectLimitsSync, RateLimiter
from eventdock.http.body import ReadingBudget
from eventdock.store.database import Database
from eventdock.store.tenancy import Tenancy
from eventdock.store.writer import GroupCommitWriter


@dataclass
class Services:
    settings: Settings
    db: Database
    tenancy: Tenancy
    authenticator: Authenticator
    writer: GroupCommitWriter
    pipeline: Pipeline
    rate_limiter: RateLimiter
    # The bytes of ingest bodies this worker reads at once (read_ingest_body).
    reading: ReadingBudget
    # Extension slots filled by feature modules at start-up (governance,
    # live-event clock, live tail …), by name.
    extras: dict[str, Any] = field(default_factory=dict)
    _known_projects: set[str] = field(default_factory=set)
    # Per-project rate limits from the store, applied to ``rate_limiter``.
    project_limits: ProjectLimitsSync = field(init=False)

    def __post_init__(self) -> None:
        self.project_limits = ProjectLimitsSync(self.rate_limiter, self.tenancy.rate_limits)

    async def project_exists(self, project_id: str) -> bool:
        """Projects are never deleted, so a hit is cached for good; misses are not."""
        if project_id in self._known_projects:
            return True
        if await self.tenancy.project_exists(project_id):
            self._known_projects.add(project_id)
            return True
        return False


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def authorise(request: Request, scope: str, project_id: str | None, *, token: str | None = None) -> Principal:
    """Authenticate the caller and check ``scope`` on ``project_id``.

    Order of answers: 401 (no or bad token), 403 (scope, or another
    project), 404 (the project does not exist). ``token`` overrides the
    Authorization header (the event-schema dialect's ``personal_api_key``).
    """
    svc = services(request)
    if token is None:
        token = token_from_authorization(request.headers.get("authorization"))
    principal = await svc.authenticator.authenticate(token)
    principal.require(scope, project_id)
    if project_id is not None and not await svc.project_exists(project_id):
        raise NotFound("Project not found.", resource="project")
    acting_on = project_id or principal.project_id
    if acting_on is not None:
        await svc.project_limits.ensure(acting_on)
    return principal
