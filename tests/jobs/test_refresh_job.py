"""Price refreshes as jobs (``app.jobs.refresh``): queued once per provider, run by the runner
from recorded provider responses, the new snapshot and the job's success stored together,
readable failures that leave the current snapshot as it was, and cancels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.catalog.diff import diff_snapshots
from app.catalog.refresh import azure
from app.jobs import refresh as refresh_jobs
from app.jobs import service as jobs
from app.jobs.runner import JobRunner
from app.models import Job, PriceSnapshot
from app.services import catalog as catalog_svc
from tests.catalog_refresh.conftest import build_base_snapshot
from tests.catalog_refresh.recorded_jobs import (
    recorded_azure_result,
    seed_base,
    stored_state,
    thread_runner,
    use_recorded_aws,
    use_recorded_azure,
)
from tests.conftest import make_settings
from tests.jobs.rows import job_row


@pytest.fixture
def runner(engine: Engine) -> JobRunner:
    return thread_runner(engine)


def _enqueue(engine: Engine, provider: str, regions=None, label: str = "") -> int:
    with Session(engine) as s:
        job, created = refresh_jobs.enqueue_refresh(s, provider, regions, label)
        assert created
        return job.id


# --------------------------------------------------------------------------- success


def test_azure_refresh_job_stores_a_new_current_snapshot(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    base = seed_base(engine)
    api = use_recorded_azure(monkeypatch)
    job_id = _enqueue(engine, "azure", "eastus", "monthly")
    queued = job_row(engine, job_id)
    assert (queued.kind, queued.status, queued.design_id) == ("refresh", "queued", None)
    assert queued.payload["regions"] == ["eastus"] and queued.payload["label"] == "monthly"

    assert runner.run_one() == job_id

    assert api.pages_asked == ["page 1", "page skip=1000"]
    job = job_row(engine, job_id)
    assert (job.status, job.progress, job.error) == ("succeeded", 1.0, None)
    ids, current, _rows = stored_state(engine)
    assert len(ids) == 2 and current != base.snapshot_id and ids[0] == current
    expected = recorded_azure_result(base)  # the same recorded pages, refreshed directly
    r = job.result
    assert r["snapshot_id"] == current == expected.snapshot.snapshot_id
    assert r["base_snapshot_id"] == base.snapshot_id
    assert r["changed"] is True and r["provider"] == "azure" and r["regions"] == ["eastus"]
    assert r["counts"] == {"added": 1, "updated": 2, "unchanged": 0, "removed": 0, "skipped": 0}
    assert r["price_changes"] == diff_snapshots(base, expected.snapshot).summary()
    assert r["price_changes"]["added"] == 1 and r["price_changes"]["price_changes"] > 0
    assert r["warnings"] == expected.warnings[:50] and r["warning_count"] == len(expected.warnings)
    assert any("Standard_NC6s_v3" in w for w in r["warnings"])  # a SKU whose GPU the API does not state
    assert job.message.startswith(f"Stored {current} as the current snapshot: 1 added, 2 updated")
    with Session(engine) as s:
        row = catalog_svc.get_snapshot_row(s, current)
        assert (row.origin, row.label, row.base_snapshot_id, row.is_current) == (
            "refresh-azure", "monthly", base.snapshot_id, True)
        assert catalog_svc.get_snapshot(s, current) == expected.snapshot


def test_aws_refresh_job_from_stubbed_clients(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    base = seed_base(engine)
    stubs = use_recorded_aws(monkeypatch)
    job_id = _enqueue(engine, "aws", ["us-east-1"])

    assert runner.run_one() == job_id

    stubs.assert_done()
    job = job_row(engine, job_id)
    assert job.status == "succeeded", job.error
    r = job.result
    assert r["counts"] == {"added": 1, "updated": 2, "unchanged": 1, "removed": 1, "skipped": 0}
    assert r["changed"] and r["base_snapshot_id"] == base.snapshot_id
    assert stored_state(engine)[1] == r["snapshot_id"]
    with Session(engine) as s:
        row = catalog_svc.get_snapshot_row(s, r["snapshot_id"])
        assert (row.origin, row.label) == ("refresh-aws", "aws refresh (us-east-1)")


def test_a_refresh_that_changes_nothing_keeps_the_snapshot(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    base = seed_base(engine)
    fresh = recorded_azure_result(base).snapshot
    with Session(engine) as s:  # the recorded prices are current already
        catalog_svc.import_snapshot(s, fresh, origin="test")
    use_recorded_azure(monkeypatch)
    before = stored_state(engine)
    job_id = _enqueue(engine, "azure", ["eastus"])

    runner.run_one()

    job = job_row(engine, job_id)
    assert job.status == "succeeded" and job.result["changed"] is False
    assert job.result["snapshot_id"] == job.result["base_snapshot_id"] == fresh.snapshot_id
    assert job.message == f"No price changed; {fresh.snapshot_id} stays current"
    assert stored_state(engine) == before


# --------------------------------------------------------------------------- failures


def test_refresh_failing_half_way_fails_the_job_and_keeps_current(engine: Engine, runner: JobRunner,
                                                                  monkeypatch) -> None:
    seed_base(engine)
    before = stored_state(engine)
    api = use_recorded_azure(monkeypatch, failing=True)
    job_id = _enqueue(engine, "azure", ["eastus"])

    runner.run_one()

    assert api.pages_asked == ["page 1"] + ["page skip=1000"] * 5  # it failed half-way
    job = job_row(engine, job_id)
    assert job.status == "failed" and job.result is None
    assert job.error.startswith("azure refresh failed: ")
    assert "kept failing after 5 attempts (HTTP 500)" in job.error
    assert job.error.endswith("; the current snapshot is unchanged")
    assert stored_state(engine) == before


def test_missing_aws_credentials_fail_readably(engine: Engine, runner: JobRunner, monkeypatch,
                                               tmp_path: Path) -> None:
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    seed_base(engine)
    before = stored_state(engine)
    job_id = _enqueue(engine, "aws")  # the real refresh_aws: it stops before any request

    runner.run_one()

    job = job_row(engine, job_id)
    assert job.status == "failed"
    assert job.error.startswith("aws refresh failed: AWS credentials not found: set AWS_PROFILE")
    assert job.error.endswith("; the current snapshot is unchanged")
    assert stored_state(engine) == before


def test_no_current_snapshot_fails_the_job(engine: Engine, runner: JobRunner) -> None:
    with Session(engine) as s:  # queued directly: enqueue_refresh refuses without a snapshot
        job_id = jobs.enqueue(s, "refresh", payload={"provider": "azure", "regions": None, "label": ""}).id
        s.commit()
    runner.run_one()
    job = job_row(engine, job_id)
    assert job.status == "failed" and "no current price snapshot" in job.error


def test_unexpected_error_in_the_refresh_is_not_shown(engine: Engine, runner: JobRunner, monkeypatch,
                                                      caplog) -> None:
    seed_base(engine)
    before = stored_state(engine)

    def broken(base, *, regions=None):
        raise KeyError("internal detail")

    monkeypatch.setattr(azure, "refresh_azure", broken)
    job_id = _enqueue(engine, "azure")
    runner.run_one()
    job = job_row(engine, job_id)
    assert job.status == "failed"
    assert job.error == ("The azure refresh failed unexpectedly (the error has been logged); the current "
                         "snapshot is unchanged.")
    assert "internal detail" in caplog.text
    assert stored_state(engine) == before


def test_snapshot_and_success_are_stored_together(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    """A failure after the snapshot was written but before the commit stores neither."""
    seed_base(engine)
    before = stored_state(engine)
    use_recorded_azure(monkeypatch)
    real_import = catalog_svc.import_snapshot

    def import_then_fail(session, snapshot, **kw):
        real_import(session, snapshot, **kw)  # commits, as it does for the CLI
        assert catalog_svc.current_snapshot(session).snapshot_id == snapshot.snapshot_id
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(catalog_svc, "import_snapshot", import_then_fail)
    job_id = _enqueue(engine, "azure", ["eastus"])
    runner.run_one()

    job = job_row(engine, job_id)
    assert job.status == "failed" and job.result is None
    assert job.error.startswith("The new azure prices could not be stored")
    assert stored_state(engine) == before


def test_current_snapshot_replaced_during_the_fetch_is_not_overwritten(engine: Engine, runner: JobRunner,
                                                                       monkeypatch) -> None:
    base = seed_base(engine)
    other = build_base_snapshot().model_copy(update={"snapshot_id": "2026-11-02-0123456789ab",
                                                     "created": "2026-11-02"})
    real = azure.refresh_azure
    use_recorded_azure(monkeypatch)
    recorded_refresh = azure.refresh_azure

    def refresh_while_another_import_lands(b, *, regions=None):
        with Session(engine) as s:  # e.g. an aws refresh finishing meanwhile
            catalog_svc.import_snapshot(s, other, origin="refresh-aws", base_snapshot_id=base.snapshot_id)
        return recorded_refresh(b, regions=regions)

    assert real is not recorded_refresh
    monkeypatch.setattr(azure, "refresh_azure", refresh_while_another_import_lands)
    job_id = _enqueue(engine, "azure", ["eastus"])
    runner.run_one()

    job = job_row(engine, job_id)
    assert job.status == "failed"
    assert f"The current price snapshot changed while the prices were fetched (it is now {other.snapshot_id})" \
        in job.error
    ids, current, _rows = stored_state(engine)
    assert current == other.snapshot_id and len(ids) == 2


# --------------------------------------------------------------------------- cancel


def test_cancel_a_queued_refresh(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    seed_base(engine)
    before = stored_state(engine)
    api = use_recorded_azure(monkeypatch)
    job_id = _enqueue(engine, "azure")
    with Session(engine) as s:
        job = jobs.request_cancel(s, job_id)
        assert job is not None and job.status == "cancelled"

    assert runner.run_one() is None  # nothing left to run
    assert api.pages_asked == []
    assert job_row(engine, job_id).status == "cancelled"
    assert stored_state(engine) == before
    with Session(engine) as s:  # a new refresh may be queued at once
        again, created = refresh_jobs.enqueue_refresh(s, "azure")
        assert created and again.id != job_id


def test_cancel_during_the_fetch_stores_nothing(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    seed_base(engine)
    before = stored_state(engine)
    use_recorded_azure(monkeypatch)
    recorded_refresh = azure.refresh_azure
    job_id = _enqueue(engine, "azure", ["eastus"])

    def cancelled_while_fetching(base, *, regions=None):
        with Session(engine) as s:
            assert jobs.request_cancel(s, job_id).status == "running"
        return recorded_refresh(base, regions=regions)

    monkeypatch.setattr(azure, "refresh_azure", cancelled_while_fetching)
    runner.run_one()

    job = job_row(engine, job_id)
    assert (job.status, job.result) == ("cancelled", None)
    assert stored_state(engine) == before


def test_cancel_at_the_last_moment_stores_nothing(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    seed_base(engine)
    before = stored_state(engine)
    use_recorded_azure(monkeypatch)
    job_id = _enqueue(engine, "azure", ["eastus"])
    real_succeed = jobs.succeed

    def cancel_then_succeed(session, jid, worker, **kw):
        with Session(engine) as other:
            jobs.request_cancel(other, jid)
        return real_succeed(session, jid, worker, **kw)

    monkeypatch.setattr(jobs, "succeed", cancel_then_succeed)
    runner.run_one()

    job = job_row(engine, job_id)
    assert (job.status, job.result) == ("cancelled", None)
    assert stored_state(engine) == before


# --------------------------------------------------------------------------- queueing


def test_one_active_refresh_per_provider(engine: Engine, runner: JobRunner, monkeypatch) -> None:
    seed_base(engine)
    use_recorded_azure(monkeypatch)
    with Session(engine) as s:
        first, created = refresh_jobs.enqueue_refresh(s, "azure", ["eastus"])
        assert created
        same, created = refresh_jobs.enqueue_refresh(s, "azure", None, "other label")
        assert same.id == first.id and not created
        aws_job, created = refresh_jobs.enqueue_refresh(s, "aws")
        assert created and aws_job.id != first.id
    with Session(engine) as s:
        assert len(s.exec(select(Job).where(Job.kind == "refresh")).all()) == 2
        jobs.request_cancel(s, aws_job.id)

    runner.run_one()
    assert job_row(engine, first.id).status == "succeeded"
    with Session(engine) as s:  # finished: the next request queues a new job
        again, created = refresh_jobs.enqueue_refresh(s, "azure", ["eastus"])
        assert created and again.id not in (first.id, aws_job.id)


@pytest.mark.parametrize(("provider", "regions", "message"), [
    ("gcp", None, "unknown provider 'gcp'"),
    ("azure", "westeurope", "azure region(s) westeurope are not in the current snapshot 2026-11-01-"),
    ("aws", "us-east-1, us_east_2;", "not a region name: us_east_2; (e.g. us-east-1 or eastus)"),
])
def test_refused_requests(engine: Engine, provider: str, regions, message: str) -> None:
    seed_base(engine)
    with Session(engine) as s, pytest.raises(refresh_jobs.RefreshRequestError, match=re.escape(message)):
        refresh_jobs.enqueue_refresh(s, provider, regions)
    with Session(engine) as s:
        assert s.exec(select(Job)).all() == []


def test_refused_without_a_snapshot(engine: Engine) -> None:
    with Session(engine) as s, pytest.raises(refresh_jobs.RefreshRequestError, match="no current price snapshot"):
        refresh_jobs.enqueue_refresh(s, "aws")


def test_parse_regions() -> None:
    assert refresh_jobs.parse_regions("") is None
    assert refresh_jobs.parse_regions(None) is None
    assert refresh_jobs.parse_regions(" us-west-2,us-east-1  us-west-2 ") == ["us-east-1", "us-west-2"]
    assert refresh_jobs.parse_regions(["eastus", "WestUS2"]) == ["eastus", "westus2"]


# --------------------------------------------------------------------------- in a child process


def test_refresh_runs_in_a_child_process_by_default(migrated_sqlite_url: str) -> None:
    """The fetch runs in a child (the default): its readable failure comes back as it is."""
    from app.db import make_engine

    engine = make_engine(migrated_sqlite_url)
    try:
        runner = JobRunner(engine, make_settings(migrated_sqlite_url, job_workers=0, job_poll_s=0.1))
        assert runner.settings.job_isolation == "process"
        seed_base(engine)
        before = stored_state(engine)
        with Session(engine) as s:  # a region the catalog does not have: refused before any request
            job_id = jobs.enqueue(s, "refresh", payload={"provider": "aws", "regions": ["ap-nowhere-9"],
                                                         "label": ""}).id
            s.commit()

        runner.run_one()

        job = job_row(engine, job_id)
        assert job.status == "failed"
        assert job.error.startswith("aws refresh failed: aws region(s) ap-nowhere-9 are not in the base snapshot")
        assert stored_state(engine) == before
        with Session(engine) as s:
            assert len(s.exec(select(PriceSnapshot)).all()) == 1
    finally:
        engine.dispose()
