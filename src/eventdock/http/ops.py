"""Operations endpoints, no authentication: health, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from eventdock.core.errors import StoreUnavailable, retry_after_header
from eventdock.http import metrics
from eventdock.http.services import services

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable", responses={503: {"description": "Database unreachable (with Retry-After)"}})
async def readyz(request: Request) -> Response:
    try:
        await services(request).db.ping()
    except StoreUnavailable as exc:
        return JSONResponse(
            {"status": "unavailable", "detail": exc.message}, status_code=503, headers={"Retry-After": retry_after_header(exc.retry_after)}
        )
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics(request: Request) -> Response:
    metrics.WRITER_QUEUE.set(services(request).writer.queued_events)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
