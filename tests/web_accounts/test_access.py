"""Access by workspace: a design, its plans, jobs, exports and wizard are 404 for anyone
outside its workspace; viewers read but get 403 on every change and see no buttons for it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.models import Design, Job
from app.models import Plan as PlanRow
from app.requirements.examples import example_text
from app.services import accounts as acc
from tests.web_accounts.conftest import Stock
from tests.web_wizard.forms import example_values, items, post


def _get_paths(st: Stock) -> list[str]:
    d, p, j = st.design_id, st.plan_id, st.job_id
    return [f"/designs/{d}", f"/designs/{d}/wizard", f"/designs/{d}/delete", f"/designs/{d}/plans/{p}",
            f"/designs/{d}/plans/{p}/schedule.csv", f"/designs/{d}/plans/{p}/bundles/all.zip",
            f"/designs/{d}/plans/{p}/bundles/helm.zip", f"/designs/{d}/jobs/{j}", f"/designs/{d}/jobs/{j}/status",
            f"/compare?ids={d}&ids={st.other_design_id}"]


def _post_paths(st: Stock) -> list[tuple[str, dict]]:
    d, j = st.design_id, st.job_id
    return [(f"/designs/{d}/spec", {"spec_yaml": example_text("research-burst-deadline")}),
            (f"/designs/{d}/rename", {"name": "Mine now"}), (f"/designs/{d}/duplicate", {}),
            (f"/designs/{d}/delete", {}), (f"/designs/{d}/plan", {}), (f"/designs/{d}/jobs/{j}/cancel", {})]


def _state(settings, st: Stock):
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        d = s.get(Design, st.design_id)
        out = (d.name if d else None, d.spec if d else None, s.get(Job, st.job_id).cancel_requested,
               len(s.exec(select(Design)).all()), len(s.exec(select(Job)).all()),
               len(s.exec(select(PlanRow)).all()))
    engine.dispose()
    return out


def test_a_member_of_another_workspace_gets_404_everywhere(make_client, stock: Stock, settings) -> None:
    outsider: TestClient = make_client("mallory@example.com", workspace="Team A", role="admin")
    before = _state(settings, stock)
    for path in _get_paths(stock):
        r = outsider.get(path, follow_redirects=False)
        assert r.status_code == 404, path
        assert stock.name not in r.text and "Secret" not in r.text, path
        assert r.headers["content-type"].startswith("text/html"), path  # no zip, no CSV
    for path, data in _post_paths(stock):
        r = outsider.post(path, data=data, follow_redirects=False)
        assert r.status_code == 404 and stock.name not in r.text, path
        r = outsider.post(path, data=data, headers={"HX-Request": "true"}, follow_redirects=False)
        assert r.status_code == 404, path
    values, carry = example_values()
    r = post(outsider, f"/designs/{stock.design_id}/wizard", items(values, carry), follow_redirects=False)
    assert r.status_code == 404
    r = post(outsider, "/designs/wizard/rows", items(values, carry, _op="add:performance.training",
                                                      _design=str(stock.design_id)))
    assert r.status_code == 404
    for path in (f"/workspaces/{stock.slug}/members", f"/workspaces/{stock.slug}/keys",
                 f"/workspaces/{stock.slug}/audit"):
        assert outsider.get(path).status_code == 404, path
    assert outsider.post(f"/workspaces/{stock.slug}/switch", follow_redirects=False).status_code == 404
    assert outsider.post(f"/workspaces/{stock.slug}/members",
                         data={"email": "mallory@example.com", "role": "admin"}).status_code == 404
    listing = outsider.get("/designs").text
    assert stock.name not in listing and "No designs yet." in listing
    assert stock.name not in outsider.get("/compare").text
    assert _state(settings, stock) == before  # nothing changed


def test_a_member_of_both_reaches_the_design_from_either_workspace(make_client, stock: Stock, settings) -> None:
    both = make_client("both@example.com", workspace="Team A", role="editor")
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        acc.add_member(s, stock.workspace_id, "both@example.com", "viewer")
    engine.dispose()
    r = both.get(f"/designs/{stock.design_id}")  # current workspace: Team A
    assert r.status_code == 200 and stock.name in r.text
    assert "In the workspace <strong>Team B</strong>" in r.text
    assert 'id="plan-form"' not in r.text  # a viewer there, though an editor in Team A
    assert both.post(f"/designs/{stock.design_id}/rename", data={"name": "x"}).status_code == 403


def test_a_viewer_reads_but_cannot_change(make_client, stock: Stock, settings) -> None:
    viewer = make_client("vera@example.com", workspace=stock.slug, role="viewer")
    d, p, j = stock.design_id, stock.plan_id, stock.job_id
    listing = viewer.get("/designs")
    assert listing.status_code == 200 and stock.name in listing.text
    for absent in ("New design with the wizard", "/duplicate", f'href="/designs/{d}/delete"', "Create from example",
                   'action="/designs/from-yaml"'):
        assert absent not in listing.text, absent
    assert "Your role in this workspace is <strong>viewer</strong>" in listing.text
    page = viewer.get(f"/designs/{d}").text
    for absent in ('id="plan-form"', 'id="spec-form"', 'id="rename"', "/duplicate", "/delete", "/wizard",
                   "Save requirements"):
        assert absent not in page, absent
    assert '<textarea id="spec-yaml" rows="24" spellcheck="false" class="code-input" readonly>' in page
    assert 'id="job-panel"' in page and 'id="job-cancel"' not in page  # the queued job, without Cancel
    plan = viewer.get(f"/designs/{d}/plans/{p}")
    assert plan.status_code == 200 and "Plan again" not in plan.text and 'id="plan-form"' not in plan.text
    assert f'href="/designs/{d}/plans/{p}/bundles/all.zip"' in plan.text  # exports are reading
    assert viewer.get(f"/designs/{d}/plans/{p}/schedule.csv").status_code == 200
    assert viewer.get(f"/designs/{d}/plans/{p}/bundles/all.zip").headers["content-type"] == "application/zip"
    job = viewer.get(f"/designs/{d}/jobs/{j}").text
    assert 'id="job-cancel"' not in job
    assert "New design" not in viewer.get("/compare").text

    before = _state(settings, stock)
    for path, data in _post_paths(stock):
        r = viewer.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403, path
        assert "Your role in this workspace is viewer; this needs editor." in r.text, path
    for path in (f"/designs/{d}/delete", "/designs/new/wizard", f"/designs/{d}/wizard"):
        assert viewer.get(path).status_code == 403, path
    for path, data in (("/designs/from-example", {"example": "research-burst-deadline"}),
                       ("/designs/from-yaml", {"spec_yaml": example_text("research-burst-deadline")})):
        assert viewer.post(path, data=data).status_code == 403, path
    values, carry = example_values()
    assert post(viewer, "/designs/new/wizard", items(values, carry)).status_code == 403
    assert post(viewer, f"/designs/{d}/wizard", items(values, carry)).status_code == 403
    assert _state(settings, stock) == before


@pytest.mark.parametrize("role, can", [("editor", True), ("admin", True), ("viewer", False)])
def test_write_buttons_follow_the_role(make_client, stock: Stock, role: str, can: bool) -> None:
    c = make_client(f"{role}@example.com", workspace=stock.slug, role=role)
    page = c.get(f"/designs/{stock.design_id}").text
    assert ('id="plan-form"' in page) is can and ('id="spec-form"' in page) is can
    assert (re.search(r'href="/designs/\d+/delete"', c.get("/designs").text) is not None) is can
