"""Query, trend, live tail and export (SPEC §8). Issue #5."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["query"])
