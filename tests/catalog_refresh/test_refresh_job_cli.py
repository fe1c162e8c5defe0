"""``archplan pricing refresh … --queue`` queues a refresh job; ``archplan pricing jobs`` follows
it. Without ``--queue`` the refresh still runs in the terminal (see tests/faults)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.db import dispose_engines, make_engine
from app.models import Job
from tests.catalog_refresh.recorded_jobs import (
    seed_base,
    stored_state,
    thread_runner,
    use_recorded_azure,
)
from tests.faults.conftest import run_cli
from tests.jobs.rows import job_row


@pytest.fixture
def db(migrated_sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_sqlite_url)
    yield engine
    engine.dispose()
    dispose_engines()


def _refresh_jobs(engine: Engine) -> list[Job]:
    with Session(engine) as s:
        return list(s.exec(select(Job).where(Job.kind == "refresh").order_by(Job.id)).all())


def test_queue_enqueues_and_jobs_follows_it(db: Engine, monkeypatch) -> None:
    url = db.url.render_as_string(hide_password=False)
    base = seed_base(db)
    api = use_recorded_azure(monkeypatch)

    r = run_cli(monkeypatch, url, "pricing", "refresh", "azure", "--region", "eastus", "--label", "nightly",
                "--queue")

    assert r.exit_code == 0, r.stdout + r.stderr
    (job,) = _refresh_jobs(db)
    assert job.status == "queued" and job.payload == {"provider": "azure", "regions": ["eastus"],
                                                      "label": "nightly", "requested_by": "cli"}
    assert f"Queued the azure refresh as job {job.id}." in r.stdout
    assert f"archplan pricing jobs {job.id}" in r.stdout
    assert api.pages_asked == []  # nothing was fetched here
    assert stored_state(db)[1] == base.snapshot_id

    # Asked again while it waits: the same job.
    r = run_cli(monkeypatch, url, "pricing", "refresh", "azure", "--queue")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert f"The azure refresh job {job.id} is already queued; nothing new was queued." in r.stdout
    assert len(_refresh_jobs(db)) == 1

    r = run_cli(monkeypatch, url, "pricing", "jobs", str(job.id))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert f"Job {job.id}: azure refresh (eastus) — queued" in r.stdout

    assert thread_runner(db).run_one() == job.id
    done = job_row(db, job.id)
    assert done.status == "succeeded", done.error

    r = run_cli(monkeypatch, url, "pricing", "jobs", str(job.id))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert f"Job {job.id}: azure refresh (eastus) — succeeded" in r.stdout
    assert done.message in r.stdout
    assert "Offerings: added 1, updated 2, unchanged 0, removed 0, skipped 0" in r.stdout
    assert f"Compare: archplan pricing diff {base.snapshot_id} {done.result['snapshot_id']}" in r.stdout
    assert "Standard_NC6s_v3" in r.stderr  # the warnings

    r = run_cli(monkeypatch, url, "pricing", "jobs")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "Price refresh jobs" in r.stdout and "succeeded" in r.stdout


def test_jobs_shows_a_failed_refresh(db: Engine, monkeypatch) -> None:
    url = db.url.render_as_string(hide_password=False)
    seed_base(db)
    use_recorded_azure(monkeypatch, failing=True)
    assert run_cli(monkeypatch, url, "pricing", "refresh", "azure", "--queue").exit_code == 0
    (job,) = _refresh_jobs(db)
    thread_runner(db).run_one()

    r = run_cli(monkeypatch, url, "pricing", "jobs", str(job.id))

    assert r.exit_code == 0, r.stdout + r.stderr
    assert "— failed" in r.stdout
    assert "Error: azure refresh failed:" in r.stderr and "the current snapshot is unchanged" in r.stderr


def test_queue_refuses_what_cannot_run(db: Engine, monkeypatch) -> None:
    url = db.url.render_as_string(hide_password=False)
    r = run_cli(monkeypatch, url, "pricing", "refresh", "aws", "--queue")
    assert r.exit_code == 1
    assert "no current price snapshot to refresh" in r.stderr

    seed_base(db)
    r = run_cli(monkeypatch, url, "pricing", "refresh", "aws", "--region", "eu-west-9", "--queue")
    assert r.exit_code == 1
    assert "aws region(s) eu-west-9 are not in the current snapshot" in r.stderr
    assert _refresh_jobs(db) == []

    r = run_cli(monkeypatch, url, "pricing", "jobs")
    assert r.exit_code == 0 and "No refresh jobs yet" in r.stdout
    r = run_cli(monkeypatch, url, "pricing", "jobs", "99")
    assert r.exit_code == 1 and "no refresh job 99" in r.stderr
