"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.db import ping
from app.problems import problem_response

router = APIRouter(tags=["health"])
log = logging.getLogger("archplan.health")


class HealthStatus(BaseModel):
    status: str
    database: str | None = None


@router.get("/healthz", response_model=HealthStatus, summary="Liveness: the process is serving")
def healthz() -> HealthStatus:
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    response_model=HealthStatus,
    summary="Readiness: the database answers",
    responses={503: {"description": "The database is unreachable", "content": {"application/problem+json": {}}}},
)
def readyz(request: Request):
    engine = request.app.state.engine
    try:
        ping(engine)
    except Exception as exc:  # any driver error means "not ready"
        log.warning("readiness check failed: %s", exc.__class__.__name__)
        return problem_response(
            503, f"The database is unreachable ({exc.__class__.__name__}).", title="Not ready",
            instance="/readyz", headers={"Retry-After": "5"},
        )
    return HealthStatus(status="ready", database=engine.dialect.name)
