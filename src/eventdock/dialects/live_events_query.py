"""Query parameters of the live-events dialect (JSON:API 1.1).

Each route names the parameters it knows; any other is refused with 400 and
``source.parameter`` — JSON:API 1.1 §query-parameters-custom: a server that
"does not know how to process" a query parameter "MUST return 400 Bad
Request". The family ``fields[TYPE]`` (§fetching-sparse-fieldsets) is known
on every route that answers a document; ``filter[only_listings]`` is
Monterosa's own listing filter: every live event here is listed, so it is
accepted and narrows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from eventdock.core import live
from eventdock.core.errors import FieldError, InvalidInput
from eventdock.core.paging import decode_cursor
from eventdock.core.params import parse_int

INCLUDES = ("stats", "project")
SORTS = {"start_time": False, "-start_time": True}
# The fields (attributes and relationships) of each resource type we answer.
FIELDS: dict[str, frozenset[str]] = {
    "events": frozenset({
        "name", "duration", "original_duration", "start_mode", "end_mode", "repeat", "repeat_in", "feed_uuid",
        "live_stats_uuid", "extra_time", "start_at", "start_at_iso", "end_at", "end_at_iso", "settings", "state",
        "actions", "elements", "stats", "project",
    }),  # fmt: skip
    "stats": frozenset({"ingested_events"}),
    "projects": frozenset({"name", "created_at"}),
}
BOOLEANS = frozenset({"true", "false", "1", "0"})

# What each kind of route understands (besides fields[TYPE]).
ONE = frozenset({"include"})
COLLECTION = frozenset({"include", "sort", "page[count]", "page[cursor]", "filter[state]", "filter[only_listings]"})
PAGED = frozenset({"page[count]", "page[cursor]"})
NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Query:
    include: list[str] = field(default_factory=list)
    # Sparse fieldsets: type -> the only fields to render (absent: all of them).
    fields: dict[str, frozenset[str]] = field(default_factory=dict)
    sort_descending: bool = False
    page_count: int = 20
    after: tuple[int, str] | None = None
    states: list[str] | None = None


def _bad(name: str, message: str, value: str | None = None) -> InvalidInput:
    error = FieldError((name,), message, code="parameter") if value is None else FieldError((name,), message, value, code="parameter")
    return InvalidInput(f"{name}: {message}.", errors=[error])


def read(request: Request, known: frozenset[str], *, documents: bool = True) -> Query:
    """The route's query parameters, or ``InvalidInput`` (400) naming the first bad one.

    ``documents``: the route answers a JSON:API document, so ``fields[TYPE]``
    applies (not on PATCH and DELETE, which answer 204).
    """
    params = request.query_params
    fields: dict[str, frozenset[str]] = {}
    for name in params:
        if documents and name.startswith("fields[") and name.endswith("]"):
            fields[name[7:-1]] = _fieldset(name, params[name])
        elif name not in known:
            raise _bad(name, "is not a query parameter this endpoint supports")
    # Only known parameters are left: each parses to its default when absent.
    sort = params.get("sort", "start_time")
    if sort not in SORTS:
        raise _bad("sort", "must be start_time or -start_time", sort)
    only_listings = params.get("filter[only_listings]")
    if only_listings is not None and only_listings.strip().lower() not in BOOLEANS:
        raise _bad("filter[only_listings]", "must be true or false", only_listings)
    return Query(
        include=_includes(params.get("include")),
        fields=fields,
        sort_descending=SORTS[sort],
        page_count=_page_count(params.get("page[count]")),
        after=_cursor(params.get("page[cursor]")),
        states=_states(params.get("filter[state]")),
    )


def _fieldset(name: str, raw: str) -> frozenset[str]:
    kind = name[7:-1]
    known = FIELDS.get(kind)
    if known is None:
        raise _bad(name, f"{kind!r} is not a resource type of this API ({', '.join(FIELDS)})")
    wanted = frozenset(n.strip() for n in raw.split(",") if n.strip())
    unknown = sorted(wanted - known)
    if unknown:
        raise _bad(name, f"{unknown[0]!r} is not a field of {kind}", raw)
    return wanted


def _includes(raw: str | None) -> list[str]:
    if raw is None:
        return []
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in INCLUDES]
    if unknown:
        raise _bad("include", f"{unknown[0]!r} is not a supported relationship ({', '.join(INCLUDES)})")
    return list(dict.fromkeys(names))


def _page_count(raw: str | None) -> int:
    if raw is None:
        return 20
    count = parse_int(raw, 1, 100)
    if count is None:
        raise _bad("page[count]", "must be an integer from 1 to 100", raw)
    return count


def _cursor(raw: str | None) -> tuple[int, str] | None:
    if not raw:
        return None
    try:
        after = decode_cursor(raw, "page[cursor]")
        if not -(2**63) <= after[0] < 2**63 or "\x00" in after[1]:
            raise InvalidInput()
    except InvalidInput:
        raise _bad("page[cursor]", "is invalid", raw) from None
    return after


def _states(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    states = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in states if s not in live.STATES]
    if unknown:
        raise _bad("filter[state]", f"{unknown[0]!r} is not one of {', '.join(live.STATES)}", raw)
    return states
