"""Designs in a real browser: create from an example, plan with htmx (a job run by the live
server's embedded runner, with a progress panel), the plan page's charts, architecture
diagram (Mermaid) and export buttons."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Route, expect
from sqlmodel import Session

from app.bundles.package import bundle_names
from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, load_snapshot
from app.db import make_engine
from app.requirements.examples import example_text
from app.services import catalog as svc
from tests.catalog_db.factory import make_snapshot

pytestmark = pytest.mark.browser

PLAN_URL = re.compile(r"/designs/\d+/plans/\d+$")
STATUS_URL = re.compile(r"/designs/\d+/jobs/\d+/status")


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
def test_create_plan_and_see_charts(signed_in, page, designs_server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    _create(page, designs_server.url, "research-burst-deadline")
    expect(page.get_by_role("heading", level=1)).to_have_text("7B research LM pre-training sprint")
    expect(page.get_by_role("heading", name="Performance")).to_be_visible()
    assert _no_overflow(page)

    # "Plan" queues a job and shows its progress panel at once. Hold the panel's status polls
    # (the embedded runner may finish in well under a second) to look at it, then let them go.
    held: list[Route] = []
    holding = [True]
    page.route(STATUS_URL, lambda route: held.append(route) if holding[0] else route.continue_())
    page.get_by_role("button", name="Plan", exact=True).click()
    panel = page.locator("#job-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name=re.compile(r"^Planning"))).to_be_visible()
    expect(page.get_by_role("progressbar", name="Planning progress")).to_be_visible()
    expect(panel.get_by_role("button", name="Cancel")).to_be_visible()
    assert _no_overflow(page)
    page.wait_for_timeout(1100)  # at least one poll is held
    assert held and held[0].request.headers.get("hx-request") == "true"
    holding[0] = False
    for route in held:
        route.continue_()

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

    # The architecture diagram: Mermaid (strict) draws an SVG from the server's source.
    assert page.evaluate("typeof window.mermaid") == "undefined"  # loaded when the diagram comes near
    page.locator("#architecture-heading").scroll_into_view_if_needed()
    diagram = page.locator("#architecture-diagram svg")
    expect(diagram).to_be_visible(timeout=15_000)
    assert page.locator('script[src="/static/vendor/mermaid/mermaid.min.js"]').count() == 1
    assert page.evaluate("mermaid.mermaidAPI.getConfig().securityLevel") == "strict"
    assert diagram.locator(".node").count() >= 8
    expect(diagram).to_contain_text("pretrain-7b")
    expect(diagram).to_contain_text("Compute (this plan)")
    box = page.locator("#architecture-diagram").bounding_box()
    assert box and box["height"] > 100
    zoom = page.get_by_role("button", name="Full size")
    if width < 700:  # fitted to a phone the labels are tiny: full size scrolls inside its box
        zoom.click()
        expect(page.locator("#diagram-zoom")).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("document.getElementById('architecture-diagram').scrollWidth > 390")

    # Export: one button per bundle, and all of them at once.
    exports = page.get_by_role("list", name="Bundles").get_by_role("button")
    expect(exports).to_have_count(len(bundle_names()))
    with page.expect_download() as download:
        page.get_by_role("button", name="All bundles (.zip)").click()
    assert re.fullmatch(r"7b-research-lm-pre-training-sprint-plan-[0-9a-f]{12}\.zip",
                        download.value.suggested_filename)
    assert _no_overflow(page)
    assert page.console_errors == []


def test_edit_errors_in_place_and_sort_schedule(signed_in, page, designs_server) -> None:
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


def test_hostile_names_render_as_text_in_the_diagram(signed_in, page, designs_server) -> None:
    name = 'Evil"]; click X "javascript:x()" %% <img src=x onerror=alert(1)> end'
    text = example_text("vision-growing-inference")
    text = re.sub(r"^name: .*$", "name: " + json.dumps(name), text, count=1, flags=re.MULTILINE)
    text = text.replace("location: s3://retail-vision/shelf-images/",
                        "location: " + json.dumps('s3://b/"]) --> Z{{x}} ; style src1 fill:#f00'))
    # Posted with the browser's session and its CSRF token (as htmx sends it).
    token = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    r = page.request.post(designs_server.url + "/designs/from-yaml", form={"spec_yaml": text},
                          headers={"X-CSRF-Token": token}, max_redirects=0)
    assert r.status == 303, r.text()
    page.on("dialog", lambda d: page.console_errors.append("dialog: " + d.message))  # type: ignore[attr-defined]
    page.goto(designs_server.url + r.headers["location"])
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page).to_have_url(PLAN_URL, timeout=30_000)
    page.locator("#architecture-heading").scroll_into_view_if_needed()
    diagram = page.locator("#architecture-diagram svg")
    expect(diagram).to_be_visible(timeout=15_000)
    expect(diagram).to_contain_text(name)
    expect(diagram).to_contain_text('s3://b/"]) --> Z{{x}} ; style src1 fill:#f00')
    assert diagram.locator("img, script, a, foreignObject img").count() == 0
    assert diagram.locator(".node").count() >= 8  # no node went missing, none was added by the text
    page.wait_for_timeout(300)
    assert page.console_errors == []
