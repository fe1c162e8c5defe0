"""The provider-independent merge (``app.catalog.refresh.common``)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.catalog.refresh.common import (
    FreshData,
    FreshPrice,
    Hardware,
    RefreshError,
    backoff_seconds,
    check_regions,
    merge_refresh,
)
from app.catalog.schema import CommitmentPrice, GpuModel, Snapshot, Source, snapshot_json
from tests.catalog_refresh.conftest import TODAY, build_base_snapshot, offerings_of

SRC = Source(
    id="test-refresh-2026-11-24",
    name="Test API",
    url="test://api",
    date="2026-11-24",
    retrieved="2026-11-24",
)


def fresh(prices: list[FreshPrice], regions=("us-east-1",), **kw) -> FreshData:
    return FreshData(
        provider="aws",
        regions=list(regions),
        prices={p.key: p for p in prices},
        unusable=kw.pop("unusable", {}),
        sources=[SRC],
        **kw,
    )


def fp(itype: str, price: float | None = 1.0, region: str = "us-east-1", **kw) -> FreshPrice:
    return FreshPrice(
        region=region, instance_type=itype, on_demand_hourly=price, sources=[SRC.id], **kw
    )


US_EAST_1 = ["g5.xlarge", "p3.2xlarge", "p4d.24xlarge", "p5.48xlarge"]


def test_removal_guard_per_region(base):
    with pytest.raises(RefreshError, match="no longer lists 3 of the 4 offerings of aws/us-east-1"):
        merge_refresh(base, fresh([fp("g5.xlarge")]), today=TODAY)


def test_removal_below_guard_is_recorded(base):
    res = merge_refresh(base, fresh([fp(t) for t in US_EAST_1[1:]]), today=TODAY)
    assert res.removed == 1
    (c,) = res.snapshot.corrections
    assert c.keys == ["aws/us-east-1/g5.xlarge"] and c.source == SRC.id


def test_no_prices_at_all_raises(base):
    with pytest.raises(RefreshError, match="no usable aws prices"):
        merge_refresh(base, fresh([]), today=TODAY)


def test_new_gpu_not_in_catalog_is_reported(base):
    hint = Hardware(accelerator_kind="gpu", gpu_model="B200", gpu_count=8)
    res = merge_refresh(
        base,
        fresh([*(fp(t) for t in US_EAST_1), fp("p6-b200.48xlarge", 113.9, hardware_hint=hint)]),
        today=TODAY,
    )
    assert res.added == 0
    (w,) = [w for w in res.warnings if "p6-b200" in w]
    assert "'B200' is not in the base snapshot's GPU list" in w


def test_new_non_gpu_accelerator_is_not_added(base):
    hint = Hardware(accelerator_kind="neuron", gpu_model="Trainium", gpu_count=16)
    res = merge_refresh(
        base,
        fresh([*(fp(t) for t in US_EAST_1), fp("trn1.32xlarge", 21.5, hardware_hint=hint)]),
        today=TODAY,
    )
    assert res.added == 0 and any("only new GPU offerings" in w for w in res.warnings)


def test_invalid_result_becomes_refresh_error(base):
    # a hint that passes the cheap checks but violates the schema (kind mismatch)
    base = base.model_copy(
        update={"gpus": [*base.gpus, GpuModel(name="Inferentia2", kind="neuron", vendor="AWS")]}
    )
    hint = Hardware(accelerator_kind="gpu", gpu_model="Inferentia2", gpu_count=1)
    with pytest.raises(RefreshError, match="failed validation.*neuron"):
        merge_refresh(
            base,
            fresh([*(fp(t) for t in US_EAST_1), fp("inf2.xlarge", hardware_hint=hint)]),
            today=TODAY,
        )


def test_unusable_key_is_kept(base):
    res = merge_refresh(
        base,
        fresh([fp(t) for t in US_EAST_1[1:]], unusable={("us-east-1", "g5.xlarge"): "bad row"}),
        today=TODAY,
    )
    assert res.skipped == 1 and res.removed == 0
    assert res.snapshot.offering("aws/us-east-1/g5.xlarge") == base.offering(
        "aws/us-east-1/g5.xlarge"
    )


def test_spot_unknown_keeps_base_spot_and_known_none_clears_it(base):
    prices = [fp(t, 2.0) for t in US_EAST_1]
    prices[0].spot_known = False  # g5.xlarge: keep 0.4328
    prices[2].spot_known = True  # p4d: spot fetched, none offered
    res = merge_refresh(base, fresh(prices), today=TODAY)
    assert res.snapshot.offering("aws/us-east-1/g5.xlarge").spot_hourly == 0.4328
    assert res.snapshot.offering("aws/us-east-1/p4d.24xlarge").spot_hourly is None


def test_reserved_replaced_other_commitments_kept(base):
    ri = CommitmentPrice(
        kind="reserved",
        term_months=36,
        payment_option="all_upfront",
        upfront_usd=26280.0,
        effective_hourly_usd=1.0,
        source=SRC.id,
        date="2026-11-24",
    )
    prices = [fp(t, 55.04 if t == "p5.48xlarge" else 1.0) for t in US_EAST_1]
    prices[3].reserved = [ri]
    res = merge_refresh(base, fresh(prices), today=TODAY)
    p5 = res.snapshot.offering("aws/us-east-1/p5.48xlarge")
    assert [c.kind for c in p5.commitments] == ["capacity_block", "reserved"]


def test_same_day_rerun_replaces_the_source(base):
    first = merge_refresh(base, fresh([fp(t) for t in US_EAST_1]), today=TODAY)
    second = merge_refresh(first.snapshot, fresh([fp(t) for t in US_EAST_1]), today=TODAY)
    assert [s.id for s in second.snapshot.sources].count(SRC.id) == 1
    assert second.unchanged == 4 and second.updated == 0
    assert second.snapshot.snapshot_id == first.snapshot.snapshot_id  # same content, same id


def test_check_regions(base):
    assert check_regions(base, "aws", None) == ["us-east-1", "us-west-2"]
    assert check_regions(base, "azure", ["westus2", "eastus", "eastus"]) == ["eastus", "westus2"]
    with pytest.raises(RefreshError, match="not in the base snapshot"):
        check_regions(base, "aws", ["mars-1"])
    with pytest.raises(RefreshError, match="no oci regions"):
        check_regions(base, "oci", None)
    with pytest.raises(RefreshError, match="no regions given"):
        check_regions(base, "aws", [])


def test_backoff_is_bounded():
    assert [backoff_seconds(i) for i in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    present=st.lists(st.sampled_from(US_EAST_1), unique=True, min_size=2),
    price=st.floats(min_value=0.01, max_value=500, allow_nan=False),
    today=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
)
def test_merge_property(present, price, today):
    base = build_base_snapshot()
    before = snapshot_json(base)
    src = SRC.model_copy(
        update={
            "id": f"test-refresh-{today}",
            "date": today.isoformat(),
            "retrieved": today.isoformat(),
        }
    )
    data = FreshData(
        provider="aws",
        regions=["us-east-1"],
        sources=[src],
        unusable={},
        prices={
            ("us-east-1", t): FreshPrice(
                region="us-east-1", instance_type=t, on_demand_hourly=price, sources=[src.id]
            )
            for t in present
        },
    )
    res = merge_refresh(base, data, today=today)
    assert snapshot_json(base) == before
    assert res.updated + res.unchanged + res.removed + res.skipped == len(US_EAST_1)
    assert res.removed == len(US_EAST_1) - len(present)
    snap = Snapshot.model_validate_json(snapshot_json(res.snapshot))
    assert snap.created == today.isoformat()
    for provider in ("azure", "gcp"):
        assert offerings_of(snap, provider) == offerings_of(base, provider)
    assert offerings_of(snap, "aws", "us-west-2") == offerings_of(base, "aws", "us-west-2")
    for t in present:
        assert snap.offering(f"aws/us-east-1/{t}").on_demand_hourly == price
