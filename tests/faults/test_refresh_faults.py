"""A price refresh or import that fails half-way leaves the current snapshot current and intact.

* The provider fails half-way: ``archplan pricing refresh azure`` reads recorded Retail
  Prices API pages (synthetic, real format) where page 1 answers and page 2 keeps failing.
* The database fails half-way: ``archplan pricing import --bundled`` on PostgreSQL loses its
  connection after the first batch of offerings was written (the server terminates it).

Either way no new snapshot becomes current and no partial snapshot is left behind.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from app.catalog.refresh import azure
from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, Snapshot
from app.db import dispose_engines, get_engine, make_engine
from app.migrations import upgrade
from app.models import PriceOffering
from app.services import catalog as catalog_svc
from tests.catalog_db.factory import make_snapshot
from tests.catalog_refresh.conftest import TODAY, build_base_snapshot, recorded
from tests.faults.conftest import run_cli


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


def stored_state(url: str) -> tuple[list[str], str | None, Snapshot | None, int]:
    """Snapshot ids (newest first), the current one, its content, and every offering row."""
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            ids = [r.snapshot_id for r in catalog_svc.list_snapshots(s)]
            current = catalog_svc.current_snapshot(s)
            content = catalog_svc.get_snapshot(s, current.snapshot_id) if current else None
            rows = len(s.exec(select(PriceOffering.id)).all())
            return ids, current.snapshot_id if current else None, content, rows
    finally:
        engine.dispose()


class RetailPricesApi:
    """Replays the recorded eastus pages; page 2 fails with HTTP 500 while ``failing``."""

    def __init__(self) -> None:
        self.failing = False
        self.pages_asked: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        skip = request.url.params.get("$skip")
        self.pages_asked.append("page 1" if skip is None else f"page skip={skip}")
        if skip is None:
            return httpx.Response(200, json=recorded("azure", "retail_prices_eastus_page1.json"))
        if self.failing:
            return httpx.Response(500, text="upstream error")
        return httpx.Response(200, json=recorded("azure", "retail_prices_eastus_page2.json"))


def test_refresh_failing_on_a_later_page_keeps_current(migrated_sqlite_url: str, monkeypatch) -> None:
    url = migrated_sqlite_url
    base = build_base_snapshot()
    with Session(make_engine(url)) as s:
        catalog_svc.import_snapshot(s, base, origin="test")
    api = RetailPricesApi()
    client = httpx.Client(transport=httpx.MockTransport(api.handle))
    monkeypatch.setattr(azure, "refresh_azure", functools.partial(
        azure.refresh_azure, client=client, today=TODAY, sleep=lambda _s: None))

    # With both pages answering, the refresh stores a new current snapshot.
    r = run_cli(monkeypatch, url, "pricing", "refresh", "azure", "--region", "eastus")
    assert r.exit_code == 0, r.stdout + r.stderr
    ids, current, content, rows = stored_state(url)
    assert len(ids) == 2 and current != base.snapshot_id

    # Page 1 answers, page 2 keeps failing: nothing changes.
    api.failing = True
    api.pages_asked.clear()
    r = run_cli(monkeypatch, url, "pricing", "refresh", "azure", "--region", "eastus")

    assert r.exit_code == 1, r.stdout + r.stderr
    assert "azure refresh failed" in r.stderr and "kept failing after 5 attempts (HTTP 500)" in r.stderr
    assert "the current snapshot is unchanged" in r.stderr
    assert api.pages_asked == ["page 1"] + ["page skip=1000"] * 5  # it failed half-way
    assert stored_state(url) == (ids, current, content, rows)
    client.close()


@pytest.mark.postgres
@pytest.mark.skipif(not DEFAULT_SNAPSHOT_PATH.is_file(), reason="bundled snapshot not built")
def test_import_losing_its_connection_part_way_keeps_current(pg_server, monkeypatch) -> None:
    url = pg_server.create_database("import_cut")
    upgrade(url)
    base = make_snapshot()
    with Session(make_engine(url)) as s:
        catalog_svc.import_snapshot(s, base, origin="test")
    before = stored_state(url)
    cut: list[int] = []

    def cut_after_first_batch(conn, cursor, statement, params, context, executemany) -> None:
        if cut or not statement.lstrip().upper().startswith("INSERT INTO PRICE_OFFERING"):
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user=archplan dbname=postgres",
                             autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s, 30000)", (pid,)).fetchone()[0]
        cut.append(pid)

    event.listen(get_engine(url), "after_cursor_execute", cut_after_first_batch)  # the engine the CLI uses
    r = run_cli(monkeypatch, url, "pricing", "import", "--bundled")

    assert cut, "the import never wrote an offering"
    assert r.exit_code == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the database is unreachable ("), r.stderr
    assert stored_state(url) == before
    assert before[:2] == ([base.snapshot_id], base.snapshot_id) and before[3] == len(base.offerings)
