"""Helpers for the price refresh job tests: the providers' refresh functions replaced by ones
that read recorded responses (as the CLI tests do), a base snapshot in the database, and what
is stored.

The refresh jobs look the refresh function up on its module when they run, so replacing
``app.catalog.refresh.<provider>.refresh_<provider>`` reaches them; the runner then runs the
fetch in its own thread (``job_isolation="thread"``), because a child process would not see
the replacement.
"""

from __future__ import annotations

import functools

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.catalog.refresh import aws, azure
from app.catalog.schema import Snapshot
from app.jobs.runner import JobRunner
from app.models import PriceOffering
from app.services import catalog as catalog_svc
from tests.catalog_refresh.conftest import TODAY, build_base_snapshot, recorded
from tests.conftest import make_settings

AZURE_PAGE1 = "retail_prices_eastus_page1.json"
AZURE_PAGE2 = "retail_prices_eastus_page2.json"


def engine_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def thread_runner(engine: Engine) -> JobRunner:
    """A runner that runs jobs (and their fetch) in the caller's thread, on ``run_one()``."""
    return JobRunner(engine, make_settings(engine_url(engine), job_workers=0, job_isolation="thread"))


def seed_base(engine: Engine) -> Snapshot:
    """The test base snapshot (test data) stored as the current one."""
    base = build_base_snapshot()
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, base, origin="test", label="base")
    return base


def stored_state(engine: Engine) -> tuple[list[str], str | None, int]:
    """Stored snapshot ids (newest first), the current one, and every offering row."""
    with Session(engine) as s:
        ids = [r.snapshot_id for r in catalog_svc.list_snapshots(s)]
        current = catalog_svc.current_snapshot(s)
        rows = len(s.exec(select(PriceOffering.id)).all())
        return ids, current.snapshot_id if current else None, rows


class RetailPricesApi:
    """Replays the recorded Azure eastus pages; page 2 fails with HTTP 500 while ``failing``."""

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing
        self.pages_asked: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        skip = request.url.params.get("$skip")
        self.pages_asked.append("page 1" if skip is None else f"page skip={skip}")
        if skip is None:
            return httpx.Response(200, json=recorded("azure", AZURE_PAGE1))
        if self.failing:
            return httpx.Response(500, text="upstream error")
        return httpx.Response(200, json=recorded("azure", AZURE_PAGE2))


def use_recorded_azure(monkeypatch, *, failing: bool = False) -> RetailPricesApi:
    """``refresh_azure`` reads the recorded pages (no network, no waiting between retries)."""
    api = RetailPricesApi(failing)
    client = httpx.Client(transport=httpx.MockTransport(api.handle))
    monkeypatch.setattr(azure, "refresh_azure", functools.partial(
        azure.refresh_azure, client=client, today=TODAY, sleep=lambda _s: None))
    return api


def recorded_azure_result(base: Snapshot):
    """What ``refresh_azure`` makes of the recorded eastus pages, called directly."""
    api = RetailPricesApi()
    with httpx.Client(transport=httpx.MockTransport(api.handle)) as client:
        return azure.refresh_azure(base, client=client, regions=["eastus"], today=TODAY, sleep=lambda _s: None)


def use_recorded_aws(monkeypatch):
    """``refresh_aws`` reads recorded us-east-1 Price List and spot pages through Stubber-wrapped
    clients; returns the stubs (``assert_done()`` checks every recorded response was asked for)."""
    from tests.catalog_refresh.test_aws import Aws

    stubs = Aws()
    stubs.add_standard_pages()
    stubs.add_standard_spot()

    def refresh_aws(base: Snapshot, *, regions: list[str] | None = None):
        return stubs.run(base, regions=regions, sleep=lambda _s: None)

    monkeypatch.setattr(aws, "refresh_aws", refresh_aws)
    return stubs
