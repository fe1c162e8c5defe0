"""``/catalog``: browse the price snapshot (server-rendered; htmx swaps the results).

One template renders the whole page, or only its ``results`` block when htmx asks for it
(``HX-Request`` with ``HX-Target: catalog-results``; history restores and other targets get
the whole page). Filters live in the URL, so every
state can be bookmarked and the page works without JavaScript. Signed-in users only.
"""

from __future__ import annotations

import math
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.catalog.gpus import CANONICAL_ACCELERATORS
from app.services import catalog as svc
from app.web.deps import DbSession, FormGuard, PageUser
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])

PAGE_SIZE = 50
TEMPLATE = "catalog/index.html"


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
    }
    try:
        row = svc.get_snapshot_row(session, snapshot.strip() or None)
    except svc.SnapshotNotFoundError as exc:
        context["missing"] = str(exc)
        return _render(request, context, status=404 if snapshot.strip() else 200)
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
    return _render(request, context)
