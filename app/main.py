"""Application factory: routers, middleware, error handling, lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.api.health import router as health_router
from app.api.v1 import install as install_api_v1
from app.api.v1 import router as api_v1_router
from app.auth import CSRF_COOKIE, SESSION_COOKIE, GuardMiddleware, SignInRequired, new_csrf_cookie
from app.db import database_fault, get_engine
from app.jobs.runner import JobRunner
from app.logging_setup import configure_logging
from app.problems import problem_response, validation_errors
from app.services import accounts as acc
from app.services.plans import LruCache, RepresentationCache
from app.settings import PROJECT_ROOT, Settings, get_settings
from app.web.auth_pages import router as auth_pages_router
from app.web.catalog import router as catalog_pages_router
from app.web.compare import router as compare_pages_router
from app.web.designs import router as designs_pages_router
from app.web.pages import router as pages_router
from app.web.templating import templates
from app.web.tradeoffs import router as tradeoffs_pages_router
from app.web.wizard import router as wizard_pages_router
from app.web.workspaces import router as workspaces_pages_router

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


class RequestContextMiddleware:
    """The outermost layer of every HTTP request (a plain ASGI middleware: no extra task or
    stream per request, unlike ``@app.middleware``):

    * a request id (``X-Request-ID`` from the caller, or a new one) on the response and in
      the log line ``GET /path 200 3.2ms request_id=…`` written when the response ends;
    * the security headers on every response (a route's own value wins);
    * a browser without a session gets a CSRF cookie for the forms it may post (sign-in);
      routes find its value in ``request.state.new_csrf_cookie``;
    * an exception escaping the app becomes a logged 500 (a problem document on the API, the
      error page elsewhere) when no response has started yet.
    """

    def __init__(self, app, *, secure_cookies: bool) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import MutableHeaders

        request = Request(scope)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        start = time.perf_counter()
        new_cookie = None
        if not _wants_problem(request) and SESSION_COOKIE not in request.cookies and CSRF_COOKIE not in request.cookies:
            new_cookie = request.state.new_csrf_cookie = new_csrf_cookie()
        status = 500
        started = False

        async def send_with_context(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if new_cookie is not None:
                    cookie = Response()
                    cookie.set_cookie(CSRF_COOKIE, new_cookie, httponly=True, samesite="lax", path="/",
                                      secure=self.secure_cookies)
                    headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        except Exception:
            log.exception("unhandled error %s %s request_id=%s", request.method, request.url.path, request_id)
            if started:
                raise
            await _error_response(request, 500, "An internal error occurred; it has been logged.")(
                scope, receive, send_with_context)
        finally:
            if request.url.path != "/healthz":
                log.info("%s %s %s %.1fms request_id=%s", request.method, request.url.path, status,
                         (time.perf_counter() - start) * 1000, request_id)


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
    # Representations that never change (stored plans' JSON), kept by this app for its database.
    app.state.representations = RepresentationCache()
    # What plan pages derive from a stored plan (validated plan, chart series, diagram), 256 plans.
    app.state.plan_views = LruCache(256)
    # Valid API keys, kept a few seconds (settings.api_key_cache_s) so polling clients cost no lookup.
    app.state.api_keys = acc.ApiKeyCache(settings.api_key_cache_s)
    # Inside request_context (added later = further out), so its answers get the headers too.
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes,
                       per_minute=settings.rate_limit_per_minute)

    app.add_middleware(RequestContextMiddleware, secure_cookies=settings.environment == "production")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error_response(request, exc.status_code, str(exc.detail) if exc.detail else None,
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(acc.NotFound)
    async def not_found(request: Request, exc: acc.NotFound):
        return _error_response(request, 404, str(exc) or "Not found.")

    @app.exception_handler(acc.Forbidden)
    async def forbidden(request: Request, exc: acc.Forbidden):
        return _error_response(request, 403, str(exc) or "Forbidden.")

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError):
        # Unreachable, read-only, full or busy database: 503 with a clear message (no traceback).
        fault = database_fault(exc)
        if fault is None:
            log.error("database error %s %s", request.method, request.url.path, exc_info=exc)
            return _error_response(request, 500, "An internal error occurred; it has been logged.")
        log.warning("database %s: %s %s: %s", fault.kind, request.method, request.url.path, fault.detail)
        return _error_response(request, 503, fault.message, headers={"Retry-After": str(fault.retry_after)})

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired):
        target = f"/login?next={exc.next_url}"
        if request.headers.get("HX-Request") == "true":
            # Back to the page the fragment was for, not to the fragment's own URL.
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            if page.netloc == request.url.netloc and page.path.startswith("/"):
                target = "/login?next=" + quote(page.path + (f"?{page.query}" if page.query else ""), safe="/")
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

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
    app.include_router(auth_pages_router)
    app.include_router(workspaces_pages_router)
    app.include_router(catalog_pages_router)
    app.include_router(designs_pages_router)
    app.include_router(wizard_pages_router)
    app.include_router(compare_pages_router)
    app.include_router(tradeoffs_pages_router)
    app.include_router(api_v1_router)
    install_api_v1(app)
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
