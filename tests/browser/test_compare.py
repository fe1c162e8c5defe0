"""Compare and trade-offs in a real browser: the overlaid charts are drawn, the what-if
controls re-solve and redraw in place, no console errors, no page overflow."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.catalog.schema import load_snapshot
from app.db import make_engine
from app.requirements.examples import load_example
from app.services import catalog as catalog_svc
from app.services import designs as svc

pytestmark = pytest.mark.browser


@pytest.fixture
def planned(settings, live_server):
    """The live server with prices and two planned designs."""
    engine = make_engine(settings.database_url)
    ids = []
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, load_snapshot(), origin="test")
        ws = svc.get_or_create_workspace(s)
        for example in ("research-burst-deadline", "llm-finetune-hipaa"):
            d = svc.create_design(s, ws.id, load_example(example))
            svc.plan_design(s, d, svc.planner_settings(time_limit_s=30))
            ids.append(d.id)
    engine.dispose()
    return live_server, ids


def _no_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("width", [1280, 390])
def test_compare_draws_both_charts(signed_in, page, planned, width: int) -> None:
    server, ids = planned
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(server.url + "/compare")
    page.get_by_role("checkbox", name=re.compile("7B research LM")).check()
    page.get_by_role("checkbox", name=re.compile("LLM fine-tuning|clinical|HIPAA", re.I)).check()
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/compare\?ids=\d+&ids=\d+$"))
    expect(page.locator("#compare-table")).to_be_visible()
    expect(page.locator("#compare-table td.best").first).to_be_visible()
    page.wait_for_function("() => ['chart-compare-monthly', 'chart-compare-cumulative']"
                           ".every(id => window.Chart && Chart.getChart(document.getElementById(id)))")
    charts = page.evaluate("""() => ['chart-compare-monthly', 'chart-compare-cumulative'].map(id => {
        const c = Chart.getChart(document.getElementById(id));
        return {type: c.config.type, datasets: c.data.datasets.length, w: c.canvas.clientWidth, h: c.canvas.clientHeight};
    })""")
    assert [c["type"] for c in charts] == ["line", "line"]
    assert all(c["datasets"] == 2 and c["w"] > 200 and c["h"] > 150 for c in charts)
    assert _no_overflow(page)  # the table scrolls inside its wrapper
    assert page.console_errors == []


def test_tradeoffs_resolve_and_redraw(signed_in, page, planned) -> None:
    server, ids = planned
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(server.url + f"/designs/{ids[0]}/tradeoffs")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-tradeoff'))",
                           timeout=30_000)
    assert page.evaluate("Chart.getChart(document.getElementById('chart-tradeoff')).data.labels.length") == 6
    page.get_by_label("Deadline factors").fill("0.5, 1, 2")
    page.get_by_label("Demand scale (%)").fill("150")
    page.get_by_role("button", name="Re-solve").click()
    expect(page.locator("#tradeoff-headline")).to_contain_text("demand × 1.5", timeout=30_000)
    page.wait_for_function("() => { const c = Chart.getChart(document.getElementById('chart-tradeoff'));"
                           " return c && c.data.labels.length === 3; }")
    page.get_by_label("Deadline factors").fill("1, 2, 3, 4, 5, 6, 7")
    page.get_by_role("button", name="Re-solve").click()
    expect(page.get_by_label("Deadline factors")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ce-factors")).to_contain_text("At most 6 points")
    page.get_by_role("button", name="Run ±20 % scenarios").click()
    expect(page.locator("#sensitivity-results")).to_contain_text(re.compile("Nothing was solved|Demand"), timeout=30_000)
    assert _no_overflow(page)
    assert page.console_errors == []
