"""The PostgreSQL server goes away and comes back while the app runs.

A cluster of its own (stopped and started with ``pg_ctl``), so the shared test server is
never touched. While it is down: ``/readyz`` answers 503 with ``Retry-After``, pages a
friendly 503 page and the API a 503 problem+json — never a traceback — and ``/healthz``
stays 200 (the process itself is fine). Once it is back: ready again, what was written
before is still there, and new writes work on the same engine (``pool_pre_ping`` replaces
the pooled connections the restart killed).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.main import create_app
from app.migrations import upgrade
from app.models import Design
from app.services import designs as design_svc
from tests.conftest import make_settings
from tests.faults.conftest import seed
from tests.pg import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:  # already stopped by a failed test
            shutil.rmtree(server.root, ignore_errors=True)


def start_again(server: PostgresServer) -> None:
    server.pg_ctl("start", "-w", "-t", "60", "-l", str(server.root / "server.log"),
                  "-o", f"-p {server.port} -k {server.root} -c listen_addresses=127.0.0.1 -c fsync=off")


def assert_friendly_503(r, *, api: bool) -> None:
    assert r.status_code == 503, r.text[:500]
    assert int(r.headers["retry-after"]) > 0
    assert "Traceback" not in r.text and "psycopg" not in r.text and "sqlalchemy" not in r.text.lower()
    if api:
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["status"] == 503 and body["title"] == "Service Unavailable"
        assert "database is unreachable" in body["detail"]
    else:
        assert r.headers["content-type"].startswith("text/html")
        assert "The database is unreachable right now" in r.text


def test_database_goes_away_and_comes_back(own_pg: PostgresServer) -> None:
    url = own_pg.create_database("outage")
    upgrade(url)
    settings = make_settings(url)
    app = create_app(settings)
    with TestClient(app) as client:
        s = seed(app.state.engine)
        form_headers = s.browser(client, settings.secret_key)
        page, api = f"/designs/{s.design_id}", f"/api/v1/designs/{s.design_id}"

        # Up: pages and the API answer, and the pool holds live connections.
        assert client.get("/readyz").status_code == 200
        r = client.get(page)
        assert r.status_code == 200 and s.design_name in r.text
        r = client.get(api, headers=s.bearer)
        assert r.status_code == 200 and r.json()["name"] == s.design_name

        own_pg.pg_ctl("stop", "-m", "fast", "-w")

        r = client.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) > 0 and r.json()["title"] == "Not ready"
        assert client.get("/healthz").status_code == 200
        assert_friendly_503(client.get(page), api=False)
        assert_friendly_503(client.get(api, headers=s.bearer), api=True)
        assert_friendly_503(client.post(f"{page}/rename", data={"name": "During the outage"},
                                        headers=form_headers, follow_redirects=False), api=False)

        start_again(own_pg)

        assert client.get("/readyz").status_code == 200
        r = client.get(page)
        assert r.status_code == 200 and s.design_name in r.text  # written before the outage
        r = client.get(api, headers=s.bearer)
        assert r.status_code == 200 and r.json()["name"] == s.design_name
        # New writes: through a form post, and through the services on the app's own engine.
        r = client.post(f"{page}/rename", data={"name": "After the outage"}, headers=form_headers,
                        follow_redirects=False)
        assert r.status_code == 303, r.text[:500]
        with Session(app.state.engine) as db:
            assert db.get(Design, s.design_id).name == "After the outage"
            new = design_svc.create_design_from_example(db, s.workspace_id, "llm-finetune-hipaa",
                                                        name="Written after the restart")
            new_id = new.id
        r = client.get(f"/designs/{new_id}")
        assert r.status_code == 200 and "Written after the restart" in r.text
