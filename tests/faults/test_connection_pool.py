"""Every request holds at most one pooled database connection at a time.

The sign-in dependencies give their connection back once they know the caller
(:func:`app.db.release_connection`). Otherwise a route that opens a session of its own holds
two, and with as many concurrent requests as pooled connections each waits for a second one
that never comes free (until the pool's timeout answers 503 to all of them) — which is what
a load test of 50 API clients met. Here the pool has a single connection: every route that
works with a session besides its dependencies' must still answer.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from sqlmodel import Session

from app.auth import SESSION_COOKIE
from app.main import create_app
from app.requirements.spec import WorkloadSpec
from app.services import accounts as acc
from app.services import catalog as catalog_svc
from app.services import designs as svc
from tests.api.conftest import SMALL_SPEC
from tests.conftest import make_settings


@pytest.fixture
def one_connection_client(engine: Engine):
    url = engine.url.render_as_string(hide_password=False)
    with Session(engine) as s:
        catalog_svc.ensure_bundled_snapshot(s)
        ws = svc.get_or_create_workspace(s)
        user = acc.create_user(s, "pool@example.com", "correct horse battery", scrypt_n=2**10)
        acc.add_member(s, ws.id, user.email, "admin")
        token = acc.start_session(s, user)
        key, _ = acc.create_api_key(s, ws.id, "reader", ["read"])
        design = svc.create_design(s, ws.id, WorkloadSpec.model_validate(SMALL_SPEC), "Pool check")
        plan = svc.plan_design(s, design)
        ids = (design.id, plan.id)
    connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
    tiny = create_engine(url, poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=5,
                         connect_args=connect_args)
    with TestClient(create_app(make_settings(url, job_workers=0))) as client:
        client.app.state.engine = tiny  # every request of this app shares one connection
        client.cookies.set(SESSION_COOKIE, token)
        yield client, {"Authorization": f"Bearer {key}"}, ids
    tiny.dispose()


def test_routes_with_a_session_of_their_own_answer_with_one_pooled_connection(one_connection_client) -> None:
    client, bearer, (design_id, plan_id) = one_connection_client
    for path, headers in [
        (f"/api/v1/plans/{plan_id}", bearer),
        ("/api/v1/offerings?limit=1", bearer),  # its own session besides the caller's
        (f"/designs/{design_id}", {}),
        (f"/designs/{design_id}/tradeoffs", {}),  # loads the design in a session of its own
        (f"/designs/{design_id}/wizard", {}),
    ]:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
