"""``/catalog``: browse the price snapshot (server-rendered; htmx swaps the results).

One template renders the whole page, or only its ``results`` block when htmx asks for it
(``HX-Request`` with ``HX-Target: catalog-results``; history restores and other targets get
the whole page). Filters live in the URL, so every
state can be bookmarked and the page works without JavaScript. Signed-in users only.

Administrators (``User.is_admin``) also get a "Refresh prices" form: ``POST /catalog/refresh``
queues a price refresh job (:mod:`app.jobs.refresh`; one per provider at a time — asking
again while one is queued or running leads to that one) and redirects to its page,
``/catalog/refresh/jobs/{id}``, which shows its progress until it ends, then the new
snapshot and what changed, or why nothing changed. The page refreshes itself without
JavaScript; with htmx it polls ``…/status`` (204 while nothing changed). Others get 403.
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from app.auth import WebUser
from app.catalog.gpus import CANONICAL_ACCELERATORS
from app.jobs import refresh as refresh_jobs
from app.jobs import service as jobs_svc
from app.models import Job
from app.services import accounts as acc
from app.services import catalog as svc
from app.web.deps import DbSession, FormGuard, PageUser, audit
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])

PAGE_SIZE = 50
TEMPLATE = "catalog/index.html"
JOB_TEMPLATE = "catalog/refresh_job.html"
JOB_POLL = "every 2s"


SessionDep = DbSession


def usd(value: float | None, digits: int | None = None) -> str:
    """``$1,234.56``; small prices keep more digits (``$0.0525``); None → ``—``."""
    if value is None:
        return "—"
    if digits is None:
        digits = 2 if value >= 10 else 3 if value >= 1 else 4
    return f"${value:,.{digits}f}"


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _clean(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in values if v and v.strip())


def _render(request: Request, context: dict, status: int = 200) -> HTMLResponse:
    fragment = (request.headers.get("HX-Request") == "true"
                and request.headers.get("HX-Target") == "catalog-results"
                and not request.headers.get("HX-History-Restore-Request"))
    headers = {"Vary": "HX-Request, HX-Target"}
    if not fragment:
        return templates.TemplateResponse(request, TEMPLATE, context, status_code=status, headers=headers)
    template = templates.env.get_template(TEMPLATE)
    html = "".join(template.blocks["results"](template.new_context({**context, "request": request})))
    return HTMLResponse(html, status_code=status, headers=headers)


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(
    request: Request,
    session: SessionDep,
    web: PageUser,
    gpu: Annotated[list[str], Query()] = [],  # noqa: B006
    provider: Annotated[list[str], Query()] = [],  # noqa: B006
    jurisdiction: Annotated[list[str], Query()] = [],  # noqa: B006
    compliance: Annotated[list[str], Query()] = [],  # noqa: B006
    min_mem: str = "",
    sort: str = "on_demand",
    page: str = "1",
    snapshot: str = "",
):
    return _catalog(request, session, web, gpu=gpu, provider=provider, jurisdiction=jurisdiction,
                    compliance=compliance, min_mem=min_mem, sort=sort, page=page, snapshot=snapshot)


def _catalog(request: Request, session: Session, web: WebUser, *, gpu: list[str] = [],  # noqa: B006
             provider: list[str] = [], jurisdiction: list[str] = [], compliance: list[str] = [],  # noqa: B006
             min_mem: str = "", sort: str = "on_demand", page: str = "1", snapshot: str = "",
             refresh: dict[str, Any] | None = None, refresh_status: int | None = None) -> HTMLResponse:
    """The catalog page; ``refresh`` (the refresh form's values and error) re-shows a refused
    refresh with ``refresh_status``."""
    errors: list[str] = []
    min_memory: float | None = None
    if min_mem.strip():
        try:
            min_memory = float(min_mem)
            if not math.isfinite(min_memory) or min_memory < 0:
                raise ValueError
        except ValueError:
            errors.append(f"Minimum GPU memory must be a number of GB (0 or more), not “{min_mem}”.")
            min_memory = None
    if sort not in svc.SORTS:
        errors.append(f"Unknown sort “{sort}”.")
        sort = "on_demand"
    try:
        page_no = max(1, int(page))
    except ValueError:
        page_no = 1
    gpu_models = _clean(gpu)
    filters = svc.OfferingFilters(
        gpu_models=gpu_models, providers=_clean(provider), jurisdictions=_clean(jurisdiction),
        compliance=_clean(compliance), min_gpu_memory_gb=min_memory or None,
        # "Any" means any GPU; TPUs, Trainium, … show when picked by name.
        accelerator_kinds=() if gpu_models else ("gpu",),
    )
    context: dict = {
        "active": "catalog", "filters": filters, "sort": sort, "sort_labels": svc.SORT_LABELS,
        "min_mem": min_mem.strip(), "usd": usd, "number": number, "snapshot_param": snapshot.strip(),
        "rows": [], "total": 0, "page": 1, "pages": 1, "page_size": PAGE_SIZE, "errors": errors,
        "snapshot": None, "options": None, "snapshots": [],
        **_refresh_context(session, web, refresh),
    }
    try:
        row = svc.get_snapshot_row(session, snapshot.strip() or None)
    except svc.SnapshotNotFoundError as exc:
        context["missing"] = str(exc)
        return _render(request, context, status=refresh_status or (404 if snapshot.strip() else 200))
    options = svc.filter_options(session, row)
    errors.extend(message for _field, message in svc.invalid_filters(options, filters))
    context.update(
        snapshot=row, options=options, snapshots=svc.list_snapshots(session),
        gpu_groups=[
            ("GPUs", [m for m in options.gpu_models if CANONICAL_ACCELERATORS.get(m, "gpu") == "gpu"]),
            ("Other accelerators", [m for m in options.gpu_models if CANONICAL_ACCELERATORS.get(m, "gpu") != "gpu"]),
        ],
    )
    if errors:
        return _render(request, context, status=422)

    total = svc.count_offerings(session, row, filters)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page_no = min(page_no, pages)
    offerings = svc.list_offerings(session, row, filters, sort=sort, limit=PAGE_SIZE,
                                   offset=(page_no - 1) * PAGE_SIZE)
    query = [("gpu", v) for v in filters.gpu_models] + [("provider", v) for v in filters.providers]
    query += [("jurisdiction", v) for v in filters.jurisdictions] + [("compliance", v) for v in filters.compliance]
    if min_mem.strip():
        query.append(("min_mem", min_mem.strip()))
    if sort != "on_demand":
        query.append(("sort", sort))
    if snapshot.strip():
        query.append(("snapshot", snapshot.strip()))

    def page_url(n: int) -> str:
        return "/catalog?" + urlencode([*query, ("page", str(n))])

    context.update(
        rows=svc.offering_views(row, offerings), total=total, page=page_no, pages=pages,
        first=(page_no - 1) * PAGE_SIZE + 1 if total else 0, last=min(total, page_no * PAGE_SIZE),
        prev_url=page_url(page_no - 1) if page_no > 1 else None,
        next_url=page_url(page_no + 1) if page_no < pages else None,
    )
    return _render(request, context, status=refresh_status or 200)


# --------------------------------------------------------------------------- price refresh jobs


def _refresh_context(session: Session, web: WebUser, form: dict[str, Any] | None) -> dict[str, Any]:
    """The refresh form of an administrator's catalog page (nothing for others)."""
    if not web.user.is_admin:
        return {"can_refresh": False}
    active = [j for j in (refresh_jobs.active_refresh(session, p) for p in refresh_jobs.PROVIDERS) if j is not None]
    return {"can_refresh": True, "refresh_providers": refresh_jobs.PROVIDERS,
            "refresh_form": form or {"provider": refresh_jobs.PROVIDERS[0], "regions": "", "label": ""},
            "refresh_active": [{"id": j.id, "provider": (j.payload or {}).get("provider"), "status": j.status,
                                "url": _job_url(j.id)} for j in active]}


def _require_admin(web: WebUser) -> None:
    if not web.user.is_admin:
        raise acc.Forbidden("Only administrators can refresh prices.")


def _job_url(job_id: int | None) -> str:
    return f"/catalog/refresh/jobs/{job_id}"


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _wake_runner(request: Request) -> None:
    runner = getattr(request.app.state, "job_runner", None)
    if runner is not None:
        runner.wake()


def _snapshot_url(snapshot_id: str | None) -> str | None:
    return f"/catalog?snapshot={quote(snapshot_id, safe='')}" if snapshot_id else None


def _job_view(session: Session, job: Job) -> dict[str, Any]:
    """What the refresh job page shows; ``seen`` changes whenever it would look different."""
    shown = jobs_svc.progress_of(session, job)
    active, position, percent, message = shown.active, shown.position, shown.percent, shown.message
    payload = job.payload or {}
    result = job.result if job.status == jobs_svc.SUCCEEDED and isinstance(job.result, dict) else None
    state = f"{job.status}|{percent}|{message}|{job.cancel_requested}"
    url = _job_url(job.id)
    return {
        "job": job, "job_active": active, "percent": percent, "message": message, "position": position,
        "provider": payload.get("provider") or "?", "regions": payload.get("regions") or [],
        "label": payload.get("label") or "", "result": result,
        "snapshot_url": _snapshot_url(result.get("snapshot_id")) if result else None,
        "base_url": _snapshot_url(result.get("base_snapshot_id")) if result else None,
        "more_warnings": max(0, int(result.get("warning_count") or 0) - len(result.get("warnings") or []))
        if result else 0,
        "seen": hashlib.sha256(state.encode()).hexdigest()[:12], "page_url": url, "status_url": url + "/status",
        "cancel_url": url + "/cancel", "poll": JOB_POLL,
    }


def _refresh_job(session: Session, job_id: str) -> Job:
    """The refresh job ``job_id``, or :class:`~app.services.accounts.NotFound` (a 404)."""
    jid = int(job_id) if job_id.isdigit() and len(job_id) < 12 else None
    job = refresh_jobs.get_refresh_job(session, jid) if jid is not None else None
    if job is None:
        raise acc.NotFound("No such price refresh job.")
    return job


def _render_job(request: Request, session: Session, job: Job, *, fragment: bool = False) -> HTMLResponse:
    from app.web.designs import iso, when

    context = {"active": "catalog", "jv": _job_view(session, job), "when": when, "iso": iso}
    if not fragment:
        return templates.TemplateResponse(request, JOB_TEMPLATE, context)
    return templates.TemplateResponse(request, "catalog/_refresh_status.html", context)


@router.post("/catalog/refresh")
def refresh_prices(
    request: Request,
    session: SessionDep,
    web: PageUser,
    provider: Annotated[str, Form()] = "",
    regions: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
):
    """Queue a price refresh (administrators) and go to its page; while one of the same
    provider is queued or running, go to that one."""
    _require_admin(web)
    try:
        job, created = refresh_jobs.enqueue_refresh(session, provider.strip(), regions, label,
                                                    requested_by=web.user.email)
    except refresh_jobs.RefreshRequestError as exc:
        form = {"provider": provider.strip(), "regions": regions, "label": label,
                "error": f"Could not queue the refresh: {exc}."}
        return _catalog(request, session, web, refresh=form, refresh_status=422)
    if created:
        audit(session, request, web, "pricing.refresh", workspace_id=None, target=f"job:{job.id}",
              detail={"provider": provider.strip(), "regions": (job.payload or {}).get("regions")})
        _wake_runner(request)
    return RedirectResponse(_job_url(job.id), status_code=303)


@router.get("/catalog/refresh/jobs/{job_id}", response_class=HTMLResponse)
def refresh_job_page(request: Request, session: SessionDep, web: PageUser, job_id: str):
    """The refresh job's page: progress while it runs (it refreshes itself), then its outcome."""
    _require_admin(web)
    job = _refresh_job(session, job_id)
    return _render_job(request, session, job)


@router.get("/catalog/refresh/jobs/{job_id}/status", response_class=HTMLResponse)
def refresh_job_status(request: Request, session: SessionDep, web: PageUser, job_id: str, seen: str = ""):
    """The page's status part, polled by htmx: 204 while nothing changed."""
    _require_admin(web)
    job = _refresh_job(session, job_id)
    view = _job_view(session, job)
    if _is_htmx(request) and seen == view["seen"] and view["job_active"]:
        return Response(status_code=204)
    return _render_job(request, session, job, fragment=True)


@router.post("/catalog/refresh/jobs/{job_id}/cancel")
def cancel_refresh_job(request: Request, session: SessionDep, web: PageUser, job_id: str):
    """Cancel a queued refresh at once; a running one stops (its fetch process is killed)."""
    _require_admin(web)
    job = _refresh_job(session, job_id)
    if job.status in jobs_svc.ACTIVE:
        job = jobs_svc.request_cancel(session, job.id) or job
        audit(session, request, web, "pricing.refresh_cancel", workspace_id=None, target=f"job:{job.id}")
    if _is_htmx(request):
        return _render_job(request, session, job, fragment=True)
    return RedirectResponse(_job_url(job.id), status_code=303)
