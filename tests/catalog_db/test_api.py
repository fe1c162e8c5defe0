"""``/api/v1/offerings`` and ``/api/v1/snapshots``: filters, sort, cursor pagination, problems."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import make_engine
from app.services import catalog as svc
from app.settings import Settings
from tests.catalog_db.factory import make_snapshot, offerings

PROBLEM = "application/problem+json"


@pytest.fixture
def snap(settings: Settings):
    snapshot = make_snapshot()
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        svc.import_snapshot(s, make_snapshot(offerings()[:3], created="2026-11-01"), origin="test")
        svc.import_snapshot(s, snapshot, origin="test", label="fixture")
    engine.dispose()
    return snapshot


def _keys(body) -> list[str]:
    return [i["key"] for i in body["items"]]


def test_filters_and_default_sort(client: TestClient, snap) -> None:
    r = client.get("/api/v1/offerings", params={"gpu_model": "H100", "jurisdiction": "EU"})
    assert r.status_code == 200
    body = r.json()
    assert body["snapshot_id"] == snap.snapshot_id and body["total"] == 2 and body["next_cursor"] is None
    assert _keys(body) == ["aws/eu-west-1/p5.48xlarge", "gcp/europe-west4/a3-highgpu-8g"]  # cheapest first
    item = body["items"][0]
    assert item["per_gpu_hour"]["on_demand"] == pytest.approx(60.5 / 8)
    assert item["compliance_programs"] == ["GDPR", "HIPAA"] and item["jurisdiction"] == "EU"
    assert item["sources"][0] == {"id": "aws-list", "name": "AWS EC2 on-demand price list",
                                  "url": "https://aws.amazon.com/ec2/pricing/on-demand/", "date": "2026-10-01"}

    r = client.get("/api/v1/offerings", params=[("provider", "aws"), ("provider", "azure"),
                                                ("compliance", "HIPAA"), ("min_gpu_memory_gb", "80")])
    assert set(_keys(r.json())) == {"aws/us-east-1/p5.48xlarge", "aws/eu-west-1/p5.48xlarge",
                                     "aws/us-east-1/p4de.24xlarge", "azure/eastus/Standard_ND96isr_H100_v5"}
    r = client.get("/api/v1/offerings", params={"accelerator_kind": "tpu"})
    assert _keys(r.json()) == ["gcp/europe-west4/ct5lp-hightpu-4t"]


@pytest.mark.parametrize("sort,field", [("on_demand", "on_demand"), ("spot", "spot"), ("reserved", "reserved")])
def test_sort_and_cursor_pagination(client: TestClient, snap, sort: str, field: str) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/offerings", params=params).json()
        assert body["total"] == 10 and len(body["items"]) <= 3
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 4 and len({i["key"] for i in seen}) == 10
    values = [i["per_gpu_hour"][field] for i in seen]
    priced = [v for v in values if v is not None]
    assert priced == sorted(priced) and values[: len(priced)] == priced


def test_unknown_filter_values_are_422_with_field(client: TestClient, snap) -> None:
    r = client.get("/api/v1/offerings", params={"gpu_model": "H900", "provider": "oracle"})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 422 and body["title"] == "Validation failed"
    assert [e["field"] for e in body["errors"]] == ["query.gpu_model", "query.provider"]
    assert "H900" in body["errors"][0]["message"]
    r = client.get("/api/v1/offerings", params={"sort": "cheapest"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.sort"
    r = client.get("/api/v1/offerings", params={"min_gpu_memory_gb": "-1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.min_gpu_memory_gb"
    r = client.get("/api/v1/offerings", params={"cursor": "garbage!"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.cursor"
    first = client.get("/api/v1/offerings", params={"limit": 2}).json()
    r = client.get("/api/v1/offerings", params={"limit": 2, "sort": "spot", "cursor": first["next_cursor"]})
    assert r.status_code == 422 and "other filters" in r.json()["errors"][0]["message"]


def test_other_snapshot_and_404(client: TestClient, snap) -> None:
    older = client.get("/api/v1/snapshots").json()[1]["snapshot_id"]
    r = client.get("/api/v1/offerings", params={"snapshot": older})
    assert r.json()["snapshot_id"] == older and r.json()["total"] == 3
    r = client.get("/api/v1/offerings", params={"snapshot": "2020-01-01-000000000000"})
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_snapshots_list_and_detail(client: TestClient, snap) -> None:
    r = client.get("/api/v1/snapshots")
    assert r.status_code == 200
    rows = r.json()
    assert [s["is_current"] for s in rows] == [True, False]
    assert rows[0]["snapshot_id"] == snap.snapshot_id and rows[0]["label"] == "fixture"
    assert rows[0]["offering_count"] == 10 and rows[0]["imported_at"].endswith(("Z", "+00:00"))
    for ref in (snap.snapshot_id, "current"):
        d = client.get(f"/api/v1/snapshots/{ref}").json()
        assert d["snapshot_id"] == snap.snapshot_id
        assert d["offerings_by_provider"] == {"aws": 5, "azure": 2, "gcp": 1}  # priced GPU offerings
        assert d["offerings_by_provider"] == {p: c["priced_gpu_offerings"]
                                              for p, c in snap.counts_by_provider().items()}
        assert {s["id"] for s in d["sources"]} == {s.id for s in snap.sources}
        assert all(s["date"] for s in d["sources"])
    r = client.get("/api/v1/snapshots/2020-01-01-000000000000")
    assert r.status_code == 404 and r.json()["status"] == 404


def test_no_snapshot_yet_is_404(client: TestClient) -> None:
    r = client.get("/api/v1/offerings")
    assert r.status_code == 404 and "import one first" in r.json()["detail"]
    assert client.get("/api/v1/snapshots").json() == []


def test_openapi_documents_models_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/offerings"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"gpu_model", "provider", "jurisdiction", "compliance", "min_gpu_memory_gb", "sort", "limit",
            "cursor", "snapshot"} <= names
    assert "422" in op["responses"] and "application/problem+json" in op["responses"]["422"]["content"]
    schemas = spec["components"]["schemas"]
    assert schemas["OfferingPage"].get("examples")
    assert schemas["SnapshotDetail"].get("examples")
    assert schemas["OfferingOut"]["properties"]["gpu_model"].get("examples") == ["H100"]
    assert "/api/v1/snapshots/{snapshot_id}" in spec["paths"]
