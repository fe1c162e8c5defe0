"""Versioned snapshots in the database: atomic, idempotent imports; round-trips; queries."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.catalog.schema import DEFAULT_SNAPSHOT_PATH, Snapshot, load_snapshot
from app.models import PriceOffering, PriceSnapshot
from app.services import catalog as svc
from tests.catalog_db.factory import big_snapshot, make_snapshot, offerings

bundled_missing = pytest.mark.skipif(not DEFAULT_SNAPSHOT_PATH.is_file(), reason="bundled snapshot not built")


def _counts(session: Session) -> tuple[int, int]:
    return (session.execute(select(func.count()).select_from(PriceSnapshot)).scalar_one(),
            session.execute(select(func.count()).select_from(PriceOffering)).scalar_one())


def test_import_round_trip_equals_domain_snapshot(session: Session) -> None:
    snap = make_snapshot()
    row = svc.import_snapshot(session, snap, origin="test", label="first")
    assert row.is_current and row.offering_count == len(snap.offerings)
    assert row.snapshot_date == snap.created and row.origin == "test" and row.label == "first"
    assert svc.current_snapshot(session).snapshot_id == snap.snapshot_id
    back = svc.get_snapshot(session, snap.snapshot_id)
    assert back == snap
    assert [o.key for o in back.offerings] == [o.key for o in snap.offerings]  # order kept
    assert svc.get_snapshot(session) is back  # current, from the cache
    assert svc.get_snapshot_row(session, snap.snapshot_id[:14]).id == row.id  # unique prefix


def test_import_is_idempotent(session: Session) -> None:
    snap = make_snapshot()
    first = svc.import_snapshot(session, snap, origin="test")
    again = svc.import_snapshot(session, snap, origin="other", label="ignored")
    assert again.id == first.id and again.origin == "test"
    assert _counts(session) == (1, len(snap.offerings))


def test_new_import_becomes_current_and_old_stays(session: Session) -> None:
    a = make_snapshot()
    b = make_snapshot(offerings()[:4], created="2026-11-23")
    svc.import_snapshot(session, a, origin="test")
    svc.import_snapshot(session, b, origin="test", make_current=False)
    assert svc.current_snapshot(session).snapshot_id == a.snapshot_id
    svc.import_snapshot(session, b, origin="test")  # re-import: switches current, writes nothing
    assert svc.current_snapshot(session).snapshot_id == b.snapshot_id
    assert [r.snapshot_id for r in svc.list_snapshots(session)] == [b.snapshot_id, a.snapshot_id]
    assert sum(r.is_current for r in svc.list_snapshots(session)) == 1
    assert svc.get_snapshot(session, a.snapshot_id) == a


def test_failed_import_leaves_previous_current_and_nothing_written(session: Session) -> None:
    good = make_snapshot()
    svc.import_snapshot(session, good, origin="test")
    before = _counts(session)
    # 1,200 valid offerings, then a duplicate key: the database refuses the 3rd insert batch,
    # after the snapshot row, the current-flag switch and two batches were already sent.
    big = big_snapshot(1200)
    broken = Snapshot.model_construct(**{**dict(big), "snapshot_id": "2026-11-21-badbadbadbad",
                                         "offerings": [*big.offerings, big.offerings[0]]})
    with pytest.raises(IntegrityError):
        svc.import_snapshot(session, broken, origin="test")
    assert _counts(session) == before
    assert svc.current_snapshot(session).snapshot_id == good.snapshot_id
    with pytest.raises(svc.SnapshotNotFoundError):
        svc.get_snapshot_row(session, "2026-11-21-badbadbadbad")
    # The session is usable afterwards and a good import still works.
    svc.import_snapshot(session, big, origin="test")
    assert svc.current_snapshot(session).snapshot_id == big.snapshot_id


def test_failure_in_python_midway_rolls_back(session: Session, monkeypatch) -> None:
    good = make_snapshot()
    svc.import_snapshot(session, good, origin="test")
    before = _counts(session)
    calls = {"n": 0}
    real = svc._offering_row

    def exploding(o, region, pk):
        calls["n"] += 1
        if calls["n"] == 700:
            raise RuntimeError("boom")
        return real(o, region, pk)

    monkeypatch.setattr(svc, "_offering_row", exploding)
    with pytest.raises(RuntimeError, match="boom"):
        svc.import_snapshot(session, big_snapshot(1000), origin="test")
    assert _counts(session) == before
    assert svc.current_snapshot(session).snapshot_id == good.snapshot_id


def test_bulk_import_is_fast(session: Session) -> None:
    snap = big_snapshot(1600)
    start = time.perf_counter()
    row = svc.import_snapshot(session, snap, origin="test")
    elapsed = time.perf_counter() - start
    assert row.offering_count == 1600
    assert elapsed < 3.0, f"import of 1,600 offerings took {elapsed:.2f} s"
    assert svc.get_snapshot(session) == snap


def test_only_one_current_snapshot_is_enforced(session: Session) -> None:
    svc.import_snapshot(session, make_snapshot(), origin="test")
    session.add(PriceSnapshot(snapshot_id="manual", is_current=True, data={}))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_ensure_bundled_only_when_empty(session: Session, tmp_path) -> None:
    from app.catalog.schema import dump_snapshot

    path = dump_snapshot(make_snapshot(), tmp_path / "bundle.json")
    row = svc.ensure_bundled_snapshot(session, path)
    assert row is not None and row.origin == "bundled" and row.is_current
    assert svc.ensure_bundled_snapshot(session, path) is None
    # Any snapshot counts, even a non-current one: the bundled one is not loaded again.
    assert _counts(session)[0] == 1


def test_get_snapshot_without_any_raises(session: Session) -> None:
    assert svc.current_snapshot(session) is None
    with pytest.raises(svc.SnapshotNotFoundError):
        svc.get_snapshot(session)
    with pytest.raises(svc.SnapshotNotFoundError):
        svc.get_snapshot_row(session, "2026-01-01-000000000000")


@bundled_missing
def test_bundled_snapshot_round_trip_and_counts(session: Session, capsys) -> None:
    bundled = load_snapshot()
    start = time.perf_counter()
    row = svc.ensure_bundled_snapshot(session)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n[{session.bind.dialect.name}] bundled snapshot ({len(bundled.offerings)} offerings) "
              f"imported in {elapsed:.2f} s")
    assert row is not None and row.offering_count == len(bundled.offerings)
    assert elapsed < 5.0
    summary = svc.snapshot_summary(session, row)
    expected = {p: c["priced_gpu_offerings"] for p, c in bundled.counts_by_provider().items()
                if c["priced_gpu_offerings"]}
    assert summary.offerings_by_provider == expected
    assert {s["id"] for s in summary.sources} == {s.id for s in bundled.sources}
    assert svc.get_snapshot(session) == bundled


# --------------------------------------------------------------------------- queries


@pytest.fixture
def loaded(session: Session):
    row = svc.import_snapshot(session, make_snapshot(), origin="test")
    return session, row


def _keys(views) -> list[str]:
    return [v.key for v in views]


def test_filters(loaded) -> None:
    session, row = loaded
    F = svc.OfferingFilters

    def keys(f: svc.OfferingFilters, sort: str = "on_demand") -> list[str]:
        return _keys(svc.offering_views(row, svc.list_offerings(session, row, f, sort=sort, limit=100)))

    assert len(keys(F())) == 10
    assert set(keys(F(gpu_models=("H100",)))) == {
        "aws/us-east-1/p5.48xlarge", "aws/eu-west-1/p5.48xlarge", "azure/eastus/Standard_ND96isr_H100_v5",
        "gcp/europe-west4/a3-highgpu-8g"}
    assert set(keys(F(gpu_models=("H100",), jurisdictions=("EU",)))) == {
        "aws/eu-west-1/p5.48xlarge", "gcp/europe-west4/a3-highgpu-8g"}
    assert set(keys(F(compliance=("FedRAMP-High",)))) == {
        "azure/eastus/Standard_ND96isr_H100_v5", "azure/eastus/Standard_NC4as_T4_v3"}
    assert set(keys(F(compliance=("GDPR", "HIPAA")))) == {"aws/eu-west-1/p5.48xlarge", "aws/eu-west-1/g4dn.xlarge"}
    assert all(v.gpu_memory_gb >= 80 for v in svc.offering_views(
        row, svc.list_offerings(session, row, F(min_gpu_memory_gb=80))))
    assert len(keys(F(min_gpu_memory_gb=80))) == 5
    assert keys(F(accelerator_kinds=("tpu",))) == ["gcp/europe-west4/ct5lp-hightpu-4t"]
    assert svc.count_offerings(session, row, F(providers=("aws", "azure"))) == 8


def test_sort_by_each_purchase_option_nulls_last(loaded) -> None:
    session, row = loaded
    for sort, attr in (("on_demand", "on_demand_per_gpu_hour"), ("spot", "spot_per_gpu_hour"),
                       ("reserved", "reserved_per_gpu_hour")):
        views = svc.offering_views(row, svc.list_offerings(session, row, svc.OfferingFilters(), sort=sort))
        values = [getattr(v, attr) for v in views]
        priced = [v for v in values if v is not None]
        assert priced == sorted(priced)
        assert values[: len(priced)] == priced  # unpriced last
    # p5 has a 1-year and a 3-year RI: best reserved is the 3-year one, per GPU.
    p5 = next(v for v in views if v.key == "aws/us-east-1/p5.48xlarge")
    assert p5.reserved_per_gpu_hour == pytest.approx(26.0 / 8)
    assert p5.best_reserved_terms == "reserved 3y no upfront"
    assert p5.on_demand_per_gpu_hour == pytest.approx(55.04 / 8)
    assert p5.compliance_programs == ["FedRAMP-Moderate", "HIPAA"] and p5.jurisdiction == "US"
    assert p5.sources[0]["name"] == "AWS EC2 on-demand price list"


def test_keyset_pages_cover_everything_once(loaded) -> None:
    session, row = loaded
    for sort in svc.SORTS:
        seen, after = [], None
        while True:
            rows = svc.list_offerings(session, row, svc.OfferingFilters(), sort=sort, limit=3, after=after)
            if not rows:
                break
            views = svc.offering_views(row, rows)
            seen += _keys(views)
            after = (views[-1].sort_value(sort), views[-1].id)
        full = _keys(svc.offering_views(row, svc.list_offerings(session, row, svc.OfferingFilters(), sort=sort)))
        assert seen == full and len(seen) == 10


def test_filter_options_and_validation(loaded) -> None:
    session, row = loaded
    opts = svc.filter_options(session, row)
    assert opts.providers == ["aws", "azure", "gcp"]
    assert opts.jurisdictions == ["EU", "US"]
    assert opts.compliance == ["FedRAMP-High", "FedRAMP-Moderate", "GDPR", "HIPAA"]
    assert "TPU-v5e" in opts.gpu_models
    problems = svc.invalid_filters(opts, svc.OfferingFilters(gpu_models=("H900",), providers=("oracle",)))
    assert [p[0] for p in problems] == ["gpu_model", "provider"]
