"""Idempotency keys for POST requests: the first response is stored and replayed on retries.

A client that sends ``Idempotency-Key: <key>`` with a POST may send the same request again
(after a timeout, a dropped connection, a crash) and gets the first answer back instead of a
second design or a second solve. Records are per principal (``key:3``, ``user:7``) and key,
and kept :data:`RETENTION` (24 h); older ones are pruned as new keys come in.

Protocol (no FastAPI here; the REST API maps the exceptions to problems)
========================================================================
1. :func:`begin` with the request's fingerprint (:func:`fingerprint`: method, path and the
   canonical JSON of the body):

   * no record → a *pending* record (``status_code = 0``) is inserted and committed, and the
     caller owns the key: it does the work, then calls :func:`finish` (a 2xx response is
     stored) or :func:`abandon` (an error: the record is deleted so that a corrected retry
     runs). Two requests racing with one key both try the insert; the unique constraint on
     ``(principal, key)`` lets exactly one win, the other reads the winner's record.
   * a record with another fingerprint → :class:`KeyReused`.
   * a pending record → :class:`KeyInProgress` (the first request is still being answered);
     a pending record older than :data:`PENDING_TIMEOUT` was left by a process that died
     and is taken over.
   * a finished record → :class:`StoredResponse` to replay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import IdempotencyRecord, utcnow

__all__ = [
    "MAX_KEY_CHARS",
    "PENDING_TIMEOUT",
    "RETENTION",
    "KeyInProgress",
    "KeyReused",
    "StoredResponse",
    "abandon",
    "begin",
    "finish",
    "fingerprint",
    "prune",
]

log = logging.getLogger("archplan.idempotency")

RETENTION = timedelta(hours=24)
PENDING_TIMEOUT = timedelta(minutes=2)
MAX_KEY_CHARS = 200
PRUNE_EVERY_S = 600.0

_prune_lock = threading.Lock()
_last_prune = 0.0


class KeyReused(ValueError):
    """The key was first used for a different request (another body, path or method)."""


class KeyInProgress(RuntimeError):
    """The first request with this key has not been answered yet."""


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 of the method, the path and the body as canonical JSON (key order ignored)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def _find(session: Session, principal: str, key: str) -> IdempotencyRecord | None:
    return session.exec(select(IdempotencyRecord).where(IdempotencyRecord.principal == principal,
                                                        IdempotencyRecord.key == key)).first()


def _delete_if_unchanged(session: Session, rec: IdempotencyRecord) -> None:
    """Delete ``rec`` unless someone else changed it meanwhile (same id, status and time)."""
    session.execute(delete(IdempotencyRecord).where(
        col(IdempotencyRecord.id) == rec.id, col(IdempotencyRecord.status_code) == rec.status_code,
        col(IdempotencyRecord.created_at) == rec.created_at,
    ).execution_options(synchronize_session=False))
    session.commit()


def begin(session: Session, principal: str, key: str, *, method: str, path: str, request_hash: str,
          now: datetime | None = None) -> StoredResponse | None:
    """Claim ``key`` for this request (None: go ahead, then :func:`finish` or :func:`abandon`)
    or the stored response to replay. Raises :class:`KeyReused` or :class:`KeyInProgress`."""
    for _ in range(5):
        now = now or utcnow()
        rec = _find(session, principal, key)
        if rec is not None and _aware(rec.created_at) < now - RETENTION:
            _delete_if_unchanged(session, rec)  # expired: the key is free again
            continue
        if rec is not None:
            if rec.request_hash != request_hash:
                raise KeyReused(
                    f"This Idempotency-Key was first used for a different request ({rec.method} {rec.path} "
                    "with another body); use a new key for a new request.")
            if rec.status_code == 0:
                if _aware(rec.created_at) < now - PENDING_TIMEOUT:
                    _delete_if_unchanged(session, rec)  # left by a process that stopped
                    continue
                raise KeyInProgress("The first request with this Idempotency-Key is still being answered; "
                                    "retry in a moment.")
            stored = rec.response or {}
            return StoredResponse(status_code=rec.status_code, body=stored.get("body"),
                                  headers=dict(stored.get("headers") or {}))
        session.add(IdempotencyRecord(principal=principal, key=key, method=method.upper()[:10], path=path[:500],
                                      request_hash=request_hash, status_code=0, response={}, created_at=now))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()  # a concurrent request with the same key won the insert
            continue
        maybe_prune(session)
        return None
    raise KeyInProgress("The first request with this Idempotency-Key is still being answered; retry in a moment.")


def finish(session: Session, principal: str, key: str, *, status_code: int, body: Any,
           headers: dict[str, str] | None = None) -> None:
    """Store the response of the request that owns ``key`` (commits)."""
    session.rollback()  # whatever the request left open is not part of this write
    session.execute(update(IdempotencyRecord).where(
        col(IdempotencyRecord.principal) == principal, col(IdempotencyRecord.key) == key,
        col(IdempotencyRecord.status_code) == 0,
    ).values(status_code=status_code, response={"body": body, "headers": dict(headers or {})})
        .execution_options(synchronize_session=False))
    session.commit()


def abandon(session: Session, principal: str, key: str) -> None:
    """The request that owns ``key`` failed: free the key so a retry runs again (commits)."""
    session.rollback()
    session.execute(delete(IdempotencyRecord).where(
        col(IdempotencyRecord.principal) == principal, col(IdempotencyRecord.key) == key,
        col(IdempotencyRecord.status_code) == 0,
    ).execution_options(synchronize_session=False))
    session.commit()


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete records older than :data:`RETENTION` (commits); how many went."""
    cutoff = (now or utcnow()) - RETENTION
    result = session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < cutoff)
                             .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount or 0


def maybe_prune(session: Session) -> None:
    """:func:`prune` at most every :data:`PRUNE_EVERY_S` seconds per process (best effort)."""
    global _last_prune
    with _prune_lock:
        if time.monotonic() - _last_prune < PRUNE_EVERY_S and _last_prune:
            return
        _last_prune = time.monotonic()
    try:
        gone = prune(session)
        if gone:
            log.info("pruned %d idempotency records older than %s", gone, RETENTION)
    except Exception:
        session.rollback()
        log.warning("could not prune idempotency records", exc_info=True)
