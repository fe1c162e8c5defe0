"""Snapshot diff by offering and price."""

from __future__ import annotations

from app.catalog.diff import diff_snapshots
from tests.catalog_db.factory import _ri, make_snapshot, offerings


def test_added_removed_and_price_changes() -> None:
    old_offers = offerings()
    new_offers = offerings()
    p5 = new_offers[0]
    new_offers[0] = p5.model_copy(update={"on_demand_hourly": 49.536, "spot_hourly": None,
                                          "commitments": [_ri(36.0), _ri(26.0, 36)]})
    removed = new_offers.pop(4)  # g4dn.xlarge eu-west-1
    added = old_offers.pop(7)    # azure NC4as T4 only in the new one
    a, b = make_snapshot(old_offers), make_snapshot(new_offers)
    d = diff_snapshots(a, b)
    assert (d.from_snapshot, d.to_snapshot) == (a.snapshot_id, b.snapshot_id)
    assert [o.key for o in d.added] == [added.key]
    assert [o.key for o in d.removed] == [removed.key]
    changes = {(c.key, c.price): (c.old, c.new, c.pct) for c in d.changed}
    assert changes == {
        (p5.key, "on_demand_hourly"): (55.04, 49.536, -10.0),
        (p5.key, "spot_hourly"): (30.1, None, None),
        (p5.key, "commitment:reserved/12m/no_upfront/standard"): (38.0, 36.0, -5.26),
    }
    assert d.summary() == {"added": 1, "removed": 1, "price_changes": 3, "increases": 0, "decreases": 2,
                           "offerings_changed": 1}


def test_identical_snapshots_have_no_diff() -> None:
    d = diff_snapshots(make_snapshot(), make_snapshot())
    assert d.is_empty and d.summary()["price_changes"] == 0
