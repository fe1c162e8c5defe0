"""``/designs`` pages through the TestClient: create, edit, rename, duplicate, delete, plan
(a queued job, run here with ``run_one()``), its progress panel, cancel, export, diagram."""

from __future__ import annotations

import csv
import html as htmllib
import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.models import Design
from app.models import Plan as PlanRow
from app.requirements.examples import example_text
from app.web.designs import SCHEDULE_CSV_COLUMNS
from tests.signin import signed_in_client

HX = {"HX-Request": "true"}
BAD_YAML_PATH = "lifecycle.horizon_months"


@pytest.fixture
def priced_client(priced_settings):
    with signed_in_client(priced_settings) as c:
        yield c


def _new(client: TestClient, example: str = "research-burst-deadline", **data) -> int:
    r = client.post("/designs/from-example", data={"example": example, **data}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def _rows(settings, model, **where):
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = s.exec(select(model).filter_by(**where)).all()
    engine.dispose()
    return rows


def _textarea(html: str, id_: str) -> str:
    m = re.search(rf'<textarea id="{id_}"[^>]*>(.*?)</textarea>', html, flags=re.DOTALL)
    assert m, f"no textarea #{id_}"
    return htmllib.unescape(m.group(1))


def _run(client: TestClient) -> int | None:
    """Run the next queued job synchronously (the tests' app has no runner threads)."""
    return client.app.state.job_runner.run_one()


def _plan(client: TestClient, did: int) -> str:
    """Plan without JavaScript: POST, the job page, run the job, follow to the plan's URL."""
    r = client.post(f"/designs/{did}/plan", follow_redirects=False)
    assert r.status_code == 303 and re.fullmatch(rf"/designs/{did}/jobs/\d+", r.headers["location"]), r.text
    assert _run(client) is not None
    r = client.get(r.headers["location"], follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def _bad_yaml() -> str:
    return example_text("research-burst-deadline").replace("horizon_months: 3", "horizon_months: 99")


def test_empty_list_offers_examples_and_yaml(client: TestClient) -> None:
    r = client.get("/designs")
    assert r.status_code == 200
    html = r.text
    assert "<h1>Designs</h1>" in html and "No designs yet." in html
    assert 'aria-current="page">Designs<' in html
    for field in ("new-example", "new-example-name", "new-yaml-name", "new-yaml", "new-yaml-file"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html  # labels tied to inputs
    assert '<option value="research-burst-deadline"' in html and "7B research LM pre-training sprint" in html
    assert "A university lab pre-trains a 7B-parameter language model" in html  # the summaries
    assert 'enctype="multipart/form-data"' in html
    assert "<script>" not in html


def test_create_from_example_and_see_sections(client: TestClient, settings) -> None:
    did = _new(client)
    r = client.get(f"/designs/{did}")
    assert r.status_code == 200
    html = r.text
    assert "<h1>7B research LM pre-training sprint</h1>" in html
    for section in ("Performance", "Scale", "Lifecycle", "Cost", "Compliance", "Architecture"):
        assert f">{section}</h3>" in html
    assert "<code>pretrain-7b</code>" in html and "7 billion params × 300 billion tokens" in html
    assert "2027-01 – 2027-03 (3 months)" in html and "$90,000" in html
    yaml_text = _textarea(html, "spec-yaml")
    assert "name: 7B research LM pre-training sprint" in yaml_text and "deadline_days: 14" in yaml_text
    assert f'hx-post="/designs/{did}/spec"' in html and 'hx-indicator="#plan-solving"' in html
    assert ">Starting…<" in html and 'id="job-panel"' not in html
    listing = client.get("/designs").text
    assert f'href="/designs/{did}"' in listing and "not planned" in listing
    assert _rows(settings, Design, id=did)[0].name == "7B research LM pre-training sprint"


def test_create_from_example_validates(client: TestClient) -> None:
    r = client.post("/designs/from-example", data={"example": "nope"})
    assert r.status_code == 422 and "There is no example “nope”." in r.text
    r = client.post("/designs/from-example", data={"example": "research-burst-deadline", "name": "x" * 201})
    assert r.status_code == 422 and "Name is too long (201 characters; at most 200)." in r.text
    assert 'value="research-burst-deadline" selected' in r.text  # the choice is kept
    did = _new(client, name="  Sprint A ")
    assert "<h1>Sprint A</h1>" in client.get(f"/designs/{did}").text


def test_create_from_yaml_text_and_file(client: TestClient) -> None:
    text = example_text("llm-finetune-hipaa")
    r = client.post("/designs/from-yaml", data={"spec_yaml": text, "name": "From text"}, follow_redirects=False)
    assert r.status_code == 303
    assert "<h1>From text</h1>" in client.get(r.headers["location"]).text
    r = client.post("/designs/from-yaml", data={"spec_yaml": ""},
                    files={"spec_file": ("spec.yaml", text.encode(), "application/x-yaml")}, follow_redirects=False)
    assert r.status_code == 303
    assert "<h1>Clinical note summarizer (HIPAA)</h1>" in client.get(r.headers["location"]).text


def test_bad_yaml_shows_field_path_and_keeps_the_text(client: TestClient, settings) -> None:
    bad = _bad_yaml()
    r = client.post("/designs/from-yaml", data={"spec_yaml": bad, "name": "Keep me"})
    assert r.status_code == 422
    assert f'<code class="issue-path">{BAD_YAML_PATH}</code>' in r.text
    assert "less than or equal to 60" in r.text
    assert _textarea(r.text, "new-yaml") == bad and 'value="Keep me"' in r.text
    assert 'aria-invalid="true" aria-describedby="yaml-errors"' in r.text
    assert _rows(settings, Design) == []

    r = client.post("/designs/from-yaml", data={"spec_yaml": "a: [1, 2"})
    assert r.status_code == 422 and "YAML syntax error at line 1" in r.text
    r = client.post("/designs/from-yaml", files={"spec_file": ("x.yaml", b"\xff\xfe\x00bad", "application/x-yaml")})
    assert r.status_code == 422 and "is not UTF-8 text" in r.text
    big = "# " + "x" * 600_000
    r = client.post("/designs/from-yaml", files={"spec_file": ("big.yaml", big.encode(), "application/x-yaml")})
    assert r.status_code == 422 and "larger than 512 kB" in r.text
    r = client.post("/designs/from-yaml", data={"spec_yaml": big[:520_000]})
    assert r.status_code == 422 and "at most 512 kB is accepted" in r.text


def test_save_spec_with_htmx(client: TestClient, settings) -> None:
    did = _new(client)
    before = _rows(settings, Design, id=did)[0].spec
    bad = _bad_yaml()
    r = client.post(f"/designs/{did}/spec", data={"spec_yaml": bad}, headers=HX)
    assert r.status_code == 200  # htmx swaps 2xx only
    fragment = r.text
    assert fragment.lstrip().startswith('<section id="spec-section"') and "<html" not in fragment
    assert f'<code class="issue-path">{BAD_YAML_PATH}</code>' in fragment
    assert _textarea(fragment, "spec-yaml") == bad  # nothing is lost
    assert "Nothing was saved" in fragment
    assert _rows(settings, Design, id=did)[0].spec == before

    good = bad.replace("horizon_months: 99", "horizon_months: 6")
    r = client.post(f"/designs/{did}/spec", data={"spec_yaml": good}, headers=HX)
    assert r.status_code == 200 and "Requirements saved." in r.text
    assert "2027-01 – 2027-06 (6 months)" in r.text
    assert _rows(settings, Design, id=did)[0].spec["lifecycle"]["horizon_months"] == 6

    # Without htmx: redirect after POST, or the whole page with the errors.
    r = client.post(f"/designs/{did}/spec", data={"spec_yaml": good}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/designs/{did}?saved=1"
    r = client.post(f"/designs/{did}/spec", data={"spec_yaml": bad})
    assert r.status_code == 422 and "<html" in r.text and BAD_YAML_PATH in r.text


def test_rename_and_duplicate(client: TestClient, settings) -> None:
    did = _new(client)
    r = client.post(f"/designs/{did}/rename", data={"name": "Sprint B"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/designs/{did}"
    assert _rows(settings, Design, id=did)[0].name == "Sprint B"
    r = client.post(f"/designs/{did}/rename", data={"name": "  "})
    assert r.status_code == 422 and "Name is required." in r.text and 'aria-invalid="true"' in r.text
    assert _rows(settings, Design, id=did)[0].name == "Sprint B"

    r = client.post(f"/designs/{did}/duplicate", follow_redirects=False)
    assert r.status_code == 303
    new_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert new_id != did
    copy = _rows(settings, Design, id=new_id)[0]
    assert copy.name == "Sprint B (variant)" and copy.spec == _rows(settings, Design, id=did)[0].spec
    r = client.post(f"/designs/{did}/duplicate", data={"name": "x" * 300})
    assert r.status_code == 422 and "too long" in r.text


def test_delete_needs_confirmation(client: TestClient, settings) -> None:
    did = _new(client)
    keep = _new(client, "llm-finetune-hipaa")
    listing = client.get("/designs").text
    assert f'href="/designs/{did}/delete"' in listing  # a link to the confirmation page, not a JS confirm
    r = client.get(f"/designs/{did}/delete")
    assert r.status_code == 200
    assert "Delete “7B research LM pre-training sprint”?" in r.text
    assert f'<form method="post" action="/designs/{did}/delete"' in r.text
    assert _rows(settings, Design, id=did)  # nothing deleted by looking
    r = client.post(f"/designs/{did}/delete", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/designs?deleted=1"
    assert "The design and its plans were deleted." in client.get("/designs?deleted=1").text
    assert client.get(f"/designs/{did}").status_code == 404
    assert client.post(f"/designs/{did}/delete").status_code == 404
    assert _rows(settings, Design, id=keep)


def test_cross_site_posts_are_refused(client: TestClient, settings) -> None:
    did = _new(client)
    r = client.post(f"/designs/{did}/delete", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = client.post(f"/designs/{did}/delete", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert _rows(settings, Design, id=did)
    r = client.post(f"/designs/{did}/rename", data={"name": "ok"}, headers={"Origin": "http://testserver"},
                    follow_redirects=False)
    assert r.status_code == 303
    # Behind a proxy that rewrites Host, the browser's Sec-Fetch-Site decides.
    r = client.post(f"/designs/{did}/rename", data={"name": "ok 2"}, follow_redirects=False,
                    headers={"Origin": "https://archplan.example", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303


def test_plan_stores_a_row_and_renders_the_plan_page(priced_client: TestClient, priced_settings, bundled) -> None:
    did = _new(priced_client, "llm-finetune-hipaa")
    url = _plan(priced_client, did)
    assert re.fullmatch(rf"/designs/{did}/plans/\d+", url)
    rows = _rows(priced_settings, PlanRow, design_id=did)
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "optimal" and row.snapshot_id == bundled.snapshot_id and row.total_cost > 0
    assert row.spec["name"] == "Clinical note summarizer (HIPAA)" and row.result["schedule"]

    r = priced_client.get(url)
    assert r.status_code == 200
    html = r.text
    total = f"${row.total_cost:,.0f}"
    assert f'<dd class="value" id="fig-total">{total}</dd>' in html
    for fig in ("fig-npv", "fig-run-rate", "fig-savings-od", "fig-savings-best", "fig-gap"):
        assert f'id="{fig}"' in html
    assert f"${row.result['savings']['all_on_demand']['usd']:,.0f}" in html
    assert ">optimal<" in html and bundled.snapshot_id in html
    assert 'id="schedule-table" data-sortable' in html
    assert html.count("<tr>") > len(row.result["schedule"])
    for canvas in ("chart-capacity", "chart-cumulative", "chart-categories"):
        assert f'<canvas id="{canvas}"' in html
    data = json.loads(htmllib.unescape(re.search(
        r'<script type="application/json" id="plan-chart-data">(.*?)</script>', html, re.DOTALL).group(1)))
    assert data["months"] == row.result["months"]
    assert {s["key"] for s in data["capacity"]} == set(row.result["gpus_by_kind_month"])
    assert data["cumulative"]["all_on_demand"][-1] == pytest.approx(row.result["baselines"]["all_on_demand"], abs=1)
    assert "<script>" not in html and '<script src="/static/js/plan-charts.js" defer>' in html
    assert "Baselines" in html and "All 1-year reserved" in html and "Assumptions" in html
    assert "/catalog?snapshot=" in html  # the snapshot is in the database

    listing = priced_client.get("/designs").text
    assert f'href="{url}"' in listing and total in listing
    assert f'href="{url}">Plan {row.id}</a>' in priced_client.get(f"/designs/{did}").text


def test_schedule_csv(priced_client: TestClient, priced_settings) -> None:
    did = _new(priced_client, "llm-finetune-hipaa")
    url = _plan(priced_client, did)
    r = priced_client.get(url + "/schedule.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    pid = url.rsplit("/", 1)[1]
    assert r.headers["content-disposition"] == f'attachment; filename="design-{did}-plan-{pid}-schedule.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == SCHEDULE_CSV_COLUMNS
    assert rows[0][:6] == ["purchase_month", "in_service_month", "kind", "provider", "region", "item"]
    schedule = _rows(priced_settings, PlanRow, design_id=did)[0].result["schedule"]
    assert len(rows) == len(schedule) + 1
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["purchase_month"] == schedule[0]["purchase_month"]
    assert int(first["quantity"]) == schedule[0]["quantity"]
    assert float(first["total_usd"]) == pytest.approx(schedule[0]["total_usd"])


def test_infeasible_plan_shows_the_explanation(priced_client: TestClient) -> None:
    text = example_text("research-burst-deadline").replace("total_budget: 90000", "total_budget: 1000")
    r = priced_client.post("/designs/from-yaml", data={"spec_yaml": text}, follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    url = _plan(priced_client, did)  # an infeasible plan is saved and shown
    html = priced_client.get(url).text
    assert "No plan meets these requirements" in html and ">infeasible<" in html
    assert "The requirements cannot all be met:" in html and "raise the total budget" in html
    assert "Relax the requirements" in html
    assert 'id="fig-total"' not in html and "plan-charts.js" not in html
    assert "/bundles/" not in html and "mermaid" not in html and "Nothing to export" in html
    assert priced_client.get(url + "/schedule.csv").text.strip() == ",".join(SCHEDULE_CSV_COLUMNS)
    r = priced_client.get(url + "/bundles/all.zip")
    assert r.status_code == 409 and "Nothing to export" in r.text and "This plan is infeasible" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_requirements_the_catalog_cannot_serve_are_explained(priced_client: TestClient, priced_settings) -> None:
    text = example_text("research-burst-deadline").replace("min_gpu_memory_gb: 80", "min_gpu_memory_gb: 4000")
    r = priced_client.post("/designs/from-yaml", data={"spec_yaml": text}, follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    r = priced_client.post(f"/designs/{did}/plan", headers=HX)
    assert r.status_code == 200 and 'id="job-panel"' in r.text
    status_url = htmllib.unescape(re.search(r'hx-get="([^"]+)"', r.text).group(1)).split("?")[0]
    assert _run(priced_client) is not None
    r = priced_client.get(status_url, headers=HX)
    assert r.status_code == 200 and "<html" not in r.text and 'role="alert"' in r.text
    assert "Planning failed." in r.text and "cannot be planned with the price catalog" in r.text
    assert "performance.training[0]" in r.text and "hx-trigger" not in r.text  # the polling stops
    page = priced_client.get(status_url.removesuffix("/status"))  # without JavaScript
    assert page.status_code == 200 and "<h1>" in page.text and "min_gpu_memory_gb 4000" in page.text
    assert 'http-equiv="refresh"' not in page.text and "Traceback" not in page.text
    assert _rows(priced_settings, PlanRow, design_id=did) == []


def test_plan_of_an_invalid_stored_spec_is_refused(client: TestClient, settings) -> None:
    did = _new(client)
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        d = s.get(Design, did)
        d.spec = {**d.spec, "lifecycle": {"start_month": "2027-01", "horizon_months": 99}}
        s.add(d)
        s.commit()
    engine.dispose()
    page = client.get(f"/designs/{did}")
    assert page.status_code == 200 and "no longer match the schema" in page.text and BAD_YAML_PATH in page.text
    r = client.post(f"/designs/{did}/plan", headers=HX)
    assert r.status_code == 200 and "fix them and save before planning" in r.text and "<html" not in r.text


@pytest.mark.parametrize("path", [
    "/designs/999", "/designs/abc", "/designs/999/delete", "/designs/1/plans/999", "/designs/1/plans/x",
    "/designs/1/plans/999/schedule.csv", "/designs/99999999999999999999", "/designs/1/plans/999/bundles/all.zip",
    "/designs/1/jobs/999", "/designs/1/jobs/999/status",
])
def test_unknown_ids_get_a_friendly_404(client: TestClient, path: str) -> None:
    _new(client)
    r = client.get(path)
    assert r.status_code == 404
    assert "not found</h1>" in r.text and 'href="/designs"' in r.text


def test_a_plan_is_only_reachable_through_its_design(priced_client: TestClient) -> None:
    a = _new(priced_client)
    b = _new(priced_client)
    url = _plan(priced_client, a)
    pid = url.rsplit("/", 1)[1]
    assert priced_client.get(f"/designs/{b}/plans/{pid}").status_code == 404
    assert priced_client.get(f"/designs/{b}/plans/{pid}/schedule.csv").status_code == 404
    assert priced_client.get(f"/designs/{b}/plans/{pid}/bundles/all.zip").status_code == 404
    job = priced_client.post(f"/designs/{a}/plan", follow_redirects=False).headers["location"]
    jid = job.rsplit("/", 1)[1]
    assert priced_client.get(f"/designs/{a}/jobs/{jid}").status_code == 200
    for path in (f"/designs/{b}/jobs/{jid}", f"/designs/{b}/jobs/{jid}/status", f"/designs/{a}/jobs/999",
                 f"/designs/{a}/jobs/x"):
        r = priced_client.get(path)
        assert r.status_code == 404 and "not found</h1>" in r.text
    assert priced_client.post(f"/designs/{b}/jobs/{jid}/cancel").status_code == 404
    for path in (f"/designs/999/{p}" for p in ("plan", "rename", "duplicate", "spec")):
        assert priced_client.post(path, data={"name": "x", "spec_yaml": "x"}).status_code == 404




def test_plan_page_derives_the_stored_plan_once_and_never_shows_a_deleted_one(priced_client: TestClient,
                                                                             priced_settings) -> None:
    did = _new(priced_client)
    url = _plan(priced_client, did)
    pid = int(url.rsplit("/", 1)[1])
    views = priced_client.app.state.plan_views
    first = priced_client.get(url)
    hits = views.hits
    again = priced_client.get(url)
    assert first.status_code == again.status_code == 200 and views.hits == hits + 1  # kept, not rebuilt
    same_parts = [re.sub(r'name="csrf_token" value="[^"]+"', "", r.text) for r in (first, again)]
    assert same_parts[0] == same_parts[1]
    engine = make_engine(priced_settings.database_url)
    with Session(engine) as s:  # deleted behind the page's back: its kept view is never a way in
        s.delete(s.get(PlanRow, pid))
        s.commit()
    engine.dispose()
    assert priced_client.get(url).status_code == 404
    text = example_text("research-burst-deadline").replace("total_budget: 90000", "total_budget: 1000")
    r = priced_client.post(f"/designs/{did}/spec", data={"spec_yaml": text}, follow_redirects=False)
    assert r.status_code in (200, 303), r.text[:300]
    new_url = _plan(priced_client, did)  # SQLite gives the new plan the deleted one's id
    assert new_url == url
    html = priced_client.get(new_url).text
    assert "No plan meets these requirements" in html  # the new plan, not the kept view of the old
