"""The exception tree every dialect renders in its own envelope.

    EventdockError                 status  meaning
    ├── InvalidInput                 400   the request or an event is malformed
    │   └── MalformedJSON            400   the body is not JSON at all
    ├── EventTooLarge                400   one event exceeds a per-event limit
    ├── AuthenticationFailed         401   no token, or an unknown/revoked one
    ├── PermissionDenied             403   missing scope, or another project
    ├── NotFound                     404   unknown project, resource or path
    ├── MethodNotAllowed             405
    ├── Conflict                     409
    ├── PayloadTooLarge              413   body or event count over the limit
    ├── UnsupportedMediaType         415
    ├── SchemaViolation              422   reject-mode schema refused the event
    ├── RateLimited                  429   project token bucket is empty
    └── Unavailable                  503   the writer's queue is full
        └── StoreUnavailable         503   the database cannot be reached
            └── StoreFull            503   the database (or its disk) is full

Each carries what a dialect needs to name the problem: a message, and for
input errors a list of ``FieldError`` whose ``path`` is a tuple of keys and
indexes relative to the request body (a dialect formats it its own way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_UNSET: Any = object()


@dataclass(frozen=True)
class FieldError:
    path: tuple[str | int, ...]
    message: str
    rejected_value: Any = _UNSET
    code: str = "invalid"

    @property
    def has_value(self) -> bool:
        return self.rejected_value is not _UNSET


class EventdockError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.message = message or self.default_message
        self.extra = extra

    default_message = "Internal server error."


class InvalidInput(EventdockError):
    status = 400
    code = "invalid"
    default_message = "The input is invalid."

    def __init__(self, message: str = "", errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.errors = errors or []


class MalformedJSON(InvalidInput):
    code = "parse_error"
    default_message = "Malformed JSON."


class EventTooLarge(InvalidInput):
    code = "event_too_large"


class AuthenticationFailed(EventdockError):
    status = 401
    code = "authentication_failed"
    default_message = "Invalid token."

    def __init__(self, message: str = "", *, provided: bool = True) -> None:
        super().__init__(message or ("Invalid token." if provided else "Authentication credentials were not provided."))
        self.provided = provided


class PermissionDenied(EventdockError):
    status = 403
    code = "permission_denied"
    default_message = "You do not have permission to perform this action."

    def __init__(self, message: str = "", *, missing_scope: str | None = None, other_project: bool = False) -> None:
        if missing_scope and not message:
            message = f"API key missing required scope '{missing_scope}'"
        super().__init__(message)
        self.missing_scope = missing_scope
        # The key belongs to another project (a dialect may word this its own way).
        self.other_project = other_project


class NotFound(EventdockError):
    status = 404
    code = "not_found"
    default_message = "Not found."

    def __init__(self, message: str = "", *, resource: str = "resource") -> None:
        super().__init__(message)
        self.resource = resource


class MethodNotAllowed(EventdockError):
    status = 405
    code = "method_not_allowed"
    default_message = "Method not allowed."


class Conflict(EventdockError):
    status = 409
    code = "conflict"
    default_message = "Conflict."


class PayloadTooLarge(EventdockError):
    status = 413
    code = "payload_too_large"
    default_message = "Content too large."


class UnsupportedMediaType(EventdockError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Unsupported media type."


class SchemaViolation(EventdockError):
    status = 422
    code = "schema_violation"
    default_message = "The event violates its schema and was quarantined."

    def __init__(self, message: str = "", errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class RateLimited(EventdockError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests."

    def __init__(self, message: str = "", *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(EventdockError):
    status = 503
    code = "unavailable"
    default_message = "The server is busy; retry later."

    def __init__(self, message: str = "", *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    """The database cannot be used now: unreachable, restarting, a connection
    lost mid-transaction. The store raises it for every driver exception of
    that kind (``store/faults.py``), so a dialect renders it as any 503. A
    write that fails with it was not acknowledged; retrying it with the same
    event ids stores it once."""

    default_message = "The database is unavailable; retry later."

    def __init__(self, message: str = "", *, retry_after: float = 1.0) -> None:
        super().__init__(message, retry_after=retry_after)

    def __reduce__(self) -> tuple[Any, ...]:
        # It travels from SQLite's writer process by pickle; keep what it says.
        return (_rebuild_store_error, (type(self), self.message, self.retry_after))


class StoreFull(StoreUnavailable):
    """The database cannot grow: its disk is full, or it reached its size cap
    (``EVENTDOCK_SQLITE_MAX_BYTES``). Reads still work; writes resume as soon
    as there is room."""

    default_message = "The database is full; retry later."


def _rebuild_store_error(kind: type[StoreUnavailable], message: str, retry_after: float) -> StoreUnavailable:
    return kind(message, retry_after=retry_after)


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; never advertise 0."""
    return str(max(1, int(seconds + 0.999)))
