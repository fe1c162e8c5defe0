"""Designs in a real browser: create from an example, plan with htmx, the plan page's charts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Route, expect
from sqlmodel import Session

from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, load_snapshot
from app.db import make_engine
from app.services import catalog as svc
from tests.catalog_db.factory import make_snapshot

pytestmark = pytest.mark.browser

PLAN_URL = re.compile(r"/designs/\d+/plans/\d+$")


@pytest.fixture
def designs_server(settings, live_server):
    """The live server with the bundled price snapshot in its database."""
    snapshot = load_snapshot() if DEFAULT_SNAPSHOT_PATH.is_file() else make_snapshot()
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        svc.import_snapshot(s, snapshot, origin="test")
    engine.dispose()
    return live_server


def _create(page, base: str, example: str) -> None:
    page.goto(base + "/designs")
    page.get_by_label("Example", exact=True).select_option(example)
    page.get_by_role("button", name="Create from example").click()
    expect(page).to_have_url(re.compile(r"/designs/\d+$"))


def _no_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("width", [1280, 390])
def test_create_plan_and_see_charts(page, designs_server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    _create(page, designs_server.url, "research-burst-deadline")
    expect(page.get_by_role("heading", level=1)).to_have_text("7B research LM pre-training sprint")
    expect(page.get_by_role("heading", name="Performance")).to_be_visible()
    assert _no_overflow(page)

    # Hold the solve request to see the indicator while it is in flight, then let it go.
    held: list[Route] = []
    page.route(re.compile(r"/designs/\d+/plan$"), lambda route: held.append(route))
    indicator = page.locator("#plan-solving")
    expect(indicator).to_be_hidden()
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(indicator).to_be_visible()
    expect(indicator).to_have_text("Solving…")
    expect(page.get_by_role("button", name="Plan", exact=True)).to_be_disabled()  # no double submit
    assert len(held) == 1 and held[0].request.headers.get("hx-request") == "true"
    held[0].continue_()

    expect(page).to_have_url(PLAN_URL, timeout=30_000)
    expect(page.locator("#fig-total")).to_have_text(re.compile(r"^\$[\d,]+$"))
    expect(page.locator("#fig-savings-od")).to_have_text(re.compile(r"^\$[\d,]+$"))
    page.wait_for_function("() => ['chart-capacity', 'chart-cumulative', 'chart-categories']"
                           ".every(id => window.Chart && Chart.getChart(document.getElementById(id)))")
    charts = page.evaluate("""() => ['chart-capacity', 'chart-cumulative', 'chart-categories'].map(id => {
        const c = Chart.getChart(document.getElementById(id));
        return {type: c.config.type, datasets: c.data.datasets.length, w: c.canvas.clientWidth, h: c.canvas.clientHeight};
    })""")
    assert [c["type"] for c in charts] == ["bar", "line", "bar"]
    assert charts[1]["datasets"] == 2  # this plan and the all-on-demand baseline
    assert all(c["w"] > 200 and c["h"] > 150 for c in charts)
    assert _no_overflow(page)
    assert page.console_errors == []


def test_edit_errors_in_place_and_sort_schedule(page, designs_server) -> None:
    _create(page, designs_server.url, "llm-finetune-hipaa")
    page.evaluate("window.__sameDocument = true")
    editor = page.get_by_label(re.compile(r"^WorkloadSpec"))
    text = editor.input_value().replace("horizon_months: 24", "horizon_months: 99")
    editor.fill(text)
    page.get_by_role("button", name="Save requirements").click()
    errors = page.locator("#spec-errors")
    expect(errors).to_contain_text("lifecycle.horizon_months")
    assert page.get_by_label(re.compile(r"^WorkloadSpec")).input_value() == text  # nothing lost
    assert page.evaluate("window.__sameDocument") is True  # swapped by htmx, no reload
    page.get_by_label(re.compile(r"^WorkloadSpec")).fill(text.replace("horizon_months: 99", "horizon_months: 12"))
    page.get_by_role("button", name="Save requirements").click()
    expect(page.get_by_role("status").filter(has_text="Requirements saved.")).to_be_visible()
    expect(page.locator("#spec-section")).to_contain_text("(12 months)")

    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page).to_have_url(PLAN_URL, timeout=30_000)
    table = page.locator("#schedule-table")
    header = table.get_by_role("button", name=re.compile(r"^Total"))
    header.focus()
    page.keyboard.press("Enter")  # keyboard reachable
    expect(table.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    values = table.locator("tbody td:last-child").evaluate_all("cells => cells.map(c => Number(c.dataset.sort))")
    assert values == sorted(values)
    header.click()
    expect(table.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    values = table.locator("tbody td:last-child").evaluate_all("cells => cells.map(c => Number(c.dataset.sort))")
    assert values == sorted(values, reverse=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.endswith("-schedule.csv")
    assert page.console_errors == []
