"""API keys and scopes (SPEC §2): tokens, hashing, and who may do what.

A token is ``edk_`` + 32 random bytes (URL-safe base64). Only its SHA-256 is
stored: the token carries 256 bits of entropy, so a slow password hash buys
nothing and would cost every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventdock.core.errors import AuthenticationFailed, PermissionDenied

TOKEN_PREFIX = "edk_"

SCOPES = (
    "events:write",
    "events:read",
    "event_definition:read",
    "event_definition:write",
    "live_events:read",
    "live_events:write",
    "profiles:read",
    "profiles:write",
    "admin",
    "*",
)
SCOPE_ALIASES = {
    "openpipeline.events": "events:write",
    "openpipeline:events:ingest": "events:write",
}


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def canonical_scope(scope: str) -> str:
    return SCOPE_ALIASES.get(scope, scope)


def validate_scopes(scopes: list[str]) -> list[str]:
    """The scopes as given (aliases kept, so a key shows what it was made with); raises ValueError."""
    if not scopes:
        raise ValueError("at least one scope is required")
    unknown = [s for s in scopes if canonical_scope(s) not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES + tuple(SCOPE_ALIASES))}")
    return list(dict.fromkeys(scopes))


@dataclass(frozen=True)
class Principal:
    """The caller: one API key."""

    key_id: str
    project_id: str | None  # None: an admin key, bound to no project
    name: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.project_id is None and "admin" in self.scopes

    def has_scope(self, scope: str) -> bool:
        if self.is_admin:
            return True
        held = self.scopes
        if "*" in held or "admin" in held or scope in held:
            return True
        if scope.endswith(":read"):
            return scope[: -len("read")] + "write" in held
        return False

    def require(self, scope: str, project_id: str | None = None) -> None:
        """Raise unless this key may use ``scope`` on ``project_id``."""
        if project_id is not None and self.project_id is not None and project_id != self.project_id:
            raise PermissionDenied("This API key is not allowed to access this project.", other_project=True)
        if project_id is None and scope == "admin" and not self.is_admin:
            raise PermissionDenied("Only an admin key may manage projects.", missing_scope=None)
        if not self.has_scope(scope):
            raise PermissionDenied(missing_scope=scope)


@dataclass(frozen=True)
class KeyRecord:
    id: str
    project_id: str | None
    name: str
    scopes: list[str]
    revoked: bool


KeyLookup = Callable[[str], Awaitable[KeyRecord | None]]


class Authenticator:
    """Turns a token into a ``Principal``, caching lookups for a few seconds.

    Revocations made by this or any other process drop the cache as they
    happen (``forget``, driven by ``store.key_revocations``; on SQLite by
    ``revoked_elsewhere``, asked before trusting a cached key); ``ttl``
    bounds how long a revoked key works should that signal be lost (the
    database unreachable while it was sent). Unknown tokens are cached
    too, so a flood of bad tokens costs one lookup each per ``ttl``, and
    the cache is bounded in size. Concurrent misses for one
    token share a single lookup: when an entry expires under load, the
    hundreds of requests in flight with that token must not each go to the
    database.
    """

    def __init__(self, lookup: KeyLookup, *, ttl: float = 2.0, max_entries: int = 10_000) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._max = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}
        # Bumped by forget(): a lookup that started before it must not cache.
        self._generation = 0
        # True once after each revocation made elsewhere, if set.
        self.revoked_elsewhere: Callable[[], bool] | None = None

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationFailed(provided=False)
        digest = hash_token(token)
        hit = self._cache.get(digest)
        if hit is not None and self.revoked_elsewhere is not None and self.revoked_elsewhere():
            self.forget()
            hit = None
        if hit is not None and hit[0] > time.monotonic():
            principal = hit[1]
        else:
            principal = await self._look_up(digest)
        if principal is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        return principal

    async def _look_up(self, digest: str) -> Principal | None:
        # The lookup runs as its own task so that a waiter going away (a
        # client disconnecting) never cancels it for the others.
        task = self._pending.get(digest)
        if task is None:
            task = self._pending[digest] = asyncio.ensure_future(self._fetch(digest))
            task.add_done_callback(lambda done: self._settled(digest, done))
        return await asyncio.shield(task)

    def _settled(self, digest: str, task: asyncio.Future[Principal | None]) -> None:
        self._pending.pop(digest, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not logged as lost

    async def _fetch(self, digest: str) -> Principal | None:
        generation = self._generation
        record = await self._lookup(digest)
        principal = None
        if record is not None and not record.revoked:
            principal = Principal(
                key_id=record.id,
                project_id=record.project_id,
                name=record.name,
                scopes=frozenset(canonical_scope(s) for s in record.scopes),
            )
        if generation == self._generation:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self._ttl, principal)
        return principal

    def forget(self) -> None:
        """Drop every cached key (after a revocation in this process)."""
        self._generation += 1
        self._cache.clear()
        self._pending.clear()


def token_from_authorization(header: str | None) -> str | None:
    """``Bearer <token>`` or ``Api-Token <token>`` (case-insensitive scheme)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() in ("bearer", "api-token") and token.strip():
        return token.strip()
    return None

