"""``/catalog`` through the TestClient: full page, htmx fragment, filters in the URL, paging."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import make_engine
from app.services import catalog as svc
from app.settings import Settings
from tests.catalog_db.factory import big_snapshot, make_snapshot

HX = {"HX-Request": "true", "HX-Target": "catalog-results"}


def _load(settings: Settings, snapshot) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        svc.import_snapshot(s, snapshot, origin="test")
    engine.dispose()


def _row_keys(html: str) -> list[str]:
    return re.findall(r"<code>([^<]+)</code>", html.split("<tbody>", 1)[1]) if "<tbody>" in html else []


def _row_ids(html: str) -> list[tuple[str, str]]:
    """(region, instance type) of every row."""
    body = html.split("<tbody>", 1)[1] if "<tbody>" in html else ""
    return re.findall(r"</strong> · ([^<]+)</span>.*?<code>([^<]+)</code>", body, flags=re.DOTALL)


@pytest.fixture
def snap(settings: Settings):
    snapshot = make_snapshot()
    _load(settings, snapshot)
    return snapshot


def test_full_page_shows_snapshot_filters_and_gpu_rows(client: TestClient, snap) -> None:
    r = client.get("/catalog")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<h1>GPU price catalog</h1>" in html and snap.snapshot_id in html and "2026-11-20" in html
    for field in ("f-gpu", "f-provider", "f-jurisdiction", "f-compliance", "f-min-mem", "f-sort"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html  # labels tied to inputs
    assert 'hx-push-url="true"' in html and 'hx-target="#catalog-results"' in html
    assert "<script>" not in html  # CSP: no inline scripts
    keys = _row_keys(html)
    assert len(keys) == 9 and "ct5lp-hightpu-4t" not in keys  # "Any GPU": TPUs only when picked
    assert keys[:2] == ["Standard_NC4as_T4_v3", "g4dn.xlarge"]  # cheapest on-demand $/GPU-hour first
    assert keys[-1] == "g4dn.12xlarge"  # unpriced last
    assert '<span class="badge compliance"' in html and ">FedRAMP-High<" in html
    assert 'title="AWS EC2 on-demand price list · as of 2026-10-01"' in html
    assert r.headers["vary"] == "HX-Request, HX-Target"


def test_htmx_request_gets_only_the_results_fragment(client: TestClient, snap) -> None:
    r = client.get("/catalog", params={"gpu": "H100", "jurisdiction": "EU"}, headers=HX)
    assert r.status_code == 200
    html = r.text
    assert html.lstrip().startswith('<section id="catalog-results"') and "<html" not in html
    assert _row_keys(html) == ["p5.48xlarge", "a3-highgpu-8g"]
    assert "Showing 1–2 of 2 offerings" in html
    # History restore asks for the full page.
    r = client.get("/catalog", params={"gpu": "H100"}, headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in r.text
    # Another target (the snapshot picker swaps the whole main element) gets the whole page.
    r = client.get("/catalog", params={"gpu": "H100"}, headers={"HX-Request": "true", "HX-Target": "main"})
    assert "<html" in r.text and 'id="catalog-filters"' in r.text


def test_filters_sort_and_min_memory_without_js(client: TestClient, snap) -> None:
    html = client.get("/catalog?provider=azure&compliance=FedRAMP-High").text
    assert _row_keys(html) == ["Standard_NC4as_T4_v3", "Standard_ND96isr_H100_v5"]
    assert '<option value="azure" selected>' in html  # the form reflects the URL
    html = client.get("/catalog?min_mem=80&sort=spot").text
    keys = _row_keys(html)
    assert keys == ["p4de.24xlarge", "a3-highgpu-8g", "p5.48xlarge", "Standard_ND96isr_H100_v5", "p5.48xlarge"]
    assert 'aria-sort="ascending"' in html and '<option value="spot" selected>' in html
    assert 'value="80"' in html
    html = client.get("/catalog?gpu=TPU-v5e").text
    assert _row_keys(html) == ["ct5lp-hightpu-4t"] and ">TPU<" in html


def test_invalid_filters_are_explained_inline(client: TestClient, snap) -> None:
    r = client.get("/catalog?gpu=H900&min_mem=lots")
    assert r.status_code == 422
    assert 'role="alert"' in r.text and "Unknown GPU model &#39;H900&#39;" in r.text
    assert "Minimum GPU memory must be a number" in r.text
    assert "<h1>GPU price catalog</h1>" in r.text  # the page, not the generic error page


def test_no_snapshot_yet(client: TestClient) -> None:
    r = client.get("/catalog")
    assert r.status_code == 200 and "archplan pricing import --bundled" in r.text


def test_pagination_50_per_page(client: TestClient, settings: Settings) -> None:
    _load(settings, big_snapshot(120))
    html = client.get("/catalog").text
    assert len(_row_keys(html)) == 50 and "Page 1 of 3" in html and 'rel="prev"' not in html
    next_url = re.search(r'rel="next" hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert next_url == "/catalog?page=2"
    page2 = client.get(next_url, headers=HX).text
    assert "Showing 51–100 of 120" in page2 and 'rel="prev"' in page2
    assert len(set(_row_ids(page2))) == 50 and not set(_row_ids(page2)) & set(_row_ids(html))
    html = client.get("/catalog?provider=aws&sort=reserved&page=9").text  # clamped to the last page
    assert "Page 3 of 3" in html and "Showing 101–120 of 120" in html
    prev = re.search(r'href="([^"]+)" rel="prev"', html).group(1).replace("&amp;", "&")
    assert prev == "/catalog?provider=aws&sort=reserved&page=2"  # links keep the filters


def test_page_renders_fast(client: TestClient, settings: Settings) -> None:
    _load(settings, big_snapshot(1600))
    client.get("/catalog")  # warm caches
    start = time.perf_counter()
    for _ in range(5):
        assert client.get("/catalog?gpu=H100&sort=spot").status_code == 200
    per_page = (time.perf_counter() - start) / 5
    assert per_page < 0.5, f"{per_page * 1000:.0f} ms per page"
