"""Database engine and sessions. Only the web, API, CLI and job faces use this module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from app.settings import get_settings

_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver callback
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite files get their folder, WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # (a ``file:`` URI, e.g. ``sqlite:///file:/srv/archplan.db?mode=ro&uri=true``, names an existing file)
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def release_connection(session: Session) -> None:
    """End ``session``'s transaction and give its connection back to the pool, keeping every
    row it loaded usable (nothing is expired).

    The sign-in dependencies call this once they know the caller: the route then takes a
    connection again only if it queries, and a route that opens a session of its own never
    holds two connections at once. (Requests that each hold one connection while waiting for
    a second can take every pooled connection and wait for each other until the pool's
    timeout.)
    """
    for obj in list(session):
        if sa_inspect(obj).expired_attributes:
            session.refresh(obj)
    keep, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or get_engine()) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


# --------------------------------------------------------------------------- infrastructure faults


@dataclass(frozen=True)
class DatabaseFault:
    """A database failure that is no fault of the request: the database is unreachable,
    read-only, out of disk space or busy. The web and the API answer 503 with ``message``
    (and ``Retry-After``); the command line prints :meth:`one_line`."""

    kind: Literal["unavailable", "read_only", "full", "busy"]
    message: str  # for users: says what happened, no driver internals
    advice: str  # for operators
    detail: str  # the driver's own words (first line)
    retry_after: int  # seconds

    def one_line(self) -> str:
        return f"{_HEADLINES[self.kind]} ({self.detail}); {self.advice}"


_HEADLINES = {
    "unavailable": "the database is unreachable",
    "read_only": "the database is read-only",
    "full": "the database's disk is full",
    "busy": "the database is busy",
}
_FAULTS: dict[str, tuple[str, str, int]] = {
    "unavailable": ("The database is unreachable right now; try again in a few seconds.",
                    "check that the database server is running and that ARCHPLAN_DATABASE_URL points at it", 5),
    "read_only": ("The database is read-only, so nothing can be saved right now; an administrator has to "
                  "make it writable again.",
                  "check the permissions of the database file and its folder (or the database user's "
                  "privileges) and that the filesystem is mounted read-write", 60),
    "full": ("The database's disk is full, so nothing can be saved right now; an administrator has to "
             "free space.", "free space on the disk that holds the database", 60),
    "busy": ("The database is busy; try again in a moment.",
             "another process holds a lock or every connection is in use; try again", 2),
}
# SQLite primary result codes (the low byte of an extended code such as SQLITE_READONLY_DIRECTORY):
# READONLY, FULL, BUSY, LOCKED, CANTOPEN, IOERR, NOTADB.
_SQLITE_KINDS = {8: "read_only", 13: "full", 5: "busy", 6: "busy", 14: "unavailable", 10: "unavailable",
                 26: "unavailable"}
# PostgreSQL SQLSTATEs: disk full, read-only transaction (e.g. a standby), too many connections,
# shutting down / starting up, and class 08 (connection exceptions).
_PG_KINDS = {"53100": "full", "25006": "read_only", "53300": "busy", "57P01": "unavailable",
             "57P02": "unavailable", "57P03": "unavailable"}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip()[:300] if lines else exc.__class__.__name__


def _fault(kind: str, detail: str) -> DatabaseFault:
    message, advice, retry = _FAULTS[kind]
    return DatabaseFault(kind=kind, message=message, advice=advice, detail=detail, retry_after=retry)  # type: ignore[arg-type]


def database_fault(exc: BaseException) -> DatabaseFault | None:
    """The :class:`DatabaseFault` behind ``exc``, or None for any other error (a bug, a
    constraint violation, a missing table: those stay errors of their own)."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection became free in time
        return _fault("busy", _first_line(exc))
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig = exc.orig
    detail = _first_line(orig) if orig is not None else _first_line(exc)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        kind = _SQLITE_KINDS.get(sqlite_code & 0xFF)
        return _fault(kind, detail) if kind else None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        kind = _PG_KINDS.get(sqlstate) or ("unavailable" if sqlstate.startswith("08") else None)
        return _fault(kind, detail) if kind else None
    if exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        # Without a result code or SQLSTATE: the driver could not reach the server (refused,
        # closed, timed out).
        return _fault("unavailable", detail)
    return None
