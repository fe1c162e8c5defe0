"""``/designs``: the designs of the current workspace, their requirements and their plans.

Server-rendered with Jinja2; htmx enhances the forms (saving the YAML swaps the spec
section in place; "Plan" queues a solve job and swaps in a progress panel that polls the
job's status every second, then navigates to the new plan).
Every form is a real POST that also works without JavaScript (redirect after POST; a page
with the errors and status 422 otherwise). htmx requests get their error fragments with
status 200, which htmx swaps without configuration and browsers do not log as failures.

Access: every page needs a signed-in user (:data:`~app.web.deps.PageUser`). The list and
the create forms work in the current workspace; a design, its plans, jobs and exports are
looked up through :mod:`app.services.access` in the design's own workspace — without a
membership there the answer is the same 404 as for an id that does not exist. Changes
(create, edit, rename, duplicate, delete, plan, cancel) need the role ``editor``: viewers
get 403 and pages show them no buttons for changes. Every unsafe request carries the CSRF
token (``csrf_token`` form field, or the ``X-CSRF-Token`` header htmx sends), checked by the
router's :func:`~app.web.deps.form_guard`. Changes and exports are in the audit log.

Routes
======
* ``GET /designs`` — list, "New from example", "New from YAML" (textarea or file upload)
* ``POST /designs/from-example``, ``POST /designs/from-yaml``
* ``GET /designs/{id}`` — the spec as readable sections and an editable YAML textarea
* ``POST /designs/{id}/spec`` — validate and save the YAML (htmx: returns the spec section)
* ``POST /designs/{id}/rename``, ``POST /designs/{id}/duplicate``
* ``GET|POST /designs/{id}/delete`` — confirmation page, then the delete
* ``POST /designs/{id}/plan`` — queue a solve job (``app.jobs``) and answer at once: htmx
  gets the progress panel, a form POST is redirected to the job page
* ``GET /designs/{id}/jobs/{job_id}`` — the job page (refreshes itself without JavaScript;
  redirects to the plan once it is ready)
* ``GET /designs/{id}/jobs/{job_id}/status?seen=…`` — the panel's status part for htmx
  polling: 204 while unchanged, ``HX-Redirect`` to the plan when it is ready
* ``POST /designs/{id}/jobs/{job_id}/cancel`` — cancel (a running solve stops at its next step)
* ``GET /designs/{id}/plans/{plan_id}``, ``…/schedule.csv``
* ``GET /designs/{id}/plans/{plan_id}/bundles/{name}.zip`` — one bundle, or ``all.zip``;
  byte-identical for the same plan
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app.auth import WebUser, get_db
from app.bundles.package import bundle_names
from app.jobs import service as jobs_svc
from app.models import Design, Job, Workspace
from app.planner.plan import Plan
from app.requirements.spec import DEFAULT_MFU, SpecError, WorkloadSpec
from app.services import access
from app.services import accounts as acc
from app.services import designs as svc
from app.services import plans as plans_svc
from app.services.plans import SCHEDULE_CSV_COLUMNS  # noqa: F401  (the CSV columns, named here for the pages)
from app.web.architecture import architecture_mermaid
from app.web.deps import DbSession, FormGuard, PageUser, audit, same_origin
from app.web.templating import templates

__all__ = ["HELPERS", "PostGuard", "SessionDep", "get_session", "router", "same_origin"]

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])
log = logging.getLogger("archplan.web.designs")

KIND_LABELS = {"on_demand": "On-demand", "spot": "Spot", "reserved": "Reserved (committed)",
               "private": "Own servers"}
CATEGORY_LABELS = {"capex": "Own servers (capex)", "commitments": "Reservations", "on_demand": "On-demand",
                   "spot": "Spot", "power_colocation": "Power & colocation", "support_staff": "Support & staff",
                   "after_horizon": "Past the horizon"}
BASELINE_LABELS = {"all_on_demand": "All on-demand", "all_reserved_1y": "All 1-year reserved",
                   "all_reserved_3y": "All 3-year reserved", "all_own_servers": "All own servers"}


# --------------------------------------------------------------------------- plumbing


get_session = get_db  # the request's database session, shared with the page dependencies
SessionDep = DbSession
PostGuard = FormGuard  # on unsafe methods: the same-origin check and the CSRF token


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def money(value: float | None, cents: bool | None = None) -> str:
    """``$12,345`` (cents below $1,000 or when asked); ``—`` for None."""
    if value is None or not math.isfinite(value):
        return "—"
    if cents is None:
        cents = abs(value) < 1000
    sign = "−" if value < 0 else ""
    return f"{sign}${abs(value):,.{2 if cents else 0}f}"


def pct(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * scale:,.{digits}f} %"


def num(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if digits == 0 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.{digits or 1}f}"


def big(value: float | None) -> str:
    """Large counts readably: 7e9 → ``7 billion``, 3e11 → ``300 billion``."""
    if value is None:
        return "—"
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(value) >= size:
            return f"{value / size:,.3g} {word}"
    return num(value)


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:  # SQLite returns naive UTC timestamps
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


HELPERS: dict[str, Callable[..., str]] = {"money": money, "pct": pct, "num": num, "big": big, "when": when,
                                          "iso": iso}


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200,
            block: str | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    context = {"active": "designs", **HELPERS, **context}
    if block is None:
        return templates.TemplateResponse(request, template, context, status_code=status, headers=headers)
    tpl = templates.env.get_template(template)
    html = "".join(tpl.blocks[block](tpl.new_context({**context, "request": request})))
    return HTMLResponse(html, status_code=status, headers=headers)


def _int_id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 12 else None


def _not_found(request: Request, what: str) -> HTMLResponse:
    return _render(request, "designs/not_found.html", {"what": what}, status=404)


def _design(session: Session, web: WebUser, design_id: str, need: str = "viewer") -> Design | None:
    """The design if the user may see it (None: no such design, or not theirs to know of);
    :class:`~app.services.accounts.Forbidden` when their role is below ``need``."""
    did = _int_id(design_id)
    if did is None:
        return None
    try:
        return access.design_for(session, web.principal, did, need)
    except acc.NotFound:
        return None


def _can_edit(web: WebUser, workspace_id: int) -> bool:
    return acc.role_at_least(web.role_in(workspace_id), "editor")


def _current_workspace(session: Session, web: WebUser, need: str = "viewer") -> Workspace:
    """The current workspace, checked against the membership (Forbidden below ``need``)."""
    acc.require_role(session, web.principal, web.workspace.id, need)
    return web.workspace


def _issue_views(exc: SpecError) -> list[dict[str, str]]:
    return [{"path": i.path or "document", "message": i.message} for i in exc.issues]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --------------------------------------------------------------------------- list and create


def _list_context(session: Session, ws: Workspace, web: WebUser, **extra: Any) -> dict[str, Any]:
    return {
        "workspace": ws, "designs": svc.list_designs(session, ws.id), "examples": svc.example_choices(),
        "can_edit": _can_edit(web, ws.id),
        "example_form": {"example": "research-burst-deadline", "name": "", "errors": []},
        "yaml_form": {"name": "", "text": "", "errors": [], "issues": []},
        "max_yaml_kb": svc.MAX_YAML_BYTES // 1000, "max_name": svc.MAX_NAME_CHARS, **extra,
    }


@router.get("/designs", response_class=HTMLResponse)
def designs_page(request: Request, session: SessionDep, web: PageUser, deleted: str = ""):
    ws = _current_workspace(session, web)
    return _render(request, "designs/index.html", _list_context(session, ws, web, deleted=deleted == "1"))


def _created(session: Session, request: Request, web: WebUser, design: Design, via: str) -> RedirectResponse:
    audit(session, request, web, "design.create", workspace_id=design.workspace_id, target=f"design:{design.id}",
          detail={"name": design.name, "via": via})
    return _see_other(f"/designs/{design.id}")


@router.post("/designs/from-example")
def create_from_example(
    request: Request, session: SessionDep, web: PageUser,
    example: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
):
    ws = _current_workspace(session, web, "editor")
    errors = []
    known = {e.name for e in svc.example_choices()}
    if example not in known:
        errors.append("Choose one of the bundled examples." if not example else f"There is no example “{example}”.")
    if name.strip():
        try:
            svc.clean_name(name)
        except svc.InvalidNameError as exc:
            errors.append(str(exc))
    if errors:
        ctx = _list_context(session, ws, web)
        ctx["example_form"] = {"example": example, "name": name, "errors": errors}
        return _render(request, "designs/index.html", ctx, status=422)
    design = svc.create_design_from_example(session, ws.id, example, name.strip() or None)
    return _created(session, request, web, design, "example")


def _read_upload(upload: UploadFile | None) -> tuple[str | None, str | None]:
    """(text, error) of an uploaded spec file; (None, None) when no file was chosen."""
    if upload is None or not upload.filename:
        return None, None
    data = upload.file.read(svc.MAX_YAML_BYTES + 1)
    if len(data) > svc.MAX_YAML_BYTES:
        return None, f"The file “{upload.filename}” is larger than {svc.MAX_YAML_BYTES // 1000} kB."
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, f"The file “{upload.filename}” is not UTF-8 text; upload a YAML or JSON file."


@router.post("/designs/from-yaml")
def create_from_yaml(
    request: Request,
    session: SessionDep,
    web: PageUser,
    name: Annotated[str, Form()] = "",
    spec_yaml: Annotated[str, Form()] = "",
    spec_file: Annotated[UploadFile | None, File()] = None,
):
    ws = _current_workspace(session, web, "editor")
    errors: list[str] = []
    file_text, file_error = _read_upload(spec_file)
    if file_error:
        errors.append(file_error)
    text = file_text if file_text is not None else spec_yaml
    if name.strip():
        try:
            svc.clean_name(name)
        except svc.InvalidNameError as exc:
            errors.append(str(exc))
    issues: list[dict[str, str]] = []
    spec: WorkloadSpec | None = None
    if not file_error:
        try:
            spec = svc.parse_spec_text(text)
        except SpecError as exc:
            issues = _issue_views(exc)
    if errors or spec is None:
        ctx = _list_context(session, ws, web)
        # The text stays in the textarea (also when it came from a file) so it can be fixed.
        ctx["yaml_form"] = {"name": name, "text": text, "errors": errors, "issues": issues}
        return _render(request, "designs/index.html", ctx, status=422)
    design = svc.create_design(session, ws.id, spec, name.strip() or None)
    return _created(session, request, web, design, "yaml")


# --------------------------------------------------------------------------- one design


def _design_context(session: Session, design: Design, web: WebUser, **extra: Any) -> dict[str, Any]:
    try:
        spec, spec_issues = svc.design_spec(design), []
    except SpecError as exc:
        spec, spec_issues = None, _issue_views(exc)
    ctx = {
        "design": design, "spec": spec, "stored_issues": spec_issues, "plans": svc.list_plans(session, design.id),
        "yaml_text": svc.spec_yaml(design), "issues": [], "saved": False, "rename_value": design.name,
        "rename_error": None, "plan_error": None, "default_mfu": DEFAULT_MFU,
        "max_yaml_kb": svc.MAX_YAML_BYTES // 1000, "max_name": svc.MAX_NAME_CHARS,
        "can_edit": _can_edit(web, design.workspace_id), "other_workspace": _other_workspace(web, design),
    }
    ctx.update(_active_job_context(session, design, web))
    ctx.update(extra)
    return ctx


def _other_workspace(web: WebUser, design: Design) -> Workspace | None:
    """The design's workspace when it is not the current one (the page says so)."""
    if web.workspace is not None and design.workspace_id == web.workspace.id:
        return None
    return next((ws for ws, _r in web.workspaces if ws.id == design.workspace_id), None)


def _active_job_context(session: Session, design: Design, web: WebUser) -> dict[str, Any]:
    """The running (or queued) solve of the design, for its progress panel after a reload."""
    job = jobs_svc.active_job(session, design.id, svc.PLAN_JOB)
    view = _job_view(session, design, job, _can_edit(web, design.workspace_id)) if job is not None else None
    return {"job_view": view}


@router.get("/designs/{design_id}", response_class=HTMLResponse)
def design_page(request: Request, session: SessionDep, web: PageUser, design_id: str, saved: str = ""):
    design = _design(session, web, design_id)
    if design is None:
        return _not_found(request, "design")
    return _render(request, "designs/design.html", _design_context(session, design, web, saved=saved == "1"))


@router.post("/designs/{design_id}/spec")
def save_spec(request: Request, session: SessionDep, web: PageUser, design_id: str,
              spec_yaml: Annotated[str, Form()] = ""):
    design = _design(session, web, design_id, "editor")
    if design is None:
        return _not_found(request, "design")
    htmx = _is_htmx(request)
    try:
        spec = svc.parse_spec_text(spec_yaml)
    except SpecError as exc:
        ctx = _design_context(session, design, web, yaml_text=spec_yaml, issues=_issue_views(exc))
        if htmx:  # 200: htmx swaps it, and browsers log no failed request in the console
            return _render(request, "designs/design.html", ctx, block="spec_section")
        return _render(request, "designs/design.html", ctx, status=422)
    svc.update_spec(session, design, spec)
    audit(session, request, web, "design.update", workspace_id=design.workspace_id, target=f"design:{design.id}",
          detail={"via": "yaml"})
    if not htmx:
        return _see_other(f"/designs/{design.id}?saved=1")
    ctx = _design_context(session, design, web, saved=True)
    return _render(request, "designs/design.html", ctx, block="spec_section")


@router.post("/designs/{design_id}/rename")
def rename(request: Request, session: SessionDep, web: PageUser, design_id: str,
           name: Annotated[str, Form()] = ""):
    design = _design(session, web, design_id, "editor")
    if design is None:
        return _not_found(request, "design")
    before = design.name
    try:
        svc.rename_design(session, design, name)
    except svc.InvalidNameError as exc:
        ctx = _design_context(session, design, web, rename_value=name, rename_error=str(exc))
        return _render(request, "designs/design.html", ctx, status=422)
    audit(session, request, web, "design.rename", workspace_id=design.workspace_id, target=f"design:{design.id}",
          detail={"from": before, "to": design.name})
    return _see_other(f"/designs/{design.id}")


@router.post("/designs/{design_id}/duplicate")
def duplicate(request: Request, session: SessionDep, web: PageUser, design_id: str,
              name: Annotated[str, Form()] = ""):
    design = _design(session, web, design_id, "editor")
    if design is None:
        return _not_found(request, "design")
    try:
        copy = svc.duplicate_design(session, design, name or None)
    except svc.InvalidNameError as exc:
        ctx = _design_context(session, design, web, rename_error=None, duplicate_error=str(exc))
        return _render(request, "designs/design.html", ctx, status=422)
    audit(session, request, web, "design.duplicate", workspace_id=copy.workspace_id, target=f"design:{copy.id}",
          detail={"source": design.id, "name": copy.name})
    return _see_other(f"/designs/{copy.id}")


@router.get("/designs/{design_id}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, session: SessionDep, web: PageUser, design_id: str):
    design = _design(session, web, design_id, "editor")
    if design is None:
        return _not_found(request, "design")
    return _render(request, "designs/delete.html",
                   {"design": design, "plan_count": svc.count_plans(session, design.id)})


@router.post("/designs/{design_id}/delete")
def delete(request: Request, session: SessionDep, web: PageUser, design_id: str):
    design = _design(session, web, design_id, "editor")
    if design is None:
        return _not_found(request, "design")
    ws_id, did, name = design.workspace_id, design.id, design.name
    svc.delete_design(session, design)
    audit(session, request, web, "design.delete", workspace_id=ws_id, target=f"design:{did}", detail={"name": name})
    return _see_other("/designs?deleted=1")


# --------------------------------------------------------------------------- planning


JOB_POLL = "every 1s"


def _job_view(session: Session, design: Design, job: Job, can_edit: bool = True) -> dict[str, Any]:
    """What the job panel shows; ``seen`` changes whenever the panel would look different."""
    shown = jobs_svc.progress_of(session, job)
    active, position, percent, message = shown.active, shown.position, shown.percent, shown.message
    base = f"/designs/{design.id}/jobs/{job.id}"
    state = f"{job.status}|{percent}|{message}|{job.cancel_requested}|{job.result_plan_id}"
    return {
        "job": job, "job_active": active, "percent": percent, "message": message, "position": position,
        "seen": hashlib.sha256(state.encode()).hexdigest()[:12], "page_url": base, "status_url": base + "/status",
        "cancel_url": base + "/cancel", "can_cancel": can_edit,
        "plan_url": f"/designs/{design.id}/plans/{job.result_plan_id}" if job.result_plan_id else None,
        "poll": JOB_POLL,
    }


def _wake_runner(request: Request) -> None:
    runner = getattr(request.app.state, "job_runner", None)
    if runner is not None:
        runner.wake()


@router.post("/designs/{design_id}/plan")
def plan(request: Request, session: SessionDep, web: PageUser, design_id: str):
    """Queue a solve and answer at once: htmx gets the progress panel, a form POST the job page."""
    design = _design(session, web, design_id, "editor")
    if design is None:
        return _not_found(request, "design")
    htmx = _is_htmx(request)
    settings = request.app.state.settings
    try:
        job, created = svc.enqueue_plan(session, design, solver=settings.solver,
                                        time_limit_s=settings.solver_time_limit_s)
    except SpecError as exc:
        message = ("The stored requirements are not valid; fix them and save before planning: "
                   + "; ".join(str(i) for i in exc.issues[:5]))
        if htmx:  # 200: htmx swaps it
            return _render(request, "designs/_plan_feedback.html", {"plan_error": message})
        return _render(request, "designs/design.html", _design_context(session, design, web, plan_error=message),
                       status=422)
    if created:
        audit(session, request, web, "plan.solve", workspace_id=design.workspace_id, target=f"design:{design.id}",
              detail={"job": job.id})
    _wake_runner(request)
    if htmx:
        return _render(request, "designs/_job_panel.html", {"design": design, "jv": _job_view(session, design, job)})
    return _see_other(f"/designs/{design.id}/jobs/{job.id}")


def _job(session: Session, web: WebUser, design_id: str, job_id: str,
         need: str = "viewer") -> tuple[Design | None, Job | None]:
    design = _design(session, web, design_id, need)
    jid = _int_id(job_id)
    if design is None or jid is None:
        return design, None
    try:
        job, _design_row = access.job_for(session, web.principal, jid, need, design_id=design.id)
    except acc.NotFound:
        return design, None
    return design, job


@router.get("/designs/{design_id}/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, web: PageUser, design_id: str, job_id: str):
    """The job's own page (where a form POST lands): refreshes itself until the job ends."""
    design, job = _job(session, web, design_id, job_id)
    if design is None or job is None:
        return _not_found(request, "job" if design is not None else "design")
    if job.kind != "plan":  # an analysis (e.g. after its cancel without JavaScript): shown on its page
        return _see_other(f"/designs/{design.id}/tradeoffs")
    view = _job_view(session, design, job, _can_edit(web, design.workspace_id))
    if job.status == jobs_svc.SUCCEEDED and view["plan_url"]:
        return _see_other(view["plan_url"])
    return _render(request, "designs/job.html", {"design": design, "jv": view})


@router.get("/designs/{design_id}/jobs/{job_id}/status", response_class=HTMLResponse)
def job_status(request: Request, session: SessionDep, web: PageUser, design_id: str, job_id: str,
               seen: str = ""):
    """The panel's status part, polled by htmx: 204 while nothing changed, ``HX-Redirect``
    to the plan once it is ready."""
    design, job = _job(session, web, design_id, job_id)
    if design is None or job is None:
        return _not_found(request, "job" if design is not None else "design")
    view = _job_view(session, design, job, _can_edit(web, design.workspace_id))
    htmx = _is_htmx(request)
    if job.status == jobs_svc.SUCCEEDED and view["plan_url"]:
        if htmx:
            return Response(status_code=204, headers={"HX-Redirect": view["plan_url"]})
        return _see_other(view["plan_url"])
    if htmx and seen == view["seen"] and view["job_active"]:
        return Response(status_code=204)  # no swap: the polling goes on, nothing is re-announced
    return _render(request, "designs/_job_status.html", {"design": design, "jv": view})


@router.post("/designs/{design_id}/jobs/{job_id}/cancel")
def cancel_job(request: Request, session: SessionDep, web: PageUser, design_id: str, job_id: str):
    design, job = _job(session, web, design_id, job_id, "editor")
    if design is None or job is None:
        return _not_found(request, "job" if design is not None else "design")
    job = jobs_svc.request_cancel(session, job.id) or job
    if _is_htmx(request):
        return _render(request, "designs/_job_status.html", {"design": design, "jv": _job_view(session, design, job)})
    return _see_other(f"/designs/{design.id}/jobs/{job.id}")


def _plan_row(session: Session, web: WebUser, design_id: str, plan_id: str):
    design = _design(session, web, design_id)
    pid = _int_id(plan_id)
    if design is None or pid is None:
        return design, None
    try:
        row, _design_row = access.plan_for(session, web.principal, pid, design_id=design.id)
    except acc.NotFound:
        return design, None
    return design, row


def _cumulative(values: list[float]) -> list[float]:
    out, acc = [], 0.0
    for v in values:
        acc += v
        out.append(round(acc, 2))
    return out


def _chart_data(plan: Plan, baseline_series: dict[str, list[float]]) -> dict[str, Any]:
    od = baseline_series.get("all_on_demand")
    return {
        "months": plan.months,
        "capacity": [{"key": k, "label": KIND_LABELS.get(k, k), "data": v}
                     for k in ("reserved", "private", "on_demand", "spot")
                     if (v := plan.gpus_by_kind_month.get(k))],
        "cumulative": {"plan": _cumulative(plan.cost_by_month),
                       "all_on_demand": _cumulative(od) if od and len(od) == len(plan.months) else None},
        "categories": [{"key": k, "label": CATEGORY_LABELS.get(k, k.replace("_", " ")), "value": v}
                       for k, v in sorted(plan.cost_by_category.items(), key=lambda kv: -abs(kv[1]))],
    }


def _explanation(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    items = [ln[2:] for ln in lines if ln.startswith("- ")]
    rest = [ln for ln in lines if not ln.startswith("- ")]
    return {"lead": rest[0] if rest else "", "bullets": items, "notes": rest[1:]}


@router.get("/designs/{design_id}/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, session: SessionDep, web: PageUser, design_id: str, plan_id: str):
    design = _design(session, web, design_id)
    pid = _int_id(plan_id)
    ref = None
    if design is not None and pid is not None:
        try:  # the plan's place and headline, without its stored JSON
            ref = access.plan_ref_for(session, web.principal, pid, design_id=design.id)
        except acc.NotFound:
            ref = None
    if design is None or ref is None:
        return _not_found(request, "plan" if design is not None else "design")

    def make() -> dict[str, Any]:
        row, _design_row = access.plan_for(session, web.principal, ref.plan_id, design_id=design.id)
        return _plan_view(row)

    # What the page shows of a stored plan never changes: built once per app (app.state.plan_views).
    view = request.app.state.plan_views.get_or_make(("plan-page", ref.plan_id, ref.created_at), make)
    ctx: dict[str, Any] = {"design": design, "row": ref, "kind_labels": KIND_LABELS,
                           "category_labels": CATEGORY_LABELS, "baseline_labels": BASELINE_LABELS,
                           "can_edit": _can_edit(web, design.workspace_id), **view}
    if view["plan"] is not None:
        ctx["snapshot_in_db"] = svc.snapshot_exists(session, view["plan"].snapshot_id)
        if view["solved"]:
            ctx.update(
                bundles=[{"name": n, "label": BUNDLE_LABELS.get(n, n), "url": _bundle_url(design.id, ref.plan_id, n)}
                         for n in bundle_names()],
                all_bundles_url=_bundle_url(design.id, ref.plan_id, "all"),
            )
    ctx.update(_active_job_context(session, design, web))
    return _render(request, "designs/plan.html", ctx)


def _plan_view(row: Any) -> dict[str, Any]:
    """Everything the plan page derives from the stored plan alone (shared by every reader)."""
    try:
        plan = Plan.model_validate(row.result)
    except ValidationError:
        log.exception("stored plan %s does not validate", row.id)
        return {"plan": None}
    chart = _chart_data(plan, row.result.get("baseline_cost_by_month") or {})
    solved = plan.status in ("optimal", "feasible")
    spec = plans_svc.row_spec(row) if solved else None
    return {
        "plan": plan, "chart": chart, "explanation": _explanation(plan.explanation), "solved": solved,
        "months_table": [
            {"month": m, "cost": plan.cost_by_month[i] if i < len(plan.cost_by_month) else None,
             "cumulative": chart["cumulative"]["plan"][i] if i < len(chart["cumulative"]["plan"]) else None,
             "od_cumulative": (chart["cumulative"]["all_on_demand"] or [None] * len(plan.months))[i],
             "gpus": {k: v[i] for k, v in plan.gpus_by_kind_month.items() if i < len(v)}}
            for i, m in enumerate(plan.months)
        ],
        "best_label": (plan.baseline_details[plan.best_single_strategy].label
                       if plan.best_single_strategy in plan.baseline_details else None),
        "diagram": architecture_mermaid(spec, plan) if spec is not None else None,
    }


BUNDLE_LABELS = {
    "airflow": "Airflow DAG", "helm": "Helm chart", "private-servers": "Own servers (bill of materials)",
    "purchase-schedule": "Purchase schedule (CSV, JSON)", "terraform": "Terraform (AWS)",
}


def _bundle_url(design_id: int, plan_id: int, name: str) -> str:
    return f"/designs/{design_id}/plans/{plan_id}/bundles/{name}.zip"


def _export_refused(request: Request, design: Design, row: Any, reason: str) -> HTMLResponse:
    return _render(request, "designs/export_unavailable.html", {"design": design, "row": row, "reason": reason},
                   status=409)


@router.get("/designs/{design_id}/plans/{plan_id}/bundles/{name}.zip")
def bundle_zip(request: Request, session: SessionDep, web: PageUser, design_id: str, plan_id: str, name: str):
    """One bundle (or ``all``) of a feasible plan as a zip, byte-identical for the same plan."""
    design, row = _plan_row(session, web, design_id, plan_id)
    if design is None or row is None:
        return _not_found(request, "plan" if design is not None else "design")
    try:
        bundle = plans_svc.export_bundle(row, name)
    except KeyError:
        return _not_found(request, "bundle")
    except plans_svc.ExportRefused as exc:
        return _export_refused(request, design, row, str(exc))
    headers = {"ETag": bundle.etag, "Cache-Control": "private, no-cache",
               "Content-Disposition": f'attachment; filename="{bundle.filename}"'}
    if request.headers.get("if-none-match") == bundle.etag:
        return Response(status_code=304, headers=headers)
    audit(session, request, web, "bundle.export", workspace_id=design.workspace_id, target=f"plan:{row.id}",
          detail={"design": design.id, "bundle": name})
    return Response(bundle.data, media_type="application/zip", headers=headers)


@router.get("/designs/{design_id}/plans/{plan_id}/schedule.csv")
def schedule_csv(request: Request, session: SessionDep, web: PageUser, design_id: str, plan_id: str):
    design, row = _plan_row(session, web, design_id, plan_id)
    if design is None or row is None:
        return _not_found(request, "plan" if design is not None else "design")
    filename = plans_svc.schedule_filename(design.id, row.id)
    audit(session, request, web, "schedule.export", workspace_id=design.workspace_id, target=f"plan:{row.id}",
          detail={"design": design.id})
    return Response(plans_svc.schedule_csv(row.result), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})

