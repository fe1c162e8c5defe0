"""Workspaces a principal can reach, page by page.

No FastAPI here. A user reaches the workspaces they are a member of (with their role); an
API key reaches its own workspace only (``viewer`` with the read scope, ``editor`` with write).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.models import Membership, Workspace
from app.services.accounts import Principal, workspace_role

__all__ = ["workspaces_page"]


def workspaces_page(session: Session, principal: Principal, *, limit: int = 20,
                    after_id: int | None = None) -> list[tuple[Workspace, str]]:
    """The principal's workspaces with their role, by id; ``after_id`` continues a page."""
    if principal.key is not None:
        ws = session.get(Workspace, principal.key.workspace_id)
        role = workspace_role(session, principal, principal.key.workspace_id) if ws is not None else None
        if ws is None or role is None or (after_id is not None and ws.id <= after_id) or limit < 1:
            return []
        return [(ws, role)]
    if principal.user is None:
        return []
    q = (select(Workspace, Membership.role).join(Membership, col(Membership.workspace_id) == col(Workspace.id))
         .where(Membership.user_id == principal.user.id))
    if after_id is not None:
        q = q.where(col(Workspace.id) > after_id)
    return [(ws, role) for ws, role in session.exec(q.order_by(col(Workspace.id)).limit(limit)).all()]

