"""``/api/v1/workspaces``: the workspaces the caller reaches, and a workspace's audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from app.api.v1.deps import (
    MAX_ID,
    ApiProblem,
    Caller,
    CursorParam,
    Db,
    LimitParam,
    decode_cursor,
    page,
    problems,
)
from app.services import accounts as acc
from app.services import workspaces as ws_svc
from app.services.access import workspace_for

router = APIRouter(tags=["workspaces"])

WorkspaceId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1], description="The workspace's id.")]
Role = Literal["viewer", "editor", "admin"]


def utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite drops the offset; values are UTC)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def workspace_url(workspace_id: int) -> str:
    return f"/api/v1/workspaces/{workspace_id}"


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 1, "slug": "ml-platform", "name": "ML platform", "role": "editor",
        "created_at": "2026-12-01T09:30:00Z", "url": "/api/v1/workspaces/1",
        "designs_url": "/api/v1/workspaces/1/designs",
    }]})

    id: int
    slug: str
    name: str
    role: Role = Field(description="The caller's role: an API key is `viewer` (read) or `editor` (read write).")
    created_at: datetime
    url: str
    designs_url: str


class WorkspacePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"id": 1, "slug": "ml-platform", "name": "ML platform", "role": "editor",
                   "created_at": "2026-12-01T09:30:00Z", "url": "/api/v1/workspaces/1",
                   "designs_url": "/api/v1/workspaces/1/designs"}],
        "next_cursor": None,
    }]})

    items: list[WorkspaceOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="`user:<id>`, `key:<id>` or `system`.", examples=["key:4"])
    actor_label: str = Field(examples=["API key procurement-sync (ap_Xk3v9Q…)"])
    action: str = Field(examples=["design.create"])
    target: str = Field(examples=["design:12"])
    detail: dict[str, Any]
    ip: str


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"id": 31, "at": "2026-12-03T10:02:11Z", "actor": "key:4",
                   "actor_label": "API key procurement-sync (ap_Xk3v9Q…)", "action": "plan.solve",
                   "target": "design:12", "detail": {"via": "api", "job_id": 57}, "ip": "10.0.4.17"}],
        "next_cursor": "eyJsIjoiYXVkaXQ6MSIsImkiOjMxfQ",
    }]})

    items: list[AuditEventOut]
    next_cursor: str | None


def workspace_out(ws: Any, role: str) -> WorkspaceOut:
    return WorkspaceOut(id=ws.id, slug=ws.slug, name=ws.name, role=role, created_at=utc(ws.created_at),
                        url=workspace_url(ws.id), designs_url=f"{workspace_url(ws.id)}/designs")


@router.get("/workspaces", response_model=WorkspacePage, summary="Workspaces the caller can reach",
            description="A user's workspaces (with their role); an API key sees its own workspace only.",
            responses=problems())
def list_workspaces(session: Db, principal: Caller, limit: LimitParam = 20, cursor: CursorParam = None):
    after = decode_cursor(cursor, "workspaces")
    found = ws_svc.workspaces_page(session, principal, limit=limit + 1, after_id=after)
    items, next_cursor = page(found, limit, "workspaces", lambda item: item[0].id)
    return WorkspacePage(items=[workspace_out(ws, role) for ws, role in items], next_cursor=next_cursor)


@router.get("/workspaces/{workspace_id}", response_model=WorkspaceOut, summary="One workspace",
            responses=problems(404))
def get_workspace(session: Db, principal: Caller, workspace_id: WorkspaceId):
    ws, role = workspace_for(session, principal, workspace_id)
    return workspace_out(ws, role)


@router.get("/workspaces/{workspace_id}/audit", response_model=AuditPage,
            summary="The workspace's audit log, newest first (admins)",
            description=("Who created, changed, solved, exported or deleted what. Workspace admins only, "
                         "signed in: API keys are refused (403)."),
            responses=problems(403, 404))
def list_audit(session: Db, principal: Caller, workspace_id: WorkspaceId,
               limit: LimitParam = 50, cursor: CursorParam = None):
    ws, role = workspace_for(session, principal, workspace_id)
    if principal.key is not None:
        raise ApiProblem(403, "API keys cannot read the audit log; a workspace admin reads it signed in.")
    if role != "admin":
        raise acc.Forbidden(f"Your role in this workspace is {role}; the audit log needs admin.")
    listing = f"audit:{ws.id}"
    before = decode_cursor(cursor, listing)
    events, next_cursor = page(acc.list_audit(session, ws.id, limit=limit + 1, before_id=before), limit, listing,
                               lambda ev: ev.id)
    return AuditPage(items=[AuditEventOut(id=e.id, at=utc(e.at), actor=e.actor, actor_label=e.actor_label,
                                          action=e.action, target=e.target, detail=e.detail or {}, ip=e.ip)
                            for e in events], next_cursor=next_cursor)
