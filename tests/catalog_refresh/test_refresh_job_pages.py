"""The catalog page's "Refresh prices" form (administrators only) and the refresh job's page.

The app's embedded runner is off (``job_workers=0``): tests run the queued job themselves with
``app.state.job_runner.run_one()``, in their thread (``job_isolation="thread"``) so that the
refresh reads the recorded provider responses.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.catalog.refresh import azure
from app.db import make_engine
from app.models import AuditEvent, Job
from app.settings import Settings
from tests.catalog_refresh.recorded_jobs import seed_base, stored_state, use_recorded_azure
from tests.conftest import make_settings
from tests.jobs.rows import job_row
from tests.signin import csrf_of, make_user, signed_in_client

ADMIN = "root@example.com"
MEMBER = "member@example.com"
PASSWORD = "correct horse battery staple"
JOB_URL = re.compile(r"^/catalog/refresh/jobs/(\d+)$")


@pytest.fixture
def settings(migrated_sqlite_url: str) -> Settings:
    return make_settings(migrated_sqlite_url, job_workers=0, job_isolation="thread")


@pytest.fixture
def db(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    seed_base(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(settings: Settings, db: Engine) -> Iterator[TestClient]:
    """Signed in as an administrator (``is_admin``) who is also an admin of the default workspace."""
    make_user(settings, ADMIN, PASSWORD, is_admin=True)
    with signed_in_client(settings, ADMIN, PASSWORD, create=False) as c:
        yield c


@pytest.fixture
def member(settings: Settings, db: Engine) -> Iterator[TestClient]:
    """Signed in as a workspace admin who is not an administrator of the installation."""
    make_user(settings, MEMBER, PASSWORD, role="admin")
    with signed_in_client(settings, MEMBER, PASSWORD, create=False) as c:
        yield c


def _refresh_jobs(engine: Engine) -> list[Job]:
    with Session(engine) as s:
        return list(s.exec(select(Job).where(Job.kind == "refresh").order_by(Job.id)).all())


def _post_form(client: TestClient, data: dict[str, str]):
    """Post the refresh form as a browser without JavaScript does: the token in the form."""
    page = client.get("/catalog")
    token = csrf_of(page.text[page.text.index('id="refresh-form"'):])
    client.headers.pop("X-CSRF-Token", None)
    return client.post("/catalog/refresh", data={**data, "csrf_token": token}, follow_redirects=False)


def test_admin_refreshes_and_follows_the_job(admin: TestClient, db: Engine, monkeypatch) -> None:
    base_id = stored_state(db)[1]
    use_recorded_azure(monkeypatch)
    page = admin.get("/catalog")
    assert page.status_code == 200
    assert 'id="refresh-form"' in page.text and 'action="/catalog/refresh"' in page.text
    assert '<option value="azure"' in page.text and 'name="regions"' in page.text

    r = _post_form(admin, {"provider": "azure", "regions": "eastus", "label": "after the price change"})

    assert r.status_code == 303
    m = JOB_URL.match(r.headers["location"])
    assert m, r.headers["location"]
    job_id = int(m.group(1))
    (job,) = _refresh_jobs(db)
    assert job.id == job_id and job.status == "queued"
    assert job.payload["regions"] == ["eastus"] and job.payload["requested_by"] == ADMIN
    with Session(db) as s:
        (event,) = s.exec(select(AuditEvent).where(AuditEvent.action == "pricing.refresh")).all()
        assert event.target == f"job:{job_id}" and event.actor_label == ADMIN
        assert event.detail == {"provider": "azure", "regions": ["eastus"]}

    waiting = admin.get(f"/catalog/refresh/jobs/{job_id}")
    assert waiting.status_code == 200
    assert 'http-equiv="refresh" content="2"' in waiting.text  # no JavaScript: the page reloads
    assert f'hx-get="/catalog/refresh/jobs/{job_id}/status?seen=' in waiting.text
    assert 'id="job-cancel"' in waiting.text and "Waiting for a worker" in waiting.text
    seen = re.search(r"status\?seen=([0-9a-f]+)", waiting.text).group(1)
    quiet = admin.get(f"/catalog/refresh/jobs/{job_id}/status", params={"seen": seen},
                      headers={"HX-Request": "true"})
    assert quiet.status_code == 204  # nothing changed yet

    assert admin.app.state.job_runner.run_one() == job_id

    done = admin.get(f"/catalog/refresh/jobs/{job_id}")
    assert done.status_code == 200
    text = html.unescape(done.text)
    new_id = job_row(db, job_id).result["snapshot_id"]
    assert new_id != base_id and stored_state(db)[1] == new_id
    assert 'http-equiv="refresh"' not in done.text and "hx-get" not in done.text[done.text.index("job-status"):]
    assert f'<a href="/catalog?snapshot={new_id}"><code class="snapshot-id">{new_id}</code></a>' in text
    assert f'<a href="/catalog?snapshot={base_id}">' in text
    assert '<td class="num" data-count="added">1</td>' in text
    assert '<td class="num" data-count="updated">2</td>' in text
    assert "1 added, 0 removed" in text and f"archplan pricing diff {base_id} {new_id}" in text
    assert 'id="refresh-warnings"' in text and "Standard_NC6s_v3" in text
    assert 'id="job-cancel"' not in text

    fragment = admin.get(f"/catalog/refresh/jobs/{job_id}/status", params={"seen": seen},
                         headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'id="refresh-result"' in fragment.text
    assert "<html" not in fragment.text

    catalog = admin.get("/catalog")  # the new snapshot is the one shown
    assert f'<code class="snapshot-id">{new_id}</code>' in catalog.text


def test_second_request_while_one_is_active_leads_to_it(admin: TestClient, db: Engine, monkeypatch) -> None:
    use_recorded_azure(monkeypatch)
    first = _post_form(admin, {"provider": "azure", "regions": "", "label": ""})
    second = _post_form(admin, {"provider": "azure", "regions": "eastus", "label": "again"})
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(_refresh_jobs(db)) == 1
    with Session(db) as s:  # only the job that was queued is in the audit log
        assert len(s.exec(select(AuditEvent).where(AuditEvent.action == "pricing.refresh")).all()) == 1
    page = admin.get("/catalog")
    job_id = _refresh_jobs(db)[0].id
    assert f'<a href="/catalog/refresh/jobs/{job_id}">job {job_id}</a> is queued' in page.text


def test_cancel_a_queued_refresh_from_its_page(admin: TestClient, db: Engine, monkeypatch) -> None:
    api = use_recorded_azure(monkeypatch)
    before = stored_state(db)
    location = _post_form(admin, {"provider": "azure", "regions": "", "label": ""}).headers["location"]
    page = admin.get(location)
    token = csrf_of(page.text[page.text.index('id="job-status"'):])
    admin.headers.pop("X-CSRF-Token", None)

    r = admin.post(location + "/cancel", data={"csrf_token": token}, follow_redirects=False)

    assert r.status_code == 303 and r.headers["location"] == location
    job_id = int(JOB_URL.match(location).group(1))
    assert job_row(db, job_id).status == "cancelled"
    assert admin.app.state.job_runner.run_one() is None
    assert api.pages_asked == [] and stored_state(db) == before
    page = admin.get(location)
    assert "Cancelled; the current snapshot is unchanged." in page.text
    assert 'http-equiv="refresh"' not in page.text


def test_failed_refresh_page_shows_the_readable_error(admin: TestClient, db: Engine, monkeypatch) -> None:
    use_recorded_azure(monkeypatch, failing=True)
    before = stored_state(db)
    location = _post_form(admin, {"provider": "azure", "regions": "eastus", "label": ""}).headers["location"]
    admin.app.state.job_runner.run_one()

    page = admin.get(location)

    text = html.unescape(page.text)
    assert 'id="job-error"' in text and "The refresh failed." in text
    assert "azure refresh failed:" in text and "kept failing after 5 attempts (HTTP 500)" in text
    assert "the current snapshot is unchanged" in text
    assert stored_state(db) == before


def test_unknown_region_is_refused_on_the_catalog_page(admin: TestClient, db: Engine) -> None:
    r = _post_form(admin, {"provider": "aws", "regions": "mars-north-1", "label": "x"})
    assert r.status_code == 422
    text = html.unescape(r.text)
    assert 'id="refresh-error"' in text
    assert "Could not queue the refresh: aws region(s) mars-north-1 are not in the current snapshot" in text
    assert 'value="mars-north-1"' in text  # what was typed is kept
    assert _refresh_jobs(db) == []


def test_non_admin_sees_no_form_and_is_refused(member: TestClient, db: Engine, monkeypatch) -> None:
    page = member.get("/catalog")
    assert page.status_code == 200 and "snapshot-id" in page.text
    assert 'id="refresh-form"' not in page.text and "/catalog/refresh" not in page.text

    r = member.post("/catalog/refresh", data={"provider": "azure", "regions": "", "label": ""},
                    follow_redirects=False)
    assert r.status_code == 403
    assert "Only administrators can refresh prices." in r.text
    assert _refresh_jobs(db) == []

    # Nor may they look at or cancel a refresh someone queued.
    with Session(db) as s:
        from app.jobs.refresh import enqueue_refresh

        job, _ = enqueue_refresh(s, "azure")
    assert member.get(f"/catalog/refresh/jobs/{job.id}").status_code == 403
    assert member.post(f"/catalog/refresh/jobs/{job.id}/cancel", follow_redirects=False).status_code == 403
    assert job_row(db, job.id).status == "queued"


def test_refresh_without_the_csrf_token_is_refused(admin: TestClient, db: Engine, monkeypatch) -> None:
    monkeypatch.setattr(azure, "refresh_azure", lambda *a, **k: pytest.fail("no refresh may run"))
    admin.headers.pop("X-CSRF-Token", None)

    r = admin.post("/catalog/refresh", data={"provider": "azure", "regions": "", "label": ""},
                   follow_redirects=False)
    assert r.status_code == 403 and "did not come from this site" in r.text
    r = admin.post("/catalog/refresh", data={"provider": "azure", "csrf_token": "0" * 64},
                   follow_redirects=False)
    assert r.status_code == 403
    assert _refresh_jobs(db) == []


def test_unknown_job_is_not_found(admin: TestClient, db: Engine) -> None:
    assert admin.get("/catalog/refresh/jobs/12345").status_code == 404
    assert admin.get("/catalog/refresh/jobs/abc").status_code == 404
