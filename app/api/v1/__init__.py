"""REST API version 1 (``/api/v1``).

Every route needs a caller (an API key or a signed-in browser: :data:`app.api.v1.deps.Caller`);
every error is an RFC 9457 ``application/problem+json``. :func:`install` adds what the app
needs beyond the router: the handler of :class:`~app.api.v1.deps.ApiProblem` and the shared
``Problem`` schema in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from app.api.v1.analyses import router as analyses_router
from app.api.v1.comparisons import router as comparisons_router
from app.api.v1.deps import ApiProblem, Problem, current_principal
from app.api.v1.designs import router as designs_router
from app.api.v1.jobs import router as jobs_router
from app.api.v1.offerings import router as offerings_router
from app.api.v1.plans import router as plans_router
from app.api.v1.workspaces import router as workspaces_router

router = APIRouter(prefix="/api/v1", dependencies=[Depends(current_principal)])
router.include_router(workspaces_router)
router.include_router(designs_router)
router.include_router(jobs_router)
router.include_router(analyses_router)
router.include_router(plans_router)
router.include_router(comparisons_router)
router.include_router(offerings_router)

TAGS = [
    {"name": "workspaces", "description": "The workspaces the caller reaches (an API key: its own)."},
    {"name": "designs", "description": "Requirements (WorkloadSpec documents) in a workspace."},
    {"name": "solves", "description": "Solving a design is a job: 202 Accepted, then poll the job."},
    {"name": "plans", "description": "Solved plans: figures, purchase schedule (JSON or CSV), bundles, comparisons."},
    {"name": "catalog", "description": "The price catalog: snapshots and offerings."},
]


def install(app: FastAPI) -> None:
    """Handle :class:`ApiProblem` and put ``Problem`` (and tags) into the OpenAPI document."""

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, exc: ApiProblem):
        return exc.response(request)

    app.openapi_tags = [*(app.openapi_tags or []), *TAGS]
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in problem.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["Problem"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["install", "router"]
