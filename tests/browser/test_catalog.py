"""The catalog page in a real browser: htmx updates the table as filters change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, load_snapshot
from app.db import make_engine
from app.services import catalog as svc
from tests.catalog_db.factory import make_snapshot

pytestmark = pytest.mark.browser


@pytest.fixture
def catalog_server(settings, live_server):
    """The live server with a snapshot in its database (the bundled one when it is built)."""
    snapshot = load_snapshot() if DEFAULT_SNAPSHOT_PATH.is_file() else make_snapshot()
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        svc.import_snapshot(s, snapshot, origin="test")
    engine.dispose()
    return live_server


def _column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#catalog-results tbody tr", f"rows => rows.map(r => r.cells[{index}].innerText.trim())")


@pytest.mark.parametrize("width", [1280, 390])
def test_filter_updates_table_via_htmx(signed_in, page, catalog_server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(catalog_server.url + "/catalog")
    assert page.get_by_role("heading", level=1).inner_text() == "GPU price catalog"
    assert page.locator("#catalog-results tbody tr").count() > 0
    page.evaluate("window.__sameDocument = true")  # survives only if there is no full reload

    with page.expect_response(lambda r: "/catalog?" in r.url and r.request.headers.get("hx-request") == "true"):
        page.get_by_label("GPU model").select_option("H100")
    expect(page).to_have_url(re.compile(r"gpu=H100"))
    expect(page.locator("#catalog-results tbody td:nth-child(3)").filter(has_not_text="H100")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    assert all("H100" in g for g in _column(page, 2))

    with page.expect_response(lambda r: "sort=spot" in r.url):
        page.get_by_label("Sort by $/GPU-h").select_option("spot")
    expect(page).to_have_url(re.compile(r"sort=spot"))
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Spot")
    spot = [c for c in _column(page, 6) if c != "—"]
    values = [float(c.replace("$", "").replace(",", "")) for c in spot]
    assert values == sorted(values)
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("Spot")
    assert page.evaluate("window.__sameDocument") is True

    # The page never overflows; the table scrolls inside its wrapper on a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    if width == 390:
        assert page.evaluate("(w => w.scrollWidth > w.clientWidth)(document.querySelector('.table-wrap'))")

    # The URL reflects the filters: reloading it renders the same state without htmx.
    page.reload()
    assert page.get_by_label("GPU model").input_value() == "H100"
    assert page.get_by_label("Sort by $/GPU-h").input_value() == "spot"
    assert page.console_errors == []


def test_filters_are_keyboard_reachable(signed_in, page, catalog_server) -> None:
    page.goto(catalog_server.url + "/catalog")
    focused = []
    for _ in range(20):  # past the skip link and the navigation (links, workspace, sign out)
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
    assert {"f-gpu", "f-provider", "f-jurisdiction", "f-compliance", "f-min-mem", "f-sort"} <= set(focused)
    page.focus("#f-min-mem")
    with page.expect_response(lambda r: "min_mem=80" in r.url):
        page.keyboard.type("80")
    expect(page).to_have_url(re.compile(r"min_mem=80"))
    expect(page.locator("#catalog-status")).to_contain_text("Showing")
    mem = [float(c) for c in _column(page, 3) if c != "—"]
    assert mem and min(mem) >= 80
    assert page.console_errors == []


def test_switch_snapshot_swaps_the_page(signed_in, page, settings, catalog_server) -> None:
    older = make_snapshot(created="2026-11-01")
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        svc.import_snapshot(s, older, origin="test", make_current=False)
    engine.dispose()
    page.goto(catalog_server.url + "/catalog")
    current = page.locator(".snapshot-id").inner_text()
    assert current != older.snapshot_id
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Snapshot").select_option(older.snapshot_id)
    expect(page.locator(".snapshot-id")).to_have_text(older.snapshot_id)
    assert f"snapshot={older.snapshot_id}" in page.url
    assert page.evaluate("window.__sameDocument") is True
    assert page.get_by_label("Snapshot").input_value() == older.snapshot_id
    page.get_by_label("GPU model").select_option("H100")  # the filters still drive the results
    expect(page).to_have_url(re.compile(r"gpu=H100"))
    assert f"snapshot={older.snapshot_id}" in page.url
    assert page.console_errors == []
