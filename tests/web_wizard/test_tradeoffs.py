"""/designs/{id}/tradeoffs: cost versus deadline and the what-if controls.

The analyses are jobs: the app's embedded runner is off here (``job_workers=0``) and the
tests run the queued jobs themselves with ``app.state.job_runner.run_one()`` (in a child
process, as in production), so nothing races them or sleeps.
"""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.jobs import service as jobs_svc
from app.models import Job
from app.planner.build import build_problem
from app.planner.options import PlannerSettings
from app.planner.solver import solve
from app.requirements.examples import load_example
from app.services import designs as svc
from app.services import estimate as est
from tests.conftest import make_settings
from tests.signin import signed_in_client
from tests.web_wizard.conftest import stored_spec

HX = {"HX-Request": "true"}


@pytest.fixture
def settings(migrated_sqlite_url: str):
    """The app settings without the embedded job runner (see the module docstring)."""
    return make_settings(migrated_sqlite_url, job_workers=0)


def run_jobs(client: TestClient) -> list[int]:
    """Run every queued job now, in this thread (each solve in a child process); their ids."""
    ran = []
    while (job_id := client.app.state.job_runner.run_one()) is not None:
        ran.append(job_id)
    return ran


def design_jobs(client: TestClient, design_id: int, kind: str | None = None) -> list[Job]:
    with Session(client.app.state.engine) as s:
        q = select(Job).where(Job.design_id == design_id)
        if kind is not None:
            q = q.where(Job.kind == kind)
        rows = list(s.exec(q.order_by(col(Job.id))).all())
        for row in rows:
            s.expunge(row)
        return rows


def analysed(client: TestClient, url: str, params: dict[str, str] | None = None, headers=HX):
    """GET ``url`` (queues its analysis), run the queued jobs, GET it again: the result."""
    first = client.get(url, params=params, headers=headers)
    assert first.status_code == 200, first.text[:500]
    if 'data-outcome="pending"' in first.text:
        assert run_jobs(client)
    return client.get(url, params=params, headers=headers)


def _poll_url(text: str) -> str:
    return htmllib.unescape(re.search(r'hx-get="([^"]+)" hx-trigger="every 1s" hx-swap="outerHTML"', text).group(1))


def test_the_page_loads_the_curve_with_htmx(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    r = priced_client.get(f"/designs/{did}/tradeoffs")
    assert r.status_code == 200
    assert f'hx-get="/designs/{did}/tradeoffs/curve?' in r.text and 'hx-trigger="load"' in r.text
    for name in ("demand_pct", "price_on_demand", "price_spot", "price_reserved", "price_private",
                 "spot_overhead", "region_cap", "factors"):
        assert f'<label for="c-{name}">' in r.text and f'id="c-{name}" name="{name}"' in r.text
    assert 'id="curve-loading"' in r.text and "/static/js/tradeoffs.js" in r.text
    assert design_jobs(priced_client, did) == []  # the page itself queues nothing: its fragment does
    assert 'http-equiv="refresh"' not in r.text


# --------------------------------------------------------------------------- the job flow


def test_the_curve_is_a_job_polled_until_it_is_done(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    url = f"/designs/{did}/tradeoffs/curve"
    r = priced_client.get(url, headers=HX)
    assert r.status_code == 200 and 'data-outcome="pending"' in r.text
    [job] = design_jobs(priced_client, did, "curve")
    assert job.status == "queued" and job.dedupe_key and len(job.dedupe_key) == 64
    assert job.payload["factors"] == [0.25, 0.5, 0.75, 1.0, 1.5, 2.0] and job.payload["time_limit_s"] == 5.0
    assert f'data-job="{job.id}"' in r.text and "Waiting for a worker" in r.text
    assert 'hx-trigger="every 1s" hx-swap="outerHTML"' in r.text and 'id="curve-job-progress"' in r.text
    poll = _poll_url(r.text)
    assert poll.startswith(url + "?") and f"job={job.id}" in poll and "seen=" in poll
    # Cancel (an editor here) posts to the design's job-cancel route with the CSRF token.
    assert f'action="/designs/{did}/jobs/{job.id}/cancel"' in r.text
    assert re.search(r'name="csrf_token" value="[^"]+"', r.text) and 'id="curve-job-cancel"' in r.text

    # Asked again (a reload, another tab): the same job, not a second one.
    again = priced_client.get(url, headers=HX)
    assert f'data-job="{job.id}"' in again.text
    assert [j.id for j in design_jobs(priced_client, did)] == [job.id]
    # Polled while nothing changed: 204, htmx keeps the panel and polls on.
    assert priced_client.get(poll, headers=HX).status_code == 204

    assert run_jobs(priced_client) == [job.id]
    done = priced_client.get(poll, headers=HX)
    assert done.status_code == 200 and 'data-outcome="ok" data-points="6"' in done.text
    assert "hx-trigger" not in done.text  # the result ends the polling
    # The same controls again: the stored result at once, still one job.
    assert 'data-outcome="ok" data-points="6"' in priced_client.get(url, headers=HX).text
    assert [(j.id, j.status) for j in design_jobs(priced_client, did)] == [(job.id, "succeeded")]
    assert run_jobs(priced_client) == []


def test_the_result_is_the_curve_computed_directly(priced_client: TestClient, designs, priced_settings,
                                                    bundled) -> None:
    did = designs["research_one_region"]
    params = {"factors": "0.25, 1, 2", "region_cap": "32"}
    r = analysed(priced_client, f"/designs/{did}/tradeoffs/curve", params)
    settings = svc.planner_settings("highs", 5.0).model_copy(update={"gap": 0.005})
    direct = est.deadline_curve(stored_spec(priced_settings, did), bundled, settings,
                                est.Adjustments(spot_interruption_overhead=0.1, max_gpus_per_region=32),
                                factors=[0.25, 1, 2])
    chart = _chart(r.text)
    assert chart["status"] == [p.status for p in direct] == ["infeasible", "optimal", "optimal"]
    assert chart["cost"] == [p.total_cost for p in direct]
    assert chart["peak"] == [p.peak_gpus for p in direct]
    [job] = design_jobs(priced_client, did, "curve")
    assert [est.CurvePoint.model_validate(p).total_cost for p in job.result["points"]] == chart["cost"]


def test_other_controls_are_another_job_and_equal_ones_the_same(priced_client: TestClient, designs) -> None:
    did = designs["hipaa"]
    url = f"/designs/{did}/tradeoffs/curve"
    priced_client.get(url, params={"factors": "1"}, headers=HX)
    priced_client.get(url, params={"factors": "0.5, 1"}, headers=HX)
    priced_client.get(url, params={"factors": "1; 0.5 , 1"}, headers=HX)  # the same two factors
    priced_client.get(url, params={"factors": "0.5, 1", "price_spot": "0"}, headers=HX)  # no change
    priced_client.get(url, params={"factors": "0.5, 1", "price_spot": "-20"}, headers=HX)
    jobs = design_jobs(priced_client, did, "curve")
    assert [j.payload["factors"] for j in jobs] == [[1.0], [0.5, 1.0], [0.5, 1.0]]
    assert jobs[2].payload["adjustments"]["price_factors"] == {"spot": 0.8}
    assert len({j.dedupe_key for j in jobs}) == 3


def test_a_failed_analysis_says_why_and_runs_again_when_asked(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    url = f"/designs/{did}/tradeoffs/curve"
    params = {"factors": "1"}
    pending = priced_client.get(url, params=params, headers=HX)
    [job] = design_jobs(priced_client, did)
    with Session(priced_client.app.state.engine) as s:  # a runner whose solve process died
        assert jobs_svc.claim(s, job.id, "host:1:test")
        assert jobs_svc.fail(s, job.id, "host:1:test", "The planner process stopped unexpectedly.")
    r = priced_client.get(_poll_url(pending.text), headers=HX)
    assert r.status_code == 200 and 'data-outcome="failed"' in r.text
    assert "The deadline curve could not be computed." in r.text and "process stopped unexpectedly" in r.text
    assert "hx-trigger" not in r.text
    retry = re.search(r'<a href="([^"]+)" hx-get="([^"]+)" hx-target="#curve-results"[^>]*>Try again</a>', r.text)
    assert retry and "job=" not in retry.group(2) and "job" not in retry.group(1)
    assert retry.group(1).startswith(f"/designs/{did}/tradeoffs?")
    # Polling the failed job again shows it again: nothing new is queued behind the user's back.
    priced_client.get(_poll_url(pending.text), headers=HX)
    assert len(design_jobs(priced_client, did)) == 1
    # Try again: a failed job is not reused, so the analysis runs anew.
    again = priced_client.get(htmllib.unescape(retry.group(2)), headers=HX)
    assert 'data-outcome="pending"' in again.text
    jobs = design_jobs(priced_client, did)
    assert [j.status for j in jobs] == ["failed", "queued"]
    assert run_jobs(priced_client) == [jobs[1].id]
    assert 'data-outcome="ok" data-points="1"' in priced_client.get(url, params=params, headers=HX).text


def test_cancel_stops_the_analysis_and_try_again_restarts_it(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    url = f"/designs/{did}/tradeoffs/sensitivity"
    pending = priced_client.get(url, headers=HX)
    assert 'data-outcome="pending"' in pending.text and 'id="sensitivity-job-cancel"' in pending.text
    [job] = design_jobs(priced_client, did, "sensitivity")
    cancel = re.search(r'<form method="post" action="([^"]+)" hx-post="\1" hx-swap="none"', pending.text).group(1)
    r = priced_client.post(cancel, data={"csrf_token": priced_client.headers["X-CSRF-Token"]}, headers=HX)
    assert r.status_code == 200
    assert run_jobs(priced_client) == []  # cancelled while queued: nothing runs
    r = priced_client.get(_poll_url(pending.text), headers=HX)
    assert 'data-outcome="cancelled"' in r.text and ">Try again</a>" in r.text
    assert "The ±20 % scenarios were cancelled before they finished." in r.text
    again = priced_client.get(url, headers=HX)
    assert 'data-outcome="pending"' in again.text
    assert [j.status for j in design_jobs(priced_client, did)] == ["cancelled", "queued"]
    assert job.id != design_jobs(priced_client, did)[1].id
    # Without JavaScript the cancel form posts and lands on the job's URL, which is the plan
    # job page's: for an analysis it leads back to the trade-offs page.
    landed = priced_client.get(f"/designs/{did}/jobs/{job.id}", follow_redirects=False)
    assert landed.status_code == 303 and landed.headers["location"] == f"/designs/{did}/tradeoffs"


def test_viewers_read_and_start_analyses_but_cannot_cancel(priced_settings, designs) -> None:
    did = designs["hipaa"]
    with signed_in_client(priced_settings, "vera@example.com", role="viewer") as viewer:
        r = viewer.get(f"/designs/{did}/tradeoffs/curve", params={"factors": "1"}, headers=HX)
        assert r.status_code == 200 and 'data-outcome="pending"' in r.text
        assert "-job-cancel" not in r.text and "/cancel" not in r.text
        assert run_jobs(viewer)
        r = viewer.get(f"/designs/{did}/tradeoffs/curve", params={"factors": "1"}, headers=HX)
        assert 'data-outcome="ok" data-points="1"' in r.text
        [job] = design_jobs(viewer, did)
        assert viewer.post(f"/designs/{did}/jobs/{job.id}/cancel", headers=HX).status_code == 403


def test_curve_has_six_points(priced_client: TestClient, designs) -> None:
    r = analysed(priced_client, f"/designs/{designs['research']}/tradeoffs/curve")
    assert r.status_code == 200
    assert 'data-outcome="ok" data-points="6"' in r.text
    assert len(re.findall(r'<tr(?: class="to-base")? data-status="optimal">', r.text)) == 6
    data = _chart(r.text)
    assert len(data["labels"]) == 6 and data["labels"][3] == "×1 · 30 d" and data["base_index"] == 3
    assert all(c is not None for c in data["cost"])
    assert "At the required deadlines the plan costs <strong>$9,995</strong>" in r.text
    assert "at most 5 s per solve" in r.text


def test_infeasible_points_are_gaps_with_their_explanation(priced_client: TestClient, designs) -> None:
    r = analysed(priced_client, f"/designs/{designs['research_one_region']}/tradeoffs/curve",
                 {"region_cap": "32", "demand_pct": "100"})
    data = _chart(r.text)
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
    r = priced_client.get(f"/designs/{did}/tradeoffs/curve", params={"factors": "0.01"}, headers=HX)
    assert 'data-field="factors"' in r.text and "between 0.05 and 10" in r.text
    r = priced_client.get(f"/designs/{did}/tradeoffs", params={"demand_pct": "0", "region_cap": "2.5"})
    assert r.status_code == 422
    assert re.search(r'id="c-demand_pct"[^>]*aria-invalid="true"', r.text)
    assert re.search(r'id="c-region_cap"[^>]*aria-invalid="true"', r.text)
    assert 'value="2.5"' in r.text  # the value is kept
    assert design_jobs(priced_client, did) == []  # nothing was queued


def test_without_javascript_the_page_refreshes_until_the_analyses_are_done(priced_client: TestClient,
                                                                          designs) -> None:
    did = designs["hipaa"]
    params = {"factors": "0.5, 1", "price_reserved": "-20", "sensitivity": "1"}
    r = priced_client.get(f"/designs/{did}/tradeoffs", params=params)
    assert r.status_code == 200
    curve, sens = design_jobs(priced_client, did, "curve"), design_jobs(priced_client, did, "sensitivity")
    assert len(curve) == len(sens) == 1
    refresh = re.search(r'<noscript><meta http-equiv="refresh" content="2; url=([^"]+)"></noscript>', r.text)
    assert refresh, "a pending page refreshes itself"
    target = htmllib.unescape(refresh.group(1))
    assert f"curve_job={curve[0].id}" in target and f"sensitivity_job={sens[0].id}" in target
    assert "sensitivity=1" in target and "price_reserved=-20" in target
    assert 'id="curve-job"' in r.text and 'id="sensitivity-job"' in r.text

    assert sorted(run_jobs(priced_client)) == [curve[0].id, sens[0].id]
    r = priced_client.get(target)
    assert r.status_code == 200 and 'http-equiv="refresh"' not in r.text
    assert 'data-points="2"' in r.text and "reserved prices −20 %" in r.text
    assert 'id="sensitivity-table"' in r.text and "Demand +20 %" in r.text
    assert len(design_jobs(priced_client, did)) == 2


def test_without_javascript_a_failed_job_is_shown_not_asked_again(priced_client: TestClient, designs) -> None:
    did = designs["research"]
    r = priced_client.get(f"/designs/{did}/tradeoffs", params={"factors": "1"})
    target = htmllib.unescape(re.search(r'content="2; url=([^"]+)"', r.text).group(1))
    [job] = design_jobs(priced_client, did)
    with Session(priced_client.app.state.engine) as s:
        assert jobs_svc.claim(s, job.id, "host:1:test")
        assert jobs_svc.fail(s, job.id, "host:1:test", "The solve did not finish in time.")
    r = priced_client.get(target)
    assert 'data-outcome="failed"' in r.text and "did not finish in time" in r.text
    assert 'http-equiv="refresh"' not in r.text and len(design_jobs(priced_client, did)) == 1


def test_sensitivity_scenarios(priced_client: TestClient, designs) -> None:
    r = analysed(priced_client, f"/designs/{designs['research']}/tradeoffs/sensitivity", {"spot_overhead": "30"})
    assert r.status_code == 200
    labels = re.findall(r'<tr>\s*<th scope="row">([^<]+)</th>', r.text)
    assert "Demand −20 %" in labels and "Spot interruptions cost 30 % extra work" in labels
    assert "(with your spot overhead and region cap)" in r.text


def test_the_scenarios_ignore_changes_they_do_not_apply(priced_client: TestClient, designs) -> None:
    """Demand, utilization and prices apply to the curve only: the scenarios' job is shared."""
    did = designs["research"]
    url = f"/designs/{did}/tradeoffs/sensitivity"
    priced_client.get(url, headers=HX)
    r = priced_client.get(url, params={"demand_pct": "150", "price_spot": "10"}, headers=HX)
    assert len(design_jobs(priced_client, did, "sensitivity")) == 1
    priced_client.get(url, params={"region_cap": "64"}, headers=HX)
    assert len(design_jobs(priced_client, did, "sensitivity")) == 2
    assert 'data-outcome="pending"' in r.text


def test_unknown_designs_get_a_friendly_404(priced_client: TestClient) -> None:
    for path in ("/designs/999/tradeoffs", "/designs/x/tradeoffs/curve", "/designs/999/tradeoffs/sensitivity"):
        r = priced_client.get(path)
        assert r.status_code == 404 and "Design not found" in r.text


def test_jobs_of_other_designs_are_not_shown(priced_client: TestClient, designs) -> None:
    """A job id of another analysis (or design) in the URL is ignored: this analysis is asked for."""
    a, b = designs["research"], designs["hipaa"]
    other = priced_client.get(f"/designs/{b}/tradeoffs/curve", params={"factors": "1"}, headers=HX)
    other_job = design_jobs(priced_client, b)[0].id
    r = priced_client.get(f"/designs/{a}/tradeoffs/curve", params={"factors": "1", "job": str(other_job)},
                          headers=HX)
    [mine] = design_jobs(priced_client, a)
    assert mine.id != other_job and f'data-job="{mine.id}"' in r.text and 'data-outcome="pending"' in other.text


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
    full = analysed(priced_client, url, {"factors": "1"})
    half = analysed(priced_client, url, {"factors": "1", "utilization_pct": "50"})
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
    r = analysed(priced_client, f"/designs/{did}/tradeoffs/curve", {
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
    r = analysed(priced_client, f"/designs/{did}/tradeoffs/curve", {"utilization_pct": "100 %", "factors": "1"})
    assert 'data-outcome="ok"' in r.text and "GPU utilization" not in r.text
