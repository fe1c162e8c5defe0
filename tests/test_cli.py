"""The ``archplan`` console script, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from app.db import make_engine

ARCHPLAN = str(Path(sys.executable).with_name("archplan"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "ARCHPLAN_ENVIRONMENT": "test", **(env or {})}
    return subprocess.run([ARCHPLAN, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_help_lists_subcommands() -> None:
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("serve", "db"):
        assert cmd in r.stdout
    r = run("serve", "--help")
    assert "--host" in r.stdout and "--port" in r.stdout
    r = run("db", "--help")
    assert "upgrade" in r.stdout


def test_db_upgrade_on_empty_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'a.db'}"
    r = run("db", "upgrade", env={"ARCHPLAN_DATABASE_URL": url})
    assert r.returncode == 0, r.stderr
    engine = make_engine(url)
    assert "price_snapshot" in inspect(engine).get_table_names()
    engine.dispose()
    r = run("db", "current", env={"ARCHPLAN_DATABASE_URL": url})
    assert "up to date" in r.stdout


@pytest.mark.postgres
def test_db_upgrade_on_empty_postgres(pg_server) -> None:
    url = pg_server.create_database("cli")
    r = run("db", "upgrade", env={"ARCHPLAN_DATABASE_URL": url})
    assert r.returncode == 0, r.stderr
    assert "archplan@" in r.stdout or "127.0.0.1" in r.stdout
    engine = make_engine(url)
    assert "workspace" in inspect(engine).get_table_names()
    engine.dispose()


def test_bad_configuration_is_reported(tmp_path: Path) -> None:
    r = run("db", "upgrade", env={"ARCHPLAN_ENVIRONMENT": "production",
                                  "ARCHPLAN_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert r.returncode == 2
    assert "ARCHPLAN_SECRET_KEY" in r.stderr
