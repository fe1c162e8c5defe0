"""Shared fixtures: migrated databases (SQLite and a real PostgreSQL), the app, a live server."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import dispose_engines, make_engine
from app.main import create_app
from app.migrations import upgrade
from app.settings import Settings
from tests.pg import PostgresServer

os.environ.setdefault("ARCHPLAN_ENVIRONMENT", "test")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        dispose_engines()
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database engine, once on SQLite and once on the real PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'archplan.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database("t")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archplan.db'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str) -> str:
    upgrade(sqlite_url)
    return sqlite_url


def make_settings(url: str, **overrides) -> Settings:
    # A cheap scrypt cost keeps signing in fast (production keeps the default 2^15).
    overrides.setdefault("password_scrypt_n", 2**10)
    return Settings(environment="test", database_url=url, log_level="WARNING", **overrides)


@pytest.fixture
def settings(migrated_sqlite_url: str) -> Settings:
    return make_settings(migrated_sqlite_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, signed in (through /login) as an admin of the default workspace; every
    request sends the session's CSRF token as ``X-CSRF-Token`` (as htmx does)."""
    from tests.signin import signed_in_client

    with signed_in_client(settings) as c:
        yield c


@pytest.fixture
def anon_client(settings: Settings) -> Iterator[TestClient]:
    """The app for a visitor who has not signed in."""
    with TestClient(create_app(settings)) as c:
        yield c


class LiveServer:
    def __init__(self, settings: Settings):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server
