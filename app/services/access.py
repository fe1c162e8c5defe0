"""Look things up by id for a principal, checking the workspace they belong to.

Every face (pages, REST API, bundle exports, job URLs) fetches designs, plans, jobs and
workspaces through these functions, so access is decided in one place: without access the
answer is :class:`~app.services.accounts.NotFound` (the same as for an id that does not
exist), with too small a role :class:`~app.services.accounts.Forbidden`.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlmodel import Session, select

from app.models import Design, Job, Workspace
from app.models import Plan as PlanRow
from app.services.accounts import NotFound, Principal, require_role

__all__ = ["PlanRef", "design_for", "job_for", "plan_for", "plan_ref_for", "workspace_for"]


def workspace_for(session: Session, principal: Principal, ref: int | str, need: str = "viewer") -> tuple[Workspace, str]:
    """The workspace by id (int) or slug (str), and the principal's role in it."""
    if isinstance(ref, int):
        ws = session.get(Workspace, ref)
    else:
        ws = session.exec(select(Workspace).where(Workspace.slug == ref)).first()
    if ws is None:
        raise NotFound("No such workspace.")
    return ws, require_role(session, principal, ws.id, need)


def design_for(session: Session, principal: Principal, design_id: int, need: str = "viewer") -> Design:
    design = session.get(Design, design_id)
    if design is None:
        raise NotFound("No such design.")
    try:
        require_role(session, principal, design.workspace_id, need)
    except NotFound:
        raise NotFound("No such design.") from None
    return design


def plan_for(session: Session, principal: Principal, plan_id: int, need: str = "viewer",
             design_id: int | None = None) -> tuple[PlanRow, Design]:
    """A plan and its design; ``design_id`` (from a nested URL) must match when given."""
    row = session.get(PlanRow, plan_id)
    if row is None or (design_id is not None and row.design_id != design_id):
        raise NotFound("No such plan.")
    try:
        design = design_for(session, principal, row.design_id, need)
    except NotFound:
        raise NotFound("No such plan.") from None
    return row, design


class PlanRef(NamedTuple):
    """Where a plan belongs, without its stored JSON."""

    plan_id: int
    design_id: int
    workspace_id: int
    created_at: datetime  # with the id, names one stored plan (SQLite may reuse a deleted row's id)
    status: str
    snapshot_id: str

    @property
    def id(self) -> int:
        """The plan's id (as a plan row names it)."""
        return self.plan_id


def plan_ref_for(session: Session, principal: Principal, plan_id: int, need: str = "viewer",
                 design_id: int | None = None) -> PlanRef:
    """The plan's design and workspace in one indexed query that reads none of the stored
    JSON (plan, spec), for readers that already hold the plan's representation."""
    found = session.exec(select(PlanRow.id, PlanRow.design_id, Design.workspace_id, PlanRow.created_at,
                                PlanRow.status, PlanRow.snapshot_id)
                         .join(Design, Design.id == PlanRow.design_id).where(PlanRow.id == plan_id)).first()
    if found is None:
        raise NotFound("No such plan.")
    ref = PlanRef(*found)
    if design_id is not None and ref.design_id != design_id:
        raise NotFound("No such plan.")
    try:
        require_role(session, principal, ref.workspace_id, need)
    except NotFound:
        raise NotFound("No such plan.") from None
    return ref


def job_for(session: Session, principal: Principal, job_id: int, need: str = "viewer",
            design_id: int | None = None) -> tuple[Job, Design]:
    """A job and its design (jobs without a design belong to no workspace: not found)."""
    job = session.get(Job, job_id)
    if job is None or job.design_id is None or (design_id is not None and job.design_id != design_id):
        raise NotFound("No such job.")
    try:
        design = design_for(session, principal, job.design_id, need)
    except NotFound:
        raise NotFound("No such job.") from None
    return job, design
