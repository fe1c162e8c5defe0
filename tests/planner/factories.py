"""Small problem builders shared by the planner tests."""

from __future__ import annotations

import random
from typing import Any

from app.planner.problem import CapacityProblem


def make(**fields: Any) -> CapacityProblem:
    """A CapacityProblem from keyword fields (defaults: 1-hour periods, nominal cost)."""
    return CapacityProblem.model_validate(fields)


def od(name: str = "od", price: float = 10.0, **kw: Any) -> dict[str, Any]:
    """An on-demand option priced per unit-period (``price_per_period``)."""
    return {"name": name, "kind": "on_demand", "price_per_period": price, **kw}


def reserved(name: str = "res", price: float = 4.0, term: int = 3, **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "reserved", "price_per_period": price, "term_periods": term, **kw}


def catalog_like(n_gpu: int = 6, periods: int = 24, seed: int = 3) -> CapacityProblem:
    """A synthetic GPU-catalog-shaped problem (monthly periods, 3 classes, pools, peaks).

    Hard enough that HiGHS and CBC cannot prove optimality (``gap=0``) in one second.
    """
    rnd = random.Random(seed)
    hours = [rnd.choice([672, 720, 744]) for _ in range(periods)]
    demand: dict[str, list[float]] = {"train": [], "serve": [], "batch": []}
    peak: dict[str, list[float]] = {"train": [], "serve": [], "batch": []}
    for t in range(periods):
        g = 1 + t / periods
        pt, ps, pb = (int(rnd.uniform(a, b) * g) for a, b in ((100, 400), (50, 150), (10, 60)))
        peak["train"].append(pt)
        peak["serve"].append(ps)
        peak["batch"].append(pb)
        demand["train"].append(pt * hours[t] * rnd.uniform(0.3, 0.7))
        demand["serve"].append(ps * hours[t] * 0.6)
        demand["batch"].append(pb * hours[t] * 0.5)
    providers = ["aws", "azure", "gcp", "lambda", "onprem"]
    pools = [{"name": p, "max_units": rnd.choice([None, 800, 1500])} for p in providers]
    options: list[dict[str, Any]] = []
    for k in range(n_gpu):
        prov = providers[k % 4]
        perf = rnd.uniform(0.5, 3.0)
        gpus = rnd.choice([1, 4, 8])
        perfd = {
            "train": perf * gpus,
            "serve": perf * gpus * rnd.uniform(0.8, 1.2),
            "batch": perf * gpus,
        }
        price = perf * gpus * rnd.uniform(1.5, 3.0)
        base = {"performance": perfd, "limits": {"limiting_sets": [prov]}}
        options += [
            {"name": f"g{k}-od", "kind": "on_demand", "usage_price": price, "integer": False, **base},
            {"name": f"g{k}-spot", "kind": "spot", "usage_price": price * 0.4, "integer": False,
             "interruption_overhead": 0.1, "availability": 0.7, "performance": perfd,
             "limits": {"limiting_sets": [prov], "max_units": 50}},
            {"name": f"g{k}-r1", "kind": "reserved", "price_per_period": price * 730 * 0.65,
             "term_periods": 12, **base},
            {"name": f"g{k}-r3", "kind": "reserved", "price_per_period": price * 730 * 0.3,
             "upfront": price * 730 * 0.2 * 36, "term_periods": 36, **base},
        ]  # fmt: skip
        if k % 6 == 0:
            options.append(
                {"name": f"g{k}-sp", "kind": "savings_plan", "price_per_period": 1,
                 "term_periods": 12, "rates": {f"g{k}-od": price * 0.7},
                 "commitment_unit": "$ per hour"}
            )  # fmt: skip
    for k in range(max(1, n_gpu // 6)):
        perf = rnd.uniform(1, 3) * 8
        srv: dict[str, Any] = {
            "name": f"srv{k}", "kind": "private", "upfront": 250000, "term_periods": 48,
            "lead_time_periods": 3, "residual_value": 20000,
            "recurring_costs": {"power": 1500, "colo": 800, "staff": 400},
            "performance": {"train": perf, "serve": perf, "batch": perf},
            "limits": {"limiting_sets": ["onprem"]},
        }  # fmt: skip
        if k % 2:
            srv["financing"] = {"periods": 36, "rate_per_period": 0.005}
        options.append(srv)
    return make(
        name="catalog-like",
        periods=periods,
        period_hours=hours,
        demand=demand,
        peak=peak,
        classes={
            "train": {"interruptible": True},
            "serve": {"latency_bound": True},
            "batch": {"interruptible": True},
        },
        limiting_sets=pools,
        options=options,
        demand_unit="GPU-hours",
        peak_unit="GPUs",
    )
