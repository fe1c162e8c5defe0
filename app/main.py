"""Application factory: routers, middleware, error handling, lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.api.health import router as health_router
from app.api.v1 import router as api_v1_router
from app.db import get_engine
from app.jobs.runner import JobRunner
from app.logging_setup import configure_logging
from app.problems import problem_response, validation_errors
from app.settings import PROJECT_ROOT, Settings, get_settings
from app.web.catalog import router as catalog_pages_router
from app.web.compare import router as compare_pages_router
from app.web.designs import router as designs_pages_router
from app.web.pages import router as pages_router
from app.web.templating import templates
from app.web.tradeoffs import router as tradeoffs_pages_router
from app.web.wizard import router as wizard_pages_router

log = logging.getLogger("archplan.http")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    ),
}


def _wants_problem(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.engine = get_engine(settings.database_url)
        log.info("archplan %s starting (%s, %s)", __version__, settings.environment,
                 app.state.engine.dialect.name)
        # The embedded job runner (solves); settings.job_workers = 0 leaves jobs to another process.
        app.state.job_runner = JobRunner(app.state.engine, settings)
        app.state.job_runner.start()
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.job_runner.stop)

    app = FastAPI(
        title="archplan",
        version=__version__,
        summary="ML architecture planner and GPU capacity cost optimizer.",
        description=(
            "Plan GPU capacity for ML workloads: requirements in, a proven-optimal purchase "
            "plan out (on-demand, spot, reserved, savings plans, own servers), with deployable "
            "bundles. All errors are RFC 9457 `application/problem+json`."
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.middleware("http")
    async def request_context(request: Request, call_next):
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        start = time.perf_counter()
        try:
            response: Response = await call_next(request)
        except Exception:
            log.exception("unhandled error %s %s request_id=%s", request.method, request.url.path, request_id)
            response = _error_response(request, 500, "An internal error occurred; it has been logged.")
        elapsed_ms = (time.perf_counter() - start) * 1000
        response.headers["X-Request-ID"] = request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path not in ("/healthz",):
            log.info('%s %s %s %.1fms request_id=%s', request.method, request.url.path,
                     response.status_code, elapsed_ms, request_id)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error_response(request, exc.status_code, str(exc.detail) if exc.detail else None,
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        if _wants_problem(request):
            return problem_response(
                422, "The request is not valid; see `errors` for each field.",
                title="Validation failed", instance=request.url.path,
                errors=validation_errors(exc.errors()),
            )
        return _error_response(request, 422, "Some of the submitted values are not valid.")

    static_dir = PROJECT_ROOT / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir), check_dir=False), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "swagger.html", {"openapi_url": app.openapi_url})

    app.include_router(health_router)
    app.include_router(pages_router)
    app.include_router(catalog_pages_router)
    app.include_router(designs_pages_router)
    app.include_router(wizard_pages_router)
    app.include_router(compare_pages_router)
    app.include_router(tradeoffs_pages_router)
    app.include_router(api_v1_router)
    return app


def _error_response(request: Request, status: int, detail: str | None, headers=None) -> Response:
    if _wants_problem(request):
        return problem_response(status, detail, instance=request.url.path, headers=headers)
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "detail": detail},
        status_code=status,
        headers=headers,
    )
