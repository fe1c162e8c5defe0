"""Designs in the database: the default workspace, designs (create, rename, duplicate,
edit the spec, delete) and their stored plans.

Every function takes a :class:`~sqlmodel.Session` first and is scoped to a workspace, so a
design id from another workspace behaves as if it did not exist. Write functions commit
their own unit of work; read functions never write (except :func:`get_or_create_workspace`,
which creates the workspace on first use). No FastAPI here: the web pages, a later REST API
and the job runner share these functions.

A design stores its spec as the JSON of a validated :class:`WorkloadSpec`
(``model_dump(mode="json")``); :func:`spec_yaml` renders it back as YAML for editing.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.catalog.schema import Snapshot, load_snapshot
from app.jobs import service as jobs_svc
from app.models import Design, Job, PriceSnapshot, Workspace, utcnow
from app.models import Plan as PlanRow
from app.planner.options import PlannerSettings
from app.planner.plan import Plan, make_plan
from app.requirements.examples import list_examples, load_example
from app.requirements.spec import (
    MAX_YAML_CHARS,
    SpecError,
    SpecIssue,
    WorkloadSpec,
    issues_from_validation_error,
)
from app.services import catalog as catalog_svc

__all__ = [
    "DEFAULT_WORKSPACE_NAME",
    "DEFAULT_WORKSPACE_SLUG",
    "MAX_NAME_CHARS",
    "MAX_YAML_BYTES",
    "PLAN_JOB",
    "DesignSummary",
    "ExampleChoice",
    "InvalidNameError",
    "PlanSummary",
    "clean_name",
    "count_plans",
    "create_design",
    "create_design_from_example",
    "delete_design",
    "design_spec",
    "duplicate_design",
    "enqueue_plan",
    "example_choices",
    "get_design",
    "get_or_create_workspace",
    "get_plan",
    "list_designs",
    "list_plans",
    "parse_spec_text",
    "plan_design",
    "planner_settings",
    "planning_snapshot",
    "rename_design",
    "save_plan",
    "snapshot_exists",
    "spec_yaml",
    "update_spec",
    "variant_name",
]

log = logging.getLogger("archplan.designs")

DEFAULT_WORKSPACE_SLUG = "default"
DEFAULT_WORKSPACE_NAME = "Default workspace"
MAX_NAME_CHARS = 200
#: Largest YAML document accepted from a form or an upload (UTF-8 bytes; 512 kB, the same
#: figure as the schema's own character limit).
MAX_YAML_BYTES = MAX_YAML_CHARS
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class InvalidNameError(ValueError):
    """A design name that cannot be used; the message says why."""


# --------------------------------------------------------------------------- workspace


def get_or_create_workspace(session: Session, slug: str = DEFAULT_WORKSPACE_SLUG,
                            name: str = DEFAULT_WORKSPACE_NAME) -> Workspace:
    """The workspace ``slug``, created on first use (safe against a concurrent creation)."""
    ws = session.exec(select(Workspace).where(Workspace.slug == slug)).first()
    if ws is not None:
        return ws
    try:
        ws = Workspace(slug=slug, name=name)
        session.add(ws)
        session.commit()
    except IntegrityError:
        session.rollback()
        ws = session.exec(select(Workspace).where(Workspace.slug == slug)).first()
        if ws is None:
            raise
        return ws
    session.refresh(ws)
    return ws


# --------------------------------------------------------------------------- names and specs


def clean_name(value: str | None, *, field: str = "Name") -> str:
    """A design name: surrounding white space removed, 1-200 characters, one line."""
    name = (value or "").strip()
    if not name:
        raise InvalidNameError(f"{field} is required.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidNameError(f"{field} is too long ({len(name)} characters; at most {MAX_NAME_CHARS}).")
    if _CONTROL_RE.search(name):
        raise InvalidNameError(f"{field} must be a single line of text (no tabs or control characters).")
    return name


def _default_name(text: str) -> str:
    name = " ".join(text.split())
    return name[:MAX_NAME_CHARS].rstrip() or "Untitled design"


def parse_spec_text(text: str) -> WorkloadSpec:
    """Validate a YAML (or JSON) WorkloadSpec document; raises :class:`SpecError`."""
    size = len(text.encode("utf-8"))
    if size > MAX_YAML_BYTES:
        raise SpecError([SpecIssue("", f"the document is {size / 1000:,.0f} kB; at most "
                                       f"{MAX_YAML_BYTES // 1000} kB is accepted", "too_large")])
    if not text.strip():
        raise SpecError([SpecIssue("", "the document is empty; paste a WorkloadSpec in YAML", "empty")])
    return WorkloadSpec.from_yaml(text)


def _spec_json(spec: WorkloadSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def design_spec(design: Design) -> WorkloadSpec:
    """The design's spec; raises :class:`SpecError` if the stored JSON no longer validates."""
    try:
        return WorkloadSpec.model_validate(design.spec)
    except ValidationError as exc:
        raise SpecError(issues_from_validation_error(exc), f"of design {design.id}") from None


def spec_yaml(design: Design) -> str:
    """The design's spec as YAML for editing (the stored JSON as-is if it does not validate)."""
    try:
        return design_spec(design).to_yaml()
    except SpecError:
        return yaml.safe_dump(design.spec, sort_keys=False, allow_unicode=True, width=100)


@dataclass(frozen=True)
class ExampleChoice:
    name: str
    title: str
    summary: str


@lru_cache(maxsize=1)
def example_choices() -> tuple[ExampleChoice, ...]:
    """The bundled examples with a one-sentence summary (the first paragraph's first sentence)."""
    out = []
    for info in list_examples():
        description = load_example(info.name).description
        paragraph = " ".join(description.strip().split("\n\n", 1)[0].split())
        match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
        summary = match.group(1) if match else paragraph
        if len(summary) > 240:
            summary = summary[:239].rstrip() + "…"
        out.append(ExampleChoice(name=info.name, title=info.title, summary=summary or info.summary))
    return tuple(out)


# --------------------------------------------------------------------------- designs


@dataclass(frozen=True)
class PlanSummary:
    id: int
    design_id: int
    status: str
    total_cost: float | None
    snapshot_id: str
    created_at: datetime


@dataclass(frozen=True)
class DesignSummary:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    last_plan: PlanSummary | None


def _plan_summary(row: Any) -> PlanSummary:
    return PlanSummary(id=row.id, design_id=row.design_id, status=row.status, total_cost=row.total_cost,
                       snapshot_id=row.snapshot_id, created_at=row.created_at)


_PLAN_COLUMNS = (PlanRow.id, PlanRow.design_id, PlanRow.status, PlanRow.total_cost, PlanRow.snapshot_id,
                 PlanRow.created_at)


def list_designs(session: Session, workspace_id: int) -> list[DesignSummary]:
    """The workspace's designs, most recently updated first, each with its latest plan."""
    designs = session.exec(
        select(Design.id, Design.name, Design.created_at, Design.updated_at)
        .where(Design.workspace_id == workspace_id)
        .order_by(col(Design.updated_at).desc(), col(Design.id).desc())
    ).all()
    if not designs:
        return []
    latest = (select(func.max(PlanRow.id)).join(Design, col(Design.id) == PlanRow.design_id)
              .where(Design.workspace_id == workspace_id).group_by(PlanRow.design_id))
    plans = {r.design_id: _plan_summary(r)
             for r in session.exec(select(*_PLAN_COLUMNS).where(col(PlanRow.id).in_(latest))).all()}
    return [DesignSummary(id=d.id, name=d.name, created_at=d.created_at, updated_at=d.updated_at,
                          last_plan=plans.get(d.id)) for d in designs]


def get_design(session: Session, workspace_id: int, design_id: int) -> Design | None:
    design = session.get(Design, design_id)
    if design is None or design.workspace_id != workspace_id:
        return None
    return design


def create_design(session: Session, workspace_id: int, spec: WorkloadSpec, name: str | None = None) -> Design:
    """A new design holding ``spec``; ``name`` defaults to the spec's name."""
    design = Design(workspace_id=workspace_id, name=clean_name(name) if name and name.strip()
                    else _default_name(spec.name), spec=_spec_json(spec))
    session.add(design)
    session.commit()
    session.refresh(design)
    return design


def create_design_from_example(session: Session, workspace_id: int, example: str,
                               name: str | None = None) -> Design:
    """A new design from a bundled example; raises :class:`KeyError` for an unknown one."""
    known = {e.name: e for e in example_choices()}
    if example not in known:
        raise KeyError(example)
    return create_design(session, workspace_id, load_example(example), name or known[example].title)


def rename_design(session: Session, design: Design, name: str) -> Design:
    return update_design(session, design, name=name)


def update_spec(session: Session, design: Design, spec: WorkloadSpec) -> Design:
    return update_design(session, design, spec=spec)


def variant_name(session: Session, workspace_id: int, name: str) -> str:
    """``"<name> (variant)"``, or ``(variant 2)``, … — the first one not used in the workspace."""
    base = re.sub(r"\s*\(variant(?: \d+)?\)$", "", name).strip() or name
    taken = set(session.exec(select(Design.name).where(Design.workspace_id == workspace_id)).all())
    n = 1
    while True:
        suffix = " (variant)" if n == 1 else f" (variant {n})"
        candidate = base[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix
        if candidate not in taken:
            return candidate
        n += 1


def duplicate_design(session: Session, design: Design, name: str | None = None) -> Design:
    """A copy of ``design``'s spec as a new design (its plans stay with the original)."""
    new_name = clean_name(name) if name and name.strip() else variant_name(session, design.workspace_id, design.name)
    copy = Design(workspace_id=design.workspace_id, name=new_name, spec=json.loads(json.dumps(design.spec)))
    session.add(copy)
    session.commit()
    session.refresh(copy)
    return copy


def delete_design(session: Session, design: Design) -> None:
    """Delete ``design``, its plans and its jobs (a running job then fails to save its plan)."""
    # The database cascades too; deleting the children first also covers SQLite connections
    # without foreign-key enforcement.
    session.execute(delete(Job).where(col(Job.design_id) == design.id))
    session.execute(delete(PlanRow).where(col(PlanRow.design_id) == design.id))
    session.delete(design)
    session.commit()


def count_plans(session: Session, design_id: int) -> int:
    return session.exec(select(func.count()).select_from(PlanRow).where(PlanRow.design_id == design_id)).one()


# --------------------------------------------------------------------------- plans


def list_plans(session: Session, design_id: int, limit: int = 20) -> list[PlanSummary]:
    """The design's plans, newest first (without their JSON)."""
    rows = session.exec(select(*_PLAN_COLUMNS).where(PlanRow.design_id == design_id)
                        .order_by(col(PlanRow.id).desc()).limit(limit)).all()
    return [_plan_summary(r) for r in rows]


def get_plan(session: Session, design_id: int, plan_id: int) -> PlanRow | None:
    row = session.get(PlanRow, plan_id)
    if row is None or row.design_id != design_id:
        return None
    return row


def save_plan(session: Session, design: Design, spec: WorkloadSpec, plan: Plan, *, commit: bool = True) -> PlanRow:
    """Store ``plan`` (solved from ``spec``) for ``design``.

    ``commit=False`` only flushes (the row gets its id), so the job runner commits the plan
    and its job's outcome in one transaction.
    """
    result = plan.model_dump(mode="json")
    total = plan.total_cost if plan.total_cost is not None and math.isfinite(plan.total_cost) else None
    row = PlanRow(design_id=design.id, snapshot_id=plan.snapshot_id[:80], status=plan.status[:20],
                  total_cost=total, spec=_spec_json(spec), result=result)
    session.add(row)
    if not commit:
        session.flush()
        return row
    session.commit()
    session.refresh(row)
    return row


_bundled_lock = threading.Lock()
_bundled: Snapshot | None = None


def _bundled_snapshot() -> Snapshot:
    global _bundled
    with _bundled_lock:
        if _bundled is None:
            _bundled = load_snapshot()
        return _bundled


def planning_snapshot(session: Session, workspace_id: int) -> Snapshot:
    """The current price snapshot in the database with the workspace's custom prices; the
    bundled snapshot when the database has none."""
    try:
        return catalog_svc.snapshot_for_workspace(session, workspace_id, "current")
    except catalog_svc.SnapshotNotFoundError:
        log.warning("no current price snapshot in the database; planning with the bundled one")
        return _bundled_snapshot()


def snapshot_exists(session: Session, snapshot_id: str) -> bool:
    """Is ``snapshot_id`` stored in the database (so the catalog can show it)?"""
    return session.exec(select(PriceSnapshot.id).where(PriceSnapshot.snapshot_id == snapshot_id)).first() is not None


def planner_settings(solver: str = "highs", time_limit_s: float = 60.0) -> PlannerSettings:
    return PlannerSettings(solver=solver, time_limit_s=time_limit_s)


def plan_design(session: Session, design: Design, settings: PlannerSettings | None = None) -> PlanRow:
    """Solve the design's spec against the planning snapshot and store the plan.

    Blocks for as long as the solve takes (0.1-10 s); the web pages queue a job instead
    (:func:`enqueue_plan`, run by ``app.jobs.runner``). Raises :class:`SpecError` if the
    stored spec no longer validates.
    """
    spec = design_spec(design)
    settings = settings or PlannerSettings()
    snapshot = planning_snapshot(session, design.workspace_id)
    session.commit()  # end the read transaction: no connection is held during the solve
    plan = make_plan(spec, snapshot, settings)
    row = save_plan(session, design, spec, plan)
    log.info("planned design %s: plan %s %s in %.2f s", design.id, row.id, plan.status, plan.total_seconds)
    return row


# --------------------------------------------------------------------------- plan jobs

PLAN_JOB = "plan"


def enqueue_plan(session: Session, design: Design, *, solver: str = "highs",
                 time_limit_s: float = 60.0) -> tuple[Job, bool]:
    """Queue a solve of the design's current spec; commits. Returns ``(job, created)``.

    The spec is validated first (raises :class:`SpecError`) and captured in the job's
    payload, so the plan is of the requirements as they were when "Plan" was pressed. A
    queued or running plan job of the same spec is returned instead of a duplicate.
    """
    spec = design_spec(design)
    spec_json = _spec_json(spec)
    active = jobs_svc.active_job(session, design.id, PLAN_JOB)
    if active is not None and (active.payload or {}).get("spec") == spec_json:
        return active, False
    job = jobs_svc.enqueue(session, PLAN_JOB, design_id=design.id,
                           payload={"spec": spec_json, "solver": solver, "time_limit_s": time_limit_s})
    session.commit()
    session.refresh(job)
    return job, True


# --------------------------------------------------------------------------- pages for the REST API


def list_designs_page(session: Session, workspace_id: int, *, limit: int = 20,
                      before_id: int | None = None) -> list[DesignSummary]:
    """The workspace's designs, newest first (by id, so pages stay stable while designs are
    edited), each with its latest plan; ``before_id`` continues after a page's last id."""
    q = (select(Design.id, Design.name, Design.created_at, Design.updated_at)
         .where(Design.workspace_id == workspace_id))
    if before_id is not None:
        q = q.where(col(Design.id) < before_id)
    designs = session.exec(q.order_by(col(Design.id).desc()).limit(limit)).all()
    if not designs:
        return []
    ids = [d.id for d in designs]
    latest = select(func.max(PlanRow.id)).where(col(PlanRow.design_id).in_(ids)).group_by(PlanRow.design_id)
    plans = {r.design_id: _plan_summary(r)
             for r in session.exec(select(*_PLAN_COLUMNS).where(col(PlanRow.id).in_(latest))).all()}
    return [DesignSummary(id=d.id, name=d.name, created_at=d.created_at, updated_at=d.updated_at,
                          last_plan=plans.get(d.id)) for d in designs]


def latest_plan(session: Session, design_id: int) -> PlanSummary | None:
    found = list_plans(session, design_id, limit=1)
    return found[0] if found else None


def list_plans_page(session: Session, design_id: int, *, limit: int = 20,
                    before_id: int | None = None) -> list[PlanSummary]:
    """The design's plans, newest first; ``before_id`` continues after a page's last id."""
    q = select(*_PLAN_COLUMNS).where(PlanRow.design_id == design_id)
    if before_id is not None:
        q = q.where(col(PlanRow.id) < before_id)
    return [_plan_summary(r) for r in session.exec(q.order_by(col(PlanRow.id).desc()).limit(limit)).all()]


def update_design(session: Session, design: Design, *, spec: WorkloadSpec | None = None,
                  name: str | None = None) -> Design:
    """Replace the spec and/or the name in one commit (:class:`InvalidNameError` for a bad name)."""
    if name is not None:
        design.name = clean_name(name)
    if spec is not None:
        design.spec = _spec_json(spec)
    design.updated_at = utcnow()
    session.add(design)
    session.commit()
    session.refresh(design)
    return design
