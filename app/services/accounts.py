"""Accounts and access: users, passwords, browser sessions, workspaces with members and
roles, API keys, and the audit log.

No FastAPI here: the pages, the REST API and the CLI share these functions and map the
exceptions to their own answers (:class:`NotFound` → 404, :class:`Forbidden` → 403).

Passwords are hashed with scrypt (``hashlib.scrypt``, memory-hard; r=8, p=3 and N from the
settings, 2^15 by default, one of OWASP's recommended settings) and a 16-byte random salt;
the hash string carries its parameters, so raising N later re-hashes at the next sign-in.
Session tokens and API keys are 256-bit random secrets; only their SHA-256 is stored (a
slow KDF adds nothing for secrets with that much entropy, and lookups stay one index read).

Access: a user reaches a workspace through a :class:`~app.models.Membership` with a role
(``viewer`` reads, ``editor`` also writes, ``admin`` also manages members and keys). An API
key belongs to one workspace and acts as ``viewer`` (scope ``read``) or ``editor`` (scopes
``read write``). Anyone without access to a workspace is told it does not exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from app.models import (
    ApiKey,
    AuditEvent,
    AuthSession,
    Membership,
    User,
    Workspace,
    utcnow,
)

__all__ = [
    "API_KEY_PREFIX",
    "ROLES",
    "SCOPES",
    "AccountError",
    "Forbidden",
    "NotFound",
    "Principal",
    "add_member",
    "authenticate",
    "count_users",
    "create_api_key",
    "create_user",
    "create_workspace",
    "end_session",
    "ensure_workspace",
    "get_user_by_email",
    "hash_password",
    "list_api_keys",
    "list_audit",
    "list_members",
    "lookup_api_key",
    "normalize_email",
    "record",
    "remove_member",
    "require_role",
    "revoke_api_key",
    "ApiKeyCache",
    "role_at_least",
    "session_for_token",
    "set_current_workspace",
    "set_role",
    "start_session",
    "verify_password",
    "workspace_role",
    "workspaces_for_user",
]

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
SCOPES = ("read", "write")
API_KEY_PREFIX = "ap_"
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}$")
_SCRYPT_R, _SCRYPT_P = 8, 3
_TOUCH_EVERY = timedelta(minutes=1)  # last-seen / last-used writes at most this often
log = logging.getLogger("archplan.accounts")


def _touch(session: Session, statement: Any, what: str) -> bool:
    """A last-seen / last-used write, best effort: a database that refuses writes (read-only,
    full, locked) must not turn a read into an error. True when it was written."""
    try:
        session.execute(statement.execution_options(synchronize_session=False))
        session.commit()
        return True
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("could not record the %s (%s); carrying on", what, exc.__class__.__name__)
        return False


class AccountError(ValueError):
    """Input that cannot be accepted; the message says why (safe to show)."""


class NotFound(LookupError):
    """The thing does not exist, or the caller may not know that it does."""


class Forbidden(PermissionError):
    """The caller can see the thing but may not do this to it; the message says why."""


# --------------------------------------------------------------------------- passwords


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r * p + 64 * 1024 * 1024, dklen=32)


def hash_password(password: str, *, n: int = 2**15) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64 without padding)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))


def _needs_rehash(stored: str, n: int) -> bool:
    parts = stored.split("$")
    return len(parts) != 6 or parts[0] != "scrypt" or int(parts[1]) < n


# A hash to verify against when the e-mail is unknown, so both cases take the same time.
_DUMMY_HASH: dict[int, str] = {}


def _dummy_hash(n: int) -> str:
    if n not in _DUMMY_HASH:
        _DUMMY_HASH[n] = hash_password(secrets.token_urlsafe(16), n=n)
    return _DUMMY_HASH[n]


# --------------------------------------------------------------------------- users


def normalize_email(email: str) -> str:
    value = (email or "").strip().lower()
    if not _EMAIL_RE.match(value) or len(value) > 254:
        raise AccountError("Enter an e-mail address such as name@example.com.")
    return value


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"Use a password of at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"Use a password of at most {MAX_PASSWORD_CHARS} characters.")


def count_users(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def get_user_by_email(session: Session, email: str) -> User | None:
    try:
        value = normalize_email(email)
    except AccountError:
        return None
    return session.exec(select(User).where(User.email == value)).first()


def create_user(session: Session, email: str, password: str, *, name: str = "", is_admin: bool = False,
                scrypt_n: int = 2**15) -> User:
    """Create a user (commits). :class:`AccountError` for a bad e-mail or password or a taken e-mail."""
    value = normalize_email(email)
    _check_password(password)
    name = (name or "").strip()[:200]
    user = User(email=value, name=name, password_hash=hash_password(password, n=scrypt_n), is_admin=is_admin)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AccountError(f"A user with the e-mail {value} already exists.") from None
    session.refresh(user)
    return user


def authenticate(session: Session, email: str, password: str, *, scrypt_n: int = 2**15) -> User | None:
    """The user with this e-mail and password, or None (same work either way). Commits a
    re-hash when the stored hash is weaker than ``scrypt_n`` asks for."""
    user = get_user_by_email(session, email)
    if user is None or user.disabled:
        verify_password(password, _dummy_hash(scrypt_n))
        return None
    if not verify_password(password, user.password_hash):
        return None
    user.last_login_at = utcnow()
    if _needs_rehash(user.password_hash, scrypt_n):
        user.password_hash = hash_password(password, n=scrypt_n)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


# --------------------------------------------------------------------------- sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, user: User, *, days: float = 14.0, ip: str = "",
                  user_agent: str = "") -> str:
    """A new browser session for ``user`` (commits); returns the cookie token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    ws = workspaces_for_user(session, user.id)
    row = AuthSession(token_hash=_token_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
                      expires_at=now + timedelta(days=days), ip=ip[:64], user_agent=user_agent[:300],
                      workspace_id=ws[0][0].id if ws else None)
    session.add(row)
    session.commit()
    return token


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def session_for_token(session: Session, token: str | None) -> tuple[AuthSession, User] | None:
    """The live session and its user for a cookie token, or None (expired, ended, disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.exec(select(AuthSession).where(AuthSession.token_hash == _token_hash(token))).first()
    if row is None:
        return None
    now = utcnow()
    if _aware(row.expires_at) <= now:
        session.delete(row)
        session.commit()
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    if now - _aware(row.last_seen_at) > _TOUCH_EVERY and \
            _touch(session, update(AuthSession).where(col(AuthSession.id) == row.id).values(last_seen_at=now),
                   "session's last use"):
        set_committed_value(row, "last_seen_at", now)
    return row, user


def end_session(session: Session, token: str | None) -> None:
    if not token:
        return
    row = session.exec(select(AuthSession).where(AuthSession.token_hash == _token_hash(token))).first()
    if row is not None:
        session.delete(row)
        session.commit()


def set_current_workspace(session: Session, auth: AuthSession, workspace_id: int) -> None:
    auth.workspace_id = workspace_id
    session.add(auth)
    session.commit()


# --------------------------------------------------------------------------- workspaces


def role_at_least(role: str | None, need: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(need)  # type: ignore[arg-type]


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48]
    return slug or "workspace"


def create_workspace(session: Session, name: str, owner: User | None) -> Workspace:
    """A new workspace (commits); ``owner`` becomes its admin. The slug is made unique."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", (name or "")).strip()
    if not name:
        raise AccountError("Give the workspace a name.")
    if len(name) > 200:
        raise AccountError("Use a workspace name of at most 200 characters.")
    base = _slugify(name)
    for attempt in range(50):
        slug = base if attempt == 0 else f"{base}-{secrets.token_hex(3)}"
        ws = Workspace(slug=slug, name=name)
        session.add(ws)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            continue
        if owner is not None:
            session.add(Membership(workspace_id=ws.id, user_id=owner.id, role="admin"))
        session.commit()
        session.refresh(ws)
        return ws
    raise AccountError("Could not find a free address for this workspace; try another name.")


def ensure_workspace(session: Session, user: User) -> list[tuple[Workspace, str]]:
    """The user's workspaces; a first one of their own is created when they have none."""
    found = workspaces_for_user(session, user.id)
    if found:
        return found
    label = user.name or user.email.split("@")[0]
    create_workspace(session, f"{label}'s workspace", user)
    return workspaces_for_user(session, user.id)


def workspaces_for_user(session: Session, user_id: int | None) -> list[tuple[Workspace, str]]:
    rows = session.exec(
        select(Workspace, Membership.role).join(Membership, col(Membership.workspace_id) == col(Workspace.id))
        .where(Membership.user_id == user_id).order_by(col(Workspace.name), col(Workspace.id))
    ).all()
    return [(ws, role) for ws, role in rows]


def list_members(session: Session, workspace_id: int) -> list[tuple[User, str]]:
    rows = session.exec(
        select(User, Membership.role).join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.workspace_id == workspace_id).order_by(col(User.email))
    ).all()
    return [(u, role) for u, role in rows]


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"Choose a role: {', '.join(ROLES)}.")


def add_member(session: Session, workspace_id: int, email: str, role: str) -> Membership:
    """Give an existing user a role in the workspace (commits)."""
    _check_role(role)
    user = get_user_by_email(session, email)
    if user is None:
        raise AccountError("No user has that e-mail address; an administrator creates users first.")
    existing = session.exec(select(Membership).where(Membership.workspace_id == workspace_id,
                                                     Membership.user_id == user.id)).first()
    if existing is not None:
        raise AccountError(f"{user.email} is already a member ({existing.role}).")
    m = Membership(workspace_id=workspace_id, user_id=user.id, role=role)
    session.add(m)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise AccountError(f"{user.email} is already a member.") from None
    session.refresh(m)
    return m


def _admins(session: Session, workspace_id: int) -> int:
    return session.exec(select(func.count()).select_from(Membership).where(
        Membership.workspace_id == workspace_id, Membership.role == "admin")).one()


def set_role(session: Session, workspace_id: int, user_id: int, role: str) -> Membership:
    _check_role(role)
    m = session.exec(select(Membership).where(Membership.workspace_id == workspace_id,
                                              Membership.user_id == user_id)).first()
    if m is None:
        raise NotFound("No such member.")
    if m.role == "admin" and role != "admin" and _admins(session, workspace_id) <= 1:
        raise AccountError("A workspace keeps at least one admin; make someone else admin first.")
    m.role = role
    session.add(m)
    session.commit()
    session.refresh(m)
    return m


def remove_member(session: Session, workspace_id: int, user_id: int) -> None:
    m = session.exec(select(Membership).where(Membership.workspace_id == workspace_id,
                                              Membership.user_id == user_id)).first()
    if m is None:
        raise NotFound("No such member.")
    if m.role == "admin" and _admins(session, workspace_id) <= 1:
        raise AccountError("A workspace keeps at least one admin; make someone else admin first.")
    session.delete(m)
    session.commit()


# --------------------------------------------------------------------------- principals


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user or an API key (never both)."""

    user: User | None = None
    key: ApiKey | None = None
    #: The user's roles as (workspace id, role), loaded once for this request (a page's
    #: sign-in check lists them for the navigation); None: each check asks the database.
    roles: tuple[tuple[int, str], ...] | None = None

    @property
    def actor(self) -> str:
        if self.key is not None:
            return f"key:{self.key.id}"
        if self.user is not None:
            return f"user:{self.user.id}"
        return "anonymous"

    @property
    def label(self) -> str:
        if self.key is not None:
            return f"API key {self.key.name} ({self.key.prefix}…)"
        return self.user.email if self.user is not None else ""


def workspace_role(session: Session, principal: Principal, workspace_id: int) -> str | None:
    """The principal's role in the workspace, or None without access."""
    if principal.key is not None:
        if principal.key.workspace_id != workspace_id or principal.key.revoked_at is not None:
            return None
        return "editor" if "write" in principal.key.scopes.split() else "viewer"
    if principal.user is None:
        return None
    if principal.roles is not None:
        return next((role for ws_id, role in principal.roles if ws_id == workspace_id), None)
    return session.exec(select(Membership.role).where(Membership.workspace_id == workspace_id,
                                                      Membership.user_id == principal.user.id)).first()


def require_role(session: Session, principal: Principal, workspace_id: int, need: str = "viewer") -> str:
    """The principal's role; :class:`NotFound` without access, :class:`Forbidden` below ``need``."""
    role = workspace_role(session, principal, workspace_id)
    if role is None:
        raise NotFound("No such workspace.")
    if not role_at_least(role, need):
        if principal.key is not None:
            raise Forbidden("This API key has the read scope only; writing needs a key with the write scope.")
        raise Forbidden(f"Your role in this workspace is {role}; this needs {need}.")
    return role


# --------------------------------------------------------------------------- API keys


def create_api_key(session: Session, workspace_id: int, name: str, scopes: list[str] | str,
                   created_by: int | None = None) -> tuple[str, ApiKey]:
    """A new key (commits); returns the secret — shown once, never stored — and the row."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", name or "").strip()
    if not name:
        raise AccountError("Give the key a name that says who uses it.")
    if len(name) > 200:
        raise AccountError("Use a key name of at most 200 characters.")
    wanted = scopes.split() if isinstance(scopes, str) else list(scopes)
    bad = [s for s in wanted if s not in SCOPES]
    if bad or not wanted:
        raise AccountError("Choose the scopes: read, or read and write.")
    if "write" in wanted and "read" not in wanted:
        wanted.append("read")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(workspace_id=workspace_id, name=name, prefix=secret[:10], key_hash=_token_hash(secret),
                 scopes=" ".join(s for s in SCOPES if s in wanted), created_by=created_by)
    session.add(key)
    session.commit()
    session.refresh(key)
    return secret, key


def lookup_api_key(session: Session, secret: str | None) -> ApiKey | None:
    """The live key for a secret (records its use, at most once a minute), or None."""
    if not secret or not secret.startswith(API_KEY_PREFIX) or len(secret) > 200:
        return None
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == _token_hash(secret))).first()
    if key is None or key.revoked_at is not None:
        return None
    now = utcnow()
    if (key.last_used_at is None or now - _aware(key.last_used_at) > _TOUCH_EVERY) and \
            _touch(session, update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now),
                   "API key's last use"):
        set_committed_value(key, "last_used_at", now)
    return key


class ApiKeyCache:
    """Live API keys by the hash of their secret, kept ``ttl_s`` seconds per process, so a
    client polling many times a second costs one key lookup per ``ttl_s`` instead of one per
    request. Unknown and revoked keys are never kept (each such request asks the database).

    A key revoked through this process is forgotten at once (:meth:`forget`); another
    process (replica) stops accepting it within ``ttl_s`` seconds. ``ttl_s`` 0 turns it off.
    """

    def __init__(self, ttl_s: float, max_items: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._items: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def lookup(self, session: Session, secret: str | None) -> ApiKey | None:
        """As :func:`lookup_api_key`; the key returned is a detached copy when kept."""
        if self.ttl_s <= 0 or not secret or not secret.startswith(API_KEY_PREFIX) or len(secret) > 200:
            return lookup_api_key(session, secret)
        digest = _token_hash(secret)
        now = time.monotonic()
        with self._lock:
            found = self._items.get(digest)
        if found is not None and found[0] > now:
            return found[1]
        key = lookup_api_key(session, secret)
        if key is None:
            with self._lock:
                self._items.pop(digest, None)
            return None
        # Loaded and detached (getattr loads what a commit expired): safe to share between requests.
        copy = ApiKey(**{name: getattr(key, name) for name in ApiKey.model_fields})
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items = {h: v for h, v in self._items.items() if v[0] > now}
                if len(self._items) >= self.max_items:
                    self._items.clear()
            self._items[digest] = (now + self.ttl_s, copy)
        return copy

    def forget(self, key_id: int) -> None:
        """Stop accepting a key from this cache at once (it was revoked)."""
        with self._lock:
            self._items = {h: v for h, v in self._items.items() if v[1].id != key_id}


def list_api_keys(session: Session, workspace_id: int) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).where(ApiKey.workspace_id == workspace_id)
                             .order_by(col(ApiKey.revoked_at).is_not(None), col(ApiKey.id).desc())).all())


def revoke_api_key(session: Session, workspace_id: int, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.workspace_id != workspace_id:
        raise NotFound("No such API key.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.commit()
        session.refresh(key)
    return key


# --------------------------------------------------------------------------- audit log


def record(session: Session, principal: Principal | None, action: str, *, workspace_id: int | None = None,
           target: str = "", detail: dict[str, Any] | None = None, ip: str = "", commit: bool = True) -> AuditEvent:
    """Append an audit event (commits unless ``commit=False``, to join the caller's unit of work)."""
    ev = AuditEvent(workspace_id=workspace_id, actor=principal.actor if principal else "system",
                    actor_label=(principal.label if principal else "")[:254], action=action[:60],
                    target=target[:120], detail=detail or {}, ip=(ip or "")[:64])
    session.add(ev)
    if commit:
        session.commit()
        session.refresh(ev)
    return ev


def list_audit(session: Session, workspace_id: int, *, limit: int = 50, before_id: int | None = None) -> list[AuditEvent]:
    q = select(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
    if before_id is not None:
        q = q.where(col(AuditEvent.id) < before_id)
    return list(session.exec(q.order_by(col(AuditEvent.id).desc()).limit(limit)).all())
