"""What changed between two price snapshots, by offering and by price (pure functions).

Prices compared per offering (``provider/region/instance_type``): ``on_demand_hourly``,
``spot_hourly`` and every commitment price, keyed by
``commitment:<kind>/<term>m/<payment_option>[/<offering_class>]`` and compared on
``effective_hourly_usd``. A price that appears or disappears on an offering present in
both snapshots is a change with ``old``/``new`` None and no percentage.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.catalog.schema import CommitmentPrice, Offering, Snapshot

__all__ = ["OfferingRef", "PriceChange", "SnapshotDiff", "diff_snapshots", "price_points"]

# Relative changes below this are float noise from unit conversions, not price changes.
_REL_TOLERANCE = 1e-9


class OfferingRef(BaseModel):
    """An offering added or removed, with its on-demand price for context."""

    key: str
    gpu_model: str
    gpu_count: int
    on_demand_hourly: float | None = None


class PriceChange(BaseModel):
    key: str = Field(description="Offering key provider/region/instance_type.")
    price: str = Field(description="'on_demand_hourly', 'spot_hourly' or 'commitment:…'.")
    old: float | None = None
    new: float | None = None
    pct: float | None = Field(default=None, description="(new - old) / old * 100; None if a side is missing.")


class SnapshotDiff(BaseModel):
    from_snapshot: str
    to_snapshot: str
    added: list[OfferingRef] = Field(default_factory=list)
    removed: list[OfferingRef] = Field(default_factory=list)
    changed: list[PriceChange] = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> dict[str, int]:
        ups = sum(1 for c in self.changed if c.pct is not None and c.pct > 0)
        downs = sum(1 for c in self.changed if c.pct is not None and c.pct < 0)
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "price_changes": len(self.changed),
            "increases": ups,
            "decreases": downs,
            "offerings_changed": len({c.key for c in self.changed}),
        }


def _commitment_key(c: CommitmentPrice) -> str:
    term = f"{c.term_months}m" if c.term_months is not None else "any"
    key = f"commitment:{c.kind}/{term}/{c.payment_option}"
    return f"{key}/{c.offering_class}" if c.offering_class else key


def price_points(offering: Offering) -> dict[str, float | None]:
    """Every comparable price of ``offering`` by a stable name."""
    points: dict[str, float | None] = {
        "on_demand_hourly": offering.on_demand_hourly,
        "spot_hourly": offering.spot_hourly,
    }
    for c in offering.commitments:
        # Duplicated keys keep the cheapest: the price someone would actually buy.
        key = _commitment_key(c)
        prev = points.get(key)
        points[key] = c.effective_hourly_usd if prev is None else min(prev, c.effective_hourly_usd)
    return points


def _ref(o: Offering) -> OfferingRef:
    return OfferingRef(key=o.key, gpu_model=o.gpu_model, gpu_count=o.gpu_count,
                       on_demand_hourly=o.on_demand_hourly)


def _differs(old: float, new: float) -> bool:
    return abs(new - old) > _REL_TOLERANCE * max(abs(old), abs(new))


def diff_snapshots(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """Offerings added to / removed from ``b`` relative to ``a`` and every price change,
    sorted by offering key then price name."""
    old = {o.key: o for o in a.offerings}
    new = {o.key: o for o in b.offerings}
    out = SnapshotDiff(from_snapshot=a.snapshot_id, to_snapshot=b.snapshot_id)
    out.added = [_ref(new[k]) for k in sorted(new.keys() - old.keys())]
    out.removed = [_ref(old[k]) for k in sorted(old.keys() - new.keys())]
    for key in sorted(old.keys() & new.keys()):
        p_old, p_new = price_points(old[key]), price_points(new[key])
        for name in sorted(p_old.keys() | p_new.keys(), key=lambda n: (n.startswith("commitment:"), n)):
            x, y = p_old.get(name), p_new.get(name)
            if x is None and y is None:
                continue
            if x is not None and y is not None:
                if not _differs(x, y):
                    continue
                pct = round((y - x) / x * 100, 2)
            else:
                pct = None
            out.changed.append(PriceChange(key=key, price=name, old=x, new=y, pct=pct))
    return out
