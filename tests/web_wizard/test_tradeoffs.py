"""/designs/{id}/tradeoffs: cost versus deadline and the what-if controls."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from fastapi.testclient import TestClient

from app.planner.build import build_problem
from app.planner.options import PlannerSettings
from app.planner.solver import solve
from app.requirements.examples import load_example
from app.services import designs as svc
from app.services import estimate as est
from tests.web_wizard.conftest import stored_spec

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


# --------------------------------------------------------------------------- utilization


def _chart(text: str) -> dict:
    return json.loads(htmllib.unescape(re.search(
        r'id="tradeoff-chart-data">(.*?)</script>', text, flags=re.DOTALL).group(1)))


def _base_cost(text: str) -> float:
    data = _chart(text)
    return data["cost"][data["base_index"]]


def test_the_utilization_control_is_on_the_page(priced_client: TestClient, designs) -> None:
    r = priced_client.get(f"/designs/{designs['research']}/tradeoffs")
    assert r.status_code == 200
    assert '<label for="c-utilization_pct">GPU utilization (%)</label>' in r.text
    assert re.search(r'id="c-utilization_pct" name="utilization_pct" value="100"', r.text)
    assert "Latency-bound services are sized by their peak" in r.text


def test_lower_utilization_raises_the_cost(priced_client: TestClient, designs) -> None:
    url = f"/designs/{designs['research']}/tradeoffs/curve"
    full = priced_client.get(url, params={"factors": "1"}, headers=HX)
    half = priced_client.get(url, params={"factors": "1", "utilization_pct": "50"}, headers=HX)
    assert full.status_code == half.status_code == 200
    assert 'data-outcome="ok"' in half.text and "GPU utilization" not in full.text
    assert "— with GPU utilization 50 %." in half.text
    # the research sprint is all training: half the useful time doubles GPU-hours and GPUs
    assert _base_cost(half.text) > _base_cost(full.text) * 1.9
    assert _chart(half.text)["peak"][0] == 2 * _chart(full.text)["peak"][0]


def test_demand_prices_and_utilization_are_one_resolve(priced_client: TestClient, designs,
                                                        priced_settings, bundled) -> None:
    """The page's re-solve equals the service's solve with all three adjustments."""
    did = designs["hipaa"]
    r = priced_client.get(f"/designs/{did}/tradeoffs/curve", headers=HX, params={
        "factors": "1", "demand_pct": "120", "utilization_pct": "80", "price_on_demand": "10",
        "price_spot": "-20"})
    assert r.status_code == 200 and 'data-outcome="ok"' in r.text
    text = htmllib.unescape(r.text)
    assert ("with demand × 1.2, GPU utilization 80 %, on-demand prices +10 %, spot prices −20 %"
            in text)
    adj = est.Adjustments(demand_scale=1.2, utilization=0.8,
                          price_factors={"on_demand": 1.1, "spot": 0.8, "reserved": 1.0, "private": 1.0})
    settings = svc.planner_settings("highs", 5.0).model_copy(update={"gap": 0.005})
    point = est.deadline_curve(stored_spec(priced_settings, did), bundled, settings, adj, factors=[1])[0]
    assert point.ok and _base_cost(r.text) == point.total_cost
    without_utilization = est.deadline_curve(stored_spec(priced_settings, did), bundled, settings,
                                             adj.model_copy(update={"utilization": 1.0}), factors=[1])[0]
    assert point.total_cost > without_utilization.total_cost


def test_the_adjusted_problem_is_the_problem_adjusted_by_hand(bundled) -> None:
    """Demand, utilization and prices in one problem: training classes need 1/utilization
    the GPU-hours and GPUs, latency-bound serving only the demand scale; its solve is the
    curve's point."""
    spec = load_example("llm-finetune-hipaa")
    settings = PlannerSettings(gap=1e-6)
    prices = {"on_demand": 1.1, "spot": 0.8, "reserved": 0.9}
    adj = est.Adjustments(demand_scale=1.2, utilization=0.8, price_factors=prices)

    by_hand = build_problem(spec, bundled, settings).problem
    assert {by_hand.class_info(k).latency_bound for k in by_hand.demand} == {True, False}  # serving, training
    for k in by_hand.demand:
        f = 1.2 if by_hand.class_info(k).latency_bound else 1.2 / 0.8
        by_hand.demand[k] = [v * f for v in by_hand.demand[k]]
        by_hand.peak[k] = [v * f for v in by_hand.peak[k]]
    for o in by_hand.options:
        f = prices.get(o.kind, 1.0)
        o.usage_price *= f
        o.price_per_period *= f
        o.upfront *= f
        o.residual_value *= f
        o.recurring_costs = {n: v * f for n, v in o.recurring_costs.items()}

    adjusted = est.adjusted_problem(spec, bundled, settings, adj).problem
    for k in by_hand.demand:
        assert adjusted.demand[k] == pytest.approx(by_hand.demand[k])
        assert adjusted.peak[k] == pytest.approx(by_hand.peak[k])
    expected = solve(by_hand, solver="highs", gap=1e-6)
    point = est.deadline_curve(spec, bundled, settings, adj, factors=[1])[0]
    assert expected.status == point.status == "optimal"
    assert point.total_cost == pytest.approx(expected.total_nominal_cost, abs=0.01)


def test_utilization_of_training_acts_as_demand(bundled) -> None:
    """All training: 120 % demand at 80 % utilization is 150 % demand at full utilization."""
    spec = load_example("research-burst-deadline")
    settings = PlannerSettings(gap=1e-6)
    both = est.deadline_curve(spec, bundled, settings, est.Adjustments(demand_scale=1.2, utilization=0.8),
                              factors=[1])[0]
    demand = est.deadline_curve(spec, bundled, settings, est.Adjustments(demand_scale=1.5), factors=[1])[0]
    base = est.deadline_curve(spec, bundled, settings, factors=[1])[0]
    assert both.ok and demand.ok and base.ok
    assert both.total_cost == pytest.approx(demand.total_cost, rel=1e-6)
    assert both.peak_gpus == pytest.approx(demand.peak_gpus)
    assert both.total_cost > base.total_cost * 1.1


def test_utilization_is_validated(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    for bad in ("5", "101", "0", "lots"):
        r = priced_client.get(f"/designs/{did}/tradeoffs", params={"utilization_pct": bad})
        assert r.status_code == 422, bad
        assert re.search(r'id="c-utilization_pct"[^>]*aria-invalid="true"', r.text)
        assert re.search(r'<small id="ce-utilization_pct" class="wz-error">Enter a utilization between 10 and '
                         r'100 %.</small>', r.text)
        assert f'value="{bad}"' in r.text  # the value is kept
    r = priced_client.get(f"/designs/{did}/tradeoffs/curve", params={"utilization_pct": "9.5"}, headers=HX)
    assert r.status_code == 200 and 'data-outcome="invalid"' in r.text
    assert 'data-field="utilization_pct"' in r.text
    r = priced_client.get(f"/designs/{did}/tradeoffs/curve", params={"utilization_pct": "100 %", "factors": "1"},
                          headers=HX)
    assert 'data-outcome="ok"' in r.text and "GPU utilization" not in r.text
