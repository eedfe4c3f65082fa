"""Event schemas API, PostHog-compatible (SPEC §5, seed 001). Issue #3."""

from __future__ import annotations

from fastapi import APIRouter

from eventdock.dialects.drf import render_error

router = APIRouter(tags=["event schemas (PostHog)"])

__all__ = ["render_error", "router"]
