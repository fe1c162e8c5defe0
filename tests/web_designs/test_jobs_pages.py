"""Planning through jobs in the pages (TestClient; queued jobs run with ``run_one()``): the
progress panel and its polling, the job page without JavaScript, cancel, the export zips and
the architecture diagram on the plan page."""

from __future__ import annotations

import html as htmllib
import io
import json
import re
import threading
import time
import zipfile

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.bundles.context import bundle_context
from app.bundles.package import bundle_names, render_all, to_zip
from app.jobs import service as jobs
from app.models import Job
from app.models import Plan as PlanRow
from app.planner.plan import Plan
from app.requirements.spec import WorkloadSpec
from app.web.architecture import mermaid_text
from tests.conftest import LiveServer, make_settings
from tests.signin import make_user, sign_in, signed_in_client
from tests.signin import with_session as _with_session
from tests.web_designs.test_pages import HX, _new, _plan, _rows, _run


@pytest.fixture
def priced_client(priced_settings):
    with signed_in_client(priced_settings) as c:
        yield c


def _status_url(fragment: str) -> str:
    m = re.search(r'hx-get="([^"]+)"', fragment)
    assert m, "the panel does not poll"
    return htmllib.unescape(m.group(1))


def _job_row(settings, job_id: int) -> Job:
    return _rows(settings, Job, id=job_id)[0]


def test_plan_returns_a_polling_progress_panel_at_once(priced_client: TestClient, priced_settings) -> None:
    did = _new(priced_client, "llm-finetune-hipaa")
    t0 = time.perf_counter()
    r = priced_client.post(f"/designs/{did}/plan", headers=HX)
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200 and elapsed < 1.0
    panel = r.text
    assert panel.lstrip().startswith('<section id="job-panel"') and "<html" not in panel
    assert '<progress id="job-progress"' in panel and 'aria-label="Planning progress"' in panel
    assert 'hx-trigger="every 1s"' in panel and 'hx-swap="outerHTML"' in panel
    assert "Waiting for a worker" in panel and ">Cancel</button>" in panel
    [job] = _rows(priced_settings, Job, design_id=did)
    assert job.status == "queued" and job.kind == "plan"
    status_url = _status_url(panel)
    assert status_url.startswith(f"/designs/{did}/jobs/{job.id}/status?seen=")

    # Pressing Plan again (or reloading) shows the same job, not a second one.
    again = priced_client.post(f"/designs/{did}/plan", headers=HX).text
    assert f"job {job.id}<" in again and len(_rows(priced_settings, Job, design_id=did)) == 1
    page = priced_client.get(f"/designs/{did}").text
    assert 'id="job-panel"' in page and f"job {job.id}<" in page

    # Polling: nothing changed → 204 (htmx keeps the panel and polls again).
    assert priced_client.get(status_url, headers=HX).status_code == 204

    # A runner reports progress → the fragment shows it.
    def progress(s: Session) -> None:
        assert jobs.claim(s, job.id, "test-worker")
        jobs.touch(s, job.id, "test-worker", progress=0.1, message="Solving (5 options, 24 months)")

    _with_session(priced_settings, progress)
    r = priced_client.get(status_url, headers=HX)
    assert r.status_code == 200 and r.text.lstrip().startswith('<div id="job-status"')
    assert 'value="10"' in r.text and 'aria-valuetext="10 %: Solving (5 options, 24 months)"' in r.text
    assert "Solving (5 options, 24 months)" in r.text
    newer = _status_url(r.text)
    assert newer != status_url and priced_client.get(newer, headers=HX).status_code == 204

    # The runner finishes → the fragment sends the browser to the plan.
    _with_session(priced_settings, lambda s: jobs.release(s, job.id, "test-worker"))
    assert _run(priced_client) == job.id
    r = priced_client.get(newer, headers=HX)
    [plan] = _rows(priced_settings, PlanRow, design_id=did)
    assert r.status_code == 204 and r.headers["HX-Redirect"] == f"/designs/{did}/plans/{plan.id}"
    assert priced_client.get(r.headers["HX-Redirect"]).status_code == 200
    assert 'id="job-panel"' not in priced_client.get(f"/designs/{did}").text


def test_without_javascript_the_job_page_refreshes_itself(priced_client: TestClient, priced_settings) -> None:
    did = _new(priced_client)
    r = priced_client.post(f"/designs/{did}/plan", follow_redirects=False)
    assert r.status_code == 303
    job_url = r.headers["location"]
    page = priced_client.get(job_url)
    assert page.status_code == 200
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text
    assert '<progress id="job-progress"' in page.text
    assert f'<form method="post" action="{job_url}/cancel"' in page.text
    assert _run(priced_client) is not None
    r = priced_client.get(job_url, follow_redirects=False)
    assert r.status_code == 303 and re.fullmatch(rf"/designs/{did}/plans/\d+", r.headers["location"])


def test_cancel_a_queued_and_a_running_job(priced_client: TestClient, priced_settings) -> None:
    did = _new(priced_client)
    panel = priced_client.post(f"/designs/{did}/plan", headers=HX).text
    [job] = _rows(priced_settings, Job, design_id=did)
    cancel_url = f"/designs/{did}/jobs/{job.id}/cancel"
    assert f'hx-post="{cancel_url}"' in panel
    r = priced_client.post(cancel_url, headers=HX)
    assert r.status_code == 200 and "Cancelled; no plan was saved." in r.text and "hx-trigger" not in r.text
    assert _job_row(priced_settings, job.id).status == "cancelled"
    assert _run(priced_client) is None  # nothing left to run
    assert _rows(priced_settings, PlanRow, design_id=did) == []
    page = priced_client.get(f"/designs/{did}/jobs/{job.id}")
    assert "Cancelled; no plan was saved." in page.text and 'http-equiv="refresh"' not in page.text

    # A running job: the cancel is recorded; its runner stops at the next step.
    r = priced_client.post(f"/designs/{did}/plan", follow_redirects=False)
    running = int(r.headers["location"].rsplit("/", 1)[1])
    _with_session(priced_settings, lambda s: jobs.claim(s, running, "busy-worker"))
    r = priced_client.post(f"/designs/{did}/jobs/{running}/cancel", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/designs/{did}/jobs/{running}"
    fragment = priced_client.get(f"/designs/{did}/jobs/{running}/status", headers=HX).text
    assert "Cancelling…</button>" in fragment and "disabled" in fragment
    # its runner learns about it at its next progress report
    assert _with_session(priced_settings, lambda s: jobs.touch(s, running, "busy-worker", progress=0.5)) is True


def test_export_bundles_are_byte_identical_zips(priced_client: TestClient, priced_settings) -> None:
    did = _new(priced_client, "llm-finetune-hipaa")
    url = _plan(priced_client, did)
    html = priced_client.get(url).text
    names = bundle_names()
    assert names and "purchase-schedule" in names
    for name in [*names, "all"]:
        assert f'href="{url}/bundles/{name}.zip" download' in html
    [row] = _rows(priced_settings, PlanRow, design_id=did)
    ctx = bundle_context(WorkloadSpec.model_validate(row.spec), Plan.model_validate(row.result))
    root = f"{ctx.slug}-{ctx.plan_id}"

    for name in [*names, "all"]:
        first = priced_client.get(f"{url}/bundles/{name}.zip")
        assert first.status_code == 200, (name, first.text[:300])
        assert first.headers["content-type"] == "application/zip"
        filename = f"{root}.zip" if name == "all" else f"{root}-{name}.zip"
        assert first.headers["content-disposition"] == f'attachment; filename="{filename}"'
        second = priced_client.get(f"{url}/bundles/{name}.zip")
        assert second.content == first.content  # byte-identical
        with zipfile.ZipFile(io.BytesIO(first.content)) as zf:
            paths = zf.namelist()
            assert zf.testzip() is None
        assert paths and all(p.startswith(root + "/") for p in paths)
        tops = {p.split("/")[1] for p in paths}
        assert tops == (set(names) if name == "all" else {name})
        etag = first.headers["etag"]
        assert priced_client.get(f"{url}/bundles/{name}.zip", headers={"If-None-Match": etag}).status_code == 304
    everything = priced_client.get(f"{url}/bundles/all.zip").content
    assert everything == to_zip(render_all(ctx), root=root)  # the same bytes as the export command
    with zipfile.ZipFile(io.BytesIO(everything)) as zf:
        assert f"{root}/purchase-schedule/schedule.csv" in zf.namelist()

    r = priced_client.get(f"{url}/bundles/nope.zip")
    assert r.status_code == 404 and "Bundle not found" in r.text


def test_plan_page_has_the_architecture_diagram(priced_client: TestClient, priced_settings) -> None:
    did = _new(priced_client, "vision-growing-inference")
    html = priced_client.get(_plan(priced_client, did)).text
    m = re.search(r'<script type="application/json" id="architecture-source">(.*?)</script>', html, re.DOTALL)
    assert m, "no diagram source"
    source = json.loads(m.group(1))
    assert source.startswith("flowchart LR\n")
    for part in ("Data sources", "Data quality checks", "Pipeline stages", "Training", "Serving", "Storage",
                 "Orchestration", "Compute (this plan)"):
        assert f'["{mermaid_text(part)}"]' in source
    assert "shelf-images" in source and "deploy-recognition" in source and "detector-retrain" in source
    [row] = _rows(priced_settings, PlanRow, design_id=did)
    regions = {line["region"] for line in row.result["schedule"] + row.result["usage"]}
    assert all(r in source for r in regions)
    assert '<script src="/static/js/plan-diagram.js" defer></script>' in html  # it loads Mermaid
    assert 'id="architecture-diagram" class="diagram-box" role="img"' in html


def test_plan_answers_at_once_while_the_embedded_runner_solves(migrated_sqlite_url, bundled, monkeypatch) -> None:
    """The real runner threads solve in the background: the server keeps answering."""
    import app.planner.plan as plan_mod
    from tests.web_designs.conftest import import_bundled

    import_bundled(migrated_sqlite_url, bundled)
    started, release = threading.Event(), threading.Event()
    real = plan_mod.make_plan

    def slow_make_plan(*args, **kwargs):
        started.set()
        release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_mod, "make_plan", slow_make_plan)
    # In-thread solves: the slowed-down make_plan above is the one that runs.
    settings = make_settings(migrated_sqlite_url, job_workers=1, job_poll_s=0.05, job_isolation="thread")
    make_user(settings)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        sign_in(http)
        r = http.post("/designs/from-example", data={"example": "research-burst-deadline"})
        did = int(r.headers["location"].rsplit("/", 1)[1])
        try:
            t0 = time.perf_counter()
            r = http.post(f"/designs/{did}/plan", headers=HX)
            assert r.status_code == 200 and time.perf_counter() - t0 < 1.0 and 'id="job-panel"' in r.text
            status_url = _status_url(r.text).split("?")[0]
            assert started.wait(10)  # the runner picked it up
            t0 = time.perf_counter()
            assert http.get("/designs").status_code == 200 and time.perf_counter() - t0 < 1.0
            fragment = http.get(status_url, headers=HX).text
            assert "job-running" in fragment and '<progress id="job-progress" max="100" value=' in fragment
        finally:
            release.set()
        deadline = time.monotonic() + 30
        while "HX-Redirect" not in (r := http.get(status_url, headers=HX)).headers:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.05)
        assert re.fullmatch(rf"/designs/{did}/plans/\d+", r.headers["HX-Redirect"])
