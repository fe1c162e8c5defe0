"""The home page in a real browser, at desktop and phone widths."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 390])
def test_home_renders_without_errors(signed_in, page, live_server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server.url + "/")
    assert page.title().endswith("· archplan")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Plan ML architectures")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Catalog", "Designs", "API"):
        assert nav.get_by_role("link", name=label).is_visible()
    assert nav.get_by_role("link", name="Workspace: Default workspace").is_visible()
    assert nav.get_by_role("button", name="Sign out").is_visible()
    # htmx and the stylesheet are installed by the setup and actually load.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != ""
    # Nothing overflows horizontally at this width.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.console_errors == []


def test_keyboard_reaches_primary_action(signed_in, page, live_server) -> None:
    page.goto(live_server.url + "/")
    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert "Start a design" in focused


def test_swagger_ui_loads_offline(page, live_server) -> None:
    page.goto(live_server.url + "/docs")
    page.wait_for_selector(".swagger-ui .info", timeout=15000)
    assert "archplan" in page.inner_text(".swagger-ui .info")
    assert page.console_errors == []
