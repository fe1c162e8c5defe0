"""Signing in, out and switching workspaces in a real browser, at desktop and phone widths."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in_page
from tests.signin import EMAIL, PASSWORD, make_user

pytestmark = pytest.mark.browser


def _no_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("width", [1280, 390])
def test_sign_in_and_out_through_the_form(page, live_server, settings, width: int) -> None:
    make_user(settings)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Plan ML architectures")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Designs")).to_have_count(0)
    page.get_by_role("button", name="Sign in to start a design").click()
    expect(page).to_have_url(re.compile(r"/login\?next=/designs$"))
    expect(page.get_by_label("E-mail")).to_be_focused()
    assert _no_overflow(page)

    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    expect(page.get_by_label("E-mail")).to_have_value(EMAIL)  # kept; the password is not
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/designs$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Designs")

    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Workspace: Default workspace")).to_be_visible()
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()
    if width >= 700:
        expect(nav.get_by_text(EMAIL)).to_be_visible()
    assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly
    assert _no_overflow(page)

    nav.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\?signed_out=1$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(live_server.url + "/designs")
    expect(page).to_have_url(re.compile(r"/login\?next=/designs$"))
    # Only the failed sign-in (a 401 answer) may show in the console.
    assert all("401" in e for e in page.console_errors), page.console_errors


@pytest.mark.parametrize("width", [1280, 390])
def test_create_and_switch_workspaces(signed_in, page, live_server, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Workspace: Default workspace").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Workspaces")
    page.get_by_label(re.compile(r"^Name")).fill("Platform team with a rather long name")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/workspaces/platform-team-with-a-rather-long-name/members\?created=1$"))
    expect(page.get_by_role("status")).to_contain_text("it is now your current workspace")
    expect(nav.get_by_role("link", name="Workspace: Platform team with a rather long name")).to_be_visible()
    assert _no_overflow(page)

    # An API key: the secret once, then only its prefix.
    page.get_by_role("navigation", name="Workspace").get_by_role("link", name="API keys").click()
    page.get_by_label(re.compile(r"^Name")).fill("ci pipeline")
    page.get_by_label("Read and write", exact=True).check()
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label(re.compile(r"^The key")).input_value()
    assert secret.startswith("ap_") and len(secret) > 30
    assert _no_overflow(page)
    page.get_by_role("button", name="Done, back to the keys").click()
    expect(page.get_by_role("region", name=re.compile("^The keys"))).to_contain_text(secret[:10] + "…")
    assert secret not in page.content()

    page.goto(live_server.url + "/workspaces")
    page.get_by_role("button", name="Switch to Default workspace").click()
    expect(page).to_have_url(re.compile(r"/designs$"))
    expect(nav.get_by_role("link", name="Workspace: Default workspace")).to_be_visible()
    assert _no_overflow(page)
    assert page.console_errors == []


def test_first_run_setup(page, live_server) -> None:
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(live_server.url + "/designs")
    expect(page).to_have_url(re.compile(r"/setup$"))
    page.get_by_label("E-mail").fill("root@example.com")
    page.get_by_label(re.compile(r"^Password \(")).fill("a long password")
    page.get_by_label("Password again").fill("a long password")
    page.get_by_role("button", name="Create the administrator").click()
    expect(page).to_have_url(re.compile(r"/designs$"))
    expect(page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out")).to_be_visible()
    page.goto(live_server.url + "/setup")
    expect(page).to_have_url(re.compile(r"/designs$"))  # /setup → /login → signed in already
    assert _no_overflow(page)
    assert page.console_errors == []


def test_sign_in_returns_to_the_page_asked_for(page, live_server, settings) -> None:
    make_user(settings)
    page.goto(live_server.url + "/compare?ids=1&ids=2")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/compare\?ids=1&ids=2$"))


def test_sign_in_page_helper_lands_on_designs(page, live_server, settings) -> None:
    make_user(settings, "helper@example.com")
    sign_in_page(page, live_server.url, "helper@example.com", PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Designs")
