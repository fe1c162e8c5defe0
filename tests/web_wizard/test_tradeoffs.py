"""/designs/{id}/tradeoffs: cost versus deadline and the what-if controls."""

from __future__ import annotations

import html as htmllib
import json
import re

from fastapi.testclient import TestClient

HX = {"HX-Request": "true"}


def test_the_page_loads_the_curve_with_htmx(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    r = priced_client.get(f"/designs/{did}/tradeoffs")
    assert r.status_code == 200
    assert f'hx-get="/designs/{did}/tradeoffs/curve?' in r.text and 'hx-trigger="load"' in r.text
    for name in ("demand_pct", "price_on_demand", "price_spot", "price_reserved", "price_private",
                 "spot_overhead", "region_cap", "factors"):
        assert f'<label for="c-{name}">' in r.text and f'id="c-{name}" name="{name}"' in r.text
    assert 'id="curve-loading"' in r.text and "/static/js/tradeoffs.js" in r.text


def test_curve_has_six_points(priced_client: TestClient, designs) -> None:
    r = priced_client.get(f"/designs/{designs['research']}/tradeoffs/curve", headers=HX)
    assert r.status_code == 200
    assert 'data-outcome="ok" data-points="6"' in r.text
    assert len(re.findall(r'<tr(?: class="to-base")? data-status="optimal">', r.text)) == 6
    data = json.loads(htmllib.unescape(re.search(
        r'id="tradeoff-chart-data">(.*?)</script>', r.text, flags=re.DOTALL).group(1)))
    assert len(data["labels"]) == 6 and data["labels"][3] == "×1 · 30 d" and data["base_index"] == 3
    assert all(c is not None for c in data["cost"])
    assert "At the required deadlines the plan costs <strong>$9,995</strong>" in r.text


def test_infeasible_points_are_gaps_with_their_explanation(priced_client: TestClient, designs) -> None:
    r = priced_client.get(f"/designs/{designs['research_one_region']}/tradeoffs/curve",
                          params={"region_cap": "32", "demand_pct": "100"}, headers=HX)
    data = json.loads(htmllib.unescape(re.search(
        r'id="tradeoff-chart-data">(.*?)</script>', r.text, flags=re.DOTALL).group(1)))
    assert data["cost"][0] is None and data["status"][0] == "infeasible"
    assert all(c is not None for c in data["cost"][1:])
    text = htmllib.unescape(r.text)
    assert "Deadlines without a plan" in text
    assert re.search(r"<strong>×0.25 · 7.5 d</strong> \(infeasible\):\s*<ul><li>[^<]*aws/us-east-1", text)
    assert "at most 32 GPUs per region" in text


def test_controls_are_validated(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    r = priced_client.get(f"/designs/{did}/tradeoffs/curve", params={"factors": "1,2,3,4,5,6,7"}, headers=HX)
    assert r.status_code == 200 and 'data-outcome="invalid"' in r.text
    assert 'data-field="factors"' in r.text and "At most 6 points" in r.text
    r = priced_client.get(f"/designs/{did}/tradeoffs", params={"demand_pct": "0", "region_cap": "2.5"})
    assert r.status_code == 422
    assert re.search(r'id="c-demand_pct"[^>]*aria-invalid="true"', r.text)
    assert re.search(r'id="c-region_cap"[^>]*aria-invalid="true"', r.text)
    assert 'value="2.5"' in r.text  # the value is kept


def test_without_javascript_the_page_solves(priced_client: TestClient, designs) -> None:
    r = priced_client.get(f"/designs/{designs['hipaa']}/tradeoffs",
                          params={"factors": "0.5, 1", "price_reserved": "-20", "sensitivity": "1"})
    assert r.status_code == 200
    assert 'data-points="2"' in r.text and "reserved prices −20 %" in r.text
    assert 'id="sensitivity-table"' in r.text and "Demand +20 %" in r.text


def test_sensitivity_scenarios(priced_client: TestClient, designs) -> None:
    r = priced_client.get(f"/designs/{designs['research']}/tradeoffs/sensitivity",
                          params={"spot_overhead": "30"}, headers=HX)
    assert r.status_code == 200
    labels = re.findall(r'<tr>\s*<th scope="row">([^<]+)</th>', r.text)
    assert "Demand −20 %" in labels and "Spot interruptions cost 30 % extra work" in labels
    assert "(with your spot overhead and region cap)" in r.text


def test_unknown_designs_get_a_friendly_404(priced_client: TestClient) -> None:
    for path in ("/designs/999/tradeoffs", "/designs/x/tradeoffs/curve", "/designs/999/tradeoffs/sensitivity"):
        r = priced_client.get(path)
        assert r.status_code == 404 and "Design not found" in r.text
