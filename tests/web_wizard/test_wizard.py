"""The requirement wizard through the TestClient: form <-> spec, validation by field path,
rows, the live estimate, saving, 404s."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.models import Design
from app.requirements.examples import list_examples, load_example
from app.requirements.spec import WorkloadSpec
from app.web import wizard as w
from tests.web_wizard.conftest import stored_spec
from tests.web_wizard.forms import example_values, input_value, issues, items, post


def _designs(settings) -> list[Design]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = list(s.exec(select(Design)).all())
    engine.dispose()
    return rows


# --------------------------------------------------------------------------- form <-> spec


@pytest.mark.parametrize("example", [e.name for e in list_examples()])
def test_every_example_survives_the_form(example: str) -> None:
    """spec -> form fields -> posted form -> spec is the identity (nothing the form does not
    show is lost: data-quality rules and stage options travel in _carry)."""
    from starlette.datastructures import FormData

    values, carry = example_values(example)
    form = FormData(items(values, carry))
    spec, problems = w.validate(w.data_from_values(w.values_from_form(form), w.carry_from_form(form)))
    assert problems == []
    assert spec is not None and spec.model_dump() == load_example(example).model_dump()


def test_numbers_accept_suffixes_and_separators() -> None:
    values, carry = example_values()
    values["performance.training[0].model_params"] = "13B"
    values["performance.training[0].training_tokens"] = "1.5T"
    values["performance.training[1].gpu_hours"] = "1,500"
    values["cost.total_budget"] = "90_000"
    spec, problems = w.validate(w.data_from_values(values, carry))
    assert problems == [] and spec is not None
    run = spec.performance.training[0]
    assert (run.model_params, run.training_tokens) == (13e9, 1.5e12)
    assert spec.performance.training[1].gpu_hours == 1500 and spec.cost.total_budget == 90000
    assert w.values_from_data(spec.model_dump(mode="json"))[0]["performance.training[0].training_tokens"] == "1.5T"


# --------------------------------------------------------------------------- pages


def test_new_wizard_has_the_planning_sections_with_help(priced_client: TestClient) -> None:
    r = priced_client.get("/designs/new/wizard")
    assert r.status_code == 200
    html = r.text
    for title in ("Performance", "Scale", "Lifecycle", "Cost", "Security &amp; compliance", "Data &amp; pipeline"):
        assert re.search(rf'class="wz-section-title"><span class="step">\d</span> {title}', html), title
    # Every text input and select has a label and its help text; ids are unique.
    ids = re.findall(r'<(?:input type="text"|select|textarea) id="(f-[^"]+)"', html)
    assert len(ids) > 30 and len(ids) == len(set(ids))
    for fid in ids:
        assert f'<label for="{fid}">' in html, fid
    assert 'aria-describedby="h-performance-training-0-deadline_days"' in html
    assert "Shorter deadlines need more GPUs at once" in html
    assert 'list="gpu-models"' in html and '<option value="H100">' in html
    assert 'hx-post="/designs/wizard/validate"' in html and 'hx-post="/designs/wizard/estimate"' in html
    # A blank start: one training run to fill in, next month as the start.
    assert input_value(html, "performance.training[0].name") == "train"
    assert input_value(html, "name") == ""


def test_new_wizard_from_an_example(priced_client: TestClient) -> None:
    html = priced_client.get("/designs/new/wizard?example=research-burst-deadline").text
    assert input_value(html, "name") == "7B research LM pre-training sprint"
    assert input_value(html, "performance.training[0].model_params") == "7B"
    assert input_value(html, "performance.training[0].training_tokens") == "300B"
    assert 'name="_carry" value="{&#34;quality&#34;' in html  # the data-quality rules travel along
    # Unknown examples fall back to the blank start.
    assert input_value(priced_client.get("/designs/new/wizard?example=nope").text, "name") == ""


# --------------------------------------------------------------------------- validation


def test_validate_maps_each_issue_to_its_field(priced_client: TestClient) -> None:
    values, carry = example_values()
    values["lifecycle.horizon_months"] = "99"
    values["performance.training[0].deadline_days"] = "soon"
    values["performance.training[1].name"] = "Ablations!"
    values["compliance.data_classification"] = "phi"
    r = post(priced_client, "/designs/wizard/validate", items(values, carry), htmx=True)
    assert r.status_code == 200
    found = issues(r.text)
    assert found["lifecycle.horizon_months"] == "Input should be less than or equal to 60"
    assert "valid number" in found["performance.training[0].deadline_days"]
    assert "lowercase identifier" in found["performance.training[1].name"]
    assert found["compliance.frameworks"] == "data_classification 'phi' requires the HIPAA framework"
    # Each item names the element ids of its field and error slot.
    assert 'data-id="lifecycle-horizon_months"' in r.text and 'href="#f-lifecycle-horizon_months"' in r.text


def test_validate_sends_row_group_and_cross_section_issues_to_containers(priced_client: TestClient) -> None:
    values, carry = example_values()
    for key in [k for k in values if k.startswith("performance.training[")]:
        del values[key]
    values["scale.seasonality.mode"] = "peak"
    values["scale.scale_down[0].factor"] = "0.5"
    values["architecture.pipeline.stages[0].depends_on"] = "nowhere"
    found = issues(post(priced_client, "/designs/wizard/validate", items(values, carry)).text)
    assert "at least one training run" in found["performance.training"]  # the group
    assert found["scale.seasonality.peak_months"].startswith("give multipliers or peak_months")
    assert found["scale.scale_down[0].from_month"] == "Field required"  # a new row reports what it lacks
    assert found["architecture.pipeline.stages[0].depends_on"] == "unknown stage 'nowhere'"

    # Rules spanning sections are checked once the sections themselves are valid.
    values, carry = example_values()
    values["compliance.private_only"] = "true"
    found = issues(post(priced_client, "/designs/wizard/validate", items(values, carry)).text)
    assert found == {"cost.capex_allowed": "compliance.private_only needs own servers: set capex_allowed: true"}


def test_validate_a_valid_form(priced_client: TestClient) -> None:
    values, carry = example_values("vision-growing-inference")
    r = post(priced_client, "/designs/wizard/validate", items(values, carry))
    assert r.status_code == 200 and issues(r.text) == {} and "No problems found." in r.text


def test_cross_site_posts_are_refused(priced_client: TestClient) -> None:
    values, carry = example_values()
    for url in ("/designs/wizard/validate", "/designs/wizard/estimate", "/designs/new/wizard"):
        r = priced_client.post(url, data={"name": "x"}, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403, url


# --------------------------------------------------------------------------- rows


def test_add_and_remove_rows_with_htmx(priced_client: TestClient) -> None:
    values, carry = example_values()
    r = post(priced_client, "/designs/wizard/rows", items(values, carry, _op="add:performance.training"), htmx=True)
    assert r.status_code == 200 and r.text.lstrip().startswith('<div class="wz-group" id="f-performance-training"')
    assert r.text.count('class="wz-row"') == 3
    assert input_value(r.text, "performance.training[2].name") == "train-3"
    assert re.search(r'id="f-performance-training-2-name"[^>]*autofocus', r.text)  # focus goes to the new row
    assert input_value(r.text, "performance.training[0].model_params") == "7B"  # typed values are kept

    r = post(priced_client, "/designs/wizard/rows", items(values, carry, _op="remove:performance.training:0"), htmx=True)
    assert r.text.count('class="wz-row"') == 1
    assert input_value(r.text, "performance.training[0].name") == "ablations"  # renumbered
    assert re.search(r'id="add-f-performance-training"[^>]*autofocus', r.text)


def test_rows_without_javascript_render_the_whole_page(priced_client: TestClient, priced_settings) -> None:
    """The row buttons post the form to the save URL with _op: the page comes back with the
    change, and nothing is saved."""
    values, carry = example_values()
    r = post(priced_client, "/designs/new/wizard", items(values, carry, _op="add:architecture.storage"),
             follow_redirects=False)
    assert r.status_code == 200 and "<html" in r.text
    assert input_value(r.text, "architecture.storage[3].name") == "bucket-4"
    assert re.search(r'id="f-architecture-storage-3-name"[^>]*autofocus', r.text)
    assert 'action="/designs/new/wizard"' in r.text
    assert _designs(priced_settings) == []
    # The first submit button of the form saves (Enter in a field), not a row button.
    first = re.search(r'<form id="wizard-form".*?<button ([^>]*)>', r.text, flags=re.DOTALL).group(1)
    assert 'class="wz-default-submit"' in first and "_op" not in first
    assert "formaction" not in r.text


# --------------------------------------------------------------------------- estimate


def _money(html: str, element_id: str) -> float:
    m = re.search(rf'id="{element_id}">\$([\d,]+)<', html)
    assert m, f"no #{element_id} in {html[:400]}"
    return float(m.group(1).replace(",", ""))


def test_estimate_panel_brackets_the_optimal_plan(priced_client: TestClient, bundled) -> None:
    from app.planner.plan import make_plan

    values, carry = example_values()
    r = post(priced_client, "/designs/wizard/estimate", items(values, carry), htmx=True)
    assert r.status_code == 200
    lower, upper = _money(r.text, "est-lower"), _money(r.text, "est-upper")
    plan = make_plan(load_example("research-burst-deadline"), bundled, baselines=False)
    assert lower - 1 <= plan.total_cost <= upper + 1
    assert lower < upper
    assert "LP relaxation of the planner" in r.text and "all on-demand at the cheapest eligible offering" in r.text
    # Demand totals: 8,847 H100-hours of pre-training + 1,500 of ablations.
    assert re.search(r"<th scope=\"row\">H100</th><td class=\"num\" id=\"est-gpu-hours-1\">10,347</td>", r.text)
    assert "total budget $90,000" in r.text  # the range bar shows the budget


def test_estimate_waits_for_a_valid_form_and_names_catalog_problems(priced_client: TestClient) -> None:
    values, carry = example_values()
    values["lifecycle.horizon_months"] = "0"
    r = post(priced_client, "/designs/wizard/estimate", items(values, carry))
    assert "appears once the requirements are valid (1 problem left)" in r.text
    values["lifecycle.horizon_months"] = "3"
    values["performance.training[0].reference_gpu"] = "H999"
    r = post(priced_client, "/designs/wizard/estimate", items(values, carry))
    assert "cannot be sized with the price catalog" in r.text
    assert 'href="#f-performance-training-0-reference_gpu"' in r.text and "H999" in r.text


# --------------------------------------------------------------------------- saving


def test_save_creates_a_design_with_the_spec(priced_client: TestClient, priced_settings) -> None:
    values, carry = example_values()
    values["name"] = "Sprint, shorter deadline"
    values["performance.training[0].deadline_days"] = "10"
    values["compliance.frameworks"] = ["SOC2"]
    r = post(priced_client, "/designs/new/wizard", items(values, carry), follow_redirects=False)
    assert r.status_code == 303
    design_id = int(r.headers["location"].rsplit("/", 1)[1])
    spec = stored_spec(priced_settings, design_id)
    expected = load_example("research-burst-deadline").model_dump(mode="json")
    expected["name"] = "Sprint, shorter deadline"
    expected["performance"]["training"][0]["deadline_days"] = 10
    expected["compliance"]["frameworks"] = ["SOC2"]
    assert spec == WorkloadSpec.model_validate(expected)
    assert spec.architecture.data_sources[0].quality is not None  # carried through the form
    assert [d.name for d in _designs(priced_settings)] == ["Sprint, shorter deadline"]
    assert priced_client.get(r.headers["location"]).status_code == 200


def test_save_with_errors_keeps_the_values_and_marks_the_fields(priced_client: TestClient, priced_settings) -> None:
    values, carry = example_values()
    values["lifecycle.horizon_months"] = "99"
    values["performance.training[0].deadline_days"] = "-3"
    r = post(priced_client, "/designs/new/wizard", items(values, carry), follow_redirects=False)
    assert r.status_code == 422
    html = r.text
    assert input_value(html, "lifecycle.horizon_months") == "99"
    assert input_value(html, "performance.training[0].deadline_days") == "-3"
    assert input_value(html, "performance.training[0].model_params") == "7B"
    assert re.search(r'id="f-lifecycle-horizon_months"[^>]*aria-invalid="true"[^>]*'
                     r'aria-describedby="h-lifecycle-horizon_months e-lifecycle-horizon_months"', html)
    assert '<small id="e-lifecycle-horizon_months" class="wz-error">Input should be less than or equal to 60</small>' in html
    assert 'data-submitted="true"' in html and "2 problems to fix before saving" in html
    assert _designs(priced_settings) == []


def test_edit_an_existing_design(priced_client: TestClient, priced_settings) -> None:
    r = priced_client.post("/designs/from-example", data={"example": "vision-growing-inference"},
                           follow_redirects=False)
    design_id = int(r.headers["location"].rsplit("/", 1)[1])
    page = priced_client.get(f"/designs/{design_id}/wizard")
    assert page.status_code == 200
    assert f'action="/designs/{design_id}/wizard"' in page.text and "Save requirements" in page.text
    assert input_value(page.text, "performance.inference[0].requests_per_second") == "120"

    values, carry = example_values("vision-growing-inference")
    values["scale.inference_growth_pct_per_year"] = "35"
    values["scale.seasonality.mode"] = "none"
    r = post(priced_client, f"/designs/{design_id}/wizard", items(values, carry), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/designs/{design_id}?saved=1"
    spec = stored_spec(priced_settings, design_id)
    assert spec.scale.inference_growth_pct_per_year == 35 and spec.scale.seasonality is None
    assert spec.architecture.serving == load_example("vision-growing-inference").architecture.serving


def test_a_stored_spec_that_no_longer_validates_opens_with_its_errors(priced_client: TestClient,
                                                                       priced_settings) -> None:
    r = priced_client.post("/designs/from-example", data={"example": "research-burst-deadline"},
                           follow_redirects=False)
    design_id = int(r.headers["location"].rsplit("/", 1)[1])
    engine = make_engine(priced_settings.database_url)
    with Session(engine) as s:
        design = s.get(Design, design_id)
        data = dict(design.spec)
        data["lifecycle"] = {**data["lifecycle"], "horizon_months": 400}
        design.spec = data
        s.add(design)
        s.commit()
    engine.dispose()
    html = priced_client.get(f"/designs/{design_id}/wizard").text
    assert input_value(html, "lifecycle.horizon_months") == "400"
    assert re.search(r'id="f-lifecycle-horizon_months"[^>]*aria-invalid="true"', html)


@pytest.mark.parametrize("method,path", [
    ("get", "/designs/999/wizard"), ("get", "/designs/abc/wizard"), ("post", "/designs/999/wizard"),
])
def test_unknown_designs_get_a_friendly_404(priced_client: TestClient, method: str, path: str) -> None:
    r = getattr(priced_client, method)(path)
    assert r.status_code == 404
    assert "Design not found" in r.text and 'href="/designs"' in r.text
