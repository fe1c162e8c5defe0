"""The committed snapshot: reproducible, complete, and every figure traceable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.catalog import (
    CANONICAL_ACCELERATORS,
    DEFAULT_SNAPSHOT_PATH,
    Snapshot,
    compute_snapshot_id,
    dump_snapshot,
    load_snapshot,
)
from app.catalog.build import DATA_DIR, build_snapshot, main, render_sources_md
from app.catalog.schema import snapshot_json

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def test_committed_files_equal_a_fresh_build() -> None:
    fresh = build_snapshot()
    assert (DATA_DIR / "snapshot.json").read_text(encoding="utf-8") == snapshot_json(fresh)
    assert (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8") == render_sources_md(fresh)


def test_build_check_mode_passes() -> None:
    assert main(["--check"]) == 0


def test_build_is_deterministic_and_dump_is_byte_identical(tmp_path: Path) -> None:
    a, b = build_snapshot(), build_snapshot()
    assert a.snapshot_id == b.snapshot_id
    out = dump_snapshot(a, tmp_path / "s.json")
    assert out.read_bytes() == DEFAULT_SNAPSHOT_PATH.read_bytes()


def test_default_path_loads_and_id_is_content_hash(snapshot: Snapshot) -> None:
    assert DEFAULT_SNAPSHOT_PATH == DATA_DIR / "snapshot.json"
    assert re.fullmatch(r"2026-11-24-[0-9a-f]{12}", snapshot.snapshot_id)
    assert compute_snapshot_id(snapshot) == snapshot.snapshot_id


def test_tampered_snapshot_is_rejected(tmp_path: Path) -> None:
    text = DEFAULT_SNAPSHOT_PATH.read_text(encoding="utf-8").replace("29.38708", "29.38709", 1)
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="snapshot_id"):
        load_snapshot(bad)
    assert load_snapshot(bad, verify_id=False).snapshot_id  # still parses when asked


def test_counts(snapshot: Snapshot) -> None:
    counts = snapshot.counts_by_provider()
    assert set(counts) == {"aws", "azure", "gcp", "lambda"}
    assert all(c["priced_gpu_offerings"] > 0 for c in counts.values())
    priced = snapshot.priced_gpu_offerings()
    assert len(priced) >= 1500
    assert len(priced) == sum(c["priced_gpu_offerings"] for c in counts.values())
    assert all(o.is_gpu and o.on_demand_hourly and o.price_scope == "instance" for o in priced)


def test_every_offering_source_resolves_to_a_dated_source(snapshot: Snapshot) -> None:
    by_id = {s.id: s for s in snapshot.sources}
    for o in snapshot.offerings:
        assert o.sources, o.key
        for sid in o.sources:
            assert _DATE.match(by_id[sid].date), (o.key, sid)
        for c in o.commitments:
            assert _DATE.match(by_id[c.source].date) and _DATE.match(c.date)


def test_every_figure_has_source_and_date(snapshot: Snapshot) -> None:
    ids = {s.id for s in snapshot.sources}
    for item in [*snapshot.private_servers, *snapshot.sites]:
        figures = item.figures()
        assert figures, item.id
        for name, fig in figures.items():
            assert fig.source in ids, (item.id, name)
            assert _DATE.match(fig.date), (item.id, name)
            assert fig.unit
            if fig.low is not None or fig.high is not None:
                assert fig.note, (
                    f"{item.id}.{name}: a range needs a note saying which value is used"
                )


def test_gpu_and_region_sources_resolve(snapshot: Snapshot) -> None:
    ids = {s.id for s in snapshot.sources}
    for g in snapshot.gpus:
        assert g.sources and set(g.sources) <= ids, g.name
    for r in snapshot.regions:
        assert r.sources and set(r.sources) <= ids, r.key


def test_private_cloud_coverage(snapshot: Snapshot) -> None:
    servers = {(s.gpu_model, s.gpu_count) for s in snapshot.private_servers}
    assert ("H100", 8) in servers
    assert ("H200", 8) in servers or ("B200", 8) in servers
    assert ("A100-40GB", 8) in servers or ("A100-80GB", 8) in servers
    assert any(m == "L40S" and 4 <= n <= 8 for m, n in servers)
    sites = {s.id: s for s in snapshot.sites}
    assert any(s.jurisdiction == "US" for s in sites.values())
    assert any(s.jurisdiction == "EU" for s in sites.values())
    us = sites["us-nova-colo"]
    assert us.currency == "USD" and us.colocation_per_kw_month and us.electricity_per_kwh
    assert us.staff_per_fte_month is not None


def test_gpu_registry_matches_code_and_has_planner_figures(snapshot: Snapshot) -> None:
    assert {g.name for g in snapshot.gpus} == set(CANONICAL_ACCELERATORS)
    for name in ("H100", "H200", "B200", "B300", "A100-40GB", "A100-80GB", "L40S", "L4"):
        g = snapshot.gpu(name)
        assert g.bf16_dense_tflops and g.memory_bandwidth_tbps, name
    # dense, not sparse: H100 SXM BF16 is ~989, not 1979
    assert snapshot.gpu("H100").bf16_dense_tflops == pytest.approx(989, rel=0.01)
    assert snapshot.gpu("A100-40GB").fp8_dense_tflops is None  # no FP8 on Ampere
    assert snapshot.gpu("V100-16GB").training_dense_tflops == pytest.approx(125.34)


def test_every_offering_region_is_described(snapshot: Snapshot) -> None:
    regions = {r.key for r in snapshot.regions}
    assert {f"{o.provider}/{o.region}" for o in snapshot.offerings} <= regions
    assert snapshot.region("aws", "eu-central-1").jurisdiction == "EU"
    assert snapshot.region("gcp", "europe-west2").jurisdiction == "UK"
    assert snapshot.region("azure", "westus3").country == "US"
    assert snapshot.region("lambda", "us-east-1").country is None  # not sourced -> not guessed
    assert "HIPAA" in snapshot.region("aws", "us-east-1").compliance_programs


def test_aws_commitments(snapshot: Snapshot) -> None:
    p4d = snapshot.offering("aws/us-east-1/p4d.24xlarge")
    ri = p4d.commitment("reserved", 12, "no_upfront")
    assert ri is not None
    assert ri.effective_hourly_usd == pytest.approx(13.921094)
    assert ri.upfront_usd == 0 and ri.offering_class == "standard" and not ri.estimate
    assert snapshot.source(ri.source).date == "2026-01-21"
    assert p4d.on_demand_hourly == pytest.approx(21.957642)

    p5 = snapshot.offering("aws/us-east-1/p5.48xlarge")
    assert p5.commitment("reserved") is None  # no RI data for p5 (gap)
    cb = p5.commitment("capacity_block")
    assert cb is not None and cb.effective_hourly_usd == pytest.approx(39.33)
    assert cb.term_months is None and cb.payment_option == "all_upfront"
    # only the documented commitment kinds exist
    kinds = {
        (c.kind, c.term_months, c.payment_option) for o in snapshot.offerings for c in o.commitments
    }
    assert kinds == {("reserved", 12, "no_upfront"), ("capacity_block", None, "all_upfront")}
    assert {o.provider for o in snapshot.offerings if o.commitments} == {"aws"}


def test_catalog_package_has_no_web_or_db_imports() -> None:
    pkg = Path(__file__).resolve().parents[2] / "app" / "catalog"
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(
            r"^\s*(from|import)\s+(fastapi|sqlmodel|sqlalchemy)", text, re.MULTILINE
        ), path
