"""``/workspaces``: the signed-in user's workspaces, their members, API keys and audit log.

Routes
======
* ``GET /workspaces`` — mine, with my role; ``POST /workspaces`` creates one (its creator
  is its admin, and it becomes the current workspace)
* ``POST /workspaces/{slug}/switch`` — make it the current workspace (members only)
* ``GET /workspaces/{slug}/members`` — everyone in it; admins add an existing user by
  e-mail (``POST …/members``), change a role (``POST …/members/{user_id}/role``) and remove
  someone (``POST …/members/{user_id}/remove``). The last admin cannot be demoted or removed.
* ``GET /workspaces/{slug}/keys`` — the REST API keys (prefix, name, scopes, dates); admins
  create one (``POST …/keys``: the secret is shown once, on the answer to that POST) and
  revoke one (``GET|POST …/keys/{id}/revoke``: a confirmation page, then the revoke)
* ``GET /workspaces/{slug}/audit?before=<id>`` — the audit log, newest first (admins)

A workspace the user is not a member of does not exist for them (404); a role too small
for a change gets 403. Every change is in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from app.models import User, Workspace
from app.services import access
from app.services import accounts as acc
from app.web.deps import DbSession, FormGuard, PageUser, audit, is_local_path
from app.web.designs import HELPERS
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])

AUDIT_PAGE = 50
SCOPE_CHOICES = (("read", "Read", "List and read designs, plans, jobs and prices."),
                 ("read write", "Read and write", "Also create, change, plan and delete designs."))
ROLE_HELP = {"viewer": "reads designs and plans", "editor": "also creates, edits, plans and deletes designs",
             "admin": "also manages members and API keys"}


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"active": "workspaces", **HELPERS, **context},
                                      status_code=status, headers=headers)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --------------------------------------------------------------------------- my workspaces


def _index_context(web, **extra: Any) -> dict[str, Any]:
    return {"workspaces": web.workspaces, "current": web.workspace, "name": "", "error": None,
            "role_help": ROLE_HELP, **extra}


@router.get("/workspaces", response_class=HTMLResponse)
def workspaces_page(request: Request, web: PageUser):
    return _render(request, "workspaces/index.html", _index_context(web))


@router.post("/workspaces", response_class=HTMLResponse)
def create_workspace(request: Request, session: DbSession, web: PageUser, name: Annotated[str, Form()] = ""):
    try:
        ws = acc.create_workspace(session, name, session.get(User, web.user.id))
    except acc.AccountError as exc:
        return _render(request, "workspaces/index.html", _index_context(web, name=name, error=str(exc)), status=422)
    audit(session, request, web, "workspace.create", workspace_id=ws.id, target=f"workspace:{ws.id}",
          detail={"name": ws.name, "slug": ws.slug})
    acc.set_current_workspace(session, web.auth, ws.id)
    return _see_other(f"/workspaces/{ws.slug}/members?created=1")


@router.post("/workspaces/{slug}/switch")
def switch_workspace(session: DbSession, web: PageUser, slug: str, next: Annotated[str, Form()] = ""):
    ws, _role = access.workspace_for(session, web.principal, slug)
    acc.set_current_workspace(session, web.auth, ws.id)
    return _see_other(next if is_local_path(next) else "/designs")


# --------------------------------------------------------------------------- members


def _workspace(session: Session, web, slug: str, need: str = "viewer") -> tuple[Workspace, str]:
    return access.workspace_for(session, web.principal, slug, need)


def _members_context(session: Session, web, ws: Workspace, role: str, **extra: Any) -> dict[str, Any]:
    return {"ws": ws, "role": role, "tab": "members", "members": acc.list_members(session, ws.id),
            "roles": acc.ROLES, "role_help": ROLE_HELP, "me": web.user.id, "manage": role == "admin",
            "add_email": "", "add_role": "editor", "add_error": None, "member_error": None,
            "member_error_for": None, **extra}


@router.get("/workspaces/{slug}/members", response_class=HTMLResponse)
def members_page(request: Request, session: DbSession, web: PageUser, slug: str, created: str = "",
                 saved: str = ""):
    ws, role = _workspace(session, web, slug)
    return _render(request, "workspaces/members.html",
                   _members_context(session, web, ws, role, created=created == "1", saved=saved))


@router.post("/workspaces/{slug}/members", response_class=HTMLResponse)
def add_member(request: Request, session: DbSession, web: PageUser, slug: str,
               email: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "editor"):
    ws, my_role = _workspace(session, web, slug, "admin")
    try:
        m = acc.add_member(session, ws.id, email, role)
    except acc.AccountError as exc:
        ctx = _members_context(session, web, ws, my_role, add_email=email, add_role=role, add_error=str(exc))
        return _render(request, "workspaces/members.html", ctx, status=422)
    user = session.get(User, m.user_id)
    audit(session, request, web, "member.add", workspace_id=ws.id, target=f"user:{m.user_id}",
          detail={"email": user.email if user else "", "role": m.role})
    return _see_other(f"/workspaces/{ws.slug}/members?saved=added")


def _member_email(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.email if user else ""


@router.post("/workspaces/{slug}/members/{user_id}/role", response_class=HTMLResponse)
def change_role(request: Request, session: DbSession, web: PageUser, slug: str, user_id: int,
                role: Annotated[str, Form()] = ""):
    ws, my_role = _workspace(session, web, slug, "admin")
    before = dict((u.id, r) for u, r in acc.list_members(session, ws.id)).get(user_id)
    try:
        m = acc.set_role(session, ws.id, user_id, role)
    except acc.AccountError as exc:
        ctx = _members_context(session, web, ws, my_role, member_error=str(exc), member_error_for=user_id)
        return _render(request, "workspaces/members.html", ctx, status=422)
    if before != m.role:
        audit(session, request, web, "member.role", workspace_id=ws.id, target=f"user:{user_id}",
              detail={"email": _member_email(session, user_id), "from": before, "to": m.role})
    if user_id == web.user.id and not acc.role_at_least(m.role, "admin"):
        return _see_other(f"/workspaces/{ws.slug}/members")
    return _see_other(f"/workspaces/{ws.slug}/members?saved=role")


@router.post("/workspaces/{slug}/members/{user_id}/remove", response_class=HTMLResponse)
def remove_member(request: Request, session: DbSession, web: PageUser, slug: str, user_id: int):
    ws, my_role = _workspace(session, web, slug, "admin")
    email = _member_email(session, user_id)
    try:
        acc.remove_member(session, ws.id, user_id)
    except acc.AccountError as exc:
        ctx = _members_context(session, web, ws, my_role, member_error=str(exc), member_error_for=user_id)
        return _render(request, "workspaces/members.html", ctx, status=422)
    audit(session, request, web, "member.remove", workspace_id=ws.id, target=f"user:{user_id}",
          detail={"email": email})
    if user_id == web.user.id:  # they left: the workspace is no longer theirs to see
        return _see_other("/workspaces")
    return _see_other(f"/workspaces/{ws.slug}/members?saved=removed")


# --------------------------------------------------------------------------- API keys


def _keys_context(session: Session, ws: Workspace, role: str, **extra: Any) -> dict[str, Any]:
    keys = acc.list_api_keys(session, ws.id)
    creators = {u.id: u.email for u, _r in acc.list_members(session, ws.id)}
    return {"ws": ws, "role": role, "tab": "keys", "keys": keys, "manage": role == "admin",
            "creators": creators, "scope_choices": SCOPE_CHOICES, "key_name": "", "key_scopes": "read",
            "key_error": None, **extra}


@router.get("/workspaces/{slug}/keys", response_class=HTMLResponse)
def keys_page(request: Request, session: DbSession, web: PageUser, slug: str, revoked: str = ""):
    ws, role = _workspace(session, web, slug)
    return _render(request, "workspaces/keys.html", _keys_context(session, ws, role, revoked=revoked == "1"))


@router.post("/workspaces/{slug}/keys", response_class=HTMLResponse)
def create_key(request: Request, session: DbSession, web: PageUser, slug: str,
               name: Annotated[str, Form()] = "", scopes: Annotated[str, Form()] = "read"):
    ws, role = _workspace(session, web, slug, "admin")
    if scopes not in {value for value, _label, _help in SCOPE_CHOICES}:
        ctx = _keys_context(session, ws, role, key_name=name, key_scopes="read",
                            key_error="Choose the scopes: read, or read and write.")
        return _render(request, "workspaces/keys.html", ctx, status=422)
    try:
        secret, key = acc.create_api_key(session, ws.id, name, scopes, created_by=web.user.id)
    except acc.AccountError as exc:
        ctx = _keys_context(session, ws, role, key_name=name, key_scopes=scopes, key_error=str(exc))
        return _render(request, "workspaces/keys.html", ctx, status=422)
    audit(session, request, web, "key.create", workspace_id=ws.id, target=f"key:{key.id}",
          detail={"name": key.name, "prefix": key.prefix, "scopes": key.scopes})
    # The secret is in this answer only: never cached, never stored.
    return _render(request, "workspaces/key_created.html", {"ws": ws, "role": role, "tab": "keys", "key": key,
                                                            "secret": secret},
                   headers={"Cache-Control": "no-store"})


def _key(session: Session, ws: Workspace, key_id: int):
    key = next((k for k in acc.list_api_keys(session, ws.id) if k.id == key_id), None)
    if key is None:
        raise acc.NotFound("No such API key.")
    return key


@router.get("/workspaces/{slug}/keys/{key_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(request: Request, session: DbSession, web: PageUser, slug: str, key_id: int):
    ws, role = _workspace(session, web, slug, "admin")
    key = _key(session, ws, key_id)
    return _render(request, "workspaces/key_revoke.html", {"ws": ws, "role": role, "tab": "keys", "key": key})


@router.post("/workspaces/{slug}/keys/{key_id}/revoke")
def revoke_key(request: Request, session: DbSession, web: PageUser, slug: str, key_id: int):
    ws, _role = _workspace(session, web, slug, "admin")
    was_live = _key(session, ws, key_id).revoked_at is None
    key = acc.revoke_api_key(session, ws.id, key_id)
    request.app.state.api_keys.forget(key.id)  # other processes: within settings.api_key_cache_s
    if was_live:
        audit(session, request, web, "key.revoke", workspace_id=ws.id, target=f"key:{key.id}",
              detail={"name": key.name, "prefix": key.prefix})
    return _see_other(f"/workspaces/{ws.slug}/keys?revoked=1")


# --------------------------------------------------------------------------- audit log


@router.get("/workspaces/{slug}/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: DbSession, web: PageUser, slug: str, before: str = ""):
    ws, role = _workspace(session, web, slug, "admin")
    before_id = int(before) if before.isdigit() and len(before) < 12 else None
    events = acc.list_audit(session, ws.id, limit=AUDIT_PAGE + 1, before_id=before_id)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    return _render(request, "workspaces/audit.html", {
        "ws": ws, "role": role, "tab": "audit", "events": events, "first_page": before_id is None,
        "older_url": f"/workspaces/{ws.slug}/audit?before={events[-1].id}" if more and events else None,
    })
