"""A read-only SQLite database and one whose disk is full, met by the command line and the app.

* Read-only: the file and its folder made read-only with ``chmod`` (the CLI runs as a real
  subprocess; as root, without the capability that lets root ignore file permissions), and
  the app opening the file read-only (``mode=ro``), the way a read-only mount behaves.
* Disk full: SQLite's own page limit (``PRAGMA max_page_count``) set on every connection,
  which fails writes with the same ``database or disk is full`` a full disk gives.

The CLI prints one clear line and exits 1; the app answers 503 with a clear message.
"""

from __future__ import annotations

import html
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy import update as sa_update
from sqlalchemy.pool import Pool
from sqlmodel import Session, select

from app.catalog.schema import DEFAULT_SNAPSHOT_PATH
from app.db import dispose_engines, get_engine, make_engine
from app.main import create_app
from app.migrations import upgrade
from app.models import AuthSession, Design, PriceOffering, utcnow
from app.requirements.examples import load_example
from app.services import catalog as catalog_svc
from tests.catalog_db.factory import make_snapshot
from tests.conftest import make_settings
from tests.faults.conftest import run_cli, seed

ARCHPLAN = str(Path(sys.executable).with_name("archplan"))
needs_bundled = pytest.mark.skipif(not DEFAULT_SNAPSHOT_PATH.is_file(), reason="bundled snapshot not built")


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


def _one_line(text_: str) -> str:
    lines = [ln for ln in text_.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text_
    assert "Traceback" not in text_
    return lines[0]


@contextmanager
def page_limit(db: Path, extra_pages: int = 0) -> Iterator[None]:
    """While inside, the SQLite file ``db`` may grow by ``extra_pages`` pages at most, for
    every connection any engine opens to it (the app's, the CLI's, Alembic's own)."""
    probe = sqlite3.connect(db)
    try:
        limit = max(1, probe.execute("PRAGMA page_count").fetchone()[0] + extra_pages)
    finally:
        probe.close()
    target = str(db.resolve())

    def on_connect(dbapi_connection, _record) -> None:
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
        if target in files:
            dbapi_connection.execute(f"PRAGMA max_page_count={limit}")

    event.listen(Pool, "connect", on_connect)
    dispose_engines()  # pooled connections were opened without the limit
    try:
        yield
    finally:
        event.remove(Pool, "connect", on_connect)


# --------------------------------------------------------------------------- read-only


def _as_unprivileged(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be made to apply")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]


def _archplan(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARCHPLAN_ENVIRONMENT": "test", "ARCHPLAN_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(_as_unprivileged([ARCHPLAN, *args]), capture_output=True, text=True, env=env,
                          timeout=180, check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    for p in (folder, *folder.iterdir()):  # writable again, so the folder can be removed
        p.chmod(0o755 if p.is_dir() else 0o644)


def _make_read_only(folder: Path) -> None:
    for p in folder.iterdir():
        p.chmod(0o444)
    folder.chmod(0o555)


@needs_bundled
def test_cli_import_into_read_only_database(read_only_dir: Path) -> None:
    url = f"sqlite:///{read_only_dir / 'archplan.db'}"
    upgrade(url)
    base = make_snapshot()
    engine = make_engine(url)
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, base, origin="test")
    engine.dispose()
    _make_read_only(read_only_dir)

    r = _archplan(url, "pricing", "import", "--bundled")

    assert r.returncode == 1, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert line.startswith("Error: the database is read-only (attempt to write a readonly database)")
    assert "permissions" in line and "nothing was changed" in line
    engine = make_engine(url)
    with Session(engine) as s:
        assert [row.snapshot_id for row in catalog_svc.list_snapshots(s)] == [base.snapshot_id]
    engine.dispose()


def test_cli_migrate_read_only_database(read_only_dir: Path) -> None:
    db = read_only_dir / "archplan.db"
    db.touch()  # an empty SQLite database, never migrated
    _make_read_only(read_only_dir)

    r = _archplan(f"sqlite:///{db}", "db", "upgrade")

    assert r.returncode == 1, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert line.startswith("Migration failed: the database is read-only (attempt to write a readonly database)")
    assert db.stat().st_size == 0


def test_app_on_read_only_database(tmp_path: Path) -> None:
    db = tmp_path / "archplan.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    engine = make_engine(url)
    s = seed(engine, name="Kept as it was")
    with Session(engine) as db_session:  # the browser was last seen a while ago: its next read records it
        db_session.execute(sa_update(AuthSession).values(last_seen_at=utcnow() - timedelta(hours=2)))
        db_session.commit()
    engine.dispose()

    settings = make_settings(f"sqlite:///file:{db}?mode=ro&uri=true", job_workers=0)
    with TestClient(create_app(settings)) as client:
        headers = s.browser(client, settings.secret_key)
        assert client.get("/readyz").status_code == 200  # it answers reads
        # Reads by a key never used before and by a signed-in browser: their last-use writes fail
        # (best effort), the reads are answered.
        api_read = client.get(f"/api/v1/designs/{s.design_id}", headers=s.write_bearer)
        assert api_read.status_code == 200, api_read.text[:500]
        assert api_read.json()["name"] == "Kept as it was"
        page = client.get(f"/designs/{s.design_id}", headers=headers)
        assert page.status_code == 200 and "Kept as it was" in page.text
        r = client.post(f"/designs/{s.design_id}/rename", data={"name": "Changed"}, headers=headers,
                        follow_redirects=False)
        api = client.patch(f"/api/v1/designs/{s.design_id}", json={"name": "Changed"}, headers=s.write_bearer)

    assert r.status_code == 503, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert int(r.headers["retry-after"]) > 0
    assert "The database is read-only, so nothing can be saved right now" in r.text
    assert "Traceback" not in r.text and "sqlite3" not in r.text
    assert api.status_code == 503, api.text[:500]
    assert api.headers["content-type"] == "application/problem+json" and int(api.headers["retry-after"]) > 0
    assert api.json()["detail"].startswith("The database is read-only, so nothing can be saved right now")
    engine = make_engine(url)
    with Session(engine) as db_session:
        assert db_session.get(Design, s.design_id).name == "Kept as it was"
    engine.dispose()


# --------------------------------------------------------------------------- disk full


@needs_bundled
def test_cli_import_on_full_disk_fails_part_way_and_keeps_current(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'archplan.db'}"
    upgrade(url)
    base = make_snapshot()
    with Session(make_engine(url)) as s:
        catalog_svc.import_snapshot(s, base, origin="test")
        before = catalog_svc.get_snapshot(s, base.snapshot_id)
    # Room for about half of the bundled snapshot: measured by importing it elsewhere.
    scratch = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    upgrade(str(scratch.url))
    with scratch.connect() as conn:
        empty = conn.execute(text("PRAGMA page_count")).scalar_one()
    with Session(scratch) as s:
        catalog_svc.ensure_bundled_snapshot(s)
    with scratch.connect() as conn:
        needed = conn.execute(text("PRAGMA page_count")).scalar_one() - empty
    scratch.dispose()
    offering_inserts = []

    def count(conn, cursor, statement, params, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PRICE_OFFERING"):
            offering_inserts.append(statement)

    with page_limit(tmp_path / "archplan.db", extra_pages=needed // 2):
        event.listen(get_engine(url), "before_cursor_execute", count)  # the engine the command uses
        r = run_cli(monkeypatch, url, "pricing", "import", "--bundled")

    assert r.exit_code == 1, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert line.startswith("Error: the database's disk is full (database or disk is full)")
    assert offering_inserts, "the import failed before writing any offering"  # part-way, not up front
    dispose_engines()
    with Session(make_engine(url)) as s:
        assert [row.snapshot_id for row in catalog_svc.list_snapshots(s)] == [base.snapshot_id]
        assert catalog_svc.current_snapshot(s).snapshot_id == base.snapshot_id
        assert catalog_svc.get_snapshot(s, base.snapshot_id) == before
        assert len(s.exec(select(PriceOffering.id)).all()) == len(base.offerings)


def test_cli_migrate_on_full_disk(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "archplan.db"
    sqlite3.connect(db).close()  # an empty database file
    with page_limit(db):
        r = run_cli(monkeypatch, f"sqlite:///{db}", "db", "upgrade")

    assert r.exit_code == 1, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert line.startswith("Migration failed: the database's disk is full (database or disk is full)")


def test_app_on_full_disk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archplan.db'}"
    upgrade(url)
    seeded = make_engine(url)
    s = seed(seeded)
    seeded.dispose()
    settings = make_settings(url, job_workers=0)
    app = create_app(settings)
    with TestClient(app) as client:
        headers = s.browser(client, settings.secret_key)
        with page_limit(tmp_path / "archplan.db"):
            app.state.engine.dispose()
            r = client.post("/designs/from-example", data={"example": "llm-finetune-hipaa", "name": "One too many"},
                            headers=headers, follow_redirects=False)
            api = client.post(f"/api/v1/workspaces/{s.workspace_id}/designs", headers=s.write_bearer,
                              json={"name": "One more", "spec": load_example("vision-growing-inference")
                                    .model_dump(mode="json")})

    assert r.status_code == 503, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert int(r.headers["retry-after"]) > 0
    assert "The database's disk is full, so nothing can be saved right now" in html.unescape(r.text)
    assert "Traceback" not in r.text
    assert api.status_code == 503, api.text[:500]
    assert api.headers["content-type"] == "application/problem+json" and int(api.headers["retry-after"]) > 0
    assert api.json()["detail"].startswith("The database's disk is full, so nothing can be saved right now")
    with Session(make_engine(url)) as db_session:
        names = db_session.exec(select(Design.name)).all()
    assert names == [s.design_name]
