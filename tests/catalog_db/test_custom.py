"""Workspace custom prices: negotiated discounts and private offerings on top of a snapshot."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from app.catalog.custom import (
    CUSTOM_SOURCE_ID,
    CustomCommitment,
    CustomDiscount,
    CustomOffering,
    apply_custom_prices,
    family_matches,
)
from app.models import Workspace
from app.services import catalog as svc
from tests.catalog_db.factory import make_snapshot

P5 = "aws/us-east-1/p5.48xlarge"


def test_family_matching() -> None:
    assert family_matches("p5", "p5.48xlarge") and family_matches("P5", "p5.4xlarge")
    assert not family_matches("p5", "p5en.48xlarge")
    assert family_matches("a3-highgpu", "a3-highgpu-8g") and family_matches("a3", "a3-highgpu-8g")
    assert family_matches("Standard_ND96isr_H100", "Standard_ND96isr_H100_v5")
    assert family_matches(None, "anything") and family_matches("g6.xlarge", "g6.xlarge")


def test_discounts_most_specific_wins_and_base_is_unchanged() -> None:
    base = make_snapshot()
    discounts = [
        CustomDiscount(provider="aws", percent=10),                                   # everything on AWS
        CustomDiscount(provider="aws", percent=20, instance_family="p5"),             # p5 family
        CustomDiscount(provider="aws", percent=30, instance_family="p5", purchase_option="spot"),
        CustomDiscount(provider="aws", percent=5, purchase_option="reserved"),        # AWS RIs
    ]
    new = apply_custom_prices(base, discounts, [], workspace="acme")
    assert new.snapshot_id.startswith(base.snapshot_id + "+custom-")
    assert new is not base and base.offering(P5).on_demand_hourly == 55.04  # untouched
    p5 = new.offering(P5)
    assert p5.on_demand_hourly == pytest.approx(55.04 * 0.8)       # family beats provider-wide
    assert p5.spot_hourly == pytest.approx(30.1 * 0.7)              # family + option is most specific
    assert [c.effective_hourly_usd for c in p5.commitments] == pytest.approx([38.0 * 0.8, 26.0 * 0.8])
    assert "Workspace negotiated discount" in p5.notes[-1] and "20%" in p5.notes[-1]
    assert CUSTOM_SOURCE_ID in p5.sources
    p4 = new.offering("aws/us-east-1/p4de.24xlarge")
    assert p4.on_demand_hourly == pytest.approx(27.45 * 0.9)
    assert p4.commitments[0].effective_hourly_usd == pytest.approx(19.0 * 0.95)  # option beats provider-wide
    # Other providers and unpriced offerings are not touched.
    assert new.offering("azure/eastus/Standard_NC4as_T4_v3") == base.offering("azure/eastus/Standard_NC4as_T4_v3")
    assert new.offering("aws/us-east-1/g4dn.12xlarge").on_demand_hourly is None
    src = new.source(CUSTOM_SOURCE_ID)
    assert "acme" in src.name
    # Deterministic: same prices in another order give the same id.
    assert apply_custom_prices(base, list(reversed(discounts)), [], workspace="acme").snapshot_id == new.snapshot_id
    assert apply_custom_prices(base, [], []) is base


def test_private_offerings_replace_or_add_and_are_not_discounted() -> None:
    base = make_snapshot()
    private = [
        CustomOffering(provider="aws", region="us-east-1", instance_type="p5.48xlarge", gpu_model="H100",
                       gpu_count=8, gpu_memory_gb=80, on_demand_hourly=41.0, reference="EDP-2026",
                       commitments=[CustomCommitment(term_months=12, hourly_usd=20, upfront_usd=73000)],
                       as_of="2026-11-01"),
        CustomOffering(provider="coreweave", region="us-east-04", instance_type="gd-8xh100ib-i128",
                       gpu_model="h100", gpu_count=8, on_demand_hourly=49.24, country="US", jurisdiction="US",
                       as_of="2026-10-15"),
    ]
    new = apply_custom_prices(base, [CustomDiscount(provider="aws", percent=50)], private, workspace="acme")
    p5 = new.offering(P5)
    assert p5.on_demand_hourly == 41.0 and p5.sources == [CUSTOM_SOURCE_ID]
    assert p5.commitments[0].effective_hourly_usd == pytest.approx(20 + 73000 / (12 * 730), rel=1e-6)
    assert "EDP-2026" in p5.notes[0] and "replaces list on-demand" in p5.notes[0]
    cw = new.offering("coreweave/us-east-04/gd-8xh100ib-i128")
    assert cw.gpu_model == "H100" and new.region("coreweave", "us-east-04").jurisdiction == "US"
    assert new.source(CUSTOM_SOURCE_ID).date == "2026-11-01"
    assert len(new.offerings) == len(base.offerings) + 1


def test_custom_prices_are_validated() -> None:
    with pytest.raises(ValidationError):
        CustomDiscount(provider="aws", percent=0)
    with pytest.raises(ValidationError):
        CustomDiscount(provider="aws", percent=100)
    with pytest.raises(ValidationError):
        CustomDiscount(provider="aws", percent=10, purchase_option="layaway")
    with pytest.raises(ValidationError, match="unknown accelerator"):
        CustomOffering(provider="aws", region="us-east-1", instance_type="x", gpu_model="H900", gpu_count=1,
                       on_demand_hourly=1)
    with pytest.raises(ValidationError):
        CustomOffering(provider="aws", region="us-east-1", instance_type="x", gpu_model="H100", gpu_count=1,
                       on_demand_hourly=-1)
    unknown_region = CustomOffering(provider="aws", region="mars-1", instance_type="x", gpu_model="H100",
                                    gpu_count=1, on_demand_hourly=1)
    with pytest.raises(ValueError, match="give country and jurisdiction"):
        apply_custom_prices(make_snapshot(), [], [unknown_region])
    no_specs = CustomOffering(provider="aws", region="us-east-1", instance_type="x", gpu_model="B200",
                              gpu_count=1, on_demand_hourly=1)
    with pytest.raises(ValueError, match="not in the snapshot"):
        apply_custom_prices(make_snapshot(), [], [no_specs])


def test_service_add_list_delete_and_apply(sqlite_session: Session) -> None:
    session = sqlite_session
    ws = Workspace(slug="acme", name="Acme")
    other = Workspace(slug="other", name="Other")
    session.add_all([ws, other])
    session.commit()
    svc.import_snapshot(session, make_snapshot(), origin="test")

    d1 = svc.add_custom_discount(session, ws.id, CustomDiscount(provider="aws", percent=10))
    svc.add_custom_discount(session, ws.id, CustomDiscount(provider="aws", percent=20, instance_family="p5"))
    again = svc.add_custom_discount(session, ws.id, CustomDiscount(provider="aws", percent=12, note="EDP"))
    assert again.id == d1.id and again.percent == 12  # same scope: replaced, not duplicated
    assert [(d.instance_family, d.percent) for d in svc.list_custom_discounts(session, ws.id)] == [("", 12), ("p5", 20)]
    off = svc.add_custom_offering(session, ws.id, CustomOffering(
        provider="aws", region="us-east-1", instance_type="g6.xlarge", gpu_model="L4", gpu_count=1,
        on_demand_hourly=0.5))
    assert len(svc.list_custom_offerings(session, ws.id)) == 1
    assert svc.list_custom_discounts(session, other.id) == []

    snap = svc.snapshot_for_workspace(session, ws.id)
    assert snap.offering(P5).on_demand_hourly == pytest.approx(55.04 * 0.8)
    assert snap.offering("aws/us-east-1/p4de.24xlarge").on_demand_hourly == pytest.approx(27.45 * 0.88)
    assert snap.offering("aws/us-east-1/g6.xlarge").on_demand_hourly == 0.5
    assert svc.get_snapshot(session).offering(P5).on_demand_hourly == 55.04  # stored snapshot unchanged
    assert svc.snapshot_for_workspace(session, other.id) == svc.get_snapshot(session)

    assert not svc.delete_custom_discount(session, other.id, d1.id)  # not theirs
    assert svc.delete_custom_discount(session, ws.id, d1.id)
    assert svc.delete_custom_offering(session, ws.id, off.id)
    assert [d.percent for d in svc.list_custom_discounts(session, ws.id)] == [20]
    with pytest.raises(LookupError):
        svc.add_custom_discount(session, 999, CustomDiscount(provider="aws", percent=1))
