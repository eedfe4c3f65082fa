"""CDP profile endpoints (SPEC §3.5), in the CDP response wrapper. Issue #5."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["CDP profiles"])
