"""The requirement wizard in a real browser: inline errors while typing (no reload), the
live estimate following the inputs, rows added and removed with htmx, saving."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.catalog.schema import load_snapshot
from app.db import make_engine
from app.services import catalog as catalog_svc

pytestmark = pytest.mark.browser


@pytest.fixture
def priced_server(settings, live_server):
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, load_snapshot(), origin="test")
    engine.dispose()
    return live_server


def _no_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("width", [1280, 390])
def test_wizard_validates_estimates_and_saves(signed_in, page, priced_server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(priced_server.url + "/designs/new/wizard?example=research-burst-deadline")
    expect(page.get_by_role("heading", level=1)).to_have_text("New design")
    page.evaluate("window.__sameDocument = true")

    # The live estimate arrives on load: a lower and an upper bound.
    lower, upper = page.locator("#est-lower"), page.locator("#est-upper")
    expect(lower).to_have_text(re.compile(r"^\$[\d,]+$"), timeout=15_000)
    expect(upper).to_have_text(re.compile(r"^\$[\d,]+$"))
    upper_before = upper.inner_text()

    # A bad value: the error appears next to the field, without a reload.
    horizon = page.get_by_label("Horizon (months)")
    error = page.locator("#e-lifecycle-horizon_months")
    expect(error).to_be_hidden()
    horizon.fill("99")
    expect(error).to_be_visible()
    expect(error).to_have_text("Input should be less than or equal to 60")
    expect(horizon).to_have_attribute("aria-invalid", "true")
    expect(horizon).to_have_attribute("aria-describedby", re.compile(r"\be-lifecycle-horizon_months\b"))
    expect(page.locator("#wizard-errors .form-errors")).to_contain_text("Horizon (months)")
    expect(page.locator("#estimate-body")).to_contain_text("appears once the requirements are valid")
    horizon.fill("3")
    expect(error).to_be_hidden()
    expect(horizon).not_to_have_attribute("aria-invalid", "true")

    # The estimate follows the inputs: ten times the ablation GPU-hours cost more.
    page.get_by_label("GPU-hours per run").nth(1).fill("15000")
    expect(upper).not_to_have_text(upper_before, timeout=15_000)
    expect(upper).to_have_text(re.compile(r"^\$[\d,]+$"))

    # Rows: add a training run (focus moves into it), then remove it again.
    page.get_by_role("button", name="+ Add training run").click()
    new_name = page.locator("#f-performance-training-2-name")
    expect(new_name).to_be_focused()
    expect(new_name).to_have_value("train-3")
    page.get_by_role("button", name="Remove Training run 3 · train-3").click()
    expect(page.locator("#f-performance-training-2-name")).to_have_count(0)
    expect(page.get_by_role("button", name="+ Add training run")).to_be_focused()
    expect(page.locator(".wz-group#f-performance-training")).to_have_count(1)
    expect(page.locator("#wizard-errors")).to_have_count(1)
    assert page.evaluate("window.__sameDocument === true")
    assert _no_overflow(page)

    page.get_by_label("Name", exact=True).first.fill("Sprint from the wizard")
    page.get_by_role("button", name="Create design").click()
    expect(page).to_have_url(re.compile(r"/designs/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sprint from the wizard")
    assert page.console_errors == []


def test_missing_values_of_untouched_fields_wait_until_saved(signed_in, page, priced_server) -> None:
    page.goto(priced_server.url + "/designs/new/wizard")
    page.get_by_label("Deadline (days)").fill("20")
    # The blank name is required, but the user has not reached it yet: no inline error.
    expect(page.locator("#wizard-errors .wz-errors-more")).to_contain_text("still to fill in")
    expect(page.locator("#e-name")).to_be_hidden()
    page.get_by_role("button", name="Create design").click()
    expect(page.locator("#e-name")).to_have_text("Field required")
    expect(page.get_by_label("Name", exact=True).first).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Deadline (days)")).to_have_value("20")
    assert page.console_errors == [] or all("422" in e for e in page.console_errors)
