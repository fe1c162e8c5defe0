"""/compare: choose 2-4 planned designs, see their figures side by side."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import make_engine
from app.planner.plan import Plan
from app.services import designs as svc


def _latest(settings, design_id: int) -> Plan:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        summary = svc.list_plans(s, design_id, limit=1)[0]
        plan = Plan.model_validate(svc.get_plan(s, design_id, summary.id).result)
    engine.dispose()
    return plan


def _row(html: str, key: str) -> str:
    m = re.search(rf'<tr data-row="{key}">(.*?)</tr>', html, flags=re.DOTALL)
    assert m, key
    return m.group(1)


def test_the_form_lists_planned_designs_and_hints_at_the_others(priced_client: TestClient, designs) -> None:
    r = priced_client.get("/compare")
    assert r.status_code == 200
    boxes = re.findall(r'<input type="checkbox" name="ids" value="(\d+)"', r.text)
    assert sorted(map(int, boxes)) == sorted(designs[k] for k in ("research", "hipaa", "research_one_region"))
    assert f'<a href="/designs/{designs["unplanned"]}">Research, not planned yet</a>' in r.text
    assert "press <em>Plan</em> to compare it" in r.text


def test_compare_two_designs(priced_client: TestClient, priced_settings, designs) -> None:
    a, b = designs["research"], designs["research_one_region"]
    r = priced_client.get("/compare", params={"ids": [a, b]})
    assert r.status_code == 200
    html = r.text
    pa, pb = _latest(priced_settings, a), _latest(priced_settings, b)
    assert pa.total_cost < pb.total_cost  # one region only costs more
    total = _row(html, "total_cost")
    cells = re.findall(r"<td [^>]*>(.*?)</td>", total, flags=re.DOTALL)
    assert len(cells) == 2
    assert "best" in re.findall(r'<td class="([^"]*)"', total)[0]  # the cheaper one is marked
    assert "★ best" in cells[0] and "★ best" not in cells[1]
    diff = (pb.total_cost - pa.total_cost) / pa.total_cost * 100
    assert f"+{diff:,.1f} %" in cells[1] and 'cmp-diff bad' in cells[1]
    savings = re.findall(r"<td [^>]*>(.*?)</td>", _row(html, "savings_od"), flags=re.DOTALL)
    usd = [pa.savings["all_on_demand"]["usd"], pb.savings["all_on_demand"]["usd"]]
    best = usd.index(max(usd))  # the larger saving is the better one
    assert "★ best" in savings[best] and "★ best" not in savings[1 - best]
    assert "Spot" in html and "Capacity mix by purchase option" in html
    assert _row(html, "snapshot").count(pa.snapshot_id) == 2
    # The charts' data: one series per design over the union of their months.
    data = json.loads(htmllib.unescape(re.search(
        r'<script type="application/json" id="compare-chart-data">(.*?)</script>', html, flags=re.DOTALL).group(1)))
    assert data["months"] == pa.months
    assert [s["monthly"] for s in data["series"]] == [pa.cost_by_month, pb.cost_by_month]
    assert data["series"][0]["cumulative"][-1] == pytest.approx(sum(pa.cost_by_month), abs=0.05)
    assert "/static/js/compare-charts.js" in html and 'id="chart-compare-cumulative"' in html


def test_three_designs_in_the_order_asked(priced_client: TestClient, designs) -> None:
    ids = [designs["hipaa"], designs["research"], designs["research_one_region"]]
    html = priced_client.get("/compare", params={"ids": ids}).text
    heads = re.findall(r'<th scope="col" class="cmp-col[^"]*"><a href="/designs/(\d+)">', html)
    assert list(map(int, heads)) == ids
    assert "reference" in html and "different prices" not in html


@pytest.mark.parametrize("ids,message", [
    (["1"], "Choose between 2 and 4 designs to compare (you chose 1)."),
    (["1", "2", "3", "4", "5"], "Choose between 2 and 4 designs to compare (you chose 5)."),
    (["1", "x"], "“x” is not a design number."),
])
def test_choices_are_validated(priced_client: TestClient, designs, ids, message) -> None:
    r = priced_client.get("/compare", params={"ids": ids})
    assert r.status_code == 422
    assert message in htmllib.unescape(r.text)
    assert 'id="compare-choice" aria-invalid="true"' in r.text


def test_unplanned_and_unknown_designs(priced_client: TestClient, designs) -> None:
    r = priced_client.get("/compare", params={"ids": [designs["research"], designs["unplanned"]]})
    assert r.status_code == 422 and "has no plan yet" in htmllib.unescape(r.text)
    # the choice is kept
    assert re.search(rf'value="{designs["research"]}" checked', r.text)
    r = priced_client.get("/compare", params={"ids": [designs["research"], 9999]})
    assert r.status_code == 404 and "Design not found" in r.text
