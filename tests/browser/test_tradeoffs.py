"""Trade-offs in a real browser: the analyses are jobs run by the live server's runner while
the page polls them; the utilization control re-solves together with demand and prices, the
chart redraws with the new figures, a refused value is marked inline; a pending analysis
shows its progress and can be cancelled and tried again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from app.catalog.schema import load_snapshot
from app.db import make_engine
from app.models import Job
from app.requirements.examples import load_example
from app.services import catalog as catalog_svc
from app.services import designs as svc

pytestmark = pytest.mark.browser

CHART = "Chart.getChart(document.getElementById('chart-tradeoff'))"


@pytest.fixture
def research(settings, live_server):
    """The live server with prices and the research sprint (all training), planned."""
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, load_snapshot(), origin="test")
        ws = svc.get_or_create_workspace(s)
        d = svc.create_design(s, ws.id, load_example("research-burst-deadline"))
        svc.plan_design(s, d, svc.planner_settings(time_limit_s=30))
        design_id = d.id
    engine.dispose()
    return live_server, design_id


def _jobs(settings, design_id: int) -> list[Job]:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            rows = list(s.exec(select(Job).where(Job.design_id == design_id).order_by(Job.id)).all())
            for row in rows:
                s.expunge(row)
            return rows
    finally:
        engine.dispose()


def _base_cost(page) -> float:
    """The total cost the chart shows at the required deadlines (×1)."""
    return page.evaluate(f"(() => {{ const c = {CHART}; "
                         "return c.data.datasets[0].data[c.data.labels.findIndex(l => l.startsWith('×1 '))]; })()")


def test_utilization_resolves_with_demand_and_prices_and_redraws(signed_in, page, research, settings) -> None:
    server, design_id = research
    page.goto(server.url + f"/designs/{design_id}/tradeoffs")
    page.wait_for_function(f"() => window.Chart && {CHART}", timeout=30_000)
    assert page.evaluate(f"{CHART}.data.labels.length") == 6
    assert page.locator("#curve-job").count() == 0  # the result replaced the progress panel
    [job] = _jobs(settings, design_id)
    assert (job.kind, job.status) == ("curve", "succeeded")
    before = _base_cost(page)
    peak_before = page.evaluate(f"Math.max(...{CHART}.data.datasets[1].data)")

    page.get_by_label("GPU utilization (%)").fill("50")
    page.get_by_label("Demand scale (%)").fill("120")
    page.get_by_label("On-demand").fill("10")
    page.get_by_label("Deadline factors").fill("0.5, 1, 2")
    page.get_by_role("button", name="Re-solve").click()
    expect(page.locator("#tradeoff-headline")).to_contain_text(
        "demand × 1.2, GPU utilization 50 %, on-demand prices +10 %", timeout=30_000)
    page.wait_for_function(f"() => {{ const c = {CHART}; return c && c.data.labels.length === 3; }}")
    assert _base_cost(page) > before * 2.3  # 1.2 / 0.5 = 2.4 times the work
    assert page.evaluate(f"Math.max(...{CHART}.data.datasets[1].data)") > peak_before
    assert page.get_by_label("GPU utilization (%)").get_attribute("aria-invalid") is None

    assert [j.status for j in _jobs(settings, design_id)] == ["succeeded", "succeeded"]

    # The first settings again: the stored result, no third job.
    page.goto(server.url + f"/designs/{design_id}/tradeoffs")
    page.wait_for_function(f"() => window.Chart && {CHART} && {CHART}.data.labels.length === 6", timeout=30_000)
    assert _base_cost(page) == before and len(_jobs(settings, design_id)) == 2

    page.get_by_label("GPU utilization (%)").fill("5")
    page.get_by_role("button", name="Re-solve").click()
    expect(page.get_by_label("GPU utilization (%)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ce-utilization_pct")).to_contain_text("between 10 and 100 %")
    assert page.console_errors == []


def test_a_pending_analysis_shows_progress_and_can_be_cancelled_and_tried_again(signed_in, page, research,
                                                                                settings) -> None:
    server, design_id = research
    runner = server.server.config.app.state.job_runner
    runner.stop(timeout=5)  # nothing runs the job: it stays queued
    page.goto(server.url + f"/designs/{design_id}/tradeoffs")
    panel = page.locator("#curve-job")
    expect(panel).to_have_attribute("data-outcome", "pending", timeout=15_000)
    expect(page.locator("#curve-job-message")).to_contain_text("Waiting for a worker")
    expect(page.locator("#curve-job-progress")).to_be_visible()

    page.locator("#curve-job-cancel").click()
    expect(panel).to_have_attribute("data-outcome", "cancelled", timeout=15_000)  # the polling saw it
    expect(panel).to_contain_text("The deadline curve was cancelled before it finished.")
    assert [j.status for j in _jobs(settings, design_id)] == ["cancelled"]

    runner.start()
    page.get_by_role("button", name="Try again").click()
    page.wait_for_function(f"() => window.Chart && {CHART} && {CHART}.data.labels.length === 6", timeout=60_000)
    assert [j.status for j in _jobs(settings, design_id)] == ["cancelled", "succeeded"]
    assert page.console_errors == []
